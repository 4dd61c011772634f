#!/usr/bin/env python3
"""Throughput of a running target while pyprof is attached with the shim
loaded (README, Attaching), against the same process unattached: work
steps per CPU second of the target (user+sys), so a loaded machine
disturbs it less than wall time would.

The target is tests/workloads/inject_target.py (churning lists and dicts
in pure Python, main thread busy); its work steps per second are read
over WINDOW seconds, in alternating rounds: plain, attached with the
default sampling, attached with --sample 0, attached --no-inject. Prints
each mode's median steps per CPU second and its ratio to plain.

usage: scripts/bench_inject.py [PYTHON] [ROUNDS] [WINDOW]
"""
import os
import select
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYPROF = os.path.join(ROOT, "build", "pyprof")
W = os.path.join(ROOT, "tests", "workloads", "inject_target.py")


def main():
    py = sys.argv[1] if len(sys.argv) > 1 else "/usr/bin/python3.11"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    window = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    tg = subprocess.Popen([py, W, "busy"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ask(cmd):
        tg.stdin.write((cmd + "\n").encode())
        tg.stdin.flush()
        r, _, _ = select.select([tg.stdout], [], [], 30)
        return tg.stdout.readline().decode().strip() if r else ""

    def cpu():
        f = open("/proc/%d/stat" % tg.pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def rate():
        """work steps per CPU second of the target (the machine may be
        shared: CPU time, not wall time)"""
        a, c = int(ask("ping").split()[1]), cpu()
        time.sleep(window)
        b, d = int(ask("ping").split()[1]), cpu()
        return (b - a) / max(d - c, 1e-9)

    assert tg.stdout.readline().decode().strip() == "ready"
    modes = {"plain": None, "default sampling": [], "--sample 0": ["--sample", "0"],
             "--no-inject": ["--no-inject"]}
    got = {m: [] for m in modes}
    env = dict(os.environ, PYPROF_DEBUG="1")
    for _ in range(rounds):
        for m, extra in modes.items():
            if extra is None:
                got[m].append(rate())
                continue
            p = subprocess.Popen([PYPROF, "record", "-o", "/tmp/bench_inject.pp", "--pid",
                                  str(tg.pid)] + extra, stderr=subprocess.PIPE, env=env)
            err = b""
            t0 = time.monotonic()
            want = b"pyprof: the shim is loaded" if "--no-inject" not in extra else b"attached to"
            while want not in err and time.monotonic() - t0 < 20:
                err += os.read(p.stderr.fileno(), 4096)
            got[m].append(rate())
            p.send_signal(signal.SIGINT)
            p.communicate(timeout=60)
    ask("quit")
    plain = statistics.median(got["plain"])
    for m in modes:
        med = statistics.median(got[m])
        print("%-18s %10.0f steps/cpu-s  %.3f x plain  (%s)" %
              (m, med, med / plain, " ".join("%.0f" % x for x in got[m])))


if __name__ == "__main__":
    main()

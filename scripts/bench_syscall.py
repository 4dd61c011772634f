"""ns per syscall of a process unrelated to the target, plain and while
pyprof is attached (scripts/bench_syscall.sh). The cost of a sys_enter/
sys_exit program falls on every process of the machine.

One idle target (Debian's python3). Each round, once no other job's
sys_enter program is attached (bpftool; a shared machine), in quick
succession: scripts/syscall_cost.c plain, then attached in each MODE
(pyprof record --pid PID OPTS, as in bench_attach.sh), then plain again;
a round is kept only if no other job's program came or went meanwhile.
Prints per mode the median over kept rounds of getpid() and read() ns
(thread CPU time) and of their excess over the round's plain (the mean
of its two plain runs).
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True     # no scripts/__pycache__ left behind
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_attach as ba  # noqa: E402


def cost(prog):
    out = subprocess.run([prog], capture_output=True, check=True).stdout.split()
    return float(out[1]), float(out[3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quiet", type=float, default=60)
    ap.add_argument("--modes", default="no-inject=--no-inject")
    a = ap.parse_args()
    modes = []
    for m in a.modes.split(","):
        name, _, flags = m.partition("=")
        modes.append((name, flags.split()))
    tmp = tempfile.mkdtemp(prefix="bench-syscall-")
    sc = os.path.join(tmp, "syscall_cost")
    subprocess.run(["cc", "-O2", "-o", sc, os.path.join(ba.ROOT, "scripts/syscall_cost.c")],
                   check=True)
    t = subprocess.Popen([ba.PY, "-c", "import time; time.sleep(100000)"])
    res = {m: [] for m, _ in modes}
    try:
        for r in range(a.runs):
            if not ba.quiet(a.quiet):
                print("round %d: others' hooks stayed, skipped" % (r + 1), file=sys.stderr)
                continue
            n0 = ba.sys_hooks()
            p0 = cost(sc)
            got = {}
            for m, args in modes:
                p = ba.attach(t.pid, args, os.path.join(tmp, "t.pp"))
                got[m] = cost(sc)
                p.send_signal(signal.SIGINT)
                p.wait(60)
            p1 = cost(sc)
            clean = ba.sys_hooks() == n0 == 0
            base = [(x + y) / 2 for x, y in zip(p0, p1)]
            print("round %d%s: plain %.0f/%.0f ns, %s" % (
                r + 1, "" if clean else " (others' hooks: dropped)", base[0], base[1],
                ", ".join("%s %.0f/%.0f" % (m, g[0], g[1]) for m, g in got.items())),
                file=sys.stderr, flush=True)
            if clean:
                res.setdefault("plain", []).append((base, base))
                for m in got:
                    res[m].append((got[m], base))
    finally:
        t.kill()
        t.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%-12s %10s %10s %12s %12s" % ("mode", "getpid ns", "read ns", "getpid +ns",
                                         "read +ns"))
    for m in ["plain"] + [m for m, _ in modes]:
        rs = res.get(m) or []
        if not rs:
            print("%-12s (no clean round)" % m)
            continue
        med = [statistics.median(g[i] for g, _ in rs) for i in (0, 1)]
        exc = [statistics.median(g[i] - b[i] for g, b in rs) for i in (0, 1)]
        print("%-12s %10.0f %10.0f %12.0f %12.0f" % (m, med[0], med[1], exc[0], exc[1]))
    print("(%d clean rounds of %d; thread CPU time per call, medians)" %
          (len(res.get("plain", [])), a.runs))


if __name__ == "__main__":
    main()

"""Throughput of a web service while pyprof is attached (scripts/bench_attach.sh).

One service (tests/workloads/webapp.py, Flask's threaded server, Debian's
python3) on 127.0.0.1 for the whole benchmark. Each round runs every mode
once, in turn (alternating, so the machine's noise falls on all alike):

  plain      nothing attached
  no-inject  pyprof record --pid PID --no-inject (eBPF only)
  default    pyprof record --pid PID (injection, sampling by default)
  sample0    pyprof record --pid PID --sample 0 (every allocation)
  NAME=OPTS  pyprof record --pid PID OPTS (e.g. futex=--no-inject --gil futex);
             VAR=VALUE words in OPTS go to pyprof's environment instead
             (nolocks=--no-inject PYPROF_TEST_BPF_OFF=locks), PYPROF=PATH
             runs another build (before=--no-inject PYPROF=/tmp/old/pyprof)

In a run the load generator (tests/workloads/loadgen.py, 4 threads,
keep-alive, the normal endpoints) drives the service for --seconds after
pyprof is attached; pyprof detaches after it. Figures per mode: median
throughput (ok requests/s) and its ratio to plain's median, the service's
CPU (user+sys, from /proc) per 1000 requests, alone and with pyprof's own
CPU during the load (both share the machine's cores; each round also
prints pyprof's wake-ups per second), failures and timeouts, and
for attached modes the time from starting pyprof to its first figures
(a batch frame: pyprof --pid PID -b -n 1 -d 0.05), median of the rounds.
Before the load, scripts/syscall_cost.c (built here with cc) times
getpid() in a process unrelated to the service: what every process of
the machine pays per syscall while pyprof is attached (ns, median of
the rounds in which no other job had a sys_enter program attached, per
bpftool; each run first waits up to --quiet seconds for that).
Until injection is built, default and sample0 attach as no-inject does.
"""
import argparse
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import re
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"
PYPROF = os.path.join(ROOT, "build", "pyprof")
MODES = {"plain": None, "no-inject": ["--no-inject"], "default": [],
         "sample0": ["--sample", "0"]}


def cpu(pid):
    """user+sys seconds of the process (its threads included)."""
    with open("/proc/%d/stat" % pid) as f:
        f = f.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def wakeups(pid):
    """Voluntary context switches of the process's threads: its wake-ups."""
    n = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def start_service():
    p = subprocess.Popen([PY, os.path.join(ROOT, "tests/workloads/webapp.py")],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "ready":
        sys.exit("bench_attach: the service did not start")
    return p, int(line[1])


def load(port, secs, threads):
    out = subprocess.run([PY, os.path.join(ROOT, "tests/workloads/loadgen.py"),
                          "http://127.0.0.1:%d" % port, "--seconds", str(secs),
                          "--threads", str(threads), "--keepalive"],
                         capture_output=True, check=True).stdout
    return json.loads(out.decode().strip().splitlines()[-1])


def split_env(args):
    """pyprof's options and the VAR=VALUE words among them."""
    env = dict(a.split("=", 1) for a in args if re.match(r"[A-Z_]+=", a))
    return [a for a in args if not re.match(r"[A-Z_]+=", a)], env


def sys_hooks():
    """sys_enter programs attached on the machine (bpftool), None if unknown.
    Other jobs' (pyprof's tests on a shared machine) slow every syscall too."""
    try:
        out = subprocess.run(["bpftool", "link", "list"], capture_output=True,
                             timeout=10).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.count("tp 'sys_enter'")


def syscall_ns(prog):
    """getpid() ns in a process of its own (scripts/syscall_cost.c), and
    whether no one else's sys_enter program came or went meanwhile."""
    n0 = sys_hooks()
    out = subprocess.run([prog], capture_output=True, check=True).stdout.split()
    return float(out[1]), n0 is not None and n0 == sys_hooks()


def quiet(wait):
    """Wait up to WAIT s for no sys_enter program on the machine; True if so."""
    deadline = time.monotonic() + wait
    while sys_hooks() not in (0, None):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return sys_hooks() == 0


def attach(pid, args, trace):
    """pyprof record attached; returns it once attached."""
    args, extra = split_env(args)
    env = dict(os.environ, PYPROF_DEBUG="1", **extra)
    p = subprocess.Popen([extra.get("PYPROF", PYPROF), "record", "-o", trace, "--pid", str(pid)] + args,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = b""
    deadline = time.monotonic() + 60
    while b"attached to pid" not in err and time.monotonic() < deadline:
        r, _, _ = select.select([p.stderr], [], [], 1)
        if r:
            c = os.read(p.stderr.fileno(), 4096)
            if not c:
                break
            err += c
    if b"attached to pid" not in err:
        p.kill()
        sys.exit("bench_attach: pyprof did not attach: %s" % err.decode(errors="replace"))
    return p


def first_figures(pid, args):
    """Seconds from starting the viewer attached to its first frame."""
    args, extra = split_env(args)
    t0 = time.monotonic()
    p = subprocess.Popen([extra.get("PYPROF", PYPROF), "--pid", str(pid), "-b", "-n", "1",
                          "-d", "0.05"] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, **extra))
    line = p.stdout.readline()
    t = time.monotonic() - t0
    p.communicate()
    return t if line else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--modes", default="plain,no-inject")
    ap.add_argument("--quiet", type=float, default=10,
                    help="seconds to wait for other jobs' syscall hooks to go")
    a = ap.parse_args()
    modes = a.modes.split(",")
    for i, m in enumerate(modes):
        if "=" in m:        # NAME=pyprof options, e.g. futex=--no-inject --gil futex
            name, _, flags = m.partition("=")
            MODES[name] = flags.split()
            modes[i] = m = name
        if m not in MODES:
            sys.exit("bench_attach: unknown mode %r (%s, or NAME=OPTIONS)" %
                     (m, ", ".join(MODES)))
    if "plain" not in modes:
        modes.insert(0, "plain")
    svc, port = start_service()
    tmp = tempfile.mkdtemp(prefix="bench-attach-")
    sc = os.path.join(tmp, "syscall_cost")
    subprocess.run(["cc", "-O2", "-o", sc, os.path.join(ROOT, "scripts/syscall_cost.c")],
                   check=True)
    res = {m: [] for m in modes}
    try:
        load(port, 2, a.threads)                    # warm up
        for r in range(a.runs):
            for m in modes:
                p = None
                alone = quiet(a.quiet)
                if MODES[m] is not None:
                    p = attach(svc.pid, MODES[m], os.path.join(tmp, "t.pp"))
                ns, still = syscall_ns(sc)
                clean = alone and still
                c0 = cpu(svc.pid)
                pc0, w0 = (cpu(p.pid), wakeups(p.pid)) if p else (0, 0)
                st = load(port, a.seconds, a.threads)
                c1 = cpu(svc.pid)
                pc1, w1 = (cpu(p.pid), wakeups(p.pid)) if p else (0, 0)
                if p:
                    p.send_signal(signal.SIGINT)
                    p.wait(60)
                ff = first_figures(svc.pid, MODES[m]) if MODES[m] is not None else None
                st.update(cpu_s=c1 - c0, pcpu_s=pc1 - pc0, wake=(w1 - w0) / st["seconds"],
                          first_s=ff, syscall_ns=ns, clean=clean)
                res[m].append(st)
                print("round %d %-9s %8.1f req/s  cpu %.2f s + pyprof %.2f s (%.0f wake-ups/s)  "
                      "getpid %.0f ns%s  fail %d  timeout %d%s" %
                      (r + 1, m, st["throughput"], st["cpu_s"], st["pcpu_s"], st["wake"], ns,
                       "" if clean else " (others' hooks)", st["failures"],
                       st["timeouts"], "  first figures %.2f s" % ff if ff else ""),
                      file=sys.stderr, flush=True)
    finally:
        svc.terminate()
        svc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    base = statistics.median(x["throughput"] for x in res["plain"])
    print("%-10s %10s %7s %15s %13s %11s %12s %9s %13s" % (
        "mode", "req/s", "ratio", "cpu ms/1k req", "pyprof ms/1k", "both ms/1k", "getpid ns",
        "failures", "first figs s"))
    for m in modes:
        rs = res[m]
        tput = statistics.median(x["throughput"] for x in rs)
        cpk = statistics.median(1000 * 1000 * x["cpu_s"] / max(1, x["ok"]) for x in rs)
        own = statistics.median(1000 * 1000 * x["pcpu_s"] / max(1, x["ok"]) for x in rs)
        tot = statistics.median(1000 * 1000 * (x["cpu_s"] + x["pcpu_s"]) / max(1, x["ok"])
                                for x in rs)
        ff = [x["first_s"] for x in rs if x["first_s"]]
        ok_ns = [x["syscall_ns"] for x in rs if x["clean"]]
        ns = "%.0f (%d)" % (statistics.median(ok_ns), len(ok_ns)) if ok_ns else "-"
        print("%-10s %10.1f %7.3f %15.1f %13.1f %11.1f %12s %9d %13s" % (
            m, tput, tput / base, cpk, own, tot, ns, sum(x["failures"] + x["timeouts"] for x in rs),
            "%.2f" % statistics.median(ff) if ff else "-"))
    print("(%d alternating rounds of %g s, %d load threads; medians; pyprof, both: pyprof's\n"
          " CPU, and the service's and pyprof's together, during the load; getpid ns: of\n"
          " the (N) rounds no other job's sys_enter program was attached)" % (
              a.runs, a.seconds, a.threads))


if __name__ == "__main__":
    main()

"""Where attaching costs the service: per eBPF program, per request.

  scripts/bench_bpf_progs.py [--seconds S] [--threads N] [OPTS...]

Starts the service of scripts/bench_attach.sh (tests/workloads/webapp.py),
attaches `pyprof record --pid PID OPTS` (default --no-inject; VAR=VALUE
words go to pyprof's environment as in bench_attach, e.g. PYPROF=PATH or
PYPROF_TEST_BPF_OFF=locks), drives it with the load generator for S
seconds and prints, for each program pyprof loaded, its runs, ns per run
and us per request, from the kernel's own counters (kernel.
bpf_stats_enabled, switched on for the load only and set back after:
it times every program of the machine meanwhile). Also the service's CPU
per 1000 requests and pyprof's own CPU.

Tail-called programs (the GIL's futex mode, locks, kmem syscalls: see
ebpf/sys.h) count under sys_enter/sys_exit; those two and the page fault
program run for every process of the machine, so their figures include
what other jobs' syscalls and faults cost them (rejected at once: a few
tens of ns each). One run, not a median: for before/after, alternate.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_attach as ba  # noqa: E402


def progs():
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True,
                         check=True).stdout
    return {(p["id"], p.get("name", "?")): (p.get("run_cnt", 0), p.get("run_time_ns", 0))
            for p in json.loads(out)}


def main():
    argv = sys.argv[1:]
    secs, threads = 6.0, 4
    while argv and argv[0] in ("--seconds", "--threads"):
        if argv[0] == "--seconds":
            secs = float(argv[1])
        else:
            threads = int(argv[1])
        argv = argv[2:]
    opts = argv or ["--no-inject"]
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        was = f.read().strip()
    svc, port = ba.start_service()
    tmp = tempfile.mkdtemp(prefix="bench-bpf-")
    p = None
    try:
        ba.load(port, 2, threads)                   # warm up
        before = set(progs())
        p = ba.attach(svc.pid, opts, os.path.join(tmp, "t.pp"))
        subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=1"], check=True)
        s0, c0, pc0 = progs(), ba.cpu(svc.pid), ba.cpu(p.pid)
        st = ba.load(port, secs, threads)
        s1, c1, pc1 = progs(), ba.cpu(svc.pid), ba.cpu(p.pid)
    finally:
        subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=" + was])
        if p:
            p.send_signal(signal.SIGINT)
            p.wait(60)
        svc.terminate()
        svc.wait()
        subprocess.run(["rm", "-rf", tmp])
    ok = max(1, st["ok"])
    print("%.1f req/s, service CPU %.0f ms per 1k requests, pyprof CPU %.1f%% of a core"
          % (st["throughput"], 1e6 * (c1 - c0) / ok, 100 * (pc1 - pc0) / st["seconds"]))
    print("%-22s %10s %9s %10s" % ("program", "runs", "ns/run", "us/request"))
    for k in sorted(s1):
        if k in before or k not in s0:
            continue
        n, t = s1[k][0] - s0[k][0], s1[k][1] - s0[k][1]
        if n:
            print("%-22s %10d %9.0f %10.2f" % (k[1], n, t / n, t / 1e3 / ok))


if __name__ == "__main__":
    main()

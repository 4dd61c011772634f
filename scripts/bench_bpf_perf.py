"""What attaching costs the service itself, by perf samples.

  scripts/bench_bpf_perf.py [--seconds S] [--runs N] [OPTS...]

bench_bpf_progs.py prices each eBPF program by the kernel's counters,
which also count what the programs cost other processes (sys_enter,
sys_exit, sched_switch and the page fault program run for every process
of the machine) and what bpf_stats itself adds per run, and leave out
the tracepoint machinery (the slow syscall path). This one attaches
`pyprof record --pid PID OPTS` (default --no-inject; VAR=VALUE words go
to pyprof's environment, PYPROF=PATH runs another build) to the
service of scripts/bench_attach.sh, samples the whole machine with
`perf record -a` (cpu-clock) while the load generator runs, and prints
the share of the service's own samples in BPF programs, BPF helpers and
maps, and the tracepoint and syscall tracing code: what its CPU pays.
A switch into one of the service's threads runs sched_switch programs
in the context of the task switched out (often the idle task): that
part is not the service's and is not counted here. Median of N runs.
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_attach as ba  # noqa: E402

TRACING = re.compile(r"bpf|probe_read|copy_from_user_nofault|ringbuf|htab|"
                     r"syscall_trace|trace_sys|task_pt_regs|perf_syscall|"
                     r"tracing_|__traceiter|bpf_lru")


def share(data, pid):
    """(service's samples, their % in BPF/tracing code, top symbols)."""
    out = subprocess.run(["perf", "report", "-i", data, "--pid", str(pid),
                          "--no-children", "--sort", "sym", "-F", "overhead,sym"],
                         capture_output=True, check=True).stdout.decode()
    tot, hit, top = 0.0, 0.0, []
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+\[.\]\s+(\S+)", line)
        if not m:
            continue
        p, sym = float(m.group(1)), m.group(2)
        tot += p
        if TRACING.search(sym):
            hit += p
            top.append((p, sym))
    top.sort(reverse=True)
    return tot, 100 * hit / tot if tot else 0.0, top[:5]


def main():
    argv = sys.argv[1:]
    secs, runs = 5.0, 3
    while argv and argv[0] in ("--seconds", "--runs"):
        if argv[0] == "--seconds":
            secs = float(argv[1])
        else:
            runs = int(argv[1])
        argv = argv[2:]
    opts = argv or ["--no-inject"]
    svc, port = ba.start_service()
    tmp = tempfile.mkdtemp(prefix="bench-perf-")
    data = os.path.join(tmp, "perf.data")
    res = []
    try:
        ba.load(port, 2, 4)                         # warm up
        for _ in range(runs):
            p = ba.attach(svc.pid, opts, os.path.join(tmp, "t.pp"))
            pr = subprocess.Popen(["perf", "record", "-q", "-a", "-o", data, "--",
                                   "sleep", str(secs)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            st = ba.load(port, secs, 4)
            pr.wait()
            p.send_signal(signal.SIGINT)
            p.wait(60)
            tot, pct, top = share(data, svc.pid)
            res.append(pct)
            print("%.1f req/s; service %.1f%% of the machine's samples, %.2f%% of its own "
                  "in BPF/tracing: %s" % (st["throughput"], tot, pct,
                                          ", ".join("%s %.2f" % (s, p) for p, s in top)),
                  file=sys.stderr, flush=True)
    finally:
        svc.terminate()
        svc.wait()
        subprocess.run(["rm", "-rf", tmp])
    print("service CPU in BPF/tracing: %.2f%% (median of %d; runs %s)" % (
        statistics.median(res), len(res), ", ".join("%.2f" % x for x in res)))


if __name__ == "__main__":
    main()

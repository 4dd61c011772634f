"""Heap growth seen by the kernel (eBPF: anonymous private mmap/munmap and
brk of the target, hooked by the shim or not), on tests/workloads/exact.py:
23 blocks of 1 MiB, each its own mapping in glibc, alive until exit.

Asserts, per interpreter:
- heap.kernel.source is "ebpf" and its peak covers the 23 MiB (plus at most
  16 MiB of the interpreter's own arenas and buffers made meanwhile);
- the timeline carries kernel_bytes and reaches that peak;
- without eBPF (--no-bpf) the source says "none" and nothing is claimed.
"""
import harness as h

W = "exact.py"
LO = 23 * h.MIB
HI = 23 * h.MIB + 16 * h.MIB


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def one(label, py):
    t = "%s kernel" % label
    # held 0.3 s once made: a regular tick sees them live (a program
    # this short may otherwise end between two ticks)
    r = h.record(py, W, args=("--hold",))
    if not h.check(r.report is not None, t + ": recorded", str(r.why)):
        return
    k = r.report["heap"].get("kernel") or {}
    h.check(k.get("source") == "ebpf", t + ": source ebpf", "kernel = %r" % k)
    peak = k.get("peak_mapped_bytes", 0)
    h.check(LO <= peak <= HI, t + ": peak covers the 23 MiB mapped",
            "peak %d, want %d..%d" % (peak, LO, HI))
    tl = r.report["heap"]["timeline"]
    h.check(tl and max(p.get("kernel_bytes", 0) for p in tl) >= LO,
            t + ": timeline carries kernel_bytes",
            "max %s" % max((p.get("kernel_bytes", 0) for p in tl), default=None))
    r = h.record(py, W, extra_pyprof_args=("--no-bpf",))
    if not h.check(r.report is not None, t + " --no-bpf: recorded", str(r.why)):
        return
    k = r.report["heap"].get("kernel") or {}
    h.check(k.get("source") == "none" and not k.get("peak_mapped_bytes"),
            t + " --no-bpf: source none", "kernel = %r" % k)


if __name__ == "__main__":
    main()

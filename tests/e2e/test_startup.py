"""Start-up (README, Overhead: Start-up): what the eBPF probes see from
the program's first line, both ways they can be loaded.

A program whose first statement is gc.collect() and which leaves with
os._exit(0) (no collections at finalization) makes exactly one gen-2
collection; per interpreter, under `pyprof record`:
- the report's GC source is ebpf and it has exactly that one gen-2
  collection (so the GC probe was in before the program's first line);
- the GIL source is ebpf and the main thread has acquisitions;
- the same with PYPROF_TEST_KERNEL_BTF=1: libbpf relocates against the
  kernel's own BTF instead of the types cut out at build time (what a
  kernel other than the build's gets).
"""
import harness as h

CODE = "import gc, os; gc.collect(); os._exit(0)"


def one(label, py, env, how):
    t = "%s start-up (%s)" % (label, how)
    r = h.record(py, "-c", [CODE], env=env)
    if not h.check(r.rc == 0 and r.report is not None, t + ": recorded",
                   "rc %s; %s" % (r.rc, r.why)):
        return
    gc = r.report.get("gc") or {}
    gens = {g["generation"]: g["collections"] for g in gc.get("generations", [])}
    h.check(gc.get("source") == "ebpf" and gens.get(2) == 1,
            t + ": the first statement's collection is seen, once",
            "gc source %r, collections by generation %r; stderr: %s" % (
                gc.get("source"), gens, h.tail(r.err)))
    gil = r.report.get("gil") or {}
    main = [x for x in gil.get("threads", []) if x.get("name") == "MainThread"]
    h.check(gil.get("source") == "ebpf" and main and main[0].get("acquisitions", 0) > 0,
            t + ": GIL seen by eBPF", "gil %r" % gil)


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py, None, "build's kernel types")
        one(label, py, {"PYPROF_TEST_KERNEL_BTF": "1"}, "kernel BTF")
    h.done()


if __name__ == "__main__":
    main()

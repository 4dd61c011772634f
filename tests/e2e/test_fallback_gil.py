"""GIL waits from the in-process fallback, and Python thread names.

Per interpreter, on tests/workloads/fallback_gil.py (four CPU-bound
threads cpu-0..3 and one I/O thread io-0, each measuring its own GIL
wait from the kernel's scheduler accounting, as the eBPF test does):
- `record --no-bpf`: the report's GIL figures come from the shim
  (gil.source "shim"); every worker is in gil.threads under its Python
  name, with a wait fraction within 7 points of the workload's bounds
  (test_bpf_stalls.c says why 7);
  the main thread is "MainThread"; the thread-naming profile hook has
  removed itself in every thread (sys.getprofile() is None there);
- `record` with eBPF: gil.threads carry the same Python names.
"""
import sys

import harness as h

W = "fallback_gil.py"
DUR = "2.0"
NAMES = ["cpu-0", "cpu-1", "cpu-2", "cpu-3", "io-0"]


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        fallback(label, py)
        ebpf(label, py)
    h.done()


def truth_of(out):
    """{name: (tid, life, wait_lo, wait_hi)}, {name: profile hook gone}"""
    truth, prof = {}, {}
    for line in out.splitlines():
        f = line.split()
        if f[:1] == ["thread"] and len(f) == 6:
            truth[f[1]] = (int(f[2]), float(f[3]), float(f[4]), float(f[5]))
        elif f[:1] == ["profile"] and len(f) == 3:
            prof[f[1]] = f[2] == "True"
    return truth, prof


def fallback(label, py):
    t = "%s fallback gil" % label
    r = h.record(py, W, (DUR,), extra_pyprof_args=("--no-bpf",))
    ok = h.check(r.rc == 0 and r.report is not None, t + ": recorded and reported",
                 "rc %s; %s; stderr %s" % (r.rc, r.why, h.tail(r.err)))
    if not ok:
        return
    gil = r.report.get("gil") or {}
    h.check(gil.get("source") == "shim", t + ": report says source shim",
            "gil.source = %r" % gil.get("source"))
    truth, prof = truth_of(r.out)
    if not h.check(sorted(truth) == NAMES, t + ": workload measured itself",
                   "stdout %s" % h.tail(r.out)):
        return
    threads = {th.get("tid"): th for th in gil.get("threads") or []}
    for name in NAMES:
        tid, life, lo, hi = truth[name]
        th = threads.get(tid)
        tt = "%s %s" % (t, name)
        if not h.check(th is not None, tt + ": in gil.threads",
                       "tid %d not among %s" % (tid, sorted(threads))):
            continue
        h.check(th.get("name") == name, tt + ": named by its Python name",
                "name %r" % th.get("name"))
        # the thread's wait against its bounds over the same life (from
        # its creation), as a share of that life
        wf = th.get("wait_fraction") or 0.0
        ws = th.get("wait_s") or 0.0
        lo_f, hi_f = lo / life, hi / life
        err = (lo - ws if ws < lo else ws - hi if ws > hi else 0.0) / life
        h.check(err <= 0.07, "%s: wait fraction %.3f within 7 points of %.3f..%.3f"
                % (tt, wf, lo_f, hi_f),
                "off by %.1f points (held %s s, wait %s s, life %s s, %s acq)" % (
                    100 * err, th.get("held_s"), th.get("wait_s"),
                    th.get("lifetime_s"), th.get("acquisitions")))
        h.check(prof.get(name) is True, tt + ": profile hook gone from the thread",
                "sys.getprofile() in the thread: %s" % prof.get(name))
    names = [th.get("name") for th in threads.values()]
    h.check("MainThread" in names, t + ": main thread named MainThread",
            "names %s" % names)


def ebpf(label, py):
    t = "%s ebpf gil" % label
    r = h.record(py, W, ("0.3",))
    ok = h.check(r.rc == 0 and r.report is not None, t + ": recorded and reported",
                 "rc %s; %s; stderr %s" % (r.rc, r.why, h.tail(r.err)))
    if not ok:
        return
    gil = r.report.get("gil") or {}
    h.check(gil.get("source") == "ebpf", t + ": report says source ebpf",
            "gil.source = %r; stderr %s" % (gil.get("source"), h.tail(r.err)))
    truth, _ = truth_of(r.out)
    got = {th.get("tid"): th.get("name") for th in gil.get("threads") or []}
    for name in NAMES:
        tid = truth.get(name, (None,))[0]
        h.check(got.get(tid) == name, "%s %s: named by its Python name" % (t, name),
                "tid %s has name %r" % (tid, got.get(tid)))


if __name__ == "__main__":
    sys.exit(main())

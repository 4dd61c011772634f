"""Sampled figures of objects that come off CPython's freelists
(tests/workloads/sampled_freelists.py), --sample 1024 (a 56-byte list is
drawn with probability ~5.3%).

On 3.9-3.12 the freelisted types are sent through the object allocator
(each creation is a malloc the sampler draws); on 3.13+ a re-creation
from a freelist is seen by the reference tracer and drawn there as an
allocation of its size would be (README, "Objects from CPython's
freelists"). Per interpreter:
- exit 0 and the workload's truth line;
- churn lines (100,000 objects each, made and dropped one at a time: list,
  dict, tuple, float): allocated bytes within 15% of the truth (~5,000
  draws a line: 5 sd) and counts likewise (the others' mechanisms on the
  other versions are held to the same);
- after a burst of 65 drops, the one list kept first (S-BURST-ONE, 2,000
  of them: ~106 draws, sd ~10%) has live and allocated bytes within
  0.6-1.6x of the truth, and the 63 kept after it (S-BURST-REST) within
  15%: a pop takes the newest push, so "the creation after a drawn push"
  would charge S-BURST-ONE tens of times its share and S-BURST-REST less.
"""
import harness as h

W = "sampled_freelists.py"
SAMPLE = 1024
CHURN = ("S-CHURN-LIST", "S-CHURN-DICT", "S-CHURN-TUPLE", "S-CHURN-FLOAT")


def truth(out):
    t = {}
    for line in out.splitlines():
        w = line.split()
        if len(w) == 4 and w[0] == "TRUTH":
            t[w[1]] = (int(w[2]), int(w[3]))
    return t


def within(got, want, lo, hi):
    return want > 0 and lo * want <= got <= hi * want


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        t = "%s sampled freelists" % label
        r = h.record(py, W, extra_pyprof_args=("--sample", str(SAMPLE)))
        tr = truth(r.out)
        ok = h.check(r.rc == 0 and len(tr) == 6 and r.report is not None,
                     t + ": exits 0, truth printed, report parses",
                     "rc %s; %s; stdout %s; stderr %s" % (
                         r.rc, r.why, h.tail(r.out), h.tail(r.err)))
        if not ok:
            continue
        for m in CHURN + ("S-BURST-ONE", "S-BURST-REST"):
            f, ln, _ = h.marker_site(W, m)
            site, why = h.one_site(r.report, f, ln)
            s = site or {}
            lo, hi = (0.6, 1.6) if m == "S-BURST-ONE" else (0.85, 1.15)
            want_b, want_n = tr[m]
            h.check(within(s.get("alloc_bytes") or 0, want_b, lo, hi) and
                    within(s.get("alloc_count") or 0, want_n, lo, hi),
                    "%s: %s allocated bytes and count within %.2f-%.2fx" % (t, m, lo, hi),
                    "%s: pyprof %s; truth %d bytes, %d objects" % (
                        why, h.fmt_site(site), want_b, want_n))
            if m.startswith("S-BURST"):
                h.check(within(s.get("live_bytes") or 0, want_b, lo, hi),
                        "%s: %s live bytes within %.2f-%.2fx" % (t, m, lo, hi),
                        "%s: pyprof %s; truth %d bytes kept" % (
                            why, h.fmt_site(site), want_b))
    h.done()


if __name__ == "__main__":
    main()

"""record --max-size: a long recording stays bounded and its report stays
right about live memory.

- bad --max-size values are one usage line and status 2, no trace made;
- the same deterministic run (tests/workloads/longrun.py: churn, a bounded
  cache, a planted leak) recorded with and without a small cap: the capped
  trace's files stay under the cap plus one chunk, its report says what was
  dropped and which span the leak verdicts judged, and its live figures
  (the leak's live bytes and count, the heap's live total at the end)
  equal the uncapped report's within 1%;
- on a small file system (a 64 MiB tmpfs), an uncapped recording warns
  once, before the disk fills, naming the file system; a capped one that
  fits does not, and stays whole;
- pyprof killed (-9) at several moments of a capped recording leaves a
  trace that reports (its newest checkpoint kept), and a new recording at
  the same path leaves none of the old segments behind.

One interpreter (/usr/bin/python3.11): what is tested is the trace writer
and reader, which do not depend on the target's version.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PY = "/usr/bin/python3.11"
WL = "longrun.py"
ITER = "1500000"
CAP = 16 << 20  # the uncapped trace: about 70 MiB (compact records, ABI 4)
CHUNK = (1 << 20) + (1 << 16)  # one LZ4 chunk of 1 MiB raw, at worst


def segments(path):
    return [path] + sorted(glob.glob(path + ".[0-9]*"))


def trace_bytes(path):
    return sum(os.path.getsize(p) for p in segments(path) if os.path.exists(p))


def near(a, b, tol=0.01):
    return a is not None and b is not None and abs(a - b) <= tol * max(abs(a), abs(b), 1)


def bad_values():
    out = h.tmpfile("bad.pp")
    for v in ("nan", "-5M", "inf", "1K", "10Q", "", "0x10M", "1e3M"):
        r = h.pyprof("record", "-o", out, "--max-size", v, "--", PY, "-c", "pass")
        first = r.err.splitlines()[0] if r.err.strip() else ""
        h.check(r.rc == 2 and "--max-size" in first and ("'%s'" % v) in first
                and "Traceback" not in r.err and not os.path.exists(out),
                "--max-size %r: one usage line naming it, status 2, no trace" % v,
                "rc %s; %s" % (r.rc, h.tail(r.err)))
    r = h.pyprof("--max-size", "1G", "-b", "-n", "1", "--", PY, "-c", "pass")
    h.check(r.rc == 2 and "--max-size is for record" in r.err,
            "--max-size without record: usage error", "rc %s; %s" % (r.rc, h.tail(r.err)))


def leak_site(rep):
    f, line, fn = h.marker_site(WL, "LEAK")
    return h.one_site(rep, f, line)


def capped_equals_uncapped():
    unc = h.record(PY, WL, [ITER])
    cap = h.record(PY, WL, [ITER], ["--max-size", str(CAP)])
    for name, r in (("uncapped", unc), ("capped", cap)):
        if not h.check(r.report is not None and r.rc == 0,
                       "longrun %s: recorded and reported" % name,
                       "rc %s; %s" % (r.rc, r.why)):
            return
    size_u, size_c = trace_bytes(unc.trace), trace_bytes(cap.trace)
    h.check(size_u > 4 * CAP, "the uncapped trace is well over the cap (%.1f MiB)"
            % (size_u / 2**20), "only %d bytes: the test would prove nothing" % size_u)
    h.check(size_c <= CAP + CHUNK, "capped trace: %d files, %.2f MiB <= cap %.0f MiB "
            "+ one chunk" % (len(segments(cap.trace)), size_c / 2**20, CAP / 2**20),
            "%d bytes in %s" % (size_c, segments(cap.trace)))
    tu, tc = unc.report.get("trace") or {}, cap.report.get("trace") or {}
    judged = tc.get("leaks_judged") or {}
    h.check(tu.get("dropped") is False and tc.get("dropped") is True
            and 0 < tc.get("dropped_before_s", 0) < cap.report["duration_s"]
            and judged.get("from_s") == tc.get("dropped_before_s"),
            "the report says what was dropped (trace.dropped_before_s %.2f s) and judges "
            "leaks over the rest" % tc.get("dropped_before_s", -1),
            "uncapped %s, capped %s" % (tu, tc))
    rep = h.pyprof("report", cap.trace)
    h.check(rep.rc == 0 and "were dropped (--max-size)" in rep.out
            and "(the part kept)" in rep.out,
            "the text report says it too", h.tail(rep.out, 600))
    su, why_u = leak_site(unc.report)
    sc, why_c = leak_site(cap.report)
    if h.check(su and sc, "the planted leak is reported by both", why_u + why_c):
        h.check(near(su["live_bytes"], sc["live_bytes"])
                and near(su["live_count"], sc["live_count"]),
                "leak live bytes/count equal within 1%% (%s / %s)"
                % (su["live_bytes"], sc["live_bytes"]),
                "uncapped %s, capped %s" % (h.fmt_site(su), h.fmt_site(sc)))
        h.check(sc.get("leak") is True, "the leak is flagged over the part kept",
                h.fmt_site(sc))
    hu, hc = unc.report["heap"]["live_bytes"], cap.report["heap"]["live_bytes"]
    h.check(near(hu, hc), "heap live bytes at the end equal within 1%% (%d / %d)"
            % (hu, hc), "uncapped %s, capped %s" % (hu, hc))


def dropping(trace):
    """The recording has dropped its first segment (and has older ones)."""
    segs = segments(trace)
    return len(segs) >= 3 and not os.path.exists(trace + ".1")


def killed():
    trace = h.tmpfile("killed.pp")
    # once it drops segments, at three moments a few rotations apart
    for extra in (0.0, 0.35, 0.7):
        for p in segments(trace):
            if os.path.exists(p):
                os.unlink(p)
        p = subprocess.Popen([str(h.PYPROF), "record", "-o", trace, "--max-size", "2M",
                              "--", PY, h.workload_path(WL), "--seconds", "30"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        end = time.monotonic() + 25
        while not dropping(trace) and time.monotonic() < end and p.poll() is None:
            time.sleep(0.02)
        time.sleep(extra)
        nseg = len(segments(trace))
        os.kill(p.pid, signal.SIGKILL)  # pyprof only: the target runs on
        p.wait()
        time.sleep(0.2)
        os.killpg(p.pid, signal.SIGKILL)
        r = h.pyprof("report", trace, "--format", "json")
        try:
            rep = json.loads(r.stdout)
        except ValueError:
            rep = None
        ok = r.rc == 0 and rep is not None
        site, why = leak_site(rep) if ok else (None, "")
        h.check(ok and nseg >= 3 and rep["trace"]["dropped"] and site
                and site["live_count"] > 0,
                "pyprof killed %.2f s after it began dropping (%d segment files): the "
                "trace reports, from a checkpoint" % (extra, nseg),
                "rc %s, segments %d, site %s %s; %s" % (r.rc, nseg, h.fmt_site(site), why,
                                                       h.tail(r.err)))
    r = h.pyprof("record", "-o", trace, "--", PY, "-c", "pass")
    left = [s for s in segments(trace)[1:] if os.path.exists(s)]
    h.check(r.rc == 0 and not left,
            "a new recording at the path removes the old segments", "left: %s" % left)


def disk_space():
    d = tempfile.mkdtemp(prefix="pyprof-space-")
    m = h.run(["mount", "-t", "tmpfs", "-o", "size=64m", "pyprof-test", d])
    if not h.check(m.rc == 0, "a 64 MiB tmpfs is mounted", h.tail(m.err)):
        os.rmdir(d)
        return
    try:
        t = os.path.join(d, "w.pp")
        cmd = ["--", PY, h.workload_path(WL), "--seconds", "4"]
        r = h.pyprof("record", "-o", t, *cmd)
        lines = r.err.splitlines()
        warn = [i for i, l in enumerate(lines) if "left on the file system of " + d in l]
        fail = [i for i, l in enumerate(lines) if "failed" in l]
        h.check(r.rc == 0 and len(warn) == 1 and (not fail or warn[0] < fail[0]),
                "uncapped on a 64 MiB file system: one warning, before the disk fills",
                "rc %s; %s" % (r.rc, h.tail(r.err)))
        for p in segments(t):
            if os.path.exists(p):
                os.unlink(p)
        r = h.pyprof("record", "-o", t, "--max-size", "16M", *cmd)
        rep = h.pyprof("report", t)
        h.check(r.rc == 0 and not r.err.strip() and trace_bytes(t) <= (16 << 20) + CHUNK
                and rep.rc == 0 and not rep.err.strip(),
                "--max-size 16M on it: no warning, no failure, a whole trace",
                "rc %s; %s; %d bytes; report rc %s %s" % (r.rc, h.tail(r.err), trace_bytes(t),
                                                         rep.rc, h.tail(rep.err)))
    finally:
        for _ in range(20):  # busy while the last process lets go of it
            if h.run(["umount", d]).rc == 0:
                break
            time.sleep(0.1)
        os.rmdir(d)


def main():
    h.require_pyprof()
    if not h.check(os.access(PY, os.X_OK), "%s present" % PY):
        h.done()
    bad_values()
    capped_equals_uncapped()
    disk_space()
    killed()
    h.done()


if __name__ == "__main__":
    main()

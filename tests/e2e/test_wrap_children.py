"""pyprof record --children -- python tests/workloads/wrap_children.py:
wrap mode following the command's descendants, per interpreter (LABELS:
a static build, libpython builds old and new, a chroot's PEP 768 one).

With --children:
- pyprof exits with the command's status (3);
- each child (multiprocessing 'spawn', 'fork', and sys.executable by
  subprocess.run) saw a shim of its own loaded into it and exited 0;
- the trace holds the command and the three children, each child's
  parent the command; the text report has a section for each, the
  command's headed "(the command)";
- `report --proc PID --format json` of each child: its marked line
  holds exactly the objects it keeps to its end (count and bytes), and
  nothing of the other children's or the command's lines;
- the command's own report (--proc): PARENT-KEEP exact, none of the
  children's lines;
- the merged report: each child's marked line as its own report has it
  (a finished child's heap as it was at its end of run).
- pyprof busy (PYPROF_TEST_PROBES_DELAY: 2 s before each process's
  probes) while each child, its shim answered meanwhile, runs its whole
  life making far more records than one drain of its ring takes (a
  64 MiB ring each, so that the life fits): each
  child's line is still exact, nothing dropped (its ring is drained to
  the end when it ends).
--children --no-bpf: status 2, no trace.
Without --children (as before): one process in the trace (no
"processes"), PARENT-KEEP exact, no child's line, the same exit status.
"""
import json

import harness as h

W = "wrap_children.py"
LABELS = ("py3.11-debian", "py3.9", "py3.12", "py3.14-sid")
STATUS = 3
PARENT_N, PARENT_SIZE = 300, 2100
KIDS = {"spawn": ("KID-SPAWN", 200, 1300), "fork": ("KID-FORK", 250, 1500),
        "exec": ("KID-EXEC", 150, 1700)}
CHURN = 150000      # ~9 MB of records per child: two drains' worth


def site(rep, marker):
    f, ln, _ = h.marker_site(W, marker)
    return h.sites_at((rep or {}).get("sites"), f, ln)


def proc_report(trace, pid):
    r = h.pyprof("report", trace, "--format", "json", "--proc", str(pid))
    try:
        return json.loads(r.stdout) if r.rc == 0 else None
    except ValueError:
        return None


def kids_said(out):
    """{mode: (pid, saw_shim, exit status)} from the command's stdout"""
    said = {}
    for line in out.splitlines():
        w = line.split()
        if len(w) == 4 and w[0] in KIDS:
            said[w[0]] = (int(w[1]), w[2] == "1", int(w[3]))
    return said


def exact(rep, marker, n, size, over):
    """(ok, why): one site at marker, n live objects of size + over bytes"""
    s = site(rep, marker)
    ok = len(s) == 1 and s[0].get("live_count") == n and \
        s[0].get("live_bytes") == n * (size + over)
    return ok, "%s, want %d x %d" % ([h.fmt_site(x) for x in s], n, size + over)


def with_children(label, py):
    t = "%s wrap --children" % label
    rec = h.record(py, W, ("wait", str(STATUS)), ("--children",))
    said = kids_said(rec.out)
    h.check(rec.rc == STATUS, t + ": exits with the command's status",
            "rc %s; %s" % (rec.rc, h.tail(rec.err)))
    h.check(sorted(said) == sorted(KIDS) and
            all(saw and st == 0 for pid, saw, st in said.values()),
            t + ": each child had a shim of its own loaded and exited 0",
            "%s; stderr %s" % (said, h.tail(rec.err)))
    if not h.check(rec.report is not None, t + ": report", rec.why):
        return
    procs = {x.get("pid"): x.get("ppid") for x in rec.report.get("processes") or []}
    root = rec.report.get("target", {}).get("pid")
    if not h.check(root in procs and procs[root] == 0 and
                   all(procs.get(pid) == root for pid, _, _ in said.values()) and
                   len(said) == 3,
                   t + ": the trace holds the command and its 3 children",
                   "processes %s, root %s, children %s" % (procs, root, said)):
        return
    text = h.pyprof("report", rec.trace).out
    h.check("pid %d (the command)" % root in text and
            all("pid %d (child of %d)" % (pid, root) in text for pid, _, _ in said.values()),
            t + ": the text report has a section per process",
            h.tail("\n".join(x for x in text.splitlines() if x.startswith("=="))))
    own = proc_report(rec.trace, root)
    f, ln, _ = h.marker_site(W, "PARENT-KEEP")
    ps, why = h.one_site(own or {}, f, ln)
    # a bytes object's header, as the command's own report has it
    over = ps["live_bytes"] // PARENT_N - PARENT_SIZE if ps else -1
    h.check(ps is not None and ps.get("live_count") == PARENT_N and 0 < over < 64 and
            ps["live_bytes"] == PARENT_N * (PARENT_SIZE + over) and
            not any(site(own, m) for m, _, _ in KIDS.values()),
            t + ": the command's report: its line exact, none of its children's",
            "%s %s" % (why, h.fmt_site(ps) if ps else ""))
    for mode, (marker, n, size) in sorted(KIDS.items()):
        pid = said[mode][0]
        rep = proc_report(rec.trace, pid)
        if not h.check(rep is not None, t + ": --proc %s child" % mode, "no report"):
            continue
        ok, why = exact(rep, marker, n, size, over)
        others = [m for m2, (m, _, _) in KIDS.items() if m2 != mode] + ["PARENT-KEEP"]
        h.check(ok and not any(site(rep, m) for m in others),
                t + ": the %s child's report: its line exact, nothing of the others'" % mode,
                "%s; pyprof's stderr: %s" % (why, h.tail(rec.err)))
        # merged, a finished child counts as its own report ends it
        # (its teardown's frees come after its end of run)
        ok, why = exact(rec.report, marker, n, size, over)
        h.check(ok, t + ": the merged report holds the %s child's line as it ended" % mode,
                why)
    return over if ps is not None else None


def busy(label, py, over):
    t = "%s wrap --children, pyprof busy" % label
    # a 64 MiB ring per child: a child's whole life fits while pyprof is
    # busy (3.12's spawn child makes ~690,000 records, 16 MiB dropped some)
    rec = h.record(py, W, ("wait", str(STATUS), str(CHURN)),
                   ("--children", "--ring-size", str(64 << 20)),
                   env={"PYPROF_TEST_PROBES_DELAY": "2"})
    said = kids_said(rec.out)
    if not h.check(rec.report is not None and sorted(said) == sorted(KIDS) and
                   all(saw and st == 0 for pid, saw, st in said.values()),
                   t + ": each child had a shim of its own and exited 0",
                   "%s %s; stderr %s" % (rec.why or "", said, h.tail(rec.err))):
        return
    for mode, (marker, n, size) in sorted(KIDS.items()):
        rep = proc_report(rec.trace, said[mode][0])
        ok, why = exact(rep, marker, n, size, over)
        ev = (rep or {}).get("events") or {}
        h.check(ok and ev.get("dropped") == 0 and ev.get("total", 0) > 2 * CHURN,
                t + ": the %s child's line exact after its churn, nothing dropped" % mode,
                "%s; events %s" % (why, {k: ev.get(k) for k in ("total", "dropped")}))


def without(label, py):
    t = "%s wrap, no --children" % label
    rec = h.record(py, W, ("nowait", str(STATUS)))
    said = kids_said(rec.out)
    h.check(rec.rc == STATUS and sorted(said) == sorted(KIDS) and
            all(not saw and st == 0 for pid, saw, st in said.values()),
            t + ": the command's status; children ran without a shim of their own",
            "rc %s %s; %s" % (rec.rc, said, h.tail(rec.err)))
    if not h.check(rec.report is not None, t + ": report", rec.why):
        return
    f, ln, _ = h.marker_site(W, "PARENT-KEEP")
    ps, why = h.one_site(rec.report, f, ln)
    h.check("processes" not in rec.report and ps is not None and
            ps.get("live_count") == PARENT_N and
            not any(site(rec.report, m) for m, _, _ in KIDS.values()),
            t + ": one process, the command's line exact, nothing of the children's",
            "%s %s processes %s" % (why, h.fmt_site(ps) if ps else "",
                                    rec.report.get("processes")))


def usage():
    """--children needs eBPF: with --no-bpf, one line, status 2, no trace"""
    trace = h.tmpfile("nobpf.pp")
    r = h.pyprof("record", "--children", "--no-bpf", "-o", trace, "--", "/bin/true")
    h.check(r.rc == 2 and len(r.err.strip().splitlines()) <= 2 and "--no-bpf" in r.err and
            not h.os.path.exists(trace),
            "wrap --children --no-bpf: a usage error, no trace",
            "rc %s; %s" % (r.rc, h.tail(r.err)))


def main():
    h.require_pyprof()
    usage()
    for label, py in h.interpreters():
        if label not in LABELS:
            continue
        over = with_children(label, py)
        if over is not None:
            busy(label, py, over)
        without(label, py)
    h.done()


if __name__ == "__main__":
    main()

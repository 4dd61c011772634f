"""The CLI contract (docs: shared notes cli.md): exit codes, stdio, bad input.

Per interpreter:
- `record` passes the command's exit status through (7 from exitcode.py)
  and 137 (128 + SIGKILL) for a command killed by SIGKILL;
- stdin reaches the command and its stdout come back byte for byte (64 KiB
  of random bytes piped through exitcode.py); its stderr line arrives intact;
- `report --format text` of a service.py recording names the three leak
  lines as service.py:LINE; `report --format json -o OUT` writes the JSON.
Once:
- `report /nonexistent`, a trace of random bytes and an empty file: exit 1
  with one line on stderr, no crash;
- a trace cut short is readable up to its last whole chunk: cut in the
  middle it reports (exit 0, JSON) and says it was cut off; one byte short
  it keeps the earlier chunks (the cache leak's site is there); cuts
  anywhere else never crash (exit 0 with JSON, or exit 1 with one line);
  a flipped byte in the middle is corruption: exit 1, one line;
- usage errors exit 2 with a message: record without -o, without a command,
  unknown options, an unknown --format;
- a command that does not exist: exit 1 or 127 with a line naming it;
- a non-Python command (sh -c 'exit 3'): exit 3;
- SIGINT to the process group (Ctrl-C) while recording service.py: exit 130
  and a complete trace (report exits 0 without a cut-off warning).
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import harness as h

STDERR_TEXT = "exitcode: this line goes to stderr"
GOOD_TRACE = [None]  # a readable trace, set by truncated()


def main():
    h.require_pyprof()
    pys = h.interpreters()
    for label, py in pys:
        stdio(label, py)
        text_report(label, py)
    bad_input()
    truncated(pys[-1] if pys else None)
    interrupt(pys[-1] if pys else None)
    usage()
    h.done()


def stdio(label, py):
    t = "%s cli" % label
    data = os.urandom(65536)
    r = h.record(py, "exitcode.py", stdin=data)
    h.check(r.rc == 7, t + ": exit status 7 passed through",
            "rc %s; stderr %s" % (r.rc, h.tail(r.err)))
    h.check(r.stdout == data, t + ": stdin piped to stdout byte for byte",
            "got %d bytes, sent %d (first difference at %s)" % (
                len(r.stdout), len(data),
                next((i for i, (a, b) in enumerate(zip(r.stdout, data)) if a != b),
                     min(len(r.stdout), len(data)))))
    h.check(STDERR_TEXT in r.err.splitlines(), t + ": command's stderr intact",
            "stderr: %s" % h.tail(r.err))
    h.check(r.report is not None, t + ": report of an exit-7 run parses", r.why)

    r = h.record(py, "-c", ["import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    h.check(r.rc == 128 + 9, t + ": command killed by SIGKILL gives exit 137",
            "rc %s; stderr %s" % (r.rc, h.tail(r.err)))


def text_report(label, py):
    t = "%s cli" % label
    r = h.record(py, "service.py", ["--seconds", "3.5"])
    names = ["%s: text report names %s leak service.py:%d" % (t, k, h.line_of("service.py", mk))
             for k, mk in (("cache", "LEAK-CACHE"), ("closure", "LEAK-CLOSURE"),
                           ("cycle", "LEAK-CYCLE"))]
    if not os.path.exists(r.trace):
        for n in names + [t + ": report -o OUT writes JSON"]:
            h.check(False, n, "no trace: rc %s; stderr %s" % (r.rc, h.tail(r.err)))
        return
    txt = h.pyprof("report", r.trace, "--format", "text")
    for n, mk in zip(names, ("LEAK-CACHE", "LEAK-CLOSURE", "LEAK-CYCLE")):
        want = "service.py:%d" % h.line_of("service.py", mk)
        h.check(txt.rc == 0 and want in txt.out, n,
                "rc %s; %r not in text (%d lines): %s" % (txt.rc, want, len(txt.out.splitlines()),
                                                        h.tail(txt.out + txt.err, 300)))
    out = h.tmpfile("report-%s.json" % label)
    rj = h.pyprof("report", r.trace, "--format", "json", "-o", out)
    try:
        ok = rj.rc == 0 and isinstance(json.load(open(out)).get("sites"), list)
        why = "rc %s; stderr %s" % (rj.rc, h.tail(rj.err))
    except (OSError, ValueError) as e:
        ok, why = False, "rc %s: %s; stderr %s" % (rj.rc, e, h.tail(rj.err))
    h.check(ok, t + ": report -o OUT writes JSON", why)


def interrupt(interp):
    """Ctrl-C goes to the whole foreground process group."""
    t = "cli Ctrl-C"
    if interp is None:
        h.check(False, t + ": ran", "no interpreter")
        return
    label, py = interp
    trace = h.tmpfile("sigint.pyprof")
    p = subprocess.Popen([str(h.PYPROF), "record", "-o", trace, "--", py,
                          h.workload_path("service.py"), "--seconds", "60"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(3)
    os.killpg(p.pid, signal.SIGINT)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
    h.check(p.returncode == 128 + signal.SIGINT,
            "%s: SIGINT to the group (%s service): exit 130" % (t, label),
            "rc %s; stderr %s" % (p.returncode, h.tail(err.decode(errors="replace"))))
    rep = h.pyprof("report", trace, "--format", "json")
    try:
        js = json.loads(rep.stdout) if rep.rc == 0 else None
    except ValueError:
        js = None
    h.check(js is not None and not re.search(r"trunc|cut off|ends early", rep.err, re.I),
            "%s: the trace is complete (report exit 0, no cut-off warning)" % t,
            "rc %s; stderr %s" % (rep.rc, h.tail(rep.err)))


def one_line_error(r, rc=1):
    """(ok, detail): exit rc, exactly one non-empty stderr line, no crash."""
    lines = [l for l in r.err.splitlines() if l.strip()]
    ok = r.rc == rc and len(lines) == 1 and "Traceback" not in r.err
    return ok, "rc %s, %d stderr lines: %s" % (r.rc, len(lines), h.tail(r.err))


def bad_input():
    t = "cli report"
    r = h.pyprof("report", "/nonexistent", "--format", "json")
    ok, why = one_line_error(r)
    h.check(ok and "/nonexistent" in r.err, t + " /nonexistent: exit 1, one line naming it", why)

    junk = h.tmpfile("random.bin")
    with open(junk, "wb") as f:
        f.write(os.urandom(65536))
    r = h.pyprof("report", junk, "--format", "json")
    ok, why = one_line_error(r)
    h.check(ok, t + " of random bytes: exit 1, one line", why)

    empty = h.tmpfile("empty.bin")
    open(empty, "wb").close()
    r = h.pyprof("report", empty, "--format", "json")
    ok, why = one_line_error(r)
    h.check(ok, t + " of an empty file: exit 1, one line", why)


def truncated(interp):
    t = "cli truncated trace"
    if interp is None:
        h.check(False, t + ": recorded", "no interpreter")
        return
    label, py = interp
    r = h.record(py, "service.py", ["--seconds", "3.5"])
    if not h.check(r.report is not None, "%s: recorded (%s service)" % (t, label), r.why):
        return
    GOOD_TRACE[0] = r.trace
    data = open(r.trace, "rb").read()
    f, ln, fn = h.marker_site("service.py", "LEAK-CACHE")

    cut = h.tmpfile("cut.pyprof")

    def report_cut(at):
        with open(cut, "wb") as fo:
            fo.write(data[:at])
        rep = h.pyprof("report", cut, "--format", "json", timeout=60)
        try:
            js = json.loads(rep.stdout) if rep.rc == 0 else None
        except ValueError:
            js = None
        return rep, js

    # A chunk holds up to ~1 s of events (docs/trace-format.md), so half
    # the file may hold only start-up: ask for a readable report that says
    # it was cut off. One byte short loses only the last chunk: the earlier
    # seconds of requests, and so the cache leak's site, must be there.
    said = re.compile(r"trunc|cut off|ends early", re.I)
    rep, js = report_cut(len(data) // 2)
    h.check(js is not None and said.search(rep.err),
            t + " at 50%: exit 0, JSON, says it was cut off",
            "rc %s; stderr %s" % (rep.rc, h.tail(rep.err)))
    rep, js = report_cut(len(data) - 1)
    site = h.sites_at((js or {}).get("sites"), f, ln)
    h.check(js is not None and site and said.search(rep.err),
            t + " 1 byte short: earlier chunks read (site %s:%d there)" % (
                "service.py", ln),
            "rc %s; site %s; duration %s of %s; stderr %s" % (
                rep.rc, "found" if site else "missing", (js or {}).get("duration_s"),
                r.report.get("duration_s"), h.tail(rep.err)))

    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    with open(cut, "wb") as fo:
        fo.write(flipped)
    rep = h.pyprof("report", cut, "--format", "json", timeout=60)
    ok, why = one_line_error(rep)
    h.check(ok and "corrupt" in rep.err, t + ": a flipped byte mid-file: exit 1, one 'corrupt' line",
            why)

    bad = []
    n = len(data)
    for at in sorted({1, 7, 8, 9, 63, 64, 100, 4095, 4096, 4097, n // 10, n // 3 + 3,
                      n * 9 // 10 + 5, n - 9, n - 8, n - 1}):
        if not 0 < at < n:
            continue
        with open(cut, "wb") as fo:
            fo.write(data[:at])
        rep = h.pyprof("report", cut, "--format", "json", timeout=60)
        if rep.rc == 0:
            try:
                json.loads(rep.stdout)
                continue
            except ValueError:
                bad.append((at, "rc 0 but not JSON"))
                continue
        ok, why = one_line_error(rep)
        if not ok:
            bad.append((at, why))
    h.check(not bad, t + ": every cut gives JSON or one error line (%d bytes)" % n,
            "; ".join("cut at %d: %s" % b for b in bad[:4]))


def usage():
    t = "cli usage"
    out = h.tmpfile("usage.pyprof")
    cases = [
        ("record without -o", ["record", "--", "true"]),
        ("record without a command", ["record", "-o", out]),
        ("record with -- and no command", ["record", "-o", out, "--"]),
        ("record with an unknown option", ["record", "--no-such-option", "-o", out, "--", "true"]),
        ("an unknown top-level option", ["--no-such-option", "--", "true"]),
        ("report with an unknown option", ["report", "--no-such-option", out]),
        ("report --format nosuch", ["report", GOOD_TRACE[0] or out, "--format", "nosuch"]),
        ("report without a file", ["report"]),
    ]
    for what, args in cases:
        r = h.pyprof(*args, timeout=30)
        h.check(r.rc == 2 and r.err.strip(), "%s: %s exits 2 with a message" % (t, what),
                "rc %s; stderr %s; stdout %s" % (r.rc, h.tail(r.err), h.tail(r.out, 120)))
    r = h.pyprof("record", "-o", h.tmpfile("sh.pyprof"), "--", "/bin/sh", "-c", "exit 3",
                 timeout=60)
    h.check(r.rc == 3, "cli: a non-Python command's exit 3 passed through",
            "rc %s; stderr %s" % (r.rc, h.tail(r.err)))
    for cmd in ("/nonexistent/no-such-cmd", "pyprof-no-such-cmd"):
        r = h.pyprof("record", "-o", out, "--", cmd, timeout=30)
        h.check(r.rc in (1, 127) and cmd in r.err and "Traceback" not in r.err,
                "%s: command not found (%s) exits 1/127 naming it" % (t, cmd),
                "rc %s; stderr %s" % (r.rc, h.tail(r.err)))


if __name__ == "__main__":
    sys.exit(main())

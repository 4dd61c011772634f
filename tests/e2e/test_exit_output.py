"""Exit statuses as a shell gives them, output that is always valid, and
failures that are failures (README: "Exit status", "Output").

Once:
- the command's status, in record, live (no terminal) and batch mode,
  equals what sh reports for the same command: exits 0, 3, 255 and
  deaths by SIGTERM, SIGKILL, SIGUSR1 (128 + N), for non-Python commands
  and for Python exiting 5 or killing itself with SIGTERM;
- a trace on a full disk (a 64 KiB tmpfs): the target's own status (3)
  still wins, with one line naming the trace;
- report -o onto a full tmpfs exits 1, leaves no half file (nor a
  temporary one) and keeps the file that was there; report > /dev/full
  and -o /dev/full exit 1 with a line;
- report of a FIFO fails at once; --duration and -d refuse nan and inf;
  report -o - writes to stdout (no file named "-"); report -o onto the
  trace itself and record -o onto the command's script are refused
  (exit 2) and leave them intact; record -o - is refused; an unwritable
  -o is named in the error, for record and report.
Per interpreter:
- a script whose path and argument are not UTF-8: the JSON report is
  valid UTF-8 and strict JSON; argv and the site's file hold U+FFFD where
  the bytes were invalid (Python's decode(errors="replace")), the text
  report is valid UTF-8 too, its thread column cut (18 bytes) inside a
  thread name's character included.
"""
import hashlib
import json
import os
import stat
import subprocess
import tempfile

import harness as h

SH_CASES = ["exit 0", "exit 3", "exit 255", "/bin/sleep 0.1",
            "kill -TERM $$", "kill -KILL $$", "kill -USR1 $$"]


def sh_status(cmd):
    """what a shell reports for cmd run by sh -c"""
    r = h.run(["sh", "-c", 'sh -c "$1"; echo $?', "sh", cmd])
    return int(r.out.strip())


def exit_statuses(py):
    trace = h.tmpfile("exit.pyprof")
    modes = [("record", ["record", "-o", trace]), ("live", []),
             ("batch", ["-b", "-n", "1", "-d", "0.2"])]
    cases = [(c, ["sh", "-c", c]) for c in SH_CASES]
    cases += [("python exit 5", [py, "-c", "import sys; sys.exit(5)"]),
              ("python SIGTERM", [py, "-c", "import os, signal; "
                                  "os.kill(os.getpid(), signal.SIGTERM)"])]
    for name, cmd in cases:
        want = sh_status(" ".join("'%s'" % a for a in cmd) if cmd[0] != "sh" else cmd[2])
        for mode, args in modes:
            r = h.pyprof(*args, "--", *cmd)
            h.check(r.rc == want, "exit status %s (%s): %s as sh gives it" % (name, mode, want),
                    "rc %s; stderr %s" % (r.rc, h.tail(r.err)))


def tmpfs(size):
    d = tempfile.mkdtemp(prefix="pyprof-full-")
    r = h.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", d])
    h.check(r.rc == 0, "full disk: a small tmpfs can be mounted (root)",
            "mount rc %s: %s" % (r.rc, h.tail(r.err)))
    return d if r.rc == 0 else None


def umount(d):
    h.run(["umount", d])
    os.rmdir(d)


def full_disk(py, trace):
    d = tmpfs("64k")
    if not d:
        return
    try:
        t = os.path.join(d, "t.pyprof")
        r = h.pyprof("record", "-o", t, "--", py, "-c",
                     "import sys; x = [str(i) * 3 for i in range(400000)]; sys.exit(3)")
        lines = [l for l in r.err.splitlines() if t in l]
        h.check(r.rc == 3 and len(lines) == 1,
                "full disk: record gives the command's status (3) and one line naming the trace",
                "rc %s; stderr %s" % (r.rc, h.tail(r.err)))
        os.unlink(t)
        out = os.path.join(d, "r.json")
        with open(out, "w") as f:
            f.write("old report\n")
        try:
            with open(os.path.join(d, "fill"), "wb") as f:
                f.write(b"\0" * (64 << 10))
        except OSError:
            pass  # full, as meant
        r = h.pyprof("report", trace, "--format", "json", "-o", out)
        with open(out) as f:
            kept = f.read()
        left = sorted(n for n in os.listdir(d) if n not in ("fill", "r.json"))
        h.check(r.rc == 1 and out in r.err and kept == "old report\n" and not left,
                "full disk: report -o exits 1, keeps the old file, leaves no half file",
                "rc %s, file now %r, other files %s; stderr %s" % (
                    r.rc, kept[:40], left, h.tail(r.err)))
    finally:
        umount(d)
    r = h.run(["sh", "-c", '"$1" report "$2" > /dev/full', "sh", h.PYPROF, trace])
    h.check(r.rc == 1 and "stdout" in r.err,
            "report > /dev/full exits 1 and says so", "rc %s; stderr %s" % (r.rc, h.tail(r.err)))
    r = h.pyprof("report", trace, "--format", "json", "-o", "/dev/full")
    h.check(r.rc == 1 and "/dev/full" in r.err,
            "report -o /dev/full exits 1 and names it", "rc %s; stderr %s" % (r.rc, h.tail(r.err)))


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def small_items(py, trace):
    fifo = h.tmpfile("fifo")
    os.mkfifo(fifo)
    r = h.pyprof("report", fifo, timeout=10)
    h.check(r.rc == 1 and not r.timed_out and fifo in r.err,
            "report of a FIFO fails at once with a line", "rc %s; %s" % (r.rc, h.tail(r.err)))
    for opt in (["--duration", "nan"], ["--duration", "inf"], ["-d", "nan"]):
        r = h.pyprof("record", "-o", h.tmpfile("nan.pyprof"), *opt, "--", "true")
        h.check(r.rc == 2, "%s %s is a usage error" % tuple(opt),
                "rc %s; %s" % (r.rc, h.tail(r.err)))
    cwd = tempfile.mkdtemp(dir=h.tmpfile(""))
    r = h.pyprof("report", trace, "-o", "-", cwd=cwd)
    h.check(r.rc == 0 and "Top sites" in r.out and not os.listdir(cwd),
            "report -o - writes to stdout, no file named '-'",
            "rc %s, files %s" % (r.rc, os.listdir(cwd)))
    before = sha(trace)
    r = h.pyprof("report", trace, "-o", trace)
    h.check(r.rc == 2 and sha(trace) == before,
            "report -o onto the trace itself is refused, the trace intact",
            "rc %s; %s" % (r.rc, h.tail(r.err)))
    app = os.path.join(cwd, "app.py")
    with open(app, "w") as f:
        f.write("print('app')\n")
    r = h.pyprof("record", "-o", "app.py", "--", py, "app.py", cwd=cwd)
    with open(app) as f:
        src = f.read()
    h.check(r.rc == 2 and src == "print('app')\n",
            "record -o onto the command's script is refused, the script intact",
            "rc %s, script now %r; %s" % (r.rc, src[:40], h.tail(r.err)))
    r = h.pyprof("record", "-o", "-", "--", py, "-c", "pass", cwd=cwd)
    h.check(r.rc == 2 and not os.path.exists(os.path.join(cwd, "-")),
            "record -o - is refused", "rc %s; %s" % (r.rc, h.tail(r.err)))
    bad = "/nonexistent-dir/x.pyprof"
    r = h.pyprof("record", "-o", bad, "--", py, "-c", "pass")
    h.check(r.rc == 1 and bad in r.err, "record: an unwritable -o is named in the error",
            "rc %s; %s" % (r.rc, h.tail(r.err)))
    r = h.pyprof("report", trace, "-o", bad)
    h.check(r.rc == 1 and bad in r.err, "report: an unwritable -o is named in the error",
            "rc %s; %s" % (r.rc, h.tail(r.err)))


# a thread whose name's 18th byte falls inside a character (the text
# report's thread column is 18 bytes wide)
SCRIPT = """import sys, threading, time
keep = []
for i in range(2000):
    keep.append(bytearray(1000))  # site
t = threading.Thread(target=time.sleep, args=(0.2,), name="a" + "\u00e9" * 12)
t.start()
t.join()
print(len(sys.argv))
""".encode()


def non_utf8(label, py):
    t = "%s non-UTF-8 names" % label
    d = h.tmpfile("").encode()
    script = os.path.join(d, b"caf\xe9-\xff.py")
    copies = [script]
    root = h.chroot_of(label)
    if root:  # the root sees the same path inside it
        copies.append(bytes(root) + script)
        os.makedirs(os.path.dirname(copies[-1]), exist_ok=True)
    for c in copies:
        with open(c, "wb") as f:
            f.write(SCRIPT)
    try:
        _non_utf8(t, label, py, script)
    finally:
        if len(copies) > 1:
            os.unlink(copies[-1])
            os.rmdir(os.path.dirname(copies[-1]))


def _non_utf8(t, label, py, script):
    arg = b"\xfe\xfdarg\xc3"
    trace = h.tmpfile("utf8-%s.pyprof" % label)
    rec = subprocess.run([bytes(h.PYPROF), b"record", b"-o", trace.encode(), b"--",
                          py.encode(), script, arg], capture_output=True,
                         timeout=h.CMD_TIMEOUT)
    if not h.check(rec.returncode == 0, t + ": recorded", "rc %s; %s" % (
            rec.returncode, h.tail(rec.stderr.decode(errors="replace")))):
        return
    rep = h.pyprof("report", trace, "--format", "json")
    try:
        doc = json.loads(rep.stdout.decode("utf-8"))  # strict: no invalid bytes
    except ValueError as e:
        h.check(False, t + ": the JSON report is valid UTF-8 and JSON", "%s" % e)
        return
    h.check(rep.rc == 0, t + ": the JSON report is valid UTF-8 and JSON", "rc %s" % rep.rc)
    want_path = script.decode("utf-8", "replace")
    want_arg = arg.decode("utf-8", "replace")
    argv = doc["target"]["argv"]
    h.check(argv[-2:] == [want_path, want_arg],
            t + ": argv holds U+FFFD for the invalid bytes", "argv %r" % argv)
    files = {s["file"] for s in doc["sites"]}
    # Python keeps the bytes as lone surrogates (surrogateescape), one
    # per byte: U+FFFD each, which for these bytes is decode("replace")
    h.check(want_path in files, t + ": the site's file holds U+FFFD for the invalid bytes",
            "want %r; files %r" % (want_path, sorted(files)[:5]))
    txt = h.pyprof("report", trace)
    try:
        txt.stdout.decode("utf-8")
        ok = txt.rc == 0
    except ValueError:
        ok = False
    h.check(ok, t + ": the text report is valid UTF-8", "rc %s" % txt.rc)


def main():
    h.require_pyprof()
    pys = h.interpreters()
    for label, py in pys:
        non_utf8(label, py)
    if pys:
        py = pys[0][1]
        exit_statuses(py)
        r = h.record(py, "exact.py")
        if h.check(r.report is not None, "a trace to report from", r.why or ""):
            full_disk(py, r.trace)
            small_items(py, r.trace)
    h.done()


if __name__ == "__main__":
    main()

"""The interactive viewer, driven in tmux against tests/workloads/service.py.

Per interpreter (python3.11 from Debian, static and embedded through\nDebian's shared libpython3.11):
live (`pyprof -- python service.py`):
- the header shows pid, the Python version, uptime, heap, RSS, events;
- the planted cache leak's line is in Sites, and in Leaks once judged;
- each view opens (GC, Threads & locks), Enter opens the whole stack;
- a filter narrows the table to matching rows; sort keys reorder it;
- a resized window is redrawn to its new size;
- `q` closes the screen, pyprof waits for the command and exits with its
  status, the terminal is restored (no alternate screen, echo, icanon) and
  the command's output is shown; with the screen up to the end, the final
  state stays until `q`;
- NO_COLOR gives a screen without color codes.
replay (`pyprof view TRACE` of a `pyprof record`): the position moves,
seeking back and forward shows the heap and leaks as they were then, and
`q` restores the terminal.
"""
import atexit
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

import harness as h
import sys

SOCK = "pyprof-test-%d" % os.getpid()


def _tmux(*args, check=False):
    return subprocess.run(["tmux", "-L", SOCK] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, check=check, timeout=30)


def _kill_server():
    _tmux("kill-server")


atexit.register(_kill_server)


class Pane:
    """One detached tmux session running a shell command line."""

    seq = 0

    def __init__(self, argv, w=120, h_=40, env=None, after=""):
        Pane.seq += 1
        self.name = "v%d" % Pane.seq
        self.exit_file = h.tmpfile("%s.exit" % self.name)
        self.stty_file = h.tmpfile("%s.stty" % self.name)
        cmd = "cd %s && %s; echo PYPROF-EXIT=$? > %s; stty -a > %s 2>&1; %s sleep 900" % (
            shlex.quote(str(h.ROOT)), " ".join(shlex.quote(str(a)) for a in argv),
            self.exit_file, self.stty_file, after)
        args = ["new-session", "-d", "-s", self.name, "-x", w, "-y", h_]
        for k, v in (env or {}).items():
            args += ["-e", "%s=%s" % (k, v)]
        _tmux(*args, cmd, check=True)

    def text(self, escapes=False, history=False):
        args = ["capture-pane", "-p", "-t", self.name]
        if escapes:
            args.insert(2, "-e")
        if history:
            args += ["-S", "-2000"]
        return _tmux(*args).stdout

    def keys(self, *keys, literal=False):
        args = ["send-keys", "-t", self.name]
        if literal:
            args.append("-l")
        _tmux(*(args + list(keys)))

    def resize(self, w, h_):
        _tmux("resize-window", "-t", self.name, "-x", w, "-y", h_)

    def alternate_on(self):
        return _tmux("display-message", "-p", "-t", self.name,
                     "#{alternate_on}").stdout.strip()

    def wait(self, pred, timeout=40):
        """(True, text) once pred(text) holds, else (False, last text)."""
        end = time.monotonic() + timeout
        text = ""
        while time.monotonic() < end:
            text = self.text()
            try:
                if pred(text):
                    return True, text
            except (ValueError, IndexError, AttributeError):
                pass
            time.sleep(0.2)
        return False, text

    def exit_status(self, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with open(self.exit_file) as f:
                    m = re.search(r"PYPROF-EXIT=(\d+)", f.read())
                    if m:
                        return int(m.group(1))
            except OSError:
                pass
            time.sleep(0.2)
        return None

    def stty(self):
        try:
            with open(self.stty_file) as f:
                return f.read()
        except OSError:
            return ""

    def kill(self):
        _tmux("kill-session", "-t", self.name)


def rows_below_tabs(text):
    """The table part of the screen: lines after the view tabs' line."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^ 1 Sites\s+2 Leaks", line):
            return lines[i + 1:]
    return []


def tab_line(text):
    for line in text.splitlines():
        if re.match(r"^ 1 Sites\s+2 Leaks", line):
            return line
    return ""


def table_rows(text):
    """Data rows of a Sites/Leaks table (after its title row)."""
    rows = rows_below_tabs(text)[1:]
    return [r for r in rows if re.match(r"^\s+[+\-]?[\d.]+[BKMGT]?\s", r)]


def header_value(text, label):
    m = re.search(r"%s (\S+(?: [KMGT]?i?B)?)" % re.escape(label), text)
    return m.group(1) if m else None


UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
         "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "": 1}


def parse_bytes(s):
    m = re.match(r"^\+?(-?[\d.]+)\s*([KMGT]?i?B|[KMGT]?)$", s.strip())
    if not m:
        raise ValueError(s)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_count(s):
    m = re.match(r"^([\d.]+)([kMG]?)$", s.strip())
    if not m:
        raise ValueError(s)
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]


# --- the tests ------------------------------------------------------------

W = "service.py"
PYS = [("py3.11-debian", "/usr/bin/python3.11"),
       ("py3.11-embed", h.interpreter_path("py3.11-embed"))]
CACHE = "service.py:%d" % h.line_of(W, "LEAK-CACHE")
CLOSURE_FN = h.func_of(W, h.line_of(W, "LEAK-CLOSURE"))


def main():
    h.require_pyprof()
    ok = subprocess.run(["tmux", "-V"], stdout=subprocess.PIPE).returncode == 0
    if not h.check(ok, "viewer: tmux present", "tmux -V failed"):
        h.done()
    for label, py in PYS:
        if not h.check(os.access(py, os.X_OK), "%s viewer: interpreter present" % label, py):
            continue
        live(label, py)
        live_to_the_end(label, py)
        replay(label, py)
    no_color(PYS[0][1])
    h.done()


def header_checks(t, text, py):
    ver = h.python_version(py)
    m = re.search(r"pid (\d+)", text)
    h.check(m and int(m.group(1)) > 1, t + ": header shows the pid", text[:300])
    h.check(("Python " + ver) in text, t + ": header shows Python " + ver, text[:300])
    m = re.search(r"\b(up|at) ([\d.:]+)s?", text)
    h.check(m is not None, t + ": header shows the uptime", text[:300])
    try:
        heap = parse_bytes(header_value(text, "Heap"))
        rss = parse_bytes(header_value(text, "RSS"))
    except (TypeError, ValueError):
        heap = rss = -1
    h.check(heap > 100 * 1024, t + ": header heap is plausible (%s)" % heap, text[:300])
    h.check(rss > heap > 0, t + ": header RSS is above the heap", text[:300])
    m = re.search(r"Events (\S+)", text)
    h.check(m and parse_count(m.group(1)) > 1000, t + ": header counts events", text[:300])
    h.check(re.search(r"Alloc [\d.]+ [KMG]?i?B/s", text) is not None,
            t + ": header shows the allocation rate", text[:300])
    h.check(re.search(r"GC (\d+|no data)", text) and "GIL wait" in text,
            t + ": header has GC and GIL fields", text[:300])
    h.check("# heap" in text and re.search(r"\|[ .#]*#", text) is not None,
            t + ": heap graph drawn", text[:600])


def live(label, py):
    t = "%s viewer live" % label
    # the service runs until the keys are done (a loaded machine takes
    # longer than any fixed time), then ends on its own
    stop = os.path.join(tempfile.mkdtemp(prefix="pp-viewer-"), "stop")
    p = Pane([h.PYPROF, "--", py, h.workload_path(W), "--seconds", "120",
              "--stop-file", stop])
    try:
        ok, text = p.wait(lambda s: CACHE in s and re.search(r"Events \d", s))
        if not h.check(ok, t + ": screen up with %s in Sites" % CACHE, text):
            return
        header_checks(t, text, py)

        p.keys("2")
        ok, text = p.wait(lambda s: tab_line(s) and "sort GROWTH" in tab_line(s)
                          and any(CACHE in r for r in table_rows(s)), timeout=30)
        h.check(ok, t + ": Leaks view lists the cache leak", text)
        h.check(ok and "LEAK" not in "".join(table_rows(text)) and
                re.search(r"Leaks\((\d+)\)", text) and
                int(re.search(r"Leaks\((\d+)\)", text).group(1)) >= 1,
                t + ": Leaks tab counts the judged leaks", tab_line(text))

        p.keys("3")
        ok, text = p.wait(lambda s: "GEN COLLECTIONS" in s)
        h.check(ok, t + ": GC view opens", text)
        p.keys("4")
        ok, text = p.wait(lambda s: "THREAD" in s and "CONTENDED LOCK" in s)
        h.check(ok, t + ": Threads & locks view opens", text)
        p.keys("Tab")
        ok, text = p.wait(lambda s: "ALLOC/s" in s and "sort LIVE" in tab_line(s))
        h.check(ok, t + ": Tab cycles back to Sites", text)

        # Enter on the top row (the cache leak by live bytes) opens its stack
        p.keys("Home", "Enter")
        ok, text = p.wait(lambda s: "Stack of" in s and "#0" in s)
        h.check(ok and CACHE in text and "handle_request" in text and "serve" in text,
                t + ": Enter opens the whole stack of the selected site",
                "\n".join(rows_below_tabs(text)[:14]) or text)
        p.keys("Escape")
        ok, text = p.wait(lambda s: "Stack of" not in s and table_rows(s))
        h.check(ok, t + ": Esc closes the stack", text)

        # filter
        p.keys("/")
        p.keys(CLOSURE_FN, literal=True)
        p.keys("Enter")
        ok, text = p.wait(lambda s: 'filter "%s"' % CLOSURE_FN in s and table_rows(s)
                          and all(CLOSURE_FN in r for r in table_rows(s)))
        h.check(ok and CACHE not in "".join(table_rows(text)),
                t + ": filter keeps only %s rows" % CLOSURE_FN, text)
        p.keys("Escape")
        ok, text = p.wait(lambda s: "filter" not in tab_line(s) and
                          any(CACHE in r for r in table_rows(s)))
        h.check(ok, t + ": Esc clears the filter", text)

        # sort: LIVE -> GROWTH -> COUNT; COUNT column (3rd) descending
        p.keys("s", "s")

        def count_column(s):
            try:
                return [parse_count(r.split()[2]) for r in table_rows(s)[:10]]
            except (ValueError, IndexError):
                return []

        # a capture may fall between the tab line's redraw and the
        # table's: wait for a frame whose rows are in order
        ok, text = p.wait(lambda s: "sort COUNT" in tab_line(s) and len(table_rows(s)) > 5
                          and count_column(s) == sorted(count_column(s), reverse=True))
        counts = count_column(text)
        h.check(ok and counts and counts == sorted(counts, reverse=True),
                t + ": sort by COUNT orders the table", "counts %s; %s" % (counts, text))
        p.keys("I")
        ok, text = p.wait(lambda s: "(rev)" in tab_line(s))
        h.check(ok, t + ": I reverses the order", tab_line(text))
        p.keys("I", "S", "S")
        ok, text = p.wait(lambda s: "sort LIVE" in tab_line(s) and "(rev)" not in tab_line(s))
        h.check(ok, t + ": S goes back to LIVE", tab_line(text))

        # navigation
        p.keys("Down", "Down", "PageDown", "End", "Home", "PageUp", "Up")
        ok, text = p.wait(lambda s: table_rows(s))
        h.check(ok, t + ": arrows, PgUp/PgDn, Home/End keep a table", text)

        # help
        p.keys("h")
        ok, text = p.wait(lambda s: "Help: any key returns" in s)
        h.check(ok and "q, F10" in text, t + ": h shows the keys", text)
        p.keys("x")
        ok, text = p.wait(lambda s: "Help:" not in s and table_rows(s))

        # resize
        p.resize(90, 30)
        ok, text = p.wait(lambda s: len(s.splitlines()) <= 30 and
                          "q Quit" in s.splitlines()[-1] and
                          max(len(x) for x in s.splitlines()) <= 90 and table_rows(s))
        h.check(ok, t + ": resize to 90x30 redraws to fit", text)
        p.resize(120, 40)
        ok, text = p.wait(lambda s: "q Quit" in s.splitlines()[-1] and len(s.splitlines()) >= 39)
        h.check(ok, t + ": resize back to 120x40 redraws", text)

        # quit while the command runs: it runs on, pyprof waits
        p.keys("q")
        ok, text = p.wait(lambda s: "viewer closed" in s, timeout=10)
        h.check(ok and p.alternate_on() == "0", t + ": q closes the screen at once", text)
        open(stop, "w").close()
        rc = p.exit_status(timeout=60)
        h.check(rc == 0, t + ": pyprof waits and exits with the command's status", "rc %s" % rc)
        text = p.text(history=True)
        h.check(re.search(r"^service: \d+ requests", text, re.M),
                t + ": the command's output reaches the terminal", text[-600:])
        st = p.stty()
        h.check(re.search(r"(^|\s)echo(\s|$)", st) and re.search(r"(^|\s)icanon(\s|$)", st),
                t + ": terminal restored (echo, icanon)", st[:400])
    finally:
        p.kill()
        shutil.rmtree(os.path.dirname(stop), ignore_errors=True)


def live_to_the_end(label, py):
    t = "%s viewer live end" % label
    p = Pane([h.PYPROF, "--", py, h.workload_path(W), "--seconds", "3"])
    try:
        ok, text = p.wait(lambda s: "command exited 0" in s, timeout=60)
        h.check(ok and CACHE in text, t + ": the final state stays on screen", text)
        p.keys("2")
        ok, text = p.wait(lambda s: any(CACHE in r for r in table_rows(s)))
        h.check(ok, t + ": Leaks at the end lists the cache leak", text)
        # the stack of the top site gives the live bytes its row gives
        p.keys("1", "Home")
        ok, text = p.wait(lambda s: "sort LIVE" in tab_line(s) and table_rows(s))
        row_live = table_rows(text)[0].split()[0] if ok else "?"
        p.keys("Enter")
        ok, text = p.wait(lambda s: "Stack of" in s and "#0" in s)
        m = re.search(r"live (\S+) in \S+ blocks", text)
        h.check(ok and m and m.group(1) == row_live and parse_bytes(row_live) > 0,
                t + ": the stack at the end shows the row's live bytes (%s)" % row_live,
                text)
        p.keys("Escape")
        p.keys("q")
        rc = p.exit_status(timeout=20)
        h.check(rc == 0, t + ": q exits with the command's status", "rc %s" % rc)
        h.check(p.alternate_on() == "0", t + ": terminal back from the alternate screen")
    finally:
        p.kill()


def replay(label, py):
    t = "%s viewer replay" % label
    r = h.record(py, W, ["--seconds", "5"])
    if not h.check(r.rc == 0 and os.path.exists(r.trace), t + ": recorded a trace",
                   "rc %s; %s" % (r.rc, h.tail(r.err))):
        return
    p = Pane([h.PYPROF, "view", r.trace])
    try:
        ok, text = p.wait(lambda s: re.search(r"(PLAYING|STOPPED)\s+[\d.]+s / [\d.]+s", s))
        if not h.check(ok, t + ": screen up with the replay bar", text):
            return
        header_checks(t + " (moving)", p.wait(lambda s: "RSS 0 B" not in s and
                                               re.search(r"at ([\d.]+)s", s) and
                                               float(re.search(r"at ([\d.]+)s", s).group(1)) > 1)[1], py)
        # to the end: everything judged
        p.keys("}")
        ok, text = p.wait(lambda s: re.search(r"at ([\d.]+)s/([\d.]+)s", s) and
                          re.search(r"at ([\d.]+)s/\1s", s) and "STOPPED" in s)
        h.check(ok, t + ": } seeks to the end", text[:300])
        end_heap = parse_bytes(header_value(text, "Heap") or "0")
        p.keys("2")
        ok, text = p.wait(lambda s: any(CACHE in r for r in table_rows(s)))
        h.check(ok, t + ": at the end, Leaks lists the cache leak", text)
        # back to the start
        p.keys("{")
        ok, text = p.wait(lambda s: re.search(r"at 0\.\ds", s) and "Leaks(0)" in s)
        start_heap = parse_bytes(header_value(text, "Heap") or "0")
        h.check(ok and start_heap < end_heap / 4, t + ": { seeks back to the start "
                "(heap %d < %d, no leaks yet)" % (start_heap, end_heap), text[:400])
        # forward step by step
        p.keys("Right", "Right", "Right")
        ok, text = p.wait(lambda s: re.search(r"at (2\.\d|3\.0)s", s) is not None)
        mid_heap = parse_bytes(header_value(text, "Heap") or "0")
        h.check(ok and start_heap < mid_heap < end_heap,
                t + ": Right x3 seeks to ~3 s with the heap between (%d)" % mid_heap, text[:400])
        p.keys("Left")
        ok, text = p.wait(lambda s: re.search(r"at (1\.\d|2\.0)s", s) is not None)
        h.check(ok, t + ": Left seeks back 1 s", text[:300])
        p.keys("+", "+")
        ok, text = p.wait(lambda s: " 4x " in s)
        h.check(ok, t + ": + doubles the speed", text.splitlines()[-2:] if text else "")
        p.keys("Space")
        ok, text = p.wait(lambda s: "PLAYING" in s)
        h.check(ok, t + ": Space plays", text[-300:])
        ok, text = p.wait(lambda s: "STOPPED" in s, timeout=30)
        h.check(ok, t + ": playing stops at the end", text[-300:])
        p.keys("q")
        rc = p.exit_status(timeout=20)
        h.check(rc == 0 and p.alternate_on() == "0", t + ": q exits 0, screen restored",
                "rc %s" % rc)
        st = p.stty()
        h.check(re.search(r"(^|\s)echo(\s|$)", st) and re.search(r"(^|\s)icanon(\s|$)", st),
                t + ": terminal restored (echo, icanon)", st[:400])
    finally:
        p.kill()


def no_color(py):
    t = "viewer NO_COLOR"
    p = Pane([h.PYPROF, "--", py, h.workload_path(W), "--seconds", "3"], env={"NO_COLOR": "1"})
    try:
        ok, text = p.wait(lambda s: CACHE in s)
        esc = p.text(escapes=True)
        colors = re.findall(r"\x1b\[[0-9;]*(?:3[0-7]|4[0-7]|38;5;\d+|48;5;\d+)[0-9;]*m", esc)
        h.check(ok and "\x1b[" in esc and not colors,
                t + ": attributes only, no color codes", "%d color codes, e.g. %r" % (
                    len(colors), colors[:3]))
        p.keys("q")
        h.check(p.exit_status(timeout=30) == 0, t + ": exits 0")
    finally:
        p.kill()


if __name__ == "__main__":
    sys.exit(main())

"""Helpers for pyprof's end-to-end tests (stdlib only, run by /usr/bin/python3).

A test prints one line per property and interpreter: "ok NAME" or
"FAIL NAME: why" (tests/run.sh counts them). Planted lines are found by
their marker comments in tests/workloads, never by number.
"""
import ast
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROF = Path(os.environ.get("PYPROF_E2E_BIN") or ROOT / "build" / "pyprof")
WORKLOADS = ROOT / "tests" / "workloads"

# The interpreters: tests/interpreters (the one list, shared with the C
# tests and tests/run.sh). A missing required one is a FAIL, never a skip;
# the extra ones (pyenv builds) run when present.
INTERPRETERS_FILE = ROOT / "tests" / "interpreters"


def read_interpreters():
    """[(label, need, build, path)] from tests/interpreters, globs resolved
    (an unmatched glob keeps its pattern: missing)."""
    import glob
    out = []
    for line in open(INTERPRETERS_FILE):
        line = line.split("#", 1)[0].split()
        if not line:
            continue
        label, need, build, path = line
        if not os.path.isabs(path):
            path = str(ROOT / path)
        hits = sorted(glob.glob(path)) if any(c in path for c in "*?[") else []
        out.append((label, need, build, hits[0] if hits else path))
    return out


INTERPRETERS = [(label, path) for label, need, build, path in read_interpreters()]
STRIPPED = {label for label, need, build, path in read_interpreters() if build == "stripped"}

CMD_TIMEOUT = int(os.environ.get("PYPROF_E2E_CMD_TIMEOUT", "180"))
TEST_TIMEOUT = int(os.environ.get("PYPROF_E2E_TEST_TIMEOUT", "1200"))

MIB = 1 << 20

failures = 0
_tmp = tempfile.mkdtemp(prefix="pyprof-e2e-")
_child = None  # the Popen being waited for, killed by the watchdog


def _cleanup():
    shutil.rmtree(_tmp, ignore_errors=True)


atexit.register(_cleanup)


def _watchdog(signum, frame):
    print("FAIL %s: timed out after %ds" % (test_name(), TEST_TIMEOUT), flush=True)
    if _child is not None:
        _kill(_child)
    _cleanup()
    os._exit(1)


signal.signal(signal.SIGALRM, _watchdog)
signal.alarm(TEST_TIMEOUT)


def test_name():
    return Path(sys.argv[0]).stem


def check(cond, name, detail=""):
    """Print ok/FAIL for one property; return cond."""
    global failures
    if cond:
        print("ok " + name, flush=True)
    else:
        failures += 1
        detail = " ".join(str(detail).split()) or "check failed"
        if len(detail) > 600:
            detail = detail[:600] + "..."
        print("FAIL %s: %s" % (name, detail), flush=True)
    return bool(cond)


def done():
    """End of a test file: exit status 1 if anything failed."""
    sys.exit(1 if failures else 0)


def tmpfile(name):
    return os.path.join(_tmp, name)


def require_pyprof():
    """FAIL and stop when there is no CLI to test."""
    if not (PYPROF.is_file() and os.access(PYPROF, os.X_OK)):
        check(False, "%s: build/pyprof exists" % test_name(),
              "%s missing (run make)" % PYPROF)
        done()


def interpreters(required_only=False):
    """(label, path) of every interpreter present; a FAIL line for each
    missing required one (tests/interpreters). extra ones that are absent
    are left out (tests/run.sh prints which ran).

    PYPROF_E2E_ONLY=label[,label] narrows the list for debugging; the
    excluded ones are printed as SKIP lines so that it never goes unnoticed.
    """
    only = os.environ.get("PYPROF_E2E_ONLY")
    only = set(only.split(",")) if only else None
    found = []
    for label, need, build, path in read_interpreters():
        if only is not None and label not in only:
            print("SKIP %s %s: not in PYPROF_E2E_ONLY" % (test_name(), label))
            continue
        present = os.access(path, os.X_OK)
        if need != "required":
            if present and not required_only:
                found.append((label, path))
            continue
        if check(present, "%s %s: interpreter present" % (label, test_name()),
                 "%s is missing or not executable (tests/setup_chroot.sh, make)" % path):
            found.append((label, path))
    return found


def chroot_of(label):
    """The root directory an interpreter runs in (tests/cache/SUITE for the
    tests/cache/python3.X-SUITE wrappers of tests/setup_chroot.sh), or None
    for one that runs on the host. A file a test makes for it outside
    tests/ must be copied there, at the same path."""
    path = interpreter_path(label)
    m = re.match(r"python3\.\d+-(\w+)$", os.path.basename(path))
    if os.path.dirname(path) == str(ROOT / "tests" / "cache") and m:
        return ROOT / "tests" / "cache" / m.group(1)
    return None


def interpreter_path(label):
    """Path of one interpreter of tests/interpreters (present or not)."""
    return next(path for lab, need, build, path in read_interpreters() if lab == label)


def python_version(python):
    r = run([python, "-c", "import platform; print(platform.python_version())"])
    return r.stdout.decode().strip()


# --- running things -------------------------------------------------------

class Run:
    def __init__(self, rc, stdout, stderr, timed_out=False):
        self.rc, self.stdout, self.stderr, self.timed_out = rc, stdout, stderr, timed_out

    @property
    def err(self):
        return self.stderr.decode(errors="replace")

    @property
    def out(self):
        return self.stdout.decode(errors="replace")


def _kill(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass


def run(cmd, stdin=None, timeout=CMD_TIMEOUT, cwd=None, env=None):
    """Run cmd in its own process group; a timeout kills the group and gives
    rc None. stdin: bytes or None (then /dev/null)."""
    global _child
    try:
        p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.PIPE if stdin is not None
                             else subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True)
    except OSError as e:  # e.g. build/pyprof being relinked: a FAIL, not a crash
        return Run(None, b"", ("[harness: cannot run %s: %s]" % (cmd[0], e)).encode())
    _child = p
    try:
        out, err = p.communicate(stdin, timeout=timeout)
        return Run(p.returncode, out, err)
    except subprocess.TimeoutExpired:
        _kill(p)
        out, err = p.communicate()
        return Run(None, out, err + b"\n[harness: timed out after %ds]" % timeout, True)
    finally:
        _child = None


def pyprof(*args, **kw):
    return run([PYPROF] + list(args), **kw)


class Recording:
    """What record() gives: iterates as (rc, stdout, stderr, report)."""

    def __init__(self, rec, rep, report, trace, why):
        self.rc, self.stdout, self.stderr = rec.rc, rec.stdout, rec.stderr
        self.out, self.err = rec.out, rec.err
        self.timed_out = rec.timed_out
        self.report = report
        self.trace = trace
        self.report_run = rep
        self.why = why  # why report is None

    def __iter__(self):
        return iter((self.rc, self.stdout, self.stderr, self.report))


_seq = 0


def record(python, workload, args=(), extra_pyprof_args=(), stdin=None, timeout=CMD_TIMEOUT,
           cwd=None, env=None):
    """pyprof record -o TMP [extra] -- python workload args; then report it
    as JSON. workload: a name in tests/workloads ("service.py") or a path.
    env: extra environment variables for pyprof and the command."""
    global _seq
    _seq += 1
    trace = tmpfile("trace-%d.pyprof" % _seq)
    wl = workload_path(workload) if not workload.startswith("-") else workload
    rec = pyprof("record", "-o", trace, *extra_pyprof_args, "--", python, wl, *args,
                 stdin=stdin, timeout=timeout, cwd=cwd,
                 env=dict(os.environ, **env) if env else None)
    report, rep, why = None, None, None
    if rec.timed_out:
        why = "record timed out after %ds; stderr: %s" % (timeout, tail(rec.err))
    elif not os.path.exists(trace):
        why = "record (rc %s) wrote no trace; stderr: %s" % (rec.rc, tail(rec.err))
    else:
        rep = pyprof("report", trace, "--format", "json", timeout=timeout)
        if rep.rc != 0:
            why = "report rc %s; stderr: %s" % (rep.rc, tail(rep.err))
        else:
            try:
                report = json.loads(rep.stdout)
            except ValueError as e:
                why = "report output is not JSON (%s): %s" % (e, tail(rep.out))
    return Recording(rec, rep, report, trace, why)


def tail(text, n=400):
    text = " | ".join(line for line in text.strip().splitlines() if line.strip())
    return text[-n:] if text else "(empty)"


# --- workloads ------------------------------------------------------------

def workload_path(name):
    return str(WORKLOADS / name) if "/" not in name else name


def line_of(workload, marker):
    """Line number of the one line carrying '# MARKER'."""
    path = workload_path(workload)
    rx = re.compile(r"#\s*" + re.escape(marker) + r"(?![\w-])")
    hits = [i for i, line in enumerate(open(path), 1) if rx.search(line)]
    if len(hits) != 1:
        raise AssertionError("marker %s occurs %d times in %s" % (marker, len(hits), path))
    return hits[0]


def func_of(workload, line):
    """Name of the innermost function containing line ('<module>' if none)."""
    path = workload_path(workload)
    tree = ast.parse(open(path).read(), path)
    best, best_span = "<module>", None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.lineno <= line <= node.end_lineno:
                span = node.end_lineno - node.lineno
                if best_span is None or span < best_span:
                    best, best_span = node.name, span
    return best


def marker_site(workload, marker):
    """(abs file, line, function) of a marked line."""
    line = line_of(workload, marker)
    return (os.path.abspath(workload_path(workload)), line, func_of(workload, line))


# --- reading reports ------------------------------------------------------

def growth_phase2_tick(rep):
    """tests/workloads/growth.py: trace time of the first timeline tick
    that saw phase 2, or None."""
    tl = rep["heap"]["timeline"]
    # BASELINE (8 MiB) is in; the first tick may come after it already
    base = next((i for i, p in enumerate(tl) if p["live_bytes"] >= 7 * MIB), None)
    if base is None:
        return None
    # the plateau: a few ticks after the baseline arrived (it may take
    # more than one tick on a busy machine)
    after = [p for p in tl if tl[base]["t"] + 0.3 <= p["t"]]
    if not after:
        return None
    plateau = after[0]["live_bytes"]
    return next((p["t"] for p in after if p["live_bytes"] >= plateau + MIB), None)


def sites_at(entries, file, line):
    return [s for s in entries or [] if s.get("file") == file and s.get("line") == line]


def one_site(report, file, line, key="sites"):
    """(site or None, why)."""
    hits = sites_at(report.get(key), file, line)
    if len(hits) == 1:
        return hits[0], ""
    if not hits:
        near = [(s.get("file"), s.get("line")) for s in report.get(key) or []
                if os.path.basename(str(s.get("file"))) == os.path.basename(file)]
        return None, "no %s entry at %s:%d (entries in that file: %s)" % (
            key, file, line, sorted(near, key=lambda x: x[1] or 0)[:20])
    return None, "%d %s entries at %s:%d" % (len(hits), key, file, line)


def fmt_site(s):
    if s is None:
        return "None"
    keys = ("function", "live_bytes", "live_count", "alloc_bytes", "alloc_count",
            "growth_bytes_per_s", "leak")
    return "{" + ", ".join("%s=%s" % (k, s.get(k)) for k in keys) + "}"


def is_native(frame):
    if frame.get("native"):
        return True
    f = str(frame.get("file") or "")
    return not frame.get("line") or not f.endswith(".py")


def frame_key(f):
    return (f.get("file"), f.get("line"), f.get("function"))

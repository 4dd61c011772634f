"""Import-heavy overhead benchmark (run by scripts/bench_import.sh).

Workloads: the fifteen standard-library packages of issue 11, every
standard-library module (bench_import_all.py) and a generated
100,000-line module (tests/workloads/bigmodule.py, compiled to .pyc
first, as an installed module would be). Modes: plain, pyprof record
--sample 0 (every allocation) and --sample 524288, alternating, RUNS
rounds. Per run: wall time and CPU time (user + sys of pyprof and
everything it waited for: wait4's rusage). Prints medians and ratios of
medians to plain; then the fixed cost on an empty program; then, with
--callgrind, instructions of the same runs counted by callgrind (once
each, --no-bpf: eBPF cannot attach under valgrind).
Start-up is measured on its own and also subtracted (net).
Usage: bench_import.py [--runs N] [--callgrind] [--only WORKLOAD,...]
Environment: PYTHON (target, /usr/bin/python3.11), PYPROF (build/pyprof),
PYPROF_BEFORE (another build's pyprof, measured in the same alternation).
"""
import argparse
import glob
import os
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.environ.get("PYTHON", "/usr/bin/python3.11")
PYPROF = os.environ.get("PYPROF", os.path.join(ROOT, "build", "pyprof"))
FIFTEEN = ("email.mime.multipart, http.server, asyncio, unittest, json, "
           "xml.dom.minidom, sqlite3, decimal, argparse, logging.handlers, "
           "urllib.request, concurrent.futures, dataclasses, typing, pathlib")


def workloads(tmp):
    sys.path.insert(0, os.path.join(ROOT, "tests", "workloads"))
    import bigmodule
    d = os.path.join(tmp, "big")
    os.mkdir(d)
    src = os.path.join(d, bigmodule.NAME + ".py")
    with open(src, "w") as f:
        f.write(bigmodule.source())
    # the .pyc the target's own version reads (PYTHONDONTWRITEBYTECODE
    # or not): as an installed module
    subprocess.run([PY, "-c", "import py_compile, sys; py_compile.compile(sys.argv[1])", src],
                   check=True)
    return [
        ("fifteen", [PY, "-c", "import " + FIFTEEN]),
        ("stdlib-all", [PY, os.path.join(ROOT, "scripts", "bench_import_all.py")]),
        ("big-100k", [PY, "-c", "import sys; sys.path.insert(0, %r); import %s"
                      % (d, bigmodule.NAME)]),
    ]


def modes(tmp, bpf):
    """plain, then every/sampled for PYPROF (and for PYPROF_BEFORE, an
    older build to compare with, in the same alternation)."""
    nb = [] if bpf else ["--no-bpf"]
    out = [("plain", [])]
    builds = [("", PYPROF)]
    if os.environ.get("PYPROF_BEFORE"):
        builds.append(("-before", os.environ["PYPROF_BEFORE"]))
    for tag, exe in builds:
        out += [
            ("every" + tag, [exe, "record", "--sample", "0"] + nb +
             ["-o", os.path.join(tmp, "a.pp"), "--"]),
            ("sampled" + tag, [exe, "record", "--sample", "524288"] + nb +
             ["-o", os.path.join(tmp, "s.pp"), "--"]),
        ]
    return out


def run(cmd):
    """(wall s, cpu s) of cmd and every process it waited for."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("bench_import: %s failed (status %d)" % (" ".join(cmd), status))
    return wall, ru.ru_utime + ru.ru_stime


def callgrind(cmd, tmp):
    for f in glob.glob(os.path.join(tmp, "cg.*")):
        os.unlink(f)
    subprocess.run(["valgrind", "--tool=callgrind", "--trace-children=yes",
                    "--callgrind-out-file=" + os.path.join(tmp, "cg.%p")] + cmd,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    total = 0
    for f in glob.glob(os.path.join(tmp, "cg.*")):
        for line in open(f, errors="replace"):
            if line.startswith("summary:"):
                total += int(line.split()[1])
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--slow", action="store_true",
                    help="callgrind the before build on big-100k too (hours)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pyprof-bench-import.")
    try:
        wls = [w for w in workloads(tmp) if not a.only or w[0] in a.only.split(",")]
        ms = modes(tmp, True)
        res = {}
        for _ in range(a.runs):
            for wname, wcmd in wls:
                for mname, mcmd in ms:
                    res.setdefault((wname, mname), []).append(run(mcmd + wcmd))
        st = {}
        for _ in range(a.runs):
            for mname, mcmd in ms + [("every --no-bpf", modes(tmp, False)[1][1])]:
                st.setdefault(mname, []).append(run(mcmd + [PY, "-c", "pass"]))
        med = {m: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
               for m, v in st.items()}
        print("target %s; pyprof %s; %d alternating runs, medians; %d cores; %s" % (
            PY, PYPROF, a.runs, os.cpu_count(), time.strftime("%Y-%m-%d", time.gmtime())))
        print("start-up, empty program (python -c pass), wall / cpu s: " + ", ".join(
            "%s %.3f / %.3f" % (m, w, c) for m, (w, c) in med.items()))
        print("net: minus the same mode's start-up")
        print("%-11s %-14s %8s %7s %8s %7s %9s" % ("", "", "wall s", "ratio", "cpu s", "ratio",
                                                 "net cpu"))
        for wname, _ in wls:
            bw = statistics.median(x[0] for x in res[(wname, "plain")])
            bc = statistics.median(x[1] for x in res[(wname, "plain")])
            for mname, _ in ms:
                w = statistics.median(x[0] for x in res[(wname, mname)])
                c = statistics.median(x[1] for x in res[(wname, mname)])
                net = (c - med[mname][1]) / max(bc - med["plain"][1], 1e-6)
                print("%-11s %-14s %8.3f %6.2fx %8.3f %6.2fx %8.2fx" % (
                    wname, mname, w, w / bw, c, c / bc, net))
        if not a.callgrind:
            return
        print("instructions (callgrind, pyprof and target together, --no-bpf), ratio to plain:")
        for wname, wcmd in wls:
            base = None
            for mname, mcmd in modes(tmp, False):
                if mname == "every-before" and wname == "big-100k" and not a.slow:
                    print("%-11s %-14s %16s" % (wname, mname, "(--slow)"))
                    continue
                n = callgrind(mcmd + wcmd, tmp)
                base = base or n
                print("%-11s %-14s %16d %6.2fx" % (wname, mname, n, n / base if base else 0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""pyprof report --format pprof, read by a real client: Go's pprof.

One recording of tests/workloads/growth.py per interpreter (exact,
--sample 0), then:
- the file is gzip, and `go tool pprof -raw` (Debian's golang-go, with
  no network) parses it: the four sample types of Go's heap profiles,
  inuse_space the default;
- sample by sample, its samples equal the folded stacks of
  `--format collapsed --by live` and `--by alloc` (the same stack text
  from pprof's locations, the same integer values);
- summed by innermost location, they equal the JSON report's sites
  (live_bytes, live_count, alloc_bytes, alloc_count) exactly;
- `go tool pprof -top -lines -unit=B` lists the planted GROWTH line
  (function and line) with the JSON site's live_bytes;
- with --from/--to, inuse_space is the window's live bytes and
  alloc_space its allocations, as the JSON report of the same window.
A sampled recording (--sample 16384): -top shows the GROWTH line with the
JSON report's (scaled) live bytes, and both lie within the sampling
tolerance of the exact recording's figure. A --native recording: native
frames are functions of their binaries and the GROWTH line is still
below them.
"""
import gzip
import os
import re
import shutil

import harness as h

W = "growth.py"
LABELS = ("py3.11-debian", "py3.13-trixie")
SAMPLE = 16384
GROWTH_BLOCK = 40 * 1024


def go_env():
    home = h.tmpfile("gohome")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ, HOME=home, GOCACHE=os.path.join(home, "cache"),
               GOPATH=os.path.join(home, "go"), GOPROXY="off", GOTOOLCHAIN="local",
               GOFLAGS="", PPROF_TMPDIR=home)
    env.pop("DISPLAY", None)
    return env


def go_pprof(*args):
    return h.run(["go", "tool", "pprof"] + list(args), env=go_env())


SAMPLE_RX = re.compile(r"^\s*((?:-?\d+\s*)+):((?:\s*\d+)*)\s*$")
# "ID: 0xADDR M=N function file:line s=START[(system name)]": a Python
# function name has no space (file names may: "<frozen importlib._bootstrap>")
LOC_RX = re.compile(r"^\s*(\d+): 0x[0-9a-f]+(?: M=\d+)? (<no Python frame>|\S+) (.+):(\d+) "
                    r"s=\d+(?:\(.*\))?$")


def parse_raw(text):
    """(sample types, [(values, [loc ids])], {loc id: (function, file, line)})."""
    types, samples, locs, part = [], [], {}, None
    for line in text.splitlines():
        if line in ("Samples:", "Locations", "Mappings"):
            part = line
            continue
        if part == "Samples:" and not types:
            types = line.split()
        elif part == "Samples:":
            m = SAMPLE_RX.match(line)
            if m:
                samples.append(([int(v) for v in m.group(1).split()],
                                [int(v) for v in m.group(2).split()]))
        elif part == "Locations":
            m = LOC_RX.match(line)
            if m:
                locs[int(m.group(1))] = (m.group(2), m.group(3), int(m.group(4)))
    return types, samples, locs


def clean(v):
    return re.sub(r"[\x00-\x1f\x7f]", "?", str(v)).replace(";", ",")


def folded(locs, ids):
    return ";".join("%s (%s:%d)" % (clean(locs[i][0]), clean(locs[i][1]), locs[i][2])
                    for i in reversed(ids))


def collapsed(trace, *args):
    r = h.pyprof("report", trace, "--format", "collapsed", *args)
    out = {}
    for line in r.out.splitlines():
        stack, _, v = line.rpartition(" ")
        out[stack] = out.get(stack, 0) + int(v)
    return r.rc, out


def export(label, trace, name, *args):
    """(types, samples, locs) of the pprof export, or None after a FAIL."""
    out = h.tmpfile("%s-%s.pb.gz" % (label, name.replace(" ", "_")))
    r = h.pyprof("report", trace, "--format", "pprof", "-o", out, *args)
    if not h.check(r.rc == 0 and os.path.exists(out), "%s %s: exits 0, writes the file"
                   % (label, name), h.tail(r.err)):
        return None, out
    try:
        with gzip.open(out) as f:
            f.read()
        gz = True
    except OSError as e:
        gz = e
    h.check(gz is True, "%s %s: a gzip file" % (label, name), gz)
    g = go_pprof("-raw", out)
    if not h.check(g.rc == 0, "%s %s: go tool pprof -raw reads it" % (label, name),
                   h.tail(g.err + g.out)):
        return None, out
    return parse_raw(g.out), out


def top(label, out, *args):
    """{(function, file, line): flat bytes} of go tool pprof -top."""
    g = go_pprof("-top", "-lines", "-unit=B", "-nodecount=100000", *args, out)
    rows = {}
    rx = re.compile(r"^\s*(\d+)B\s+\S+%\s+\S+%\s+(\d+)B\s+\S+%\s+(.*) (\S+):(\d+)$")
    for line in g.out.splitlines():
        m = rx.match(line)
        if m:
            k = (m.group(3), m.group(4), int(m.group(5)))
            rows[k] = rows.get(k, 0) + int(m.group(1))
    h.check(g.rc == 0 and rows, "%s go tool pprof -top -lines: lists lines" % label,
            h.tail(g.err + g.out))
    return rows


def site_key(s):
    if s["function"] == "<no Python frame>":
        return ("<no Python frame>", "<native>", 0)
    return (s["function"], s["file"], s["line"])


def check_exact(label, rec):
    rep = rec.report
    parsed, out = export(label, rec.trace, "pprof")
    if parsed is None:
        return
    types, samples, locs = parsed
    h.check(types == ["alloc_objects/count", "alloc_space/bytes", "inuse_objects/count",
                      "inuse_space/bytes[dflt]"],
            "%s pprof: Go's heap sample types, inuse_space the default" % label, types)
    missing = [i for _, ids in samples for i in ids if i not in locs]
    h.check(samples and not missing, "%s pprof: every sample's locations are defined" % label,
            "%d samples, undefined %s" % (len(samples), missing[:5]))
    # sample by sample against the folded stacks
    for by, k in (("live", 3), ("alloc", 1)):
        rc, lines = collapsed(rec.trace, "--by", by)
        mine = {}
        for vals, ids in samples:
            if vals[k] > 0:
                t = folded(locs, ids)
                if t == "<no Python frame> (<native>:0)":
                    t = "[no Python frame]"
                mine[t] = mine.get(t, 0) + vals[k]
        diff = [(s[-90:], mine.get(s), lines.get(s)) for s in set(mine) | set(lines)
                if mine.get(s) != lines.get(s)]
        h.check(rc == 0 and lines and not diff,
                "%s pprof: each sample's %s equals its stack's collapsed --by %s line"
                % (label, ("inuse_space", "alloc_space")[k == 1], by),
                "%d stacks differ, e.g. %s" % (len(diff), diff[:3]))
    # by innermost location against the JSON sites
    sums = {}
    for vals, ids in samples:
        key = locs[ids[0]]
        acc = sums.setdefault(key, [0, 0, 0, 0])
        for i in range(4):
            acc[i] += vals[i]
    want = {site_key(s): [s["alloc_count"], s["alloc_bytes"], s["live_count"], s["live_bytes"]]
            for s in rep["sites"]}
    wrong = [(k, sums.get(k), v) for k, v in want.items() if sums.get(k, [0] * 4) != v]
    extra = [k for k in sums if k not in want and any(sums[k])]
    h.check(not wrong and not extra,
            "%s pprof: samples by innermost line = the JSON sites' four figures" % label,
            "%d sites differ, e.g. %s; extra %s" % (len(wrong), wrong[:2], extra[:2]))
    f, line, fn = h.marker_site(W, "GROWTH")
    site, why = h.one_site(rep, f, line)
    rows = top(label, out)
    got = rows.get((fn, f, line))
    h.check(site and got == site["live_bytes"] and got >= 97 * GROWTH_BLOCK,
            "%s go tool pprof -top: GROWTH %s:%d with the JSON inuse_space" % (label, fn, line),
            "top %s, JSON %s %s" % (got, h.fmt_site(site), why))
    return site


def check_window(label, rec):
    """--from/--to: the pprof of a window is the JSON report's window."""
    rep = rec.report
    lo, hi = "%.3f" % (rep["duration_s"] * 0.3), "%.3f" % (rep["duration_s"] * 0.55)
    r = h.pyprof("report", rec.trace, "--format", "json", "--from", lo, "--to", hi)
    import json
    try:
        wrep = json.loads(r.out)
    except ValueError:
        h.check(False, "%s json --from --to: JSON" % label, h.tail(r.err + r.out))
        return
    parsed, out = export(label, rec.trace, "pprof window", "--from", lo, "--to", hi)
    if parsed is None:
        return
    types, samples, locs = parsed
    tot = [sum(v[i] for v, _ in samples) for i in range(4)]
    want = [sum(s[k] for s in wrep["sites"]) for k in
            ("alloc_count", "alloc_bytes", "live_count", "live_bytes")]
    h.check(tot == want and tot[1] < rep["heap"]["alloc_bytes"],
            "%s pprof --from %s --to %s: totals = the JSON window's sites'" % (label, lo, hi),
            "pprof %s, JSON %s (whole run alloc %s)" % (tot, want, rep["heap"]["alloc_bytes"]))


def check_sampled(label, py, exact_site):
    rec = h.record(py, W, ["--gap", "0.4"], ["--sample", str(SAMPLE)])
    if not h.check(rec.report is not None, "%s %s --sample %d: recorded" % (label, W, SAMPLE),
                   rec.why):
        return
    f, line, fn = h.marker_site(W, "GROWTH")
    site, why = h.one_site(rec.report, f, line)
    parsed, out = export(label, rec.trace, "pprof sampled")
    if parsed is None or site is None:
        h.check(False, "%s pprof sampled: GROWTH site" % label, why)
        return
    rows = top(label, out)
    got = rows.get((fn, f, line), 0)
    # the sampled estimate of 97 blocks of 40 KiB at one in 16 KiB: a
    # relative standard deviation of ~3% (model.c's weight); 5 sd
    truth = exact_site["live_bytes"]
    h.check(abs(got - site["live_bytes"]) <= 8 and abs(got - truth) <= 0.15 * truth,
            "%s pprof sampled: GROWTH inuse_space = the JSON's estimate, within 15%% of the "
            "exact run's" % label,
            "pprof %d, JSON %s, exact %d" % (got, site["live_bytes"], truth))


def check_native(label, py):
    rec = h.record(py, W, ["--gap", "0.4"], ["--native"])
    if not h.check(rec.report is not None, "%s %s --native: recorded" % (label, W), rec.why):
        return
    parsed, out = export(label, rec.trace, "pprof native")
    if parsed is None:
        return
    types, samples, locs = parsed
    f, line, fn = h.marker_site(W, "GROWTH")
    # a native frame: line 0, in a binary or library (the static
    # /usr/bin/python3.11 has no libpython)
    native = {l for l in locs.values() if l[2] == 0 and l[1].startswith("/")
              and not l[1].endswith(".py")}
    below = [ids for v, ids in samples if v[3] > 0 and (fn, f, line) in
             [locs[i] for i in ids] and locs[ids[0]] in native]
    h.check(native and below,
            "%s pprof --native: native frames are functions of their binaries, "
            "under the GROWTH line" % label,
            "%d native locations, e.g. %s; %d GROWTH samples with a native leaf"
            % (len(native), sorted(native)[:3], len(below)))


def main():
    h.require_pyprof()
    if not h.check(shutil.which("go") is not None, "test_pprof: go (golang-go) installed",
                   "scripts/setup.sh installs golang-go"):
        h.done()
    for label, py in h.interpreters():
        if label not in LABELS:
            continue
        rec = h.record(py, W, ["--gap", "0.6"], ["--sample", "0"])
        if not h.check(rec.report is not None, "%s %s: recorded and reported" % (label, W),
                       rec.why):
            continue
        site = check_exact(label, rec)
        check_window(label, rec)
        if label == LABELS[0] and site:
            check_sampled(label, py, site)
            check_native(label, py)
    h.done()


main()

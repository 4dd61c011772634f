"""Stacks at depth, defined under a parent (import_chain.py, --sample 0).

A new stack below a known one is defined in the stream as its parent's
id and the new innermost frame (PP_STACK_PARENT). Per interpreter, a
chain of 14 imported modules (about 90 frames at its end) then a
generated 10,000-line module (bigmodule.py's kind) imported at the
bottom:
- each chain module's block line has exactly COUNT allocations of its
  size, at its own file:line in <module>;
- the stack of each is the whole chain: the import line of every module
  above it, in order from the outermost, then the block line;
- every site in the generated module is an allocating line of the
  function that encloses it, lines deep into it are there, and every
  stack ending there has the whole chain above it.
"""
import os
import re
import sys

import harness as h

sys.path.insert(0, str(h.WORKLOADS))
import bigmodule  # noqa: E402
import import_chain as ic  # noqa: E402
from test_lines_scale import expected_lines  # noqa: E402

FRAME = re.compile(r"^(.*) \((.*):(\d+)\)$")
CHAIN = re.compile(r"^pp_chain_(\d+)\.py$")
HDR = 256  # bound on an object header per block
NBIG = bigmodule.blocks(ic.BIG_LINES)


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        chain(label, py)
    h.done()


def frames(line):
    """(function, basename, line) of a collapsed stack, outermost first."""
    out = []
    for f in line.rsplit(" ", 1)[0].split(";"):
        m = FRAME.match(f)
        out.append((m.group(1), os.path.basename(m.group(2)), int(m.group(3)))
                   if m else (f, "", 0))
    return out


def chain_part(fr):
    return [(f, ln) for _, f, ln in fr if CHAIN.match(f)]


def want_chain(i, leaf):
    return [(ic.name(j) + ".py", ic.IMPORT_LINE) for j in range(i)] + (
        [(ic.name(i) + ".py", leaf)] if i < ic.DEPTH else [])


def chain(label, py):
    t = "%s import_chain" % label
    r = h.record(py, "import_chain.py", extra_pyprof_args=("--sample", "0"))
    h.check(r.rc == 0 and " %d functions" % NBIG in r.out,
            t + ": exits 0, output intact", "rc %s; stdout %s; stderr %s" % (
                r.rc, h.tail(r.out), h.tail(r.err)))
    col = h.pyprof("report", r.trace, "--format", "collapsed", "--by", "alloc")
    stacks = [frames(s) for s in col.out.splitlines() if s.strip()] if col.rc == 0 else []
    sites = (r.report or {}).get("sites") or []
    why = r.why or ("collapsed rc %s: %s" % (col.rc, h.tail(col.err)) if col.rc else "")

    bad = []
    for i in range(ic.DEPTH):
        f = ic.name(i) + ".py"
        at = [s for s in sites if os.path.basename(str(s.get("file"))) == f and
              s.get("line") == ic.BLOCK_LINE]
        n = sum(s.get("alloc_count") or 0 for s in at)
        b = sum(s.get("alloc_bytes") or 0 for s in at)
        lo = ic.COUNT * ic.size(i)
        if len(at) != 1 or at[0].get("function") != "<module>" or n != ic.COUNT or \
                not lo <= b <= lo + ic.COUNT * HDR:
            bad.append((f, len(at), at[0].get("function") if at else None, n, b))
    h.check(not why and not bad,
            t + ": each of %d modules' block line: %d allocations of its size in <module>"
            % (ic.DEPTH, ic.COUNT),
            why or "(file, sites, function, count, bytes): %s" % bad[:4])

    wrong, seen = [], set()
    for fr in stacks:
        leaf = fr[-1] if fr else ("", "", 0)
        m = CHAIN.match(leaf[1])
        if m and leaf[2] == ic.BLOCK_LINE:
            i = int(m.group(1))
            seen.add(i)
            if chain_part(fr) != want_chain(i, ic.BLOCK_LINE):
                wrong.append((i, chain_part(fr)[-3:]))
    h.check(not why and not wrong and seen == set(range(ic.DEPTH)),
            t + ": each block line's stack is the whole import chain above it",
            why or "seen %s of %d; wrong (module, last chain frames): %s" % (
                len(seen), ic.DEPTH, wrong[:3]))

    big = ic.BIG + ".py"
    want = expected_lines(NBIG)
    mine = [s for s in sites if os.path.basename(str(s.get("file"))) == big]
    off = [(s.get("line"), s.get("function")) for s in mine
           if s.get("function") not in want.get(s.get("line"), ())]
    h.check(not why and len(mine) > NBIG and not off,
            t + ": every site of the generated module is an allocating line of its function",
            why or "%d of %d sites wrong, e.g. %s" % (len(off), len(mine), off[:6]))
    at = {(s.get("line"), s.get("function")) for s in mine}
    per = len(bigmodule.BLOCK)
    probes = []
    for i in (0, NBIG // 2, NBIG - 1):
        first = len(bigmodule.HEADER) + 1 + i * per
        probes += [(first + 1, "f_%d" % i), (first, "<module>")]
    missing = [p for p in probes if p not in at]
    h.check(not why and not missing,
            t + ": lines up to %d of the module at the chain's end are there"
            % max(p[0] for p in probes), why or "missing (line, function): %s" % missing)

    under = [fr for fr in stacks if any(f == big for _, f, _ in fr)]
    cut = [chain_part(fr)[-2:] for fr in under if chain_part(fr) != want_chain(ic.DEPTH, 0)]
    h.check(not why and len(under) > NBIG and not cut,
            t + ": each of its stacks has the whole chain above it",
            why or "%d stacks, %d without the chain, e.g. %s" % (len(under), len(cut), cut[:2]))


if __name__ == "__main__":
    sys.exit(main())

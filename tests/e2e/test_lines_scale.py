"""Lines where the line-table cache could go wrong: size and address reuse.

Per interpreter:
- code_reuse.py: 210 code objects made, called and freed in a loop, each
  at the address of the one before; each (file, function, line) of the
  42 variants must hold exactly its own 5 blocks (an address-keyed cache
  gives every round the first one's line).
- bigmodule.py: a generated 100,000-line module imported once, recording
  every allocation. Every site in it must be an allocating line of the
  source with the function that encloses it, and a few sampled lines far
  into the module (function bodies and module level) must be there.
"""
import os
import sys

import harness as h

sys.path.insert(0, str(h.WORKLOADS))
import bigmodule  # noqa: E402
import code_reuse  # noqa: E402


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        reuse(label, py)
        big(label, py)
    h.done()


def reuse(label, py):
    t = "%s lines_scale reuse" % label
    r = h.record(py, "code_reuse.py")
    h.check(r.rc == 0 and "code_reuse: %d rounds" % code_reuse.ROUNDS in r.out,
            t + ": exits 0, output intact", "rc %s; stderr %s" % (r.rc, h.tail(r.err)))
    want = {}
    for k in range(code_reuse.ROUNDS):
        key = ("gen_%s.py" % "ab"[k % 2], "f%d" % (k % 3), 2 + k % 7)
        want[key] = want.get(key, 0) + 1
    got = {}
    for s in (r.report or {}).get("sites") or []:
        if s.get("file") in ("gen_a.py", "gen_b.py") and s.get("function") != "<module>":
            key = (s.get("file"), s.get("function"), s.get("line"))
            got[key] = got.get(key, 0) + (s.get("live_count") or 0)
    wrong = sorted((k, got.get(k), n) for k, n in want.items() if got.get(k) != n)
    extra = sorted(k for k in got if k not in want and got[k])
    why = r.why if r.report is None else "wrong (site, got, want): %s; unexpected: %s" % (
        wrong[:6], extra[:6])
    h.check(r.report is not None and not wrong and not extra,
            t + ": each of %d reused code objects keeps its own file:line:function" % len(want),
            why)


def expected_lines(blocks=bigmodule.BLOCKS):
    """line -> functions that may allocate there, for the whole module
    (of `blocks` blocks: bigmodule.source's)."""
    out = {}
    per = len(bigmodule.BLOCK)
    for i in range(blocks):
        first = len(bigmodule.HEADER) + 1 + i * per
        f = "f_%d" % i
        # def: the function object, and (3.12+: the GC runs from the eval
        # breaker) what happens at the function's RESUME, on its def line
        out[first] = ("<module>", f)
        for j in range(1, per - 1):
            out[first + j] = (f,)                # body lines
        out[first + per - 1] = ("<module>",)     # R.append(...)
    out[2] = ("<module>",)                       # R = []
    return out


def big(label, py):
    t = "%s lines_scale bigmodule" % label
    r = h.record(py, "bigmodule.py")
    h.check(r.rc == 0 and "bigmodule:" in r.out and
            " %d functions" % bigmodule.BLOCKS in r.out,
            t + ": exits 0, output intact", "rc %s; stdout %s; stderr %s" % (
                r.rc, h.tail(r.out), h.tail(r.err)))
    sites = [s for s in (r.report or {}).get("sites") or []
             if os.path.basename(str(s.get("file"))) == bigmodule.NAME + ".py"]
    want = expected_lines()
    bad = [(s.get("line"), s.get("function")) for s in sites
           if s.get("function") not in want.get(s.get("line"), ())]
    why = r.why if r.report is None else "%d of %d sites wrong, e.g. %s" % (
        len(bad), len(sites), bad[:6])
    h.check(r.report is not None and len(sites) > bigmodule.BLOCKS and not bad,
            t + ": every site is an allocating line of its function", why)
    at = {(s.get("line"), s.get("function")) for s in sites}
    per = len(bigmodule.BLOCK)
    probes = []
    for i in (0, 4321, 9999, bigmodule.BLOCKS - 1):
        first = len(bigmodule.HEADER) + 1 + i * per
        probes += [(first + 1, "f_%d" % i), (first + 3, "f_%d" % i), (first, "<module>")]
    missing = [p for p in probes if p not in at]
    h.check(r.report is not None and not missing,
            t + ": sampled lines up to line %d are there" % max(p[0] for p in probes),
            "missing (line, function): %s" % missing)


if __name__ == "__main__":
    sys.exit(main())

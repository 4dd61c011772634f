"""Sampled mode's allocation paths (tests/workloads/sampled_paths.py).

The sampled hooks have short paths of their own (a malloc the countdown
does not pick, a free whose block the filter rules out), so every way a
block can come and go is checked against what the program kept, with
--sample 4096 (a 64 KiB block is recorded with probability 1 - e^-16,
weight 64 KiB): per interpreter, with the default allocators and with
PYTHONMALLOC=malloc (every domain is malloc: the libc hook sits under
the PyMem ones):
- exit 0 and the workload's own lines intact;
- each marked line's live bytes equal what the workload says it kept
  there, within half a block (the small objects made on the same lines,
  sampled with weight ~4 KiB each, are the slack): kept blocks of each
  domain (malloc, calloc), blocks freed by the same domain or across
  domains (PyMem_RawMalloc then free(), malloc() then PyMem_RawFree),
  realloc into a recorded block, out of one and from one to another
  (MEM, OBJ, RAW, libc), small blocks that stay in pymalloc (MEM, OBJ:
  their frees are seen by the PyMem hooks alone, where 64 KiB ones reach
  libc's free too) all freed, blocks made in four threads and half freed by
  the main thread;
- and each site's allocated bytes at least what was allocated there (the
  site is the marked line: a freed site is not just absent);
- a forked child (which records nothing) frees every recorded block and
  exits 0.
And at --sample 1 (every block recorded, weight its size), small objects
side by side, several to one counter of the free filter (a 64-byte
granule): all of those that share one freed, every other one of the
rest; the line's live bytes are exactly those kept (a free lost, or
taken for a neighbour's, would leave more or less) and its allocated
bytes all of them.
"""
import re
import sys

import harness as h

W = "sampled_paths.py"
SIZE = 64 << 10
N = 8
SETUPS = [{}, {"PYTHONMALLOC": "malloc"}]
# bytes allocated at each marked line (N * SIZE unless said), for the
# alloc_bytes check; the small blocks' is an estimate (~470 samples:
# 4.6% sd), so its floor is 25% under the truth
ALLOCATED = {"S-FREED": 4 * N * SIZE, "S-REALLOC-IN": 4 * N * SIZE,
             "S-REALLOC-OUT": 4 * N * SIZE, "S-REALLOC-FROM": 4 * N * SIZE,
             "S-REALLOC-GROW": 8 * N * SIZE, "S-THREAD": 4 * N * SIZE,
             "S-SMALL-FREED": int(0.75 * 2 * 4000 * 512)}


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        for env in SETUPS:
            one(label, py, env)
        shared(label, py)
    h.done()


def shared(label, py):
    t = "%s sampled paths --sample 1, neighbours" % label
    r = h.record(py, W, ["--shared"], ["--sample", "1"])
    m = re.search(r"^site S-SHARED (\d+) (\d+)$", r.out, re.M)
    n = re.search(r"^shared (\d+)$", r.out, re.M)
    if not h.check(r.rc == 0 and m and n and int(n.group(1)) > 100 and r.report is not None,
                   t + ": exits 0, blocks sharing a granule, report",
                   "rc %s; stdout %s; stderr %s; %s" % (r.rc, h.tail(r.out), h.tail(r.err),
                                                      r.why or "")):
        return
    f, ln, _ = h.marker_site(W, "S-SHARED")
    at = h.sites_at(r.report.get("sites"), f, ln)
    live = sum(s.get("live_bytes") or 0 for s in at)
    alloc = sum(s.get("alloc_bytes") or 0 for s in at)
    want = int(m.group(2))
    # weights n / (1 - e^-n) round to n: exact up to a byte a block
    made = 4000 * want // int(m.group(1))
    h.check(abs(live - want) <= int(m.group(1)) and abs(alloc - made) <= 4000,
            t + ": live bytes are those kept, allocated all made",
            "live %s (kept %d), allocated %s (made %d): %s" % (
                live, want, alloc, made, [h.fmt_site(s) for s in at]))


def one(label, py, env):
    t = "%s sampled paths%s" % (label, "".join(" %s=%s" % kv for kv in env.items()))
    r = h.record(py, W, ["--cross", "--fork"], ["--sample", "4096"], env=env)
    sites = dict((m, int(b)) for m, _, b in re.findall(r"^site (\S+) (\d+) (\d+)$", r.out, re.M))
    h.check(r.rc == 0 and len(sites) == 16, t + ": exits 0, output intact",
            "rc %s; stdout %s; stderr %s" % (r.rc, h.tail(r.out), h.tail(r.err)))
    h.check("child ok" in r.out, t + ": a forked child frees the recorded blocks, exits 0",
            "stdout %s; stderr %s" % (h.tail(r.out), h.tail(r.err)))
    if not h.check(r.report is not None, t + ": report", r.why or ""):
        return
    bad, seen = [], 0
    for mark, want in sorted(sites.items()):
        f, ln, _ = h.marker_site(W, mark)
        # a line may be two sites: a comprehension's own frame (3.9-3.11)
        at = h.sites_at(r.report.get("sites"), f, ln)
        live = sum(s.get("live_bytes") or 0 for s in at)
        alloc = sum(s.get("alloc_bytes") or 0 for s in at)
        lo = ALLOCATED.get(mark, N * SIZE)
        if abs(live - want) > SIZE // 2 or alloc < lo:
            bad.append("%s:%d %s: live %s (kept %d), allocated %s (at least %d)" % (
                mark, ln, [h.fmt_site(s) for s in at], live, want, alloc, lo))
        seen += 1
    h.check(seen == 16 and not bad, t + ": every site's live bytes are what it kept",
            "; ".join(bad))


if __name__ == "__main__":
    sys.exit(main())

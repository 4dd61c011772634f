"""Every path of the sampled allocation hooks, for tests/e2e/test_sampled_paths.py.

Blocks of 64 KiB through ctypes: the PyMem domains (MEM, OBJ, RAW: with
the GIL held, through ctypes.pythonapi) and libc's malloc family. At
--sample 4096 such a block is recorded with probability 1 - e^-16 and
weighs 64 KiB: the counts are exact. Each marked line is a site; what it
keeps live at exit is printed as "site MARK LIVE_BLOCKS LIVE_BYTES", and
the test compares pyprof's report with that:
- kept: allocated and kept (malloc, calloc, each domain);
- freed: freed by the same domain, or across domains (PyMem_RawMalloc then
  libc free, libc malloc then PyMem_RawFree: only with --cross, for RAW
  is malloc unless PYTHONMALLOC=debug);
- realloc in (a small block grown to 64 KiB: the grown one is the
  realloc line's), out (a 64 KiB block shrunk to 16 bytes: its line keeps
  nothing) and within (64 KiB grown to 128 KiB);
- small: blocks that pymalloc keeps (MEM, OBJ), 512 bytes, each recorded
  with probability 1 - e^-1/8: all freed, so their line keeps nothing;
- threads: four threads allocate, the main thread frees half of it;
- fork (--fork): a child, which records nothing, frees every block
  recorded above and exits; "child ok" says it exited 0.
With --shared (run at --sample 1, where every block is recorded), only
small objects side by side in pymalloc's pools, several to one counter
of the free filter (a 64-byte granule): every other one freed, so each
free must find its own block among its neighbours' and leave theirs.
"""
import ctypes
import os
import sys
import threading

SIZE = 64 << 10
N = 8
SMALL, NSMALL = 512, 4000
CROSS = "--cross" in sys.argv

api = ctypes.pythonapi
libc = ctypes.CDLL(None)
VP, SZ = ctypes.c_void_p, ctypes.c_size_t
for lib, name, args in [(api, "PyMem_Malloc", [SZ]), (api, "PyMem_Calloc", [SZ, SZ]),
                        (api, "PyMem_Realloc", [VP, SZ]), (api, "PyMem_Free", [VP]),
                        (api, "PyObject_Malloc", [SZ]), (api, "PyObject_Realloc", [VP, SZ]),
                        (api, "PyObject_Free", [VP]), (api, "PyMem_RawMalloc", [SZ]),
                        (api, "PyMem_RawCalloc", [SZ, SZ]),
                        (api, "PyMem_RawRealloc", [VP, SZ]), (api, "PyMem_RawFree", [VP]),
                        (libc, "malloc", [SZ]), (libc, "calloc", [SZ, SZ]),
                        (libc, "realloc", [VP, SZ]), (libc, "free", [VP])]:
    fn = getattr(lib, name)
    fn.argtypes = args
    fn.restype = VP if name not in ("PyMem_Free", "PyObject_Free", "PyMem_RawFree",
                                    "free") else None

KEPT = []       # (block, its free)
SITES = {}      # marker: [live blocks, live bytes]


def site(mark, blocks, size):
    s = SITES.setdefault(mark, [0, 0])
    s[0] += blocks
    s[1] += blocks * size


def kept():
    for _ in range(N):
        KEPT.append((api.PyMem_Malloc(SIZE), api.PyMem_Free))          # S-MEM-MALLOC
    site("S-MEM-MALLOC", N, SIZE)
    for _ in range(N):
        KEPT.append((api.PyMem_Calloc(1, SIZE), api.PyMem_Free))       # S-MEM-CALLOC
    site("S-MEM-CALLOC", N, SIZE)
    for _ in range(N):
        KEPT.append((api.PyObject_Malloc(SIZE), api.PyObject_Free))    # S-OBJ-MALLOC
    site("S-OBJ-MALLOC", N, SIZE)
    for _ in range(N):
        KEPT.append((api.PyMem_RawMalloc(SIZE), api.PyMem_RawFree))    # S-RAW-MALLOC
    site("S-RAW-MALLOC", N, SIZE)
    for _ in range(N):
        KEPT.append((api.PyMem_RawCalloc(1, SIZE), api.PyMem_RawFree))  # S-RAW-CALLOC
    site("S-RAW-CALLOC", N, SIZE)
    for _ in range(N):
        KEPT.append((libc.malloc(SIZE), libc.free))                    # S-LIBC-MALLOC
    site("S-LIBC-MALLOC", N, SIZE)
    for _ in range(N):
        KEPT.append((libc.calloc(1, SIZE), libc.free))                 # S-LIBC-CALLOC
    site("S-LIBC-CALLOC", N, SIZE)


# (allocate, reallocate, free) of each domain
DOMAINS = [(api.PyMem_Malloc, api.PyMem_Realloc, api.PyMem_Free),
           (api.PyObject_Malloc, api.PyObject_Realloc, api.PyObject_Free),
           (api.PyMem_RawMalloc, api.PyMem_RawRealloc, api.PyMem_RawFree),
           (libc.malloc, libc.realloc, libc.free)]


def freed():
    for alloc, _, free in DOMAINS:
        blocks = [alloc(SIZE) for _ in range(N)]                       # S-FREED
        for b in blocks:
            free(b)
        site("S-FREED", 0, SIZE)
    if CROSS:
        blocks = [api.PyMem_RawMalloc(SIZE) for _ in range(N)]         # S-CROSS-RAW
        for b in blocks:
            libc.free(b)
        site("S-CROSS-RAW", 0, SIZE)
        blocks = [libc.malloc(SIZE) for _ in range(N)]                 # S-CROSS-LIBC
        for b in blocks:
            api.PyMem_RawFree(b)
        site("S-CROSS-LIBC", 0, SIZE)


def small():
    for alloc, free in [(api.PyObject_Malloc, api.PyObject_Free),
                        (api.PyMem_Malloc, api.PyMem_Free)]:
        blocks = [alloc(SMALL) for _ in range(NSMALL)]                 # S-SMALL-FREED
        for b in blocks:
            free(b)
    site("S-SMALL-FREED", 0, SMALL)


def reallocs():
    for alloc, realloc, free in DOMAINS:
        small = [alloc(16) for _ in range(N)]
        for b in small:
            KEPT.append((realloc(b, SIZE), free))                      # S-REALLOC-IN
        site("S-REALLOC-IN", N, SIZE)
        big = [alloc(SIZE) for _ in range(N)]                          # S-REALLOC-OUT
        for b in big:
            KEPT.append((realloc(b, 16), free))
        site("S-REALLOC-OUT", 0, SIZE)
        big = [alloc(SIZE) for _ in range(N)]                          # S-REALLOC-FROM
        for b in big:
            KEPT.append((realloc(b, 2 * SIZE), free))                  # S-REALLOC-GROW
        site("S-REALLOC-FROM", 0, SIZE)
        site("S-REALLOC-GROW", N, 2 * SIZE)


def threads():
    got = [[] for _ in range(4)]

    def work(out):
        for _ in range(N):
            out.append(api.PyMem_RawMalloc(SIZE))                      # S-THREAD
    ts = [threading.Thread(target=work, args=(g,)) for g in got]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for g in got:
        for b in g[: N // 2]:
            api.PyMem_RawFree(b)
        KEPT.extend((b, api.PyMem_RawFree) for b in g[N // 2:])
    site("S-THREAD", 4 * (N - N // 2), SIZE)


def forked():
    pid = os.fork()
    if pid == 0:
        for b, free in KEPT:
            free(b)
        del KEPT[:]
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        print("child ok")


def shared():
    x = b"ab"
    objs = [None] * 4000
    for i in range(4000):
        objs[i] = x * 2                                                # S-SHARED
    grains = {}
    for o in objs:
        grains.setdefault(id(o) >> 6, []).append(o)
    # where blocks share a granule, all of them are freed (the second
    # free must still be seen); of the others, every other one
    keep = [g[0] for g in grains.values() if len(g) == 1][::2]
    print("shared %d" % sum(len(g) for g in grains.values() if len(g) > 1))
    del objs, grains, o
    site("S-SHARED", len(keep), sys.getsizeof(keep[0]))
    KEPT.append((keep, None))


def main():
    if "--shared" in sys.argv:
        shared()
        for mark, (blocks, nbytes) in SITES.items():
            print("site %s %d %d" % (mark, blocks, nbytes))
        return
    kept()
    freed()
    small()
    reallocs()
    threads()
    for mark, (blocks, nbytes) in SITES.items():
        print("site %s %d %d" % (mark, blocks, nbytes))
    sys.stdout.flush()
    if "--fork" in sys.argv:
        forked()


if __name__ == "__main__":
    main()

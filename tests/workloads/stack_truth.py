"""Stacks that change under a per-thread stack cache, with their truth.

Each allocation site asks truth() on the line before it: truth() reads
the caller's frames (sys._getframe: function, file, line, innermost
first; the caller's own line + 1 for the site) and gives a block size of
the stack's own. The site's line then allocates one bytes object of that
size and nothing else. At the end the workload prints, per stack, the
frames, the block count and the size: pyprof must have charged exactly
count * (size + bytes header) to that stack and nothing to any other
stack ending at a site line.

The cases are interleaved so that each allocation follows one from
another stack: functions called alternately from one line (one frame
address, other code); one function under two callers, and under two
lines of one caller (the callee's frame, code, offset and link are the
same, the caller's line is not); recursion; a generator and a coroutine
resumed from different callers; exceptions unwinding to a handler and
through finally blocks; code objects compiled and dropped (an address
reused by other code); the same in two threads at once, and in the
main thread under a dozen more frames.
"""
import json
import sys
import threading

ROUNDS = 120
SIZES = {}
COUNTS = {}
KEEP = [None] * 64
LOCK = threading.Lock()


def truth():
    f = sys._getframe(1)
    frames = [(f.f_code.co_name, f.f_code.co_filename, f.f_lineno + 1)]
    f = f.f_back
    while f is not None:
        frames.append((f.f_code.co_name, f.f_code.co_filename, f.f_lineno))
        f = f.f_back
    key = tuple(frames)
    with LOCK:
        n = SIZES.get(key)
        if n is None:
            n = SIZES[key] = 1000 + 8 * len(SIZES)
        COUNTS[key] = COUNTS.get(key, 0) + 1
        slot = len(COUNTS) % len(KEEP)
    return n, slot


def a():
    n, i = truth()
    KEEP[i] = b"\0" * n


def b():
    n, i = truth()
    KEEP[i] = b"\0" * n


def callee():
    n, i = truth()
    KEEP[i] = b"\0" * n


def caller1():
    callee()


def caller2():
    callee()


def two_lines():
    callee()
    callee()


def rec(d):
    n, i = truth()
    KEEP[i] = b"\0" * n
    if d:
        rec(d - 1)
    n, i = truth()
    KEEP[i] = b"\0" * n


def gen():
    while True:
        n, i = truth()
        KEEP[i] = b"\0" * n
        yield


def resume1(g):
    next(g)


def resume2(g):
    next(g)


class Step:
    def __await__(self):
        yield


async def sub():
    n, i = truth()
    KEEP[i] = b"\0" * n
    await Step()


async def coro():
    while True:
        await sub()
        n, i = truth()
        KEEP[i] = b"\0" * n
        await Step()


def drive1(c):
    c.send(None)


def drive2(c):
    c.send(None)


def boom(d):
    if d:
        try:
            boom(d - 1)
        finally:
            n, i = truth()
            KEEP[i] = b"\0" * n
    raise ValueError(d)


def catch(d):
    try:
        boom(d)
    except ValueError:
        n, i = truth()
        KEEP[i] = b"\0" * n


def reuse(r):
    # site lines 2, 4, 6: never another variant's truth() line
    src = "\n" * (2 * (r % 3)) + "n, i = truth()\nKEEP[i] = b'\\0' * n\n"
    exec(compile(src, "<reuse>", "exec"), {"truth": truth, "KEEP": KEEP})


def rounds():
    g = gen()
    c = coro()
    for r in range(ROUNDS):
        for f in (a, b):
            f()
        caller1()
        caller2()
        two_lines()
        rec(r % 5)
        resume1(g)
        resume2(g)
        for _ in range(2):
            drive1(c)
            drive2(c)
        catch(r % 4)
        reuse(r)
        a()


def nest(d, f):
    if d:
        nest(d - 1, f)
    else:
        f()


def main():
    # the workers' stacks are short, the main thread's deep: the shim
    # walks short chains afresh and compares long ones with the last
    threads = [threading.Thread(target=rounds) for _ in range(2)]
    for t in threads:
        t.start()
    nest(12, rounds)
    for t in threads:
        t.join()
    out = [{"frames": list(k), "count": COUNTS[k], "size": n} for k, n in SIZES.items()]
    print(json.dumps({"header": sys.getsizeof(b""), "stacks": out}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

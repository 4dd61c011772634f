"""Frames reused in place, for the shim's per-thread stack cache.

Each round: two functions called alternately from one line (same frame
address, other code); one function called from two callers (the callers'
frames take turns at one address); a generator, whose frame lives in the
generator and stays put, resumed from two callers; and a code object
compiled and dropped per round, whose address the next one takes with its
line elsewhere (line 1, 2 or 3 of "<reuse>"). Each case's line makes one
block per call, of a size of its own (SA..SE), stored in a list made
beforehand: per stack, allocated bytes = calls * (size + 33).
"""
import sys

ROUNDS = 300
SA, SB, SS, SG, SE = 3001, 3002, 3003, 3004, 3005  # names: not folded
KA, KB, KE = [None] * ROUNDS, [None] * ROUNDS, [None] * ROUNDS
KS, KG = [None] * (2 * ROUNDS), [None] * (2 * ROUNDS)


def a(i):
    KA[i] = b"\0" * SA  # REUSE-A


def b(i):
    KB[i] = b"\0" * SB  # REUSE-B


def shared(i):
    KS[i] = b"\0" * SS  # REUSE-SAME


def caller1(i):
    shared(2 * i)  # REUSE-CALLER1


def caller2(i):
    shared(2 * i + 1)  # REUSE-CALLER2


def gen():
    i = yield
    while True:
        KG[i] = b"\0" * SG  # REUSE-GEN
        i = yield


def resume1(g, i):
    g.send(2 * i)  # REUSE-RESUME1


def resume2(g, i):
    g.send(2 * i + 1)  # REUSE-RESUME2


def main():
    g = gen()
    next(g)
    for i in range(ROUNDS):
        for f in (a, b):
            f(i)
        caller1(i)
        caller2(i)
        resume1(g, i)
        resume2(g, i)
        src = "\n" * (i % 3) + "KE[i] = b'\\0' * SE\n"
        exec(compile(src, "<reuse>", "exec"), {"KE": KE, "SE": SE, "i": i})
    print("frame_reuse: %d rounds" % ROUNDS)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

# For tests/e2e/test_freelists_all.py: every other type CPython hands out
# again from a freelist or a cache (frames, async generator asend objects
# and wrapped values, contextvars contexts, slices, MemoryError). For each
# kind, churn_KIND creates and drops many at FA-CHURN-KIND, BATCH at a
# time (that fills its freelist; the slice cache holds one), then
# keep_KIND creates N and keeps them at FA-KEEP-KIND, in lists made
# beforehand, so that nothing else of that line stays live.
# Async wrapped values cannot be kept (the generator's machinery unwraps
# and drops each at once): N are made at FA-KEEP-AGVAL, one per yield.
# 3.11+ make a generator (frame inside) at its def line (FA-GEN).
import contextvars
import sys

N = 500
CHURN = 3000
BATCH = 64  # churned together: that many wait on the freelist after
KEEP = {k: [None] * N for k in ("frame", "asend", "context", "slice", "memerr")}


def rec(n):
    if n:
        rec(n - 1)                                     # FA-CHURN-FRAME2


def churn_frame():
    for _ in range(CHURN // BATCH):
        rec(BATCH)                                     # FA-CHURN-FRAME


def gen():                                             # FA-GEN
    yield 1


def keep_frame(keep):
    for i in range(N):
        keep[i] = gen()                                # FA-KEEP-FRAME


async def agen(vals):
    for v in vals:
        yield v                                        # FA-KEEP-AGVAL


async def agen_churn(vals):
    for v in vals:
        yield v                                        # FA-CHURN-AGVAL


def churn_asend(ag):
    for _ in range(CHURN // BATCH):
        batch = [ag.asend(None) for _ in range(BATCH)]  # FA-CHURN-ASEND
        for a in batch:
            try:
                a.send(None)
            except StopIteration:
                pass


def keep_asend(ag, keep):
    for i in range(N):
        keep[i] = ag.asend(None)                       # FA-KEEP-ASEND


def churn_context():
    for _ in range(CHURN // BATCH):
        [contextvars.copy_context() for _ in range(BATCH)]  # FA-CHURN-CONTEXT


def keep_context(keep):
    for i in range(N):
        keep[i] = contextvars.copy_context()           # FA-KEEP-CONTEXT


class Key:
    def __getitem__(self, k):
        return k


def churn_slice(key, a, b):
    for _ in range(CHURN):
        key[a:b]                                       # FA-CHURN-SLICE


def keep_slice(key, keep, a, b):
    for i in range(N):
        keep[i] = key[a:b]                             # FA-KEEP-SLICE


def churn_memerr():
    for _ in range(CHURN):
        MemoryError()                                  # FA-CHURN-MEMERR


def keep_memerr(keep):
    for i in range(N):
        keep[i] = MemoryError()                        # FA-KEEP-MEMERR


def run_agvals(vals):
    ag = agen(vals)
    for _ in vals:
        try:
            ag.asend(None).send(None)
        except StopIteration:
            pass


def main():
    vals = list(range(1000, 1000 + max(N, CHURN)))
    contextvars.copy_context()  # the thread's own context, made once, here
    churn_frame()
    keep_frame(KEEP["frame"])
    ag = agen_churn(vals)
    churn_asend(ag)
    keep_asend(ag, KEEP["asend"])
    run_agvals(vals[:N])
    churn_context()
    keep_context(KEEP["context"])
    key = Key()
    churn_slice(key, 1, 2)  # not constants: 3.14 folds those into one
    keep_slice(key, KEEP["slice"], 1, 2)
    churn_memerr()
    keep_memerr(KEEP["memerr"])
    for a in KEEP["asend"]:
        a.close()  # never awaited: no warning when they go (3.13+)
    print("freelists_all: kept", " ".join("%s %d" % (k, len(v)) for k, v in KEEP.items()))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

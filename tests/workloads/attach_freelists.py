# A running target for tests/e2e/test_inject.py: objects re-created from
# CPython's freelists while pyprof is attached. Its main loop primes the
# list, dict, tuple and float freelists all the time (churn: each object
# it makes dies at once, onto its type's freelist; frames, slices,
# contexts and async generator objects too); on command, leak()
# keeps new objects of each type, one type per line, interleaved with
# churn, so each kept object comes off the freelist churn just filled.
# One line per command on stdin (read by a thread):
#   ping        -> "pong N": N = main loop steps so far
#   leak N      -> keeps N objects of each type (once per process), then
#                  "leaked L D T F": the bytes each line's objects take
#                  (sys.getsizeof: a GC object's header included)
#   hold        -> a thread drops a list whose item's __del__ waits (the
#                  GIL let go) until "release": "held" once it waits
#   release     -> "released" once that list is gone
#   ctypes PATH N SIZE -> imports ctypes (not imported before), loads the
#                  C library at PATH, has it keep N malloc'd blocks of
#                  SIZE bytes: "kept N*SIZE"
#   ext DIR N SIZE -> imports ppsub (tests/embed/ppsub.c) from DIR, drops
#                  instances of its static list subtype, has it keep N
#                  malloc'd blocks of SIZE bytes: "kept N*SIZE"
#   sub N       -> makes and drops N ppsub.List: "sub N"
#   check       -> "ok B": B = failed self-checks (0: right), among them
#                  the type of objects made before, during and after
#   quit        -> exits
import contextvars
import queue
import sys
import threading

MAX = 200000
KEEP_LIST = [None] * MAX
KEEP_DICT = [None] * MAX
KEEP_TUPLE = [None] * MAX
KEEP_FLOAT = [None] * MAX
kept = 0
steps = 0
bad = 0
requests = queue.Queue()
answers = queue.Queue()
held = threading.Event()
release = threading.Event()
gone = threading.Event()
samples = []                            # [list, dict, tuple, float] made at times


def sample(i):
    return [[i, i], {"k": i}, (i, i), i * 0.5]


async def numbers():
    i = 0
    while True:
        yield i
        i += 1


AGEN = numbers()


def depth(n):
    return depth(n - 1) + 1 if n else 0


class Key:
    def __getitem__(self, k):
        return k


KEY = Key()


def churn(n):
    global bad
    total = 0.0
    for i in range(n):
        a = [i, i]                      # FL-CHURN-LIST
        d = {}                          # FL-CHURN-DICT
        t = (i, i)                      # FL-CHURN-TUPLE
        f = i * 0.25                    # FL-CHURN-FLOAT
        total += a[1] - t[0] + len(d) + f * 4 - i
        # the other freelisted types (frames, slices, contexts, asend
        # objects and wrapped values), through the attach and detach
        s = KEY[i:i + 1]
        c = contextvars.copy_context()
        try:
            AGEN.asend(None).send(None)
            v = None
        except StopIteration as e:
            v = e.value
        total += (s.stop - s.start - 1) + len(c) + depth(3) - 3 + (v is None)
    if total != 0.0:
        bad += 1


def leak(n):
    for i in range(n):
        churn(1)
        KEEP_LIST[i] = [i]              # FL-LEAK-LIST
        churn(1)
        KEEP_DICT[i] = {}               # FL-LEAK-DICT
        churn(1)
        KEEP_TUPLE[i] = (i, i)          # FL-LEAK-TUPLE
        churn(1)
        KEEP_FLOAT[i] = i + 0.5         # FL-LEAK-FLOAT


def check():
    n = 0
    for i in range(kept):
        n += (type(KEEP_LIST[i]) is not list or KEEP_LIST[i] != [i] or
              type(KEEP_DICT[i]) is not dict or KEEP_DICT[i] != {} or
              type(KEEP_TUPLE[i]) is not tuple or KEEP_TUPLE[i] != (i, i) or
              type(KEEP_FLOAT[i]) is not float or KEEP_FLOAT[i] != i + 0.5)
    for i, s in enumerate(samples + [sample(-1)]):
        n += [type(x) for x in s] != [list, dict, tuple, float]
        n += not (isinstance(s[0], list) and s[0].__class__ is list)
        n += type(s[1]) is not dict or type([]) is not list or type(()) is not tuple
    return n + bad


class Blocker:
    def __del__(self):
        held.set()
        release.wait()


def holder():
    x = [Blocker()]
    del x
    gone.set()


def keep_native(path, n, size):
    import ctypes
    lib = ctypes.CDLL(path)
    lib.pp_keep(n, size)                # NATIVE-KEEP
    return n * size


def keep_ext(path, n, size):
    sys.path.insert(0, path)
    import ppsub
    sub_churn(100)
    ppsub.keep(n, size)                 # EXT-KEEP
    return n * size


def sub_churn(n):
    import ppsub
    return sum(len(ppsub.List([i])) for i in range(n))


def reader():
    for line in sys.stdin:
        requests.put(line.split())
        print(answers.get(), flush=True)
    requests.put(["quit"])


assert "ctypes" not in sys.modules and "_ctypes" not in sys.modules
samples.append(sample(0))
threading.Thread(target=reader, daemon=True).start()
print("ready", flush=True)
while True:
    churn(200)
    steps += 1
    try:
        req = requests.get_nowait()
    except queue.Empty:
        continue
    samples.append(sample(steps))
    if req[0] == "ping":
        answers.put("pong %d" % steps)
    elif req[0] == "leak":
        n = min(int(req[1]), MAX - kept)
        leak(n)
        kept = n
        answers.put("leaked %d %d %d %d" % (
            n * sys.getsizeof([0]), n * sys.getsizeof({}),
            n * sys.getsizeof((0, 0)), n * sys.getsizeof(0.5)))
    elif req[0] == "hold":
        threading.Thread(target=holder, daemon=True).start()
        answers.put("held" if held.wait(10) else "not held")
    elif req[0] == "release":
        release.set()
        answers.put("released" if gone.wait(10) else "not released")
    elif req[0] == "ctypes":
        answers.put("kept %d" % keep_native(req[1], int(req[2]), int(req[3])))
    elif req[0] == "ext":
        answers.put("kept %d" % keep_ext(req[1], int(req[2]), int(req[3])))
    elif req[0] == "sub":
        answers.put("sub %d" % sub_churn(int(req[1])))
    elif req[0] == "check":
        answers.put("ok %d" % check())
    elif req[0] == "quit":
        answers.put("bye")
        break

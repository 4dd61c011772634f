"""Leaks whose objects come off freelists that another function primed.

For each of list, dict, tuple and float, a prime_* function creates and
drops objects of that type (they go onto CPython's freelist) and a leak_*
function keeps new ones in a global: those are re-created from the
freelist, without any allocator call, so an allocator hook alone would
charge them to the priming line. The four pairs run interleaved, so each
leak grows through the whole run.

Priming dicts are empty: an empty dict has no keys table of its own, so
the dict keys freelist (not objects; tracemalloc leaves those where they
were first allocated too) is not primed by them.

--tracemalloc: start tracemalloc at the beginning of main (the program
starting it itself) and print one line "TRACEMALLOC {json}" at the end:
{line: [bytes, count]} of this file's lines, innermost frame.
"""
import json
import sys

N = 150000
CHURN = 2

KEEP_LIST = []
KEEP_DICT = []
KEEP_TUPLE = []
KEEP_FLOAT = []


def prime_list(i):
    for j in range(CHURN):
        x = [i, j]  # FL-PRIME-LIST
    return x


def leak_list(i):
    KEEP_LIST.append([i])  # FL-LEAK-LIST


def prime_dict(i):
    for j in range(CHURN):
        x = {}  # FL-PRIME-DICT
    return x


def leak_dict(i):
    KEEP_DICT.append({"k": i})  # FL-LEAK-DICT


def prime_tuple(i):
    for j in range(CHURN):
        x = (i, j)  # FL-PRIME-TUPLE
    return x


def leak_tuple(i):
    KEEP_TUPLE.append((i, -i))  # FL-LEAK-TUPLE


def prime_float(i):
    for j in range(CHURN):
        x = j * 0.25  # FL-PRIME-FLOAT
    return x


def leak_float(i):
    KEEP_FLOAT.append(i + 0.5)  # FL-LEAK-FLOAT


def main():
    tm = "--tracemalloc" in sys.argv
    if tm:
        import tracemalloc
        tracemalloc.start(1)
    for i in range(N):
        prime_list(i)
        leak_list(i)
        prime_dict(i)
        leak_dict(i)
        prime_tuple(i)
        leak_tuple(i)
        prime_float(i)
        leak_float(i)
    if tm:
        snap = tracemalloc.take_snapshot()
        lines = {}
        for st in snap.statistics("lineno"):
            fr = st.traceback[0]
            if fr.filename == __file__:
                lines[fr.lineno] = [st.size, st.count]
        print("TRACEMALLOC " + json.dumps(lines))
    print("freelists: kept %d lists, %d dicts, %d tuples, %d floats" % (
        len(KEEP_LIST), len(KEEP_DICT), len(KEEP_TUPLE), len(KEEP_FLOAT)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Objects of freelisted types made and dropped, and kept after a burst
of drops (tests/e2e/test_sampled_freelists.py).

churn_T: N objects of T, each dropped when the next is made: all but the
first few come off T's freelist (on 3.11/3.12, sampled, unseen by the
allocator hooks unless pyprof draws them).
burst: R rounds; each drops 64 lists at once (65 pushes: the items, then
the list holding them), keeps one new list at S-BURST-ONE, then 63 at
S-BURST-REST. Pops take the newest push first: a scheme that recorded
"the next creation after a sampled push" would charge S-BURST-ONE some
65 times its share.
The keep lists are made to size first (no growth charged to the lines).
Prints "TRUTH marker bytes count" for each marked line, from
sys.getsizeof (what the allocator is asked for these types).
"""
import sys

N = 100000
R = 2000
A, B = object(), object()
KEEP_ONE = [None] * R
KEEP_REST = [None] * (63 * R)


def churn_list():
    for i in range(N):
        x = []  # S-CHURN-LIST
    return x


def churn_dict():
    for i in range(N):
        x = {}  # S-CHURN-DICT
    return x


def churn_tuple():
    for i in range(N):
        x = (A, B)  # S-CHURN-TUPLE
    return x


def churn_float(f):
    for i in range(N):
        x = f * 1.5  # S-CHURN-FLOAT
    return x


def burst():
    k = 0
    for r in range(R):
        objs = [[] for _ in range(64)]
        del objs
        KEEP_ONE[r] = []  # S-BURST-ONE
        for j in range(63):
            KEEP_REST[k] = []  # S-BURST-REST
            k += 1


def main():
    churn_list()
    churn_dict()
    churn_tuple()
    churn_float(float(len(sys.argv)))
    burst()
    for m, n, o in (("S-CHURN-LIST", N, []), ("S-CHURN-DICT", N, {}),
                    ("S-CHURN-TUPLE", N, (A, B)), ("S-CHURN-FLOAT", N, 2.5),
                    ("S-BURST-ONE", R, []), ("S-BURST-REST", 63 * R, [])):
        print("TRUTH %s %d %d" % (m, n * sys.getsizeof(o), n))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

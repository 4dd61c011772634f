# Objects whose blocks CPython made before pyprof's hooks were in (its
# start-up fills the freelists), re-created first thing by the program
# and kept, for tests/e2e/test_freelists_start.py: N of each freelisted
# type at its marked line, into lists made beforehand (so that no other
# block of that line stays live).
N = 300
lists, dicts, tuples, floats, ints, slices = ([None] * N for _ in range(6))
for i in range(N):
    lists[i] = []                                        # FS-list
for i in range(N):
    dicts[i] = {}                                        # FS-dict
for i in range(N):
    tuples[i] = (i, N)                                   # FS-tuple
for i in range(N):
    floats[i] = i * 1.5                                  # FS-float
for i in range(N):
    ints[i] = i * 1000003 + 1000                         # FS-int
for i in range(N):
    slices[i] = slice(N, N)                              # FS-slice
print("kept", N)

# A service that imports modules while it runs (a plugin loader, lazy
# imports in request handlers) and leaks on the side: tests/e2e/test_imports.py.
# Every 8 ms a request imports one more generated module (module-level
# data, classes, functions: compiled from source, run by importlib) and
# keeps 16 KiB in a global list (LEAK-REAL). The imported modules'
# memory grows through the whole run as a leak's does, but it is the
# modules' own: pyprof must flag LEAK-REAL only, and tell the import
# growth apart. Prints "imported N" at the end.
# Usage: imports.py [SECONDS]
import importlib
import os
import shutil
import sys
import tempfile
import time

DUR = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
KEPT = []
NAMES = []
BODY = '''
DATA = {i: str(i) * 3 for i in range(300)}
NAMES = [("name%d" % i, i) for i in range(200)]


class Plugin:
    """A plugin."""

    def run(self, x):
        return x + 1

'''
FUNCS = "".join("def f%d(a, b=%d):\n    return a * b + %d\n\n" % (i, i, i)
                for i in range(40))


def handle(n):
    importlib.import_module(NAMES[n])
    KEPT.append(bytearray(16384))   # LEAK-REAL


def main():
    d = tempfile.mkdtemp(prefix="pp-imports-")
    sys.dont_write_bytecode = True
    try:
        n = int(DUR / 0.008) + 50
        NAMES.extend("plug%d" % i for i in range(n))
        for i in range(n):
            with open(os.path.join(d, "plug%d.py" % i), "w") as f:
                f.write(BODY + FUNCS)
        sys.path.insert(0, d)
        importlib.invalidate_caches()
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < DUR:
            handle(i)
            i += 1
            time.sleep(0.008)
        print("imported", i, flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


main()

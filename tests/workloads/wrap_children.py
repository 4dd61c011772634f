# A program that starts Python children, for tests/e2e/test_wrap_children.py
# (run wrapped: pyprof record [--children] -- python wrap_children.py
# WAIT). One after the other: a multiprocessing Process by 'spawn', one by
# 'fork', and sys.executable running this file by subprocess.run. Each
# child, with WAIT "wait", first waits (WAIT_S at most) until a shim of
# its own is in it (its /proc/self/maps shows pyprof's copy,
# libpyprof.so.PID.XXXXXX, and the object allocator's malloc lies in
# it: its hooks are in), then keeps KID_N[mode] bytes objects of KID_SIZE[mode] at its marked
# line until it ends; with "nowait" it keeps them at once. The parent
# keeps PARENT_N bytes objects of PARENT_SIZE at PARENT-KEEP, prints one line
# per child: "MODE PID SAW_SHIM EXIT_STATUS", and exits with status
# STATUS (the second argument). A third, CHURN: each child first makes
# and frees CHURN small objects (more records than pyprof takes from a
# ring at once).
import ctypes
import multiprocessing
import os
import subprocess
import sys
import time

PARENT_N, PARENT_SIZE = 300, 2100
KID_N = {"spawn": 200, "fork": 250, "exec": 150}
KID_SIZE = {"spawn": 1300, "fork": 1500, "exec": 1700}
WAIT_S = 20
KEPT = []                       # what each process keeps to its end


class _Allocator(ctypes.Structure):
    """PyMemAllocatorEx (Include/cpython/pymem.h)"""
    _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p),
                ("calloc", ctypes.c_void_p), ("realloc", ctypes.c_void_p),
                ("free", ctypes.c_void_p)]


def own_shim():
    """pyprof's copy is mapped and the object allocator goes through it
    (mapped is not enough: a copy loaded by a call made from inside a
    system call installs its hooks a moment later)"""
    spans = []
    with open("/proc/self/maps") as f:
        for line in f:
            if "/libpyprof.so." in line:
                a, b = line.split()[0].split("-")
                spans.append((int(a, 16), int(b, 16)))
    if not spans:
        return False
    al = _Allocator()
    ctypes.pythonapi.PyMem_GetAllocator(2, ctypes.byref(al))  # PYMEM_DOMAIN_OBJ
    return any(a <= (al.malloc or 0) < b for a, b in spans)


def kid(mode, wait, out, churn=0):
    saw = False
    if wait:
        end = time.monotonic() + WAIT_S
        while not saw and time.monotonic() < end:
            saw = own_shim()
            time.sleep(0.005)
    n, size, pad = KID_N[mode], KID_SIZE[mode], b"k"
    for i in range(churn):
        x = pad * 100
    keep = [None] * n
    if mode == "spawn":
        for i in range(n):
            keep[i] = pad * size                   # KID-SPAWN
    elif mode == "fork":
        for i in range(n):
            keep[i] = pad * size                   # KID-FORK
    else:
        for i in range(n):
            keep[i] = pad * size                   # KID-EXEC
    KEPT.append(keep)
    if out is not None:
        out.put((os.getpid(), saw))
    else:
        print(os.getpid(), int(saw), flush=True)
    time.sleep(0.05)


def main():
    wait = sys.argv[1] == "wait"
    churn = sys.argv[3] if len(sys.argv) > 3 else "0"
    keep, pad = [None] * PARENT_N, b"p"

    for i in range(PARENT_N):
        keep[i] = pad * PARENT_SIZE                # PARENT-KEEP
    KEPT.append(keep)
    for mode in ("spawn", "fork"):
        ctx = multiprocessing.get_context(mode)
        q = ctx.SimpleQueue()
        p = ctx.Process(target=kid, args=(mode, wait, q, int(churn)))
        p.start()
        pid, saw = q.get()
        p.join()
        print(mode, pid, int(saw), p.exitcode, flush=True)
    r = subprocess.run([sys.executable, __file__, "kid", sys.argv[1], churn],
                       stdout=subprocess.PIPE, universal_newlines=True)
    pid, saw = (r.stdout.split() + ["0", "0"])[:2]
    print("exec", pid, saw, r.returncode, flush=True)
    sys.exit(int(sys.argv[2]))


if __name__ == "__main__":
    if sys.argv[1] == "kid":
        kid("exec", sys.argv[2] == "wait", None, int(sys.argv[3]))
    else:
        main()

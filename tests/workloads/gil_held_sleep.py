# A target whose main thread sleeps in C while holding the GIL (a PyDLL
# call keeps it; a CDLL call would let it go): no thread runs Python code
# for SECS seconds, so a shim sent to it cannot load (it loads between two
# bytecodes). A worker thread waits for the GIL all along. Then both run
# on: "alive N" once the main thread is back, with N steps the worker made.
import ctypes
import sys
import threading
import time

SECS = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
steps = 0


def work():
    global steps
    while True:
        steps += 1
        time.sleep(0.001)


threading.Thread(target=work, daemon=True).start()
print("ready", flush=True)
sys.stdin.readline()
t0 = time.monotonic()
ctypes.PyDLL(None).usleep(int(SECS * 1e6))
slept = time.monotonic() - t0
a = steps
time.sleep(0.2)
print("alive %d %.2f" % (steps - a, slept), flush=True)
sys.stdin.readline()

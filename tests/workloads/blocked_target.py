# A service whose main thread stays blocked in C for the whole test
# while another thread does all the work (tests/e2e/test_blocked.py).
# argv[1]: sleep (time.sleep(argv[2] seconds)) or join (it joins the
# worker). The worker answers one line per command on stdin:
#   keep N   -> N bytes(1000) kept at the marked line: "kept N BYTES"
#               (BYTES: what they take, sys.getsizeof)
#   drop     -> frees them: "dropped N"
#   main     -> "sleeping" while the main thread is still blocked, then
#               "woke S" (S: seconds time.sleep took)
#   ping     -> "pong"
#   quit     -> the process exits (os._exit: the main thread may sleep on)
import os
import sys
import threading
import time

mode = sys.argv[1]
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 0
kept = []
woke = None


def say(s):
    sys.stdout.write(s + "\n")
    sys.stdout.flush()


def serve():
    global kept
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            sys.stdout.flush()
            os._exit(0)
        if cmd[0] == "keep":
            kept = [None] * int(cmd[1])
            for i in range(len(kept)):
                kept[i] = bytes(1000)  # BLOCKED-KEEP
            say("kept %d %d" % (len(kept), sum(sys.getsizeof(b) for b in kept)))
        elif cmd[0] == "drop":
            n = len(kept)
            kept = []
            say("dropped %d" % n)
        elif cmd[0] == "ping":
            say("pong")
        elif cmd[0] == "main":
            say("sleeping" if woke is None else "woke %.3f" % woke)


worker = threading.Thread(target=serve, daemon=True)
worker.start()
say("ready")
t0 = time.monotonic()
if mode == "sleep":
    time.sleep(secs)
    woke = time.monotonic() - t0
    worker.join()
else:
    worker.join()

# A running service for tests/e2e/test_inject.py, attached to by pid
# with the shim injected. argv[1] says what its main thread does between
# steps of work: busy (pure Python, no system call), sleep (time.sleep),
# select, accept (a listening socket with a timeout), lock (acquire with
# a timeout of a held lock), threads (8 churning threads, main sleeps).
# It churns lists and dicts all the time (their freelists), and answers
# one line per command on stdin (read by a thread):
#   ping          -> "pong N T": N = work steps so far (it keeps running),
#                    T = the main thread's CPU time so far (ns)
#   leak N S      -> the main thread keeps N bytes(1000) objects, at the
#                    leaking line below, evenly over S seconds of its work,
#                    then answers "leaked N BYTES" with the bytes those
#                    objects take (sys.getsizeof)
#   drop          -> frees what leak kept: "dropped N" (N objects)
#   check         -> "ok S": S = the sum of a computation the churn made,
#                    compared with its expected value (output stays right)
#   quit          -> exits
import queue
import select
import socket
import sys
import threading
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "busy"
kept = []
steps = 0
bad = 0
requests = queue.Queue()
answers = queue.Queue()


def churn(n):
    global bad
    total = 0
    for i in range(n):
        a = [i, i + 1]
        d = {"k": i}
        total += a[1] - a[0] + d["k"] - i
    if total != n:
        bad += 1


def leak(n):
    for _ in range(n):
        kept.append(bytes(1000))        # LEAK_LINE


def pause():
    if mode == "sleep" or mode == "threads":
        time.sleep(0.02)
    elif mode == "select":
        select.select([], [], [], 0.02)
    elif mode == "accept":
        try:
            srv.accept()
        except socket.timeout:
            pass
    elif mode == "lock":
        held.acquire(timeout=0.02)


def reader():
    for line in sys.stdin:
        requests.put(line.split())
        print(answers.get(), flush=True)
    requests.put(["quit"])


if mode == "accept":
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.02)
if mode == "lock":
    held = threading.Lock()
    held.acquire()
if mode == "threads":
    for _ in range(8):
        threading.Thread(target=lambda: [churn(200) or time.sleep(0.001)
                                         for _ in iter(int, 1)],
                         daemon=True).start()
threading.Thread(target=reader, daemon=True).start()
print("ready", flush=True)
leaking = None                          # [left, total, t0, secs]
while True:
    churn(2000)
    steps += 1
    if mode != "busy" or steps % 20 == 0:
        pause()
    if leaking:
        left, total, t0, secs = leaking
        due = min(total, int(total * (time.monotonic() - t0) / secs))
        now = due - (total - left)
        if now > 0:
            leak(now)
            leaking[0] -= now
        if not leaking[0]:
            answers.put("leaked %d %d" % (total, total * sys.getsizeof(bytes(1000))))
            leaking = None
        continue
    try:
        req = requests.get_nowait()
    except queue.Empty:
        continue
    if req[0] == "ping":
        answers.put("pong %d %d" % (steps, time.thread_time_ns()))
    elif req[0] == "leak":
        leaking = [int(req[1]), int(req[1]), time.monotonic(), float(req[2])]
    elif req[0] == "drop":
        answers.put("dropped %d" % len(kept))
        del kept[:]
    elif req[0] == "check":
        answers.put("ok %d" % bad)
    elif req[0] == "quit":
        answers.put("bye")
        break

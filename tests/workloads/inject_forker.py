# A running service that forks, for tests/e2e/test_inject_fork.py
# (attached by pid with the shim loaded). One line per command on stdin
# (read by a thread; the main thread works):
#   ping             -> "pong"
#   fork MODE N      -> fork a child (MODE: os from the main thread,
#                       thread from another thread, mp a multiprocessing
#                       'fork' Process); while it runs the parent keeps
#                       bytes(DURING_SIZE) objects at PARENT-DURING, one
#                       a millisecond; once it ended, N bytes(AFTER_SIZE)
#                       at PARENT-AFTER. The child keeps bytes(CHILD_SIZE)
#                       objects at CHILD-KEEP and churns (checking its
#                       sums) until its /proc/self/maps holds no
#                       libpyprof and 0.5 s have passed (at most 8 s),
#                       then reports what it holds. Answers one JSON
#                       line: the child's report, its exit status,
#                       DURING's count and sizes, whether the parent
#                       had the shim mapped when it forked.
#   fork MODE N S    -> the same, the child working S seconds at least
#   spawn S          -> runs this file again (fork and exec) as a child
#                       that keeps bytes(KID_SIZE) objects at KID-KEEP for
#                       S seconds; answers "spawned RC"
#   quick            -> children that leave at once, each checked for
#                       its status: os.fork + os._exit(7), os.fork +
#                       os.execv(/bin/true), subprocess with a
#                       preexec_fn (fork, Python in the child, exec),
#                       subprocess without (vfork on 3.10+);
#                       answers "quick S1 S2 S3 S4"
#   race N           -> answers "started", then the main thread sleeps
#                       2.5 s (a pending call queued meanwhile waits)
#                       while another thread forks N children, one each
#                       0.1 s; each keeps bytes(CHILD_SIZE) objects (at
#                       the line marked CHILD-RACE) for 0.3 s, waits until its maps hold
#                       no libpyprof (at most 5 s) and reports what it
#                       holds
#   racewait         -> one JSON line: those reports and exit statuses
#   held             -> one JSON line: its named mappings, fd targets and
#                       tasks as it sees them (a chroot's paths are its own)
#   check            -> "ok B": B = wrong sums so far in this process
import json
import multiprocessing
import os
import queue
import subprocess
import sys
import threading
import time

DURING_SIZE, AFTER_SIZE, CHILD_SIZE, KID_SIZE = 3000, 2500, 1700, 1900

if sys.argv[1:2] == ["kid"]:
    end = time.monotonic() + float(sys.argv[2])
    kid = []
    while time.monotonic() < end:
        kid.append(bytes(KID_SIZE))                 # KID-KEEP
        time.sleep(0.002)
    sys.exit(0)

child_secs = 0.5
kept = []                       # each fork's lists, kept to the end
child_keep = [None] * 200000
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


def has_shim():
    with open("/proc/self/maps") as f:
        return "libpyprof" in f.read()


def held(skip):
    """What this process holds: named mappings, fd targets, tasks."""
    maps = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) > 5:
                maps.add(parts[5].strip())
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        if int(fd) in skip:
            continue
        try:
            fds.append(os.readlink("/proc/self/fd/" + fd))
        except OSError:
            pass
    return {"maps": sorted(maps), "fds": sorted(fds),
            "tasks": sorted(os.listdir("/proc/self/task"))}


def child_main(w, t0):
    """In the child: work until the shim is gone, report through w."""
    k = 0
    clean_after = None
    while time.monotonic() - t0 < 8 + child_secs:
        for _ in range(20):
            child_keep[k] = bytes(CHILD_SIZE)       # CHILD-KEEP
            k += 1
        churn(50)
        if clean_after is None and not has_shim():
            clean_after = time.monotonic() - t0
        if clean_after is not None and time.monotonic() - t0 > child_secs:
            break
        time.sleep(0.002)
    churn(2000)                 # and it goes on computing right
    rep = dict(held({w}), clean_after=clean_after, kept=k,
               bad=bad, pid=os.getpid())
    os.write(w, (json.dumps(rep) + "\n").encode())
    os.close(w)


def os_child(w, t0):
    pid = os.fork()
    if pid == 0:
        try:
            child_main(w, t0)
        finally:
            os._exit(0)
    return pid


def fork(mode, n):
    during, after = [None] * 100000, [None] * n
    kept.append((during, after))
    r, w = os.pipe()
    had = has_shim()            # so the child has it at the fork
    t0 = time.monotonic()
    if mode == "mp":
        p = multiprocessing.get_context("fork").Process(target=child_main, args=(w, t0))
        p.start()
        alive = p.is_alive
    else:
        if mode == "thread":
            got = []
            t = threading.Thread(target=lambda: got.append(os_child(w, t0)))
            t.start()
            t.join()
            pid = got[0]
        else:
            pid = os_child(w, t0)
        status = []

        def alive():
            if not status:
                q, st = os.waitpid(pid, os.WNOHANG)
                if q:
                    status.append(st)
            return not status
    os.close(w)
    k = 0
    while alive():
        during[k] = bytes(DURING_SIZE)              # PARENT-DURING
        k += 1
        time.sleep(0.001)
    if mode == "mp":
        rc = p.exitcode
    else:
        rc = os.waitstatus_to_exitcode(status[0]) if hasattr(os, "waitstatus_to_exitcode") \
            else status[0] >> 8
    data = b""
    while True:
        c = os.read(r, 65536)
        if not c:
            break
        data += c
    os.close(r)
    for i in range(n):
        after[i] = bytes(AFTER_SIZE)                # PARENT-AFTER
    try:
        child = json.loads(data.decode())
    except ValueError:
        child = None
    return json.dumps({"child": child, "rc": rc, "during": k, "had_shim": had,
                       "during_size": sys.getsizeof(bytes(DURING_SIZE)),
                       "after_size": sys.getsizeof(bytes(AFTER_SIZE))})


race = {}


def race_child(w):
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < 0.3:
        child_keep[k] = bytes(CHILD_SIZE)           # CHILD-RACE
        k += 1
        churn(20)
        time.sleep(0.002)
    while has_shim() and time.monotonic() - t0 < 5:
        churn(20)
        time.sleep(0.005)
    rep = dict(held({w}), bad=bad, pid=os.getpid())
    os.write(w, (json.dumps(rep) + "\n").encode())


def race_start(n):
    def forker():
        for _ in range(n):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    race_child(w)
                finally:
                    os._exit(0)
            os.close(w)
            race["kids"].append((pid, r))
            time.sleep(0.1)
    race["kids"] = []
    race["t"] = threading.Thread(target=forker)
    race["t"].start()
    answers.put("started")
    time.sleep(2.5)


def race_wait():
    race["t"].join()
    reps, statuses = [], []
    for pid, r in race["kids"]:
        statuses.append(os.waitpid(pid, 0)[1])
        data = b""
        while True:
            c = os.read(r, 65536)
            if not c:
                break
            data += c
        os.close(r)
        try:
            reps.append(json.loads(data.decode()))
        except ValueError:
            reps.append(None)
    return json.dumps({"children": reps, "statuses": statuses})


def quick():
    out = []
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    out.append(os.waitpid(pid, 0)[1] >> 8)
    pid = os.fork()
    if pid == 0:
        try:
            os.execv("/bin/true", ["true"])
        finally:
            os._exit(99)
    out.append(os.waitpid(pid, 0)[1] >> 8)
    out.append(subprocess.run(["/bin/true"], preexec_fn=lambda: None).returncode)
    out.append(subprocess.run(["/bin/sh", "-c", "exit 5"]).returncode)   # vfork, 3.10+
    return "quick %d %d %d %d" % tuple(out)


def reader():
    for line in sys.stdin:
        requests.put(line.split())
        print(answers.get(), flush=True)
    requests.put(["quit"])


# what the forks load lazily is the workload's own, before any attach:
# multiprocessing's modules (3.14: _posixshmem), glibc 2.31's libgcc_s
# (loaded for a thread's exit)
warm = multiprocessing.get_context("fork").Process(target=int)
warm.start()
warm.join()
warm = threading.Thread(target=int)
warm.start()
warm.join()
time.sleep(0.3)         # join returns before the thread's pthread_exit
threading.Thread(target=reader, daemon=True).start()
print("ready", flush=True)
while True:
    try:
        cmd = requests.get(timeout=0.01)
    except queue.Empty:
        churn(100)
        continue
    if cmd[0] == "quit":
        break
    if cmd[0] == "ping":
        answers.put("pong")
    elif cmd[0] == "fork":
        child_secs = float(cmd[3]) if len(cmd) > 3 else 0.5
        answers.put(fork(cmd[1], int(cmd[2])))
    elif cmd[0] == "spawn":
        answers.put("spawned %d" % subprocess.run(
            [sys.executable, os.path.abspath(__file__), "kid", cmd[1]]).returncode)
    elif cmd[0] == "quick":
        answers.put(quick())
    elif cmd[0] == "race":
        race_start(int(cmd[1]))
    elif cmd[0] == "racewait":
        answers.put(race_wait())
    elif cmd[0] == "held":
        answers.put(json.dumps(held(set())))
    elif cmd[0] == "check":
        answers.put("ok %d" % bad)
    else:
        answers.put("?")

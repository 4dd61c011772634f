"""Fork and subprocess behaviour.

The parent allocates at FORK-PARENT-BEFORE, forks a child that allocates
a lot at FORK-CHILD and leaves with os._exit(0) (with --child-exit=normal:
sys.exit(0), so the child finalizes and runs atexit handlers, pyprof's
too), waits for it, then
allocates at FORK-PARENT-AFTER. Last it runs a Python subprocess that
prints the LD_PRELOAD it sees; the parent relays that line as
"forker: subprocess LD_PRELOAD=<value>" (value empty when unset).
All parent blocks are kept alive until exit.
"""
import os
import subprocess
import sys

BEFORE = (5, 262144)
CHILD = (40, 1 << 20)
AFTER = (7, 131072)

KEEP = []

PROBE = "import os; print('LD_PRELOAD=' + os.environ.get('LD_PRELOAD', ''))"


def parent_before(count, size):
    for _ in range(count):
        block = b"p" * size  # FORK-PARENT-BEFORE
        KEEP.append(block)


def child_work(count, size):
    held = []
    for _ in range(count):
        block = b"k" * size  # FORK-CHILD
        held.append(block)
    return held


def parent_after(count, size):
    for _ in range(count):
        block = b"q" * size  # FORK-PARENT-AFTER
        KEEP.append(block)


def main():
    normal_exit = "--child-exit=normal" in sys.argv[1:]
    parent_before(*BEFORE)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        held = child_work(*CHILD)
        os.write(1, b"forker: child allocated %d blocks\n" % len(held))
        if normal_exit:
            sys.exit(0)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    parent_after(*AFTER)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], stdout=subprocess.PIPE, check=True
    )
    line = probe.stdout.decode().strip()
    print("forker: child status %d" % status)
    print("forker: subprocess " + line)
    print("forker: parent holds %d blocks" % len(KEEP))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

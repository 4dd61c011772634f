"""Exactly 23 allocations of 1 MiB at one marked line, alive until exit.

b"\\0" * N is a single PyObject_Malloc of N + 33 bytes (the bytes header);
bytearray(N) would be two blocks (the object and its buffer), and appending
on the same line would add the list's own resizes to the count. The list
is a module global, so the blocks are live when the interpreter starts to
finalize.

With --fork, a child (which records nothing) then frees the blocks and
grows one by realloc; "exact: child ok" says it exited 0. It leaves by
os._exit: Debian 11's 3.9 under PYTHONMALLOC=debug fails to finalize a
forked child on its own, profiled or not.
"""
import os
import sys

COUNT = 23
SIZE = 1 << 20

BLOCKS = []


def allocate(count):
    for _ in range(count):
        block = b"\0" * SIZE  # EXACT-1MIB
        BLOCKS.append(block)


def main():
    allocate(COUNT)
    print("exact: %d blocks of %d bytes" % (len(BLOCKS), SIZE))
    sys.stdout.flush()
    if "--fork" in sys.argv:
        forked()


def forked():
    pid = os.fork()
    if pid == 0:
        grown = bytearray(BLOCKS.pop())
        for _ in range(64):
            grown += b"x" * 4096
        del BLOCKS[:]
        del grown
        sys.stdout.flush()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        print("exact: child ok")


if __name__ == "__main__":
    main()

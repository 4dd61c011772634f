"""Exactly 23 allocations of 1 MiB at one marked line, alive until exit.

b"\\0" * N is a single PyObject_Malloc of N + 33 bytes (the bytes header);
bytearray(N) would be two blocks (the object and its buffer), and appending
on the same line would add the list's own resizes to the count. The list
is a module global, so the blocks are live when the interpreter starts to
finalize.
"""
import sys
import time

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
    if "--hold" in sys.argv:
        # test_kernel: a timeline tick (every 100 ms) while they are live
        time.sleep(0.3)


if __name__ == "__main__":
    main()

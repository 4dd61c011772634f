"""Phases with known growth, for time windows, diffs and pprof.

  t = 0      BASELINE  --base blocks of 64 KiB, kept to the end, except
                       the first quarter, freed in phase 2
  t = GAP    phase 2:  GROWTH    --leak blocks of 40 KiB, kept
                       TEMP      --temp blocks of 256 KiB, each freed at once
                       the first quarter of BASELINE freed (the heap
                       grows by about 2 MiB in phase 2 with the defaults)
  t = 2 GAP  phase 3:  AFTER     --after blocks of 48 KiB, kept
  t = 2.5 GAP          exit

Times are from the program's start; the phases are a few milliseconds
each, so a window from GAP/2 to 1.5 GAP holds phase 2 alone. Each block
is a bytearray (its buffer and its object allocated on the marked line).
The end-to-end tests find the lines by their marker comments.
Usage: growth.py [--gap S] [--base N] [--leak N] [--temp N] [--after N]
"""
import argparse
import time

p = argparse.ArgumentParser()
p.add_argument("--gap", type=float, default=1.5)
p.add_argument("--base", type=int, default=128)
p.add_argument("--leak", type=int, default=97)
p.add_argument("--temp", type=int, default=53)
p.add_argument("--after", type=int, default=41)
a = p.parse_args()

KEEP = []


def baseline(n):
    return [bytearray(64 * 1024) for _ in range(n)]  # BASELINE


def grow(n):
    for _ in range(n):
        KEEP.append(bytearray(40 * 1024))  # GROWTH


def churn(n):
    for _ in range(n):
        t = bytearray(256 * 1024)  # TEMP
        del t


def after(n):
    for _ in range(n):
        KEEP.append(bytearray(48 * 1024))  # AFTER


start = time.monotonic()
base = baseline(a.base)
time.sleep(max(0.0, start + a.gap - time.monotonic()))
grow(a.leak)
churn(a.temp)
del base[: a.base // 4]
time.sleep(max(0.0, start + 2 * a.gap - time.monotonic()))
after(a.after)
time.sleep(max(0.0, start + 2.5 * a.gap - time.monotonic()))
print("growth: leak %d, temp %d, after %d, base %d" % (a.leak, a.temp, a.after, a.base))

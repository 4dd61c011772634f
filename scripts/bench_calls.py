"""Call-heavy pure-Python loop (three Python calls per iteration, little
else) for scripts/bench_hooks.sh (W=scripts/bench_calls.py): what 3.9/3.10
pay for each call's frame going through the hooks (README, "Objects from
CPython's freelists")."""
import sys


def leaf(a, b):
    return a + b


def mid(i):
    return leaf(i, 1) - leaf(i, 2)


def work(n):
    total = 0
    for i in range(n):
        total += mid(i)
    return total


if __name__ == "__main__":
    print(work(int(sys.argv[1]) if len(sys.argv) > 1 else 1000000))

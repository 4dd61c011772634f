"""Echo stdin to stdout byte for byte, write a line to stderr, exit 7.

Usage: exitcode.py [CODE]   (default 7)
"""
import sys

STDERR_TEXT = "exitcode: this line goes to stderr\n"


def main():
    code = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    data = sys.stdin.buffer.read()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    sys.stderr.write(STDERR_TEXT)
    sys.stderr.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()

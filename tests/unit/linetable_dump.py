"""Dump line tables and the interpreter's own answers, for test_linetable.

Runs under any Python 3.9+. Output, one record per line:
  V <major> <minor>
  C <name> <firstlineno> <hex table> <ncodeunits>
  A <line per code unit, from PyCode_Addr2Line>
  B <line per code unit, from co_lines() / dis.findlinestarts()>
Lines are -1 where the interpreter has none; B is '-' when the second
oracle does not apply (fuzzed tables).
"""
import ctypes
import dis
import random
import sys
import types

V = sys.version_info[:2]
TABLE = "co_lnotab" if V < (3, 10) else "co_linetable"

addr2line = ctypes.pythonapi.PyCode_Addr2Line
addr2line.restype = ctypes.c_int
addr2line.argtypes = [ctypes.py_object, ctypes.c_int]


def units(co):
    return len(co.co_code) // 2


def by_colines(co):
    out = [-1] * units(co)
    if V < (3, 10):
        # 3.9: a line start holds until the next one
        starts = dict(dis.findlinestarts(co))
        line = co.co_firstlineno
        for i in range(len(out)):
            line = starts.get(2 * i, line)
            out[i] = line
        return out
    for start, end, line in co.co_lines():
        for off in range(start, end, 2):
            if off // 2 < len(out):
                out[off // 2] = -1 if line is None else line
    return out


def emit(name, co, second=True):
    tab = getattr(co, TABLE)
    print("C %s %d %s %d" % (name, co.co_firstlineno, tab.hex() or "-",
                             units(co)))
    print("A " + " ".join(str(addr2line(co, 2 * i))
                          for i in range(units(co))))
    if second:
        print("B " + " ".join(map(str, by_colines(co))))
    else:
        print("B -")


def walk(co, prefix):
    yield prefix + co.co_name, co
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            yield from walk(c, prefix + co.co_name + ".")


SYNTH = """
def jumps():
    a = 1
%s    b = 2
%s    c = 3
%s    d = 4
    return a + b + c + d

def backwards(x):
    return max(
        x,
        x + 1,
        x + 2,
    ) + min(
        x,
    )

def loops(n):
    t = 0
    for i in range(n):
        while t < i:
            t += 1
        else:
            t -= 1
    try:
        t += 1
    finally:
        t -= 1
    with open("/dev/null") as f:
        t += len(f.name)
    return [y for y in range(t) if y] or t

def longline():
    return [%s]

async def agen():
    async for x in agen():
        yield x

class K:
    @staticmethod
    def m(
        a,
        b=lambda: 1,
    ):
        return a
""" % ("\n" * 130, "\n" * 300, "\n" * 70000,
       ", ".join("v%d + %d" % (i, i) for i in range(1500)))


def code_objects():
    import argparse
    import inspect
    import typing
    for mod in (inspect, argparse, typing):
        with open(mod.__file__) as f:
            src = f.read()
        yield from walk(compile(src, mod.__file__, "exec"), mod.__name__ + ":")
    yield from walk(compile(SYNTH, "synth.py", "exec"), "synth:")
    # firstlineno far away, and a module that is all blank
    yield from walk(compile("\n" * 5000 + "def far():\n  return 1\n",
                            "far.py", "exec"), "far:")


def fuzz_table(rng, nunits):
    """A random but well-formed table covering about nunits code units."""
    out = bytearray()
    if V < (3, 10):
        while len(out) < 2 * nunits:
            out += bytes([rng.choice([0, 1, 2, 6, 200, 255]),
                          rng.randrange(256)])
        return bytes(out)
    if V < (3, 11):
        while len(out) < 2 * nunits:
            out += bytes([rng.choice([0, 2, 4, 6, 254]),
                          rng.choice([0, 1, 5, 127, 128, 129, 255, 200])])
        return bytes(out)
    left = nunits
    while left > 0:
        n = rng.randrange(1, 9)
        left -= n
        code = rng.randrange(16)
        out.append(0x80 | code << 3 | (n - 1))
        if code < 10:
            out.append(rng.randrange(128))
        elif code < 13:
            out += bytes([rng.randrange(128), rng.randrange(128)])
        elif code < 15:
            nv = 1 if code == 13 else 4
            for _ in range(nv):
                val = rng.choice([0, 1, 63, 64, 4095, 4096, 1 << 20,
                                  rng.randrange(1 << 18)])
                while True:
                    b = val & 63
                    val >>= 6
                    out.append(b | (64 if val else 0))
                    if not val:
                        break
    return bytes(out)


def main():
    print("V %d %d" % V)
    big = None
    for name, co in code_objects():
        emit(name, co)
        if units(co) <= 1500 and (big is None or units(co) > units(big)):
            big = co
    rng = random.Random(23)
    for i in range(200):
        tab = fuzz_table(rng, units(big))
        co = big.replace(**{TABLE: tab})
        emit("fuzz%d" % i, co, second=False)


if __name__ == "__main__":
    main()

"""Cycle-GC pauses from the in-process fallback (`pyprof record --no-bpf`).

Per interpreter, on tests/workloads/fallback_gc.py, which times every
collection inside a window with its own gc.callbacks entry:
- the report says the GC figures come from the shim (gc.source "shim");
- the trace's GC records inside the window are exactly the workload's
  collections, in order: same generations, same counts per generation,
  same collected/uncollectable;
- each pause is within 10% (or 0.2 ms) of the workload's own timing:
  the workload times each collection from two callbacks, one before
  ours and one after (fallback_gc.py), which bound what ours can see;
  the error is how far ours falls outside those bounds, the 10% are of
  the pause its last callback measured;
- the report's per-generation collections and maximum pause agree with
  the trace's GC records (the report sums what the shim sent).
The window needs per-record timestamps, which the JSON report does not
carry, so the trace is read directly (docs/trace-format.md).
"""
import ctypes
import struct
import sys

import harness as h

W = "fallback_gc.py"
REC_GC = 12
SRC_SHIM = 0x80


def lz4_lib():
    try:
        lib = ctypes.CDLL("liblz4.so.1")
    except OSError:
        return None
    lib.LZ4_decompress_safe.restype = ctypes.c_int
    lib.LZ4_decompress_safe.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                        ctypes.c_int, ctypes.c_int]
    return lib


def records(path):
    """(type, flags, aux, body) of every record in a trace file."""
    lib = lz4_lib()
    if lib is None:
        raise AssertionError("liblz4.so.1 not found")
    data = open(path, "rb").read()
    if data[:8] != b"PYPROFTR":
        raise AssertionError("not a pyprof trace")
    off = struct.unpack_from("<I", data, 12)[0]
    while off + 40 <= len(data):
        magic, comp, raw, _ = struct.unpack_from("<4sIII", data, off)
        if magic != b"PPCK" or off + 40 + comp > len(data):
            break
        out = ctypes.create_string_buffer(raw)
        src = data[off + 40:off + 40 + comp]
        n = lib.LZ4_decompress_safe(src, out, comp, raw)
        if n != raw:
            raise AssertionError("bad chunk at %d" % off)
        buf = out.raw
        p = 0
        while p + 8 <= raw:
            ln, typ, flags, aux = struct.unpack_from("<HBBI", buf, p)
            if ln < 8:
                break
            yield typ, flags, aux, buf[p + 8:p + ln]
            p += ln
        off += 40 + comp


def shim_gcs(trace):
    """[(gen, start, end, collected, uncollectable)] from the shim."""
    out = []
    for typ, flags, aux, body in records(trace):
        if typ == REC_GC and flags & SRC_SHIM:
            s, e, c, u = struct.unpack_from("<QQQQ", body)
            out.append((flags & 0x7F, s, e, c, u))
    return sorted(out, key=lambda g: g[1])


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def one(label, py):
    t = "%s fallback gc" % label
    r = h.record(py, W, extra_pyprof_args=("--no-bpf",))
    ok = h.check(r.rc == 0 and r.report is not None, t + ": recorded and reported",
                 "rc %s; %s; stderr %s" % (r.rc, r.why, h.tail(r.err)))
    if not ok:
        return
    gc = r.report.get("gc") or {}
    h.check(gc.get("source") == "shim", t + ": report says source shim",
            "gc.source = %r" % gc.get("source"))

    truth, window = [], None
    for line in r.out.splitlines():
        f = line.split()
        if f[:1] == ["window"]:
            window = int(f[1]), int(f[2])
        elif f[:1] == ["gc"]:
            truth.append(tuple(int(x) for x in f[1:8]))
    if not h.check(window and truth, t + ": workload measured itself",
                   "stdout %s" % h.tail(r.out)):
        return
    try:
        ours_all = shim_gcs(r.trace)
    except AssertionError as e:
        h.check(False, t + ": trace readable", str(e))
        return
    ours = [g for g in ours_all if window[0] <= g[1] <= window[1]]

    for gen in range(3):
        want = sum(1 for g in truth if g[0] == gen)
        got = sum(1 for g in ours if g[0] == gen)
        h.check(got == want, "%s: gen%d collections in window %d == gc.callbacks %d"
                % (t, gen, got, want), "shim %d, workload %d" % (got, want))
    same = len(ours) == len(truth) and all(
        a[0] == b[0] and a[3:5] == b[3:5] for a, b in zip(ours, truth))
    h.check(same, t + ": same collections in order (generation, collected, uncollectable)",
            "first mismatch (shim, workload): %r" % (next(
                ((a, b[:5]) for a, b in zip(ours, truth) if a[0] != b[0] or a[3:5] != b[3:5]),
                (len(ours), len(truth))),))
    bad, worst = [], 0.0
    for a, b in zip(ours, truth):
        mine, real = (a[2] - a[1]) / 1e6, (b[2] - b[1]) / 1e6
        lo, hi = (b[6] - b[1]) / 1e6, (b[2] - b[5]) / 1e6
        err = lo - mine if mine < lo else mine - hi if mine > hi else 0.0
        if err > max(0.10 * real, 0.2):
            bad.append("gen%d %.3f ms vs %.3f ms" % (a[0], mine, real))
        if real > 1.0:
            worst = max(worst, abs(mine - real) / real)
    h.check(not bad, t + ": every pause within 10%% or 0.2 ms (%d collections; "
            "pauses over 1 ms differ from the workload's by at most %.1f%%)"
            % (len(truth), 100 * worst),
            "%d off: %s" % (len(bad), "; ".join(bad[:5])))

    gens = {g.get("generation"): g for g in gc.get("generations") or []}
    for gen in range(3):
        mine = [g for g in ours_all if g[0] == gen]
        rep = gens.get(gen) or {}
        mx = max(((g[2] - g[1]) / 1e6 for g in mine), default=0.0)
        h.check(rep.get("collections") == len(mine) and
                abs((rep.get("pause_max_ms") or 0) - mx) <= 0.002,
                "%s: report gen%d agrees with the shim's records" % (t, gen),
                "report %s collections, max %s ms; records %d, max %.3f ms" % (
                    rep.get("collections"), rep.get("pause_max_ms"), len(mine), mx))


if __name__ == "__main__":
    sys.exit(main())

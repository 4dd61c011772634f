# GIL ground truth of one thread over the life pyprof gives it: from its
# creation (the kernel's sched_process_fork) to the end of its work. The
# scheduler's accounting, cumulative since creation
# (/proc/thread-self/schedstat: time on CPU, time runnable but not
# running), bounds the time it was blocked: a thread that only runs
# Python, sleeps for known times and waits for the GIL waited
#   life - on-CPU - asleep - (0 .. run delay + the VM's steal time)
# (a preempted holder is runnable too; a vCPU the hypervisor did not run
# counts as neither CPU time nor run delay). The creation time is the
# thread's start time in /proc/thread-self/stat (clock ticks since boot,
# the lower bound takes a tick off for it); the end is read by PyDLL
# calls on files opened before, which keep the GIL, so no GIL wait falls
# after it. Used by stalls_gil.py and fallback_gil.py.
import ctypes
import os
import time

libc = ctypes.PyDLL(None)      # PyDLL: the calls keep the GIL
libc.pread.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                        ctypes.c_long]
libc.pread.restype = ctypes.c_ssize_t
_TICK = 1.0 / os.sysconf("SC_CLK_TCK")


def _steal(text):
    return int(text.split(b"\n", 1)[0].split()[8]) * _TICK


class Life:
    """Make first thing in the thread; end() when its work is done."""

    def __init__(self):
        with open("/proc/thread-self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        self.created = int(fields[19]) * _TICK      # field 22: starttime
        self.fd_sched = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        self.fd_stat = os.open("/proc/stat", os.O_RDONLY)
        self.buf = ctypes.create_string_buffer(8192)
        self.steal0 = _steal(self._read(self.fd_stat))

    def _read(self, fd):
        n = libc.pread(fd, self.buf, len(self.buf), 0)
        return self.buf.raw[:max(n, 0)]

    def end(self, asleep=0.0):
        """(life, wait_min, wait_max) in seconds, asleep: time asked to
        sleep (a sleep returns no earlier)."""
        oncpu, delay = self._read(self.fd_sched).split()[:2]
        steal = _steal(self._read(self.fd_stat)) - self.steal0
        life = time.clock_gettime(time.CLOCK_BOOTTIME) - self.created
        libc.close(self.fd_sched)
        libc.close(self.fd_stat)
        hi = life - int(oncpu) / 1e9 - asleep
        lo = hi - int(delay) / 1e9 - steal - _TICK
        return life, max(lo, 0.0), max(hi, 0.0)

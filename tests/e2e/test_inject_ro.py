"""pyprof --pid with the shim loaded into a target that cannot be written
to, as in a container with a read-only root (docker run --read-only,
Kubernetes readOnlyRootFilesystem): collector/inject.c loads the shim
from a memfd instead of a copy in the target's /tmp.

- Debian's python3.11 with /tmp a read-only tmpfs in a private mount
  namespace (ptrace and a pending call); trixie's 3.13 (ptrace, a
  pending call) and sid's 3.14 (PEP 768: its script in a memfd too)
  chrooted into their root bind-mounted read-only: the target cannot
  create a file in its /tmp (EROFS, so nothing of pyprof's is written in
  its filesystem); the leak is the top leak at its line with its live
  bytes within 25% of what the target kept (test_inject.leak_case);
  while attached the shim is mapped from /memfd:libpyprof.so.*, and once
  the main thread ran again the target holds no descriptor of it; after the detach its maps, fds and
  tasks are as they were, and it runs on.
- Once (3.11, main thread blocked in time.sleep: the direct call), the
  same; once (3.11) with /tmp writable but mounted noexec: the same, and
  its /tmp holds what it held before.
- vm.memfd_noexec=2 in the target's PID namespace (it refuses executable
  memfds; scoped to that namespace): one line naming it, eBPF only, the
  target holds nothing of pyprof's and serves.
"""
import atexit
import errno
import os
import re
import shutil
import subprocess
import sys
import tempfile

import harness as h
from test_attach import Target, finish, same_state, state
from test_inject import W, MARK, leak_case, memfd_fds

RO_TMP = 'mount -t tmpfs -o ro,size=64k tmpfs /tmp && exec "$@"'
NOEXEC_TMP = 'mount -t tmpfs -o noexec,size=4m tmpfs /tmp && exec "$@"'
RO_ROOT = ('mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && '
           'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"')


_outside = []


def outside_tmp():
    """The workload copied out of /tmp's way: the mount over /tmp would
    hide a checkout that lives under it (a clone in /tmp)."""
    if not _outside:
        d = tempfile.mkdtemp(prefix="pp-inject-ro-", dir="/var/tmp")
        atexit.register(shutil.rmtree, d, True)
        shutil.copy(h.workload_path(W), d)
        _outside.append(os.path.join(d, W))
    return _outside[0]


def argv(label, py, mode, tmp=RO_TMP):
    """The target in a private mount namespace, its /tmp read-only (or
    as tmp mounts it)."""
    root = h.chroot_of(label)
    un = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
    if root is None:
        return un + [tmp, "sh", py, outside_tmp(), mode]
    inner = "/usr/bin/" + re.sub(r"-\w+$", "", os.path.basename(py))
    return un + [RO_ROOT, os.path.realpath(str(root)), inner, h.workload_path(W), mode]


def read_only(pid):
    """Creating a file in the target's /tmp fails with EROFS."""
    fn = "/proc/%d/root/tmp/pyprof-ro-probe" % pid
    try:
        os.close(os.open(fn, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as e:
        return e.errno == errno.EROFS
    os.unlink(fn)
    return False


def ro_case(label, py, mode="busy"):
    t = "%s inject, read-only root%s" % (label, "" if mode == "busy" else ", main in " + mode)
    tg = Target(argv(label, py, mode))
    try:
        if not h.check(tg.ready, t + ": target started", ""):
            return
        if not h.check(read_only(tg.pid), t + ": its /tmp is read-only", ""):
            return
        leak_case(t, tg, h.line_of(W, MARK), 80000, 5, memfd=True)
    finally:
        tg.close()


def noexec_case(label, py):
    """A /tmp mounted noexec (a copy there could be written, not mapped
    executable): the memfd, and nothing written in /tmp."""
    t = "%s inject, noexec /tmp" % label
    tg = Target(argv(label, py, "busy", NOEXEC_TMP))
    try:
        if not h.check(tg.ready, t + ": target started", ""):
            return
        tmp = "/proc/%d/root/tmp" % tg.pid
        before = sorted(os.listdir(tmp))
        leak_case(t, tg, h.line_of(W, MARK), 80000, 5, memfd=True)
        h.check(sorted(os.listdir(tmp)) == before, t + ": nothing written in its /tmp",
                "%s -> %s" % (before, sorted(os.listdir(tmp))))
    finally:
        tg.close()


def noexec_sysctl(label, py):
    t = "%s inject, vm.memfd_noexec=2" % label
    if not os.path.exists("/proc/sys/vm/memfd_noexec"):
        print("SKIP %s: this kernel has no vm.memfd_noexec (6.3+)" % t)
        return
    tg = Target(["unshare", "--pid", "--fork", "--mount-proc", "--mount", "--propagation",
                 "private", "sh", "-c", "echo 2 > /proc/sys/vm/memfd_noexec && " + RO_TMP,
                 "sh", py, outside_tmp(), "busy"])
    try:
        if not h.check(tg.ready, t + ": target started", ""):
            return
        kids = open("/proc/%d/task/%d/children" % (tg.pid, tg.pid)).read().split()
        if not h.check(len(kids) == 1, t + ": python found", "children %r" % kids):
            return
        pid = int(kids[0])
        base = state(pid)
        p = subprocess.Popen([str(h.PYPROF), "record", "-o", h.tmpfile("nx.pp"), "--pid",
                              str(pid), "--duration", "1"], stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL)
        rc, err = finish(p, None)
        lines = [l for l in err.splitlines() if "shim" in l]
        h.check(rc == 0 and len(lines) == 1 and "memfd_noexec=2" in lines[0] and
                "eBPF only" in lines[0], t + ": one line, then eBPF only",
                "rc %s %s" % (rc, h.tail(err)))
        ok, why = same_state(base, state(pid))
        h.check(ok and not memfd_fds(pid) and (tg.ask("ping") or "").startswith("pong"),
                t + ": nothing left, the target serves", why)
    finally:
        tg.close()


def main():
    h.require_pyprof()
    found = dict(h.interpreters(required_only=True))
    for label in ("py3.11-debian", "py3.13-trixie", "py3.14-sid"):
        if label in found:
            ro_case(label, found[label])
    if "py3.11-debian" in found:
        ro_case("py3.11-debian", found["py3.11-debian"], "sleep")
        noexec_case("py3.11-debian", found["py3.11-debian"])
        noexec_sysctl("py3.11-debian", found["py3.11-debian"])
    h.done()


if __name__ == "__main__":
    sys.exit(main())

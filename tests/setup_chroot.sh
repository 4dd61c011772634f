#!/bin/sh
# Debian's own CPython 3.13 (stripped, LTO, USDT) in a debootstrap root,
# as a process in another root directory, the way a container runs it.
# The root is cached in tests/cache/trixie; the shim and the workloads
# are copied in at their own absolute paths, so the same paths work
# inside and outside, and tests/cache/python3.13-trixie runs that Python
# in the root like any other interpreter (exec all the way: the pid
# stays the same).
# Usage: tests/setup_chroot.sh   (prints the interpreter's path)
set -e
cd "$(dirname "$0")/.."
top=$(pwd)
root=$top/tests/cache/trixie
py=$top/tests/cache/python3.13-trixie
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ ! -x "$root/usr/bin/python3.13" ]; then
	rm -rf "$root"
	mkdir -p "$root"
	echo "setup_chroot: debootstrap trixie with python3.13 into $root" >&2
	debootstrap --variant=minbase --include=python3.13,libunwind8 \
		trixie "$root" "$mirror" >"$top/tests/cache/debootstrap.log" 2>&1 || {
		echo "setup_chroot: debootstrap failed, see tests/cache/debootstrap.log" >&2
		exit 1
	}
fi
mkdir -p "$root$top/build" "$root$top/tests"
cp build/libpyprof.so "$root$top/build/libpyprof.so"
rm -rf "$root$top/tests/workloads"
cp -r tests/workloads "$root$top/tests/workloads"
# Its own mount namespace with /proc, as a container has: the mount
# goes away with the process, nothing is left mounted on the host.
cat >"$py" <<SH
#!/bin/sh
exec unshare --mount --propagation private sh -c \\
	'mount -t proc proc $root/proc && exec chroot $root /usr/bin/python3.13 "\$@"' \\
	sh "\$@"
SH
chmod +x "$py"
echo "$py"

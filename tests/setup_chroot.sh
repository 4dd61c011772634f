#!/bin/sh
# Debian's own CPython builds (stripped, LTO, USDT) in debootstrap roots,
# each run as a process in another root directory, the way a container
# runs it: bullseye's 3.9, trixie's 3.13, sid's 3.14 and 3.15 (one root
# each, one debootstrap per suite). The roots are cached in
# tests/cache/SUITE; the shim and the workloads are copied in at their
# own absolute paths, so the same paths work inside and outside, and
# tests/cache/python3.X-SUITE runs that Python in its root like any
# other interpreter (exec all the way: the pid stays the same).
# tests/interpreters lists them with the rest of the suite's interpreters.
# Usage: tests/setup_chroot.sh [SUITE...]   (prints the wrappers' paths)
set -e
cd "$(dirname "$0")/.."
top=$(pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# suite and the interpreters it gives
pythons() {
	case $1 in
	bullseye) echo python3.9 ;;
	trixie) echo python3.13 ;;
	sid) echo python3.14 python3.15 ;;
	*) return 1 ;;
	esac
}

one_root() {
	suite=$1
	root=$top/tests/cache/$suite
	pys=$(pythons "$suite") || {
		echo "setup_chroot: unknown suite $suite" >&2
		return 1
	}
	missing=""
	for p in $pys; do
		[ -x "$root/usr/bin/$p" ] || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		rm -rf "$root"
		mkdir -p "$root"
		log=$top/tests/cache/debootstrap-$suite.log
		echo "setup_chroot: debootstrap $suite with$missing into $root" >&2
		debootstrap --variant=minbase \
			--include="$(echo $pys | tr ' ' ,),libunwind8" \
			"$suite" "$root" "$mirror" >"$log" 2>&1 || {
			echo "setup_chroot: debootstrap failed, see $log" >&2
			return 1
		}
	fi
	mkdir -p "$root$top/build" "$root$top/tests"
	cp build/libpyprof.so "$root$top/build/libpyprof.so"
	rm -rf "$root$top/tests/workloads" "$root$top/tests/unit"
	cp -r tests/workloads "$root$top/tests/workloads"
	mkdir -p "$root$top/tests/unit"
	cp tests/unit/*.py "$root$top/tests/unit/"
	for p in $pys; do
		py=$top/tests/cache/$p-$suite
		# Its own mount namespace with /proc, as a container has: the
		# mount goes away with the process, nothing is left mounted
		# on the host.
		cat >"$py" <<SH
#!/bin/sh
exec unshare --mount --propagation private sh -c \\
	'mount -t proc proc $root/proc && exec chroot $root /usr/bin/$p "\$@"' \\
	sh "\$@"
SH
		chmod +x "$py"
		echo "$py"
	done
}

mkdir -p tests/cache
rc=0
for suite in ${*:-bullseye trixie sid}; do
	one_root "$suite" || rc=1
done
exit $rc

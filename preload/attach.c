// SPDX-License-Identifier: MIT
/*
 * Attach mode, the shim's side: loaded into a running process by
 * pyprof (collector/inject.c), its entry runs from a pending call on
 * the main thread, GIL held. It connects back to pyprof, receives the
 * ring, and hooks: the MEM and OBJ PyMem domains, the freelists
 * (freelist.c), the libc family by GOT (got.c). Nothing of the program
 * is changed that the detach cannot put back.
 *
 * The entry runs on the main thread with the GIL held: from a pending
 * call between two bytecodes, or (a main thread blocked in a system
 * call with the GIL released, which may never run a pending call) from
 * pyprof's direct call, made by the main thread itself inside that
 * system call, which takes the GIL with PyGILState_Ensure; then a
 * failed entry returns 1 and the direct call dlcloses us. 3.14+: from
 * PEP 768's script, run by the main thread between two bytecodes, or
 * from the direct call.
 *
 * The detach: when recording stops (pyprof closes the connection, or
 * is gone), our watcher thread takes the GIL as any C thread does
 * (PyGILState_Ensure: a thread state of its own, deleted again by
 * PyGILState_Release), puts everything back, unmaps the ring, lets the
 * GIL go, and ends in dlclose of the shim (pp_watch_start: dlclose
 * returns into glibc's start_thread, no code of ours on the stack). No
 * pending call: a main thread blocked for hours does not keep us hooked.
 * Code of ours still in use then (a dlopen in progress through got.c's
 * wrapper; a dealloc of freelist.c's that let the GIL go, an object
 * still pointing at a private type copy) holds the dlclose back until
 * the last such use ends (past 2 s, the watcher ends and the last use
 * queues the dlclose as a pending call: pp_attach_idle). If something was chained in front of our
 * PyMem hooks since, they stay pass-throughs and the shim stays loaded,
 * costing a branch.
 *
 * A process forked from ours (os.fork, multiprocessing's "fork") starts
 * with all of this copied: hooks, GOT slots, the ring (a MAP_SHARED
 * mapping: the parent's) and the connection (one socket, the parent's
 * too). It records nothing from the fork on (atfork_child), and does
 * the same detach but for the parent's two: no record in the ring, no
 * shutdown of the socket (its own descriptor is closed, nothing more).
 * It is queued by the child's first MEM or OBJ hook (GIL held), not
 * from inside fork(): there the pending calls' lock may be held by a
 * thread the child does not have, until PyOS_AfterFork_Child re-creates
 * it (Python/ceval_gil.c _PyEval_ReInitThreads), and no MEM or OBJ
 * allocation comes before that (Modules/posixmodule.c).
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pp_inject.h"
#include "shim.h"

#define EXPORT __attribute__((visibility("default")))


static void *self;
static int pyhooked;		/* our PyMem hooks were installed */
static int extra_refs;		/* dlopens of ours by the import system */
static int detach_queued;
static int detached;		/* detach() ran (in this process, or before the fork) */
static int forked;		/* a process forked from the one we were loaded into */
static int child_queued;	/* its detach is queued */
static int conn = -1;		/* pyprof's end closes: recording is over */
static pthread_t watcher;
static int have_watcher;
static int (*dlclose_fn)(void *);
static int (*gil_ensure)(void);		/* PyGILState_Ensure */
static void (*gil_release)(int);	/* PyGILState_Release */
static int watch_abort;		/* the entry failed: the watcher just ends */
/* 3.9-3.12: Py_AddPendingCall from another thread than the main one
 * leaves the main thread's eval_breaker as it was (Python/ceval.c
 * COMPUTE_EVAL_BREAKER tests _Py_ThreadCanHandlePendingCalls() of the
 * caller): a main thread that never waits for the GIL would not see the
 * call. Setting it makes the main thread look at its pending calls. */
static int *breaker;

/* the ring's fd from pyprof, or -1; *other: pyprof closed the
 * connection without a word (it waits for another process: we are a
 * child forked before our pending call ran, see collector/inject.c) */
static int receive_ring(const char *name, int *other)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { 2, 0 };
	struct pp_inject_hello hello;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &hello, sizeof(hello) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	size_t n = strnlen(name, sizeof(((struct pp_inject_data *)0)->sock) - 1);
	int fd, ring = -1;
	ssize_t got;

	*other = 0;
	memcpy(sa.sun_path + 1, name, n);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa,
		    offsetof(struct sockaddr_un, sun_path) + 1 + n) < 0) {
		close(fd);
		return -1;
	}
	got = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	*other = got == 0;
	if (got != sizeof(hello) ||
	    hello.magic != PP_INJ_MAGIC || hello.abi != PP_ABI_VERSION) {
		c = CMSG_FIRSTHDR(&mh);
		if (c && c->cmsg_type == SCM_RIGHTS) {
			memcpy(&ring, CMSG_DATA(c), sizeof(int));
			close(ring);
		}
		close(fd);
		return -1;
	}
	c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(&ring, CMSG_DATA(c), sizeof(int));
	breaker = (int *)(uintptr_t)hello.breaker;
	if (ring < 0)
		close(fd);
	else
		conn = fd;
	return ring;
}

/* a pending call: dlclose(self) once the current call has returned */
static void unload(void)
{
	if (!dlclose_fn)
		dlclose_fn = dlsym(RTLD_DEFAULT, "dlclose");
	if (dlclose_fn && pp_shim.py.add_pending_call) {
		int i;

		for (i = 0; i <= extra_refs; i++)
			pp_shim.py.add_pending_call(dlclose_fn, self);
	}
}

static int unload_pending;	/* detached: unload once nothing is in use */
static int retry_queued;

static int in_use(void)
{
	return pp_got_busy() || pp_freelist_busy();
}

/* Main thread, GIL held: unload, once */
static void unload_if_idle(void)
{
	if (!in_use() && __atomic_exchange_n(&unload_pending, 0, __ATOMIC_ACQ_REL))
		unload();
}

/* a pending call queued by pp_attach_idle */
static int retry_unload(void *arg)
{
	struct timespec nap = { 0, 1000000 };

	(void)arg;
	__atomic_store_n(&retry_queued, 0, __ATOMIC_RELEASE);
	if (in_use())
		return 0;	/* its last user queues us again */
	/* the thread that queued us may still be on its way out of our
	 * code (as pp_got_unhook's grace period) */
	nanosleep(&nap, NULL);
	unload_if_idle();
	return 0;
}

void pp_attach_idle(void)
{
	if (!__atomic_load_n(&unload_pending, __ATOMIC_ACQUIRE) ||
	    __atomic_exchange_n(&retry_queued, 1, __ATOMIC_ACQ_REL))
		return;
	if (pp_shim.py.add_pending_call(retry_unload, NULL) < 0)
		__atomic_store_n(&retry_queued, 0, __ATOMIC_RELEASE);
	else if (breaker)
		__atomic_store_n(breaker, 1, __ATOMIC_RELAXED);
}

/*
 * GIL held: everything back. On the watcher (the parent), or from a
 * pending call in a forked child, where the ring and the socket are the
 * parent's: neither is written nor shut down, only unmapped and closed.
 * 1 if the shim may be unloaded.
 */
static int put_back(void)
{
	int clean, child = forked || getpid() != pp_shim.pid;

	if (detached)
		return 0;	/* a child: the parent's queued call and its own */
	detached = 1;
	have_watcher = 0;
	if (conn >= 0)
		close(conn);
	conn = -1;
	pp_in_hook++;
	pp_shim.active = 0;
	pp_got_unhook();
	clean = !pyhooked || pp_pyhooks_detach() == 0;
	if (pyhooked && pp_freelist_detach() < 0)
		clean = 0;
	if (pp_shim.ring.hdr && !child)
		pp_emit_mark(PP_MARK_DETACH);	/* dropped if pyprof is gone */
	pp_shim.py_state = PP_PY_NONE;
	pp_in_hook--;
	if (pp_shim.ring.hdr)
		pp_ring_unmap(&pp_shim.ring);
	return clean;
}

/* a forked child's pending call: everything back, then unload */
static int detach(void *arg)
{
	(void)arg;
	if (put_back()) {
		__atomic_store_n(&unload_pending, 1, __ATOMIC_RELEASE);
		unload_if_idle();
	}
	return 0;
}

/*
 * pp_shim_disable() in attach mode: from any thread, inside a hook. In
 * the process we were loaded into, the watcher detaches (pyprof closes
 * the connection right after it stops recording, the kernel when it
 * dies); a forked child has no watcher: a pending call does.
 */
void pp_attach_disabled(void)
{
	if (!forked && getpid() == pp_shim.pid)
		return;
	if (__atomic_exchange_n(&detach_queued, 1, __ATOMIC_ACQ_REL))
		return;
	if (pp_shim.py.add_pending_call(detach, NULL) < 0)
		detach_queued = 0;	/* the queue is full: the next hook */
	else if (breaker)
		__atomic_store_n(breaker, 1, __ATOMIC_RELAXED);
}

/*
 * The one thread of ours (pp_watch_start runs it): it waits for pyprof's
 * end of the connection to close (a detach, or pyprof killed), stops
 * recording, detaches with the GIL taken as a C thread takes it, and
 * once nothing of ours is in use returns our handle, which
 * pp_watch_start passes on to dlclose (NULL: the shim stays). Every
 * signal is blocked on it. A target finalizing meanwhile ends the
 * thread inside PyGILState_Ensure (3.9-3.13; pp_watch_start has unwind
 * information for that) or keeps it there (3.14+) until it exits.
 */
__attribute__((used)) void *pp_watch_body(void);
__attribute__((used)) int (*pp_watch_dlclose)(void *);
__attribute__((used)) void *pp_watch_body(void)
{
	struct pollfd p = { .fd = conn, .events = POLLIN };
	struct timespec nap = { 0, 1000000 };
	int st, clean, i;

	pp_in_hook++;		/* nothing of this thread is recorded */
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	if (__atomic_load_n(&watch_abort, __ATOMIC_ACQUIRE))
		return NULL;	/* the entry joins us */
	pthread_detach(pthread_self());
	pp_shim.active = 0;
	st = gil_ensure();
	clean = put_back();
	gil_release(st);
	if (!clean)
		return NULL;
	/* a thread may still be on its way out of our code (as
	 * pp_got_unhook's grace period); a use that lasts (an object
	 * still on a private type copy) is left to its end, whose
	 * pp_attach_idle queues the unload (a pending call, as before) */
	for (i = 0; i < 1 || (i < 2000 && in_use()); i++)
		nanosleep(&nap, NULL);
	if (in_use()) {
		__atomic_store_n(&unload_pending, 1, __ATOMIC_RELEASE);
		/* unless it ended meanwhile: then ours, if not taken */
		if (in_use() ||
		    !__atomic_exchange_n(&unload_pending, 0, __ATOMIC_ACQ_REL))
			return NULL;
	}
	for (i = 0; i < extra_refs; i++)
		dlclose_fn(self);
	pp_watch_dlclose = dlclose_fn;
	return self;
}

/* the thread's start: pp_watch_body(), then a tail call of dlclose on
 * what it returned, whose return goes to glibc's start_thread */
extern char pp_watch_start[];
__asm__(".pushsection .text\n"
	".p2align 4\n"
	".type pp_watch_start, @function\n"
	"pp_watch_start:\n"
	".cfi_startproc\n"
	"	sub $8, %rsp\n"
	".cfi_adjust_cfa_offset 8\n"
	"	call pp_watch_body\n"
	"	add $8, %rsp\n"
	".cfi_adjust_cfa_offset -8\n"
	"	test %rax, %rax\n"
	"	jz 1f\n"
	"	mov %rax, %rdi\n"
	"	jmp *pp_watch_dlclose(%rip)\n"
	"1:	ret\n"
	".cfi_endproc\n"
	".size pp_watch_start, .-pp_watch_start\n"
	".popsection\n");

static int start_watcher(void)
{
	sigset_t all, old;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);	/* inherited */
	e = pthread_create(&watcher, NULL,
			   (void *(*)(void *))(void *)pp_watch_start, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!e)
		have_watcher = 1;
	return e ? -1 : 0;
}

/*
 * In the child, inside fork(): async-signal-safe steps only (a child of
 * subprocess runs nothing else before its exec). The ring is the
 * parent's from now on; our thread and every other one are not here.
 */
static void atfork_child(void)
{
	pp_shim.active = 0;
	forked = 1;
	have_watcher = 0;
	pp_got_atfork_child();
	pp_freelist_atfork_child();
}

/*
 * pyhooks.c, a MEM or OBJ hook that found recording stopped, GIL held:
 * in a forked child, queue its detach (the parent's queued one, if
 * any, came along, and runs it too). 0 while it could not be queued.
 */
int pp_attach_child_queue(void)
{
	if (!forked || detached || child_queued)
		return 1;
	if (pp_shim.py.add_pending_call(detach, NULL) < 0)
		return 0;	/* the queue is full: the next hook */
	child_queued = 1;
	if (breaker)
		__atomic_store_n(breaker, 1, __ATOMIC_RELAXED);
	return 1;
}

/*
 * 0: attached, or (a pending call) failed and unloading; 1: failed, the
 * direct call (d->direct) dlcloses us.
 */
static int inject_entry(void *handle, const struct pp_inject_data *d)
{
	int fd, other;

	if (self || pp_shim.ring.hdr) {
		/* loaded already (wrap mode, or twice). A dlopen of
		 * /proc/self/fd/N (a memfd: collector/inject.c) finds us
		 * by that name if we came from the same fd number: the
		 * reference it took is dropped (the direct call drops it) */
		if (self == handle && !d->direct && dlclose_fn)
			dlclose_fn(handle);
		return d->direct;
	}
	self = handle;
	pp_in_hook++;
	pp_py_detect();
	dlclose_fn = dlsym(RTLD_DEFAULT, "dlclose");
	gil_ensure = dlsym(RTLD_DEFAULT, "PyGILState_Ensure");
	gil_release = dlsym(RTLD_DEFAULT, "PyGILState_Release");
	fd = receive_ring(d->sock, &other);
	/* our copy in this process's /tmp: mapped now, the name can go
	 * (pyprof also removes it, if this process may not); not when
	 * pyprof still waits for the process it is for. A memfd
	 * (/proc/self/fd/N) has no name to remove: the trampoline closes
	 * it, the mapping keeps it. */
	if (!other && strncmp(d->path, "/proc/self/fd/", 14))
		unlink(d->path);
	/* native 0: no libunwind is loaded into a live process */
	if (fd < 0 || pp_shim.py_state == PP_PY_NONE || !pp_shim.have_layout ||
	    !dlclose_fn || !gil_ensure || !gil_release ||
	    pp_shim_claim_ring(fd, 0) < 0) {
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	close(fd);
	pp_shim.pid = getpid();
	pp_shim.injected = 1;
	pp_emit_proc();
	if (pp_stacks_init() < 0 || pp_sample_init() < 0 ||
	    start_watcher() < 0 || pp_got_hook(handle) < 0) {
		detach_queued = 1;
		if (have_watcher) {
			__atomic_store_n(&watch_abort, 1, __ATOMIC_RELEASE);
			shutdown(conn, SHUT_RDWR);
			pthread_join(watcher, NULL);
			have_watcher = 0;
		}
		pp_emit_mark(PP_MARK_DETACH);
		pp_ring_unmap(&pp_shim.ring);
		goto fail;
	}
	pthread_atfork(NULL, NULL, atfork_child);
	/* not WAIT: a libc hook would queue wrap mode's install(), which
	 * hooks the PyMem domains again, in front of ours (interpose.c) */
	pp_shim.py_state = PP_PY_SCHEDULED;
	__atomic_store_n(&pp_shim.active, 1, __ATOMIC_RELEASE);
	pp_pyhooks_attach();
	pyhooked = 1;
	pp_freelist_install();
	pp_shim.py_state = PP_PY_HOOKED;
	pp_emit_mark(PP_MARK_PY_READY);
	pp_in_hook--;
	return 0;
fail:
	if (conn >= 0)
		close(conn);
	conn = -1;
	pp_shim.py_state = PP_PY_NONE;
	pp_in_hook--;
	if (d->direct)
		return 1;
	if (pp_shim.py.add_pending_call)
		unload();
	return 0;
}

/* the trampoline's way in (inject.c: dlsym on our own handle) */
EXPORT int pyprof_inject_entry(void *handle, const struct pp_inject_data *d)
{
	return inject_entry(handle, d);
}

/*
 * Our file name as pyprof chose it, libpyprof.so.PID.XXXXXX: the copy's
 * base name, or (loaded from a memfd as /proc/self/fd/N, its fd still
 * open: collector/inject.c fill_script) the memfd's name, which its
 * link reads as "/memfd:NAME (deleted)". NULL when it is neither.
 */
static const char *own_name(const char *fname, char *buf, size_t n)
{
	const char *base = strrchr(fname, '/');
	ssize_t k;
	char *sp;

	base = base ? base + 1 : fname;
	if (!strncmp(fname, "/proc/self/fd/", 14)) {
		k = readlink(fname, buf, n - 1);
		if (k <= 7 || strncmp(buf, "/memfd:", 7))
			return NULL;
		buf[k] = 0;
		sp = strchr(buf, ' ');
		if (sp)
			*sp = 0;
		base = buf + 7;
	}
	return strncmp(base, "libpyprof.so.", 13) ? NULL : base;
}

/*
 * 3.14+ (PEP 768): pyprof's script loads us as an extension module
 * (collector/inject.c write_script). We attach, and fail on purpose: no
 * module object is made, the import system keeps nothing of ours (its
 * dlopen's reference aside: unload() drops it too).
 */
EXPORT void *PyInit__pyprof(void)
{
	static struct pp_inject_data d;
	char buf[80];
	const char *base;
	Dl_info di;
	void *h;

	/* our own code's address, not an exported name: a process forked
	 * from a wrapped one has the preloaded shim, whose definitions of
	 * the exported names come first (wrap mode with --children) */
	if (self || !dladdr((void *)inject_entry, &di) || !di.dli_fname)
		return NULL;
	/* pyprof's copy or memfd, libpyprof.so.PID.XXXXXX, names the
	 * socket */
	base = own_name(di.dli_fname, buf, sizeof(buf));
	if (!base)
		return NULL;
	h = dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD);
	if (!h)
		return NULL;
	/* the import system's dlopens of this file, which it never closes
	 * (Python/importdl.c): 3.15 looks up PyModExport_ then PyInit_,
	 * each through _PyImport_FindSharedFuncptr */
	pp_py_detect();
	extra_refs = pp_shim.layout.minor >= 15 ? 2 : 1;
	snprintf(d.sock, sizeof(d.sock), PP_INJ_SOCK_PREFIX "%s", base);
	snprintf(d.path, sizeof(d.path), "%s", di.dli_fname);
	inject_entry(h, &d);
	return NULL;
}

// SPDX-License-Identifier: MIT
/*
 * Injection, pyprof's side (inject.h). The order makes every step
 * undoable by the kernel alone if pyprof dies:
 * 1. the shim is copied into the target's own /tmp (through
 *    /proc/PID/root: a container or chroot needs nothing installed) as
 *    libpyprof.so.<pyprof's pid>.XXXXXX (a /tmp read-only, noexec or
 *    full: the target's thread makes a memfd of that name in step 3,
 *    which pyprof fills through /proc/PID/fd/N and the trampoline
 *    closes after its dlopen of /proc/self/fd/N; one not loaded because
 *    pyprof gave up is loaded when the pending call runs and unloads
 *    itself, finding no socket; a pyprof killed between the memfd's
 *    creation and the call leaves that descriptor open in the target,
 *    close-on-exec); the shim unlinks it once
 *    loaded, pyprof when it connects or when pyprof gives up (a pending
 *    call that runs later then finds no file: dlopen fails and the
 *    trampoline just unmaps its page); one left by a pyprof killed
 *    before its pending call was queued is removed by the next one;
 * 2. a ring and an abstract socket (freed by the kernel with pyprof);
 * 3. one thread queues Py_AddPendingCall(trampoline, data)
 *    (inject_ptrace.c); the trampoline, run later by the main thread
 *    between bytecodes with the GIL held, calls dlopen(copy, RTLD_NOW),
 *    the shim's entry, and tail-calls munmap on its own page;
 * 4. the shim connects, gets the ring's fd, hooks (preload/attach.c).
 */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "inject.h"
#include "procfs.h"
#include "pp_clock.h"
#include "pp_pystate.h"

#define PAGE 4096
#define D_DLOPEN 0
#define D_DLSYM 8
#define D_MUNMAP 16
#define D_PAGESZ 24
#define D_DLCLOSE 32
#define D_SYM 40
#define D_PATH 168
#define D_ENSURE 3240
#define D_RELEASE 3248
#define D_MEMFD 3260
#define D_CLOSE 3264
_Static_assert(__builtin_offsetof(struct pp_inject_data, dlclose) == D_DLCLOSE, "dlclose");
_Static_assert(__builtin_offsetof(struct pp_inject_data, sym) == D_SYM, "sym");
_Static_assert(__builtin_offsetof(struct pp_inject_data, path) == D_PATH, "path");
_Static_assert(__builtin_offsetof(struct pp_inject_data, gil_ensure) == D_ENSURE, "ensure");
_Static_assert(__builtin_offsetof(struct pp_inject_data, gil_release) == D_RELEASE, "release");
_Static_assert(__builtin_offsetof(struct pp_inject_data, memfd) == D_MEMFD, "memfd");
_Static_assert(__builtin_offsetof(struct pp_inject_data, close) == D_CLOSE, "close");
_Static_assert(PP_INJ_DATA + sizeof(struct pp_inject_data) <= PAGE, "page");

#define STR_(x) #x
#define STR(x) STR_(x)

/*
 * int trampoline(struct pp_inject_data *d): the pending call. Only
 * %rbx-relative, so it runs wherever the page is (read-only: nothing
 * is stored in it). The shim's memfd, if it came from one, is closed
 * right after dlopen, loaded or not. It returns what
 * munmap(page) returns (0: the call succeeded) straight to CPython.
 */
extern const char pp_tramp[], pp_tramp_end[];
__asm__(".pushsection .rodata\n"
	"pp_tramp:\n"
	"	push %rbx\n"
	"	push %r12\n"
	"	sub $8, %rsp\n"			/* calls 16-aligned */
	"	mov %rdi, %rbx\n"
	"	lea " STR(D_PATH) "(%rbx), %rdi\n"
	"	mov $2, %esi\n"			/* RTLD_NOW */
	"	call *" STR(D_DLOPEN) "(%rbx)\n"
	"	mov %rax, %r12\n"
	"	call pp_tramp_close\n"
	"	test %r12, %r12\n"
	"	jz 1f\n"
	"	mov %r12, %rdi\n"
	"	lea " STR(D_SYM) "(%rbx), %rsi\n"
	"	call *" STR(D_DLSYM) "(%rbx)\n"
	"	test %rax, %rax\n"
	"	jz 1f\n"
	"	mov %r12, %rdi\n"
	"	mov %rbx, %rsi\n"
	"	call *%rax\n"
	"1:	lea -" STR(PP_INJ_DATA) "(%rbx), %rdi\n"
	"	mov " STR(D_PAGESZ) "(%rbx), %rsi\n"
	"	mov " STR(D_MUNMAP) "(%rbx), %rax\n"
	"	add $8, %rsp\n"
	"	pop %r12\n"
	"	pop %rbx\n"
	"	jmp *%rax\n"
	/*
	 * void direct(struct pp_inject_data *d): the direct call, made by
	 * the main thread itself from a system call it makes with the GIL
	 * released (pick_direct()): what a C callback of such a call does
	 * (PyGILState_Ensure, as ctypes' callbacks), then the same as the
	 * pending call. An entry that returns non-zero (it did not attach)
	 * is dlclosed here, from our page. Returns into __restore_rt.
	 */
	"pp_direct:\n"
	"	push %rbx\n"
	"	push %r12\n"
	"	push %r13\n"			/* calls 16-aligned */
	"	mov %rdi, %rbx\n"
	"	call *" STR(D_ENSURE) "(%rbx)\n"
	"	mov %eax, %r13d\n"
	"	lea " STR(D_PATH) "(%rbx), %rdi\n"
	"	mov $2, %esi\n"		/* RTLD_NOW */
	"	call *" STR(D_DLOPEN) "(%rbx)\n"
	"	mov %rax, %r12\n"
	"	call pp_tramp_close\n"
	"	test %r12, %r12\n"
	"	jz 2f\n"
	"	mov %r12, %rdi\n"
	"	lea " STR(D_SYM) "(%rbx), %rsi\n"
	"	call *" STR(D_DLSYM) "(%rbx)\n"
	"	test %rax, %rax\n"
	"	jz 1f\n"
	"	mov %r12, %rdi\n"
	"	mov %rbx, %rsi\n"
	"	call *%rax\n"
	"	test %eax, %eax\n"
	"	jz 2f\n"
	"1:	mov %r12, %rdi\n"
	"	call *" STR(D_DLCLOSE) "(%rbx)\n"
	"2:	mov %r13d, %edi\n"
	"	call *" STR(D_RELEASE) "(%rbx)\n"
	"	lea -" STR(PP_INJ_DATA) "(%rbx), %rdi\n"
	"	mov " STR(D_PAGESZ) "(%rbx), %rsi\n"
	"	mov " STR(D_MUNMAP) "(%rbx), %rax\n"
	"	pop %r13\n"
	"	pop %r12\n"
	"	pop %rbx\n"
	"	jmp *%rax\n"
	/* the memfd the shim came from, if any: the mapping keeps it (the
	 * stack is 8 off a call's alignment here, as at a function's entry:
	 * close is reached by a tail call) */
	"pp_tramp_close:\n"
	"	movslq " STR(D_MEMFD) "(%rbx), %rdi\n"
	"	test %rdi, %rdi\n"
	"	js 1f\n"
	"	jmp *" STR(D_CLOSE) "(%rbx)\n"
	"1:	ret\n"
	"pp_tramp_end:\n"
	".popsection\n");
extern const char pp_direct[];

struct pp_inject {
	int pid;
	int lfd;			/* listening socket */
	/* 3.14+ by PEP 768, the memfd route: the shim's memfd (pyprof's
	 * own), handed over lfd_fd to the loader script, itself in a memfd
	 * the target made (script_fd, closed by the script) */
	int lfd_fd, shim_fd, script_fd;
	int ring_fd;
	int conn;			/* the shim's connection: closing it
					 * (or dying) tells it to detach */
	struct pp_ring ring;
	int connected;
	uint64_t start_ns;
	int said_waiting;
	char copy[PATH_MAX];		/* the shim's copy, from here */
	char script[PATH_MAX];		/* 3.14+: the script that loads it */
	char shim_base[64];		/* its file name, for /proc/PID/maps */
	const char *shim_src;		/* pyprof's libpyprof.so */
	char why_memfd[160];		/* why not the /tmp copy ("": copied) */
	uint64_t breaker;		/* see kick() */
	uint64_t pending;		/* 3.14+: the remote-exec request flag */
	uint64_t gil;			/* struct _gil_runtime_state * */
	uint64_t interp_head;		/* &_PyRuntime.interpreters.head */
	uint64_t interp;		/* what it held at the start */
	uint64_t finalizing;		/* &_PyRuntime._finalizing, 0: unknown */
	uint64_t pending_call;		/* Py_AddPendingCall */
	uint64_t restore_rt;		/* glibc's __restore_rt */
	uint32_t tid_off;		/* PyThreadState.thread_id */
	int direct;			/* the main thread loads it directly */
	struct pp_inject_data d;
};

/* ---- the shim's copy in the target's /tmp ---- */

/*
 * Copies named libpyprof.so.PID.XXXXXX by a pyprof (PID) killed before
 * its pending call was queued: nothing will load them, remove them.
 */
static void remove_stale(int pid)
{
	char dir[64], fn[PATH_MAX];
	struct dirent *d;
	DIR *dp;
	int owner;

	snprintf(dir, sizeof(dir), "/proc/%d/root/tmp", pid);
	dp = opendir(dir);
	if (!dp)
		return;
	while ((d = readdir(dp)))
		if (sscanf(d->d_name, "libpyprof.so.%d.", &owner) == 1 &&
		    owner > 0 && kill(owner, 0) < 0 && errno == ESRCH) {
			snprintf(fn, sizeof(fn), "%s/%s", dir, d->d_name);
			unlink(fn);
		}
	closedir(dp);
}

/* src's bytes into dst: 0, or -1 with errno */
static int copy_fd(int src, int dst)
{
	char buf[65536];
	ssize_t n, w;

	while ((n = read(src, buf, sizeof(buf))) > 0)
		for (w = 0; w < n; ) {
			ssize_t k = write(dst, buf + w, n - w);

			if (k < 0)
				return -1;
			if (k == 0) {
				errno = ENOSPC;
				return -1;
			}
			w += k;
		}
	return n < 0 ? -1 : 0;
}

/*
 * 0: copied; 1: the target's /tmp cannot hold an object to load
 * (read-only, noexec, full: in->why_memfd says which), the shim goes
 * into a memfd instead (fill); -1 with err.
 */
static int copy_shim(struct pp_inject *in, const char *shim, char *err,
		     size_t errlen)
{
	struct statvfs sv;
	int src, dst, e;

	remove_stale(in->pid);
	snprintf(in->copy, sizeof(in->copy),
		 "/proc/%d/root/tmp/libpyprof.so.%d.XXXXXX", in->pid, getpid());
	src = open(shim, O_RDONLY | O_CLOEXEC);
	if (src < 0) {
		snprintf(err, errlen, "cannot read the shim %s: %s", shim,
			 strerror(errno));
		in->copy[0] = 0;
		return -1;
	}
	/* on a noexec /tmp, dlopen's mmap would fail in the target */
	*strrchr(in->copy, '/') = 0;
	e = statvfs(in->copy, &sv) == 0 && (sv.f_flag & ST_NOEXEC);
	in->copy[strlen(in->copy)] = '/';
	if (e) {
		close(src);
		in->copy[0] = 0;
		snprintf(in->why_memfd, sizeof(in->why_memfd), "noexec");
		return 1;
	}
	dst = mkstemp(in->copy);
	if (dst < 0) {
		snprintf(in->why_memfd, sizeof(in->why_memfd), "%s",
			 strerror(errno));
		close(src);
		in->copy[0] = 0;
		return 1;
	}
	if (copy_fd(src, dst) < 0 || fchmod(dst, 0644) < 0 ||
	    close(dst) < 0) {
		snprintf(in->why_memfd, sizeof(in->why_memfd), "%s",
			 strerror(errno));
		close(src);
		unlink(in->copy);
		in->copy[0] = 0;
		return 1;
	}
	close(src);
	snprintf(in->d.path, sizeof(in->d.path), "/tmp/%s",
		 strrchr(in->copy, '/') + 1);
	snprintf(in->shim_base, sizeof(in->shim_base), "%s",
		 strrchr(in->copy, '/') + 1);
	return 0;
}

/*
 * The memfd's name, as the copy's (libpyprof.so.PID.XXXXXX: the socket's
 * name, and what /proc/PID/maps shows as /memfd:NAME (deleted)).
 */
static void memfd_name(struct pp_inject *in)
{
	static const char c[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	static unsigned seq;
	unsigned char r[6];
	char sfx[7];
	int i;

	if (getentropy(r, sizeof(r)) < 0)
		for (i = 0; i < 6; i++)
			r[i] = (unsigned char)((pp_now_ns() >> (i * 5)) + seq);
	r[0] = (unsigned char)(r[0] + seq++);
	for (i = 0; i < 6; i++)
		sfx[i] = c[r[i] % 36];
	sfx[6] = 0;
	snprintf(in->shim_base, sizeof(in->shim_base), "libpyprof.so.%d.%s",
		 getpid(), sfx);
}

static void drop_copy(struct pp_inject *in)
{
	if (in->copy[0])
		unlink(in->copy);
	in->copy[0] = 0;
	if (in->script[0])
		unlink(in->script);
	in->script[0] = 0;
}

/*
 * 3.14+: the script the main thread runs (PEP 768). It loads the shim
 * as an extension module whose PyInit__pyprof attaches and fails on
 * purpose, so no module is made or kept; it finds the socket by its own
 * file name (listen_on), so that nothing of the program's is changed to
 * pass it (the environment, which another thread may be reading in C).
 * Nothing stays in __main__.
 */
static int write_script(struct pp_inject *in, char *target_path, size_t n)
{
	FILE *f;
	int fd;

	snprintf(in->script, sizeof(in->script),
		 "/proc/%d/root/tmp/libpyprof.so.%d.XXXXXX.py", in->pid,
		 getpid());
	fd = mkstemps(in->script, 3);
	if (fd < 0) {
		in->script[0] = 0;
		return -1;
	}
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -1;
	}
	fprintf(f,
		"def _pyprof_load():\n"
		"    import importlib.machinery as m\n"
		"    try:\n"
		"        l = m.ExtensionFileLoader('_pyprof', '%s')\n"
		"        l.create_module(m.ModuleSpec('_pyprof', l, origin='%s'))\n"
		"    except Exception:\n"
		"        pass\n"
		"try:\n"
		"    _pyprof_load()\n"
		"finally:\n"
		"    del _pyprof_load\n", in->d.path, in->d.path);
	if (fchmod(fd, 0644) < 0 || fclose(f) != 0)
		return -1;
	snprintf(target_path, n, "/tmp/%s", strrchr(in->script, '/') + 1);
	return 0;
}

/* ---- the socket ---- */

/*
 * An abstract socket's name is seen only in its network namespace: a
 * target in a container of its own (Docker, Kubernetes) could never
 * connect to one made in ours. So the socket is made in the target's
 * (this thread enters it for the socket() call and comes back; the
 * socket keeps the namespace it was made in).
 */
static int socket_in_netns(int pid)
{
	char fn[64];
	struct stat a, b;
	int fd, ours, theirs, e;

	snprintf(fn, sizeof(fn), "/proc/%d/ns/net", pid);
	if (stat("/proc/self/ns/net", &a) < 0 || stat(fn, &b) < 0 ||
	    (a.st_dev == b.st_dev && a.st_ino == b.st_ino))
		return socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC |
			      SOCK_NONBLOCK, 0);
	ours = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	theirs = open(fn, O_RDONLY | O_CLOEXEC);
	if (ours < 0 || theirs < 0 || setns(theirs, CLONE_NEWNET) < 0) {
		e = errno;
		fd = -1;
	} else {
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC |
			    SOCK_NONBLOCK, 0);
		e = errno;
		if (setns(ours, CLONE_NEWNET) < 0) {
			/* cannot come back: nothing else may run in theirs */
			fprintf(stderr, "pyprof: cannot leave pid %d's network "
				"namespace: %s\n", pid, strerror(errno));
			abort();
		}
	}
	if (ours >= 0)
		close(ours);
	if (theirs >= 0)
		close(theirs);
	errno = e;
	return fd;
}

static int listen_at(struct pp_inject *in, const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd, n = strlen(name);

	memcpy(sa.sun_path + 1, name, n);
	len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	fd = socket_in_netns(in->pid);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 1) < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	return fd;
}

static int listen_on(struct pp_inject *in)
{
	/* named after the copy (unique: pyprof's pid, mkstemp's suffix),
	 * so that the shim finds it from its own file name (include/
	 * pp_inject.h: PP_INJ_SOCK_PREFIX) */
	snprintf(in->d.sock, sizeof(in->d.sock), PP_INJ_SOCK_PREFIX "%s",
		 in->shim_base);
	return listen_at(in, in->d.sock);
}

static int peer_is(int fd, int pid);

/* ---- 3.14+ by PEP 768 with no /tmp: the script and the shim in memfds ---- */

/* memfd_create with MFD_EXEC (inject_ptrace.c make_memfd says why) */
static int memfd_exec(const char *name)
{
	int fd = syscall(SYS_memfd_create, name, MFD_CLOEXEC | 0x10u);

	if (fd < 0 && errno == EINVAL)
		fd = syscall(SYS_memfd_create, name, MFD_CLOEXEC);
	return fd;
}

/*
 * pp_remote.fill for the script's memfd, made by one thread of the
 * target: pyprof writes the script into it (through /proc/PID/fd/N);
 * nothing is called. The script, run by the main thread as
 * /proc/self/fd/N (the interpreter opens it anew), closes N first,
 * receives the shim's memfd over the socket PP_INJ_SOCK_PREFIX NAME/fd
 * (_socket, not socket.py: fewer modules imported into the program),
 * loads it as write_script's does, and closes it: nothing stays.
 */
static int fill_script(void *ctx, uint64_t addr, int direct, int memfd,
		       uint64_t *rip, uint64_t *a0, uint64_t *a1)
{
	struct pp_inject *in = ctx;
	char fn[64];
	FILE *f;
	int fd, ok;

	(void)addr;
	(void)direct;
	*rip = *a0 = *a1 = 0;
	snprintf(fn, sizeof(fn), "/proc/%d/fd/%d", in->pid, memfd);
	fd = open(fn, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -1;
	}
	fprintf(f,
		"def _pyprof_load():\n"
		"    import os, _socket as s, importlib.machinery as m\n"
		"    fds, c = [], None\n"
		"    try:\n"
		"        os.close(%d)\n"
		"        c = s.socket(s.AF_UNIX, s.SOCK_SEQPACKET)\n"
		"        c.settimeout(2)\n"
		"        c.connect(b'\\0%s/fd')\n"
		"        r = c.recvmsg(8, s.CMSG_SPACE(4))\n"
		"        for lv, ty, b in r[1]:\n"
		"            if lv == s.SOL_SOCKET and ty == s.SCM_RIGHTS:\n"
		"                fds += [int.from_bytes(b[i:i + 4], 'little')\n"
		"                        for i in range(0, len(b) - 3, 4)]\n"
		"        p = '/proc/self/fd/%%d' %% fds[0]\n"
		"        l = m.ExtensionFileLoader('_pyprof', p)\n"
		"        l.create_module(m.ModuleSpec('_pyprof', l, origin=p))\n"
		"    except Exception:\n"
		"        pass\n"
		"    finally:\n"
		"        if c is not None:\n"
		"            c.close()\n"
		"        for fd in fds:\n"
		"            os.close(fd)\n"
		"try:\n"
		"    _pyprof_load()\n"
		"finally:\n"
		"    del _pyprof_load\n", memfd, in->d.sock);
	ok = fclose(f) == 0;
	if (ok)
		in->script_fd = memfd;
	return ok ? 0 : -1;
}

/*
 * The script's memfd in the target (by ptrace, one thread at a system
 * call boundary, as the pending call), the shim's in pyprof, the socket
 * that hands it over: the script's path in *path. 0, or -1 with err.
 */
static int script_memfd(struct pp_inject *in, struct pp_remote *r,
			char *path, size_t n, char *err, size_t errlen)
{
	char name[96], sock[128];
	int src, e;

	in->shim_fd = memfd_exec(in->shim_base);
	if (in->shim_fd < 0) {
		snprintf(err, errlen, "%s", errno == EACCES ?
			 "vm.memfd_noexec=2 forbids an executable memfd" :
			 strerror(errno));
		return -1;
	}
	src = open(in->shim_src, O_RDONLY | O_CLOEXEC);
	e = src < 0 || copy_fd(src, in->shim_fd) < 0;
	if (src >= 0)
		close(src);
	if (e) {
		snprintf(err, errlen, "cannot read the shim %s: %s",
			 in->shim_src, strerror(errno));
		return -1;
	}
	snprintf(sock, sizeof(sock), "%s/fd", in->d.sock);
	in->lfd_fd = listen_at(in, sock);
	if (in->lfd_fd < 0) {
		snprintf(err, errlen, "cannot listen for the script: %s",
			 strerror(-in->lfd_fd));
		in->lfd_fd = -1;
		return -1;
	}
	snprintf(name, sizeof(name), "%s.py", in->shim_base);
	r->memfd_name = name;
	r->memfd_data = 1;
	r->fill = fill_script;
	r->direct = NULL;
	r->direct_only = 0;
	if (pp_remote_call(r, err, errlen) < 0 || in->script_fd < 0)
		return -1;
	snprintf(path, n, "/proc/self/fd/%d", in->script_fd);
	return 0;
}

/* the script's connection: the shim's memfd, then nothing more */
static void hand_shim(struct pp_inject *in)
{
	char cbuf[CMSG_SPACE(sizeof(int))], one = 0;
	struct iovec iov = { &one, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (in->lfd_fd < 0)
		return;
	fd = accept4(in->lfd_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (!peer_is(fd, in->pid)) {
		close(fd);
		return;
	}
	memset(cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &in->shim_fd, sizeof(int));
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) == 1) {
		/* the target's now: one script, one shim */
		close(in->lfd_fd);
		in->lfd_fd = -1;
		close(in->shim_fd);
		in->shim_fd = -1;
	}
	close(fd);
}

/* ---- the page ---- */

/*
 * The target's memfd, filled through /proc/PID/fd/N (which opens the
 * same file anew, root's right over a process it may ptrace); loaded
 * as /proc/self/fd/N, glibc's name for it (l_name, dladdr's dli_fname).
 */
static int fill_memfd(struct pp_inject *in, int memfd)
{
	char fn[64];
	int src, dst, e;

	snprintf(fn, sizeof(fn), "/proc/%d/fd/%d", in->pid, memfd);
	dst = open(fn, O_WRONLY | O_CLOEXEC);
	if (dst < 0)
		return -1;
	src = open(in->shim_src, O_RDONLY | O_CLOEXEC);
	e = src < 0 || copy_fd(src, dst) < 0;
	if (src >= 0)
		close(src);
	close(dst);
	if (e)
		return -1;
	snprintf(in->d.path, sizeof(in->d.path), "/proc/self/fd/%d", memfd);
	in->d.memfd = memfd;
	return 0;
}

static int fill(void *ctx, uint64_t addr, int direct, int memfd,
		uint64_t *rip, uint64_t *a0, uint64_t *a1)
{
	struct pp_inject *in = ctx;
	char fn[64], page[PAGE];
	size_t n = pp_tramp_end - pp_tramp;
	int fd, ok;

	if (n > PP_INJ_DATA)
		return -1;
	if (memfd >= 0 && fill_memfd(in, memfd) < 0)
		return -1;
	memset(page, 0, sizeof(page));
	memcpy(page, pp_tramp, n);
	in->d.direct = direct;
	in->direct = direct;
	memcpy(page + PP_INJ_DATA, &in->d, sizeof(in->d));
	/* the page is r-x: written through /proc/PID/mem */
	snprintf(fn, sizeof(fn), "/proc/%d/mem", in->pid);
	fd = open(fn, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ok = pwrite(fd, page, sizeof(page), addr) == sizeof(page);
	close(fd);
	if (direct) {
		*rip = addr + (pp_direct - pp_tramp);
		*a0 = addr + PP_INJ_DATA;
		*a1 = 0;
	} else {
		*rip = in->pending_call;
		*a0 = addr;
		*a1 = addr + PP_INJ_DATA;
	}
	return ok ? 0 : -1;
}

/*
 * The direct call's conditions, main thread stopped (pick_direct). It
 * must be blocked in a system call that is never made with a libc or
 * loader lock held (malloc's and the loader's locks wait in FUTEX_WAIT;
 * condition variables and semaphores, hence Python's locks, in
 * FUTEX_WAIT_BITSET) and must not hold the GIL: then it is inside a
 * Py_BEGIN_ALLOW_THREADS region, where PyGILState_Ensure is allowed.
 * A read of a regular file may be the loader's (dlopen reads with its
 * lock held): reads count on pipes, sockets, terminals, eventfds only.
 */
static int read_fd_ok(int pid, uint64_t fd)
{
	char fn[64], to[64];
	ssize_t n;

	snprintf(fn, sizeof(fn), "/proc/%d/fd/%d", pid, (int)fd);
	n = readlink(fn, to, sizeof(to) - 1);
	if (n <= 0)
		return 0;
	to[n] = 0;
	return !strncmp(to, "socket:", 7) || !strncmp(to, "pipe:", 5) ||
	       !strncmp(to, "anon_inode:", 11) || !strncmp(to, "/dev/pts/", 9) ||
	       !strncmp(to, "/dev/tty", 8);
}

static int blocking_call(const struct pp_inject *in,
			 const struct user_regs_struct *R)
{
	uint64_t op = R->rsi & 127, ua = R->rdi;

	switch (R->orig_rax) {
	case SYS_nanosleep: case SYS_clock_nanosleep: case SYS_select:
	case SYS_pselect6: case SYS_poll: case SYS_ppoll:
	case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_accept:
	case SYS_accept4: case SYS_wait4: case SYS_waitid: case SYS_pause:
	case SYS_rt_sigsuspend: case SYS_rt_sigtimedwait:
#ifdef SYS_epoll_pwait2
	case SYS_epoll_pwait2:
#endif
		return 1;
	case SYS_read: case SYS_recvfrom: case SYS_recvmsg:
		return read_fd_ok(in->pid, R->rdi);
	case SYS_futex:
		/* FUTEX_WAIT_BITSET, not on the GIL's own words (a wait
		 * for the GIL is inside take_gil, its mutex held meanwhile
		 * by glibc's condvar protocol) */
		return op == 9 && !(ua >= in->gil && ua < in->gil + 256);
	}
	return 0;
}

/*
 * &_PyRuntime._finalizing: 3.9-3.12 (Include/internal/pycore_runtime.h)
 * keep it 16 bytes before interpreters.head (the interpreters' mutex
 * between); 3.13+ say where in _Py_DebugOffsets' runtime_state (its
 * 5th word). 0: unknown.
 */
static uint64_t finalizing_addr(const struct pp_pyproc *p)
{
	uint64_t off = 0;

	if (p->minor <= 12)
		return p->layout.runtime_interp_head >= 16 ?
			p->runtime + p->layout.runtime_interp_head - 16 : 0;
	if (pp_pyproc_read(p, p->runtime + 32, &off, 8) || !off ||
	    off >= 65536)
		return 0;
	return p->runtime + off;
}

/*
 * Does the thread whose pthread_t is self hold the GIL? (-1: unknown,
 * and when the interpreter is finalizing or gone: PyGILState_Ensure
 * would end the thread there (3.9-3.13), hang it (3.14+) or, after
 * Py_Finalize in a program that embeds Python, abort)
 */
static int holds_gil(const struct pp_inject *in, uint64_t self)
{
	uint64_t holder = 0, id = 0, interp = 0, fin = 1;
	int locked = 0;
	struct iovec l[4] = { { &locked, 4 }, { &holder, 8 }, { &interp, 8 },
			      { &fin, 8 } };
	struct iovec r[4] = {
		{ (void *)(in->gil + PP_GIL_OFF_LOCKED), 4 },
		{ (void *)(in->gil + PP_GIL_OFF_HOLDER), 8 },
		{ (void *)in->interp_head, 8 },
		{ (void *)in->finalizing, 8 } };
	struct iovec li = { &id, 8 }, ri;

	if (!in->finalizing ||
	    process_vm_readv(in->pid, l, 4, r, 4, 0) != 28 ||
	    interp != in->interp || !interp || fin)
		return -1;
	if (!locked)
		return 0;
	if (!holder)
		return -1;
	ri = (struct iovec){ (void *)(holder + in->tid_off), 8 };
	if (process_vm_readv(in->pid, &li, 1, &ri, 1, 0) != 8)
		return -1;
	return id == self;
}

/*
 * Is the thread inside a signal handler (which may have interrupted it
 * with malloc's lock held)? A handler's frame starts with its return
 * address, glibc's __restore_rt, just above the handler's own frames:
 * looked for in the 64 KiB above the stack pointer.
 */
static int in_handler(const struct pp_inject *in, uint64_t sp)
{
	static uint64_t buf[8192];
	struct iovec l = { buf, sizeof(buf) }, r = { (void *)sp, sizeof(buf) };
	ssize_t n = process_vm_readv(in->pid, &l, 1, &r, 1, 0);
	size_t i;

	if (n < 8 || !in->restore_rt)
		return 1;
	for (i = 0; i < (size_t)n / 8; i++)
		if (buf[i] == in->restore_rt)
			return 1;
	return 0;
}

/*
 * Called with thread tid stopped at a system call boundary: 1 to have
 * it make the direct call (the main thread, blocked with the GIL
 * released: it may never run a pending call), 0 to have it queue the
 * pending call.
 */
static int pick_direct(void *ctx, int tid, const struct user_regs_struct *R)
{
	struct pp_inject *in = ctx;
	long rax = (long)R->rax;

	if (tid != in->pid || !in->d.gil_ensure || !in->gil ||
	    in->tid_off == PP_OFF_NONE || (long)R->orig_rax < 0)
		return 0;
	/* blocked in it, interrupted by our stop (not a call's entry) */
	if (rax != -512 && rax != -513 && rax != -514 && rax != -516 &&
	    rax != -EINTR)
		return 0;
	if (!blocking_call(in, R) || in_handler(in, R->rsp))
		return 0;
	/* set before the page and memfd: their failure is the direct
	 * call's (3.14+: no PEP 768 request after it) */
	in->direct = holds_gil(in, R->fs_base) == 0;
	return in->direct;
}

/* glibc's signal return trampoline (__restore_rt, not exported) in the
 * target's libc: mov $15,%rax; syscall */
static uint64_t find_restore_rt(int pid)
{
	static const unsigned char pat[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00,
					     0x00, 0x00, 0x0f, 0x05 };
	char fn[64], line[PATH_MAX + 128], path[PATH_MAX], perm[8];
	unsigned long s, e;
	uint64_t found = 0;
	FILE *f;

	snprintf(fn, sizeof(fn), "/proc/%d/maps", pid);
	f = fopen(fn, "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *b;
		unsigned char *buf;
		struct iovec l, r;
		size_t i;

		path[0] = 0;
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %s", &s, &e, perm,
			   path) < 4 || perm[2] != 'x')
			continue;
		b = strrchr(path, '/');
		if (!b || (strncmp(b + 1, "libc.so", 7) &&
			   strncmp(b + 1, "libc-2.", 7)))
			continue;
		buf = malloc(e - s);
		if (!buf)
			break;
		l = (struct iovec){ buf, e - s };
		r = (struct iovec){ (void *)s, e - s };
		if (process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)(e - s))
			for (i = 0; i + sizeof(pat) <= e - s; i++)
				if (buf[i] == 0x48 &&
				    !memcmp(buf + i, pat, sizeof(pat))) {
					found = s + i;
					break;
				}
		free(buf);
	}
	fclose(f);
	return found;
}

static int resolve(struct pp_inject *in, const struct pp_pyproc *p,
		   struct pp_remote *r, char *err, size_t errlen)
{
	const char *libc_names[] = { "dlopen", "dlsym", "munmap", "syscall",
				     "dlclose", "close" };
	const char *priv[] = { "__libc_dlopen_mode", "__libc_dlsym",
			       "__libc_dlclose" };
	uint64_t v[6], w[3];

	if (pp_pyproc_sym(p, "Py_AddPendingCall", &in->pending_call)) {
		snprintf(err, errlen, "no Py_AddPendingCall in %s", p->pyelf);
		return -1;
	}
	/* the direct call's: without them, only the pending call */
	if (pp_pyproc_sym(p, "PyGILState_Ensure", &in->d.gil_ensure) ||
	    pp_pyproc_sym(p, "PyGILState_Release", &in->d.gil_release))
		in->d.gil_ensure = in->d.gil_release = 0;
	if (pp_pyproc_lib_syms(in->pid, "libc", libc_names, v, 6) ||
	    !v[2] || !v[3] || !v[5]) {
		snprintf(err, errlen, "cannot find the target's libc");
		return -1;
	}
	/* glibc < 2.34: dlopen is libdl's, if the program maps it */
	if (!v[0] || !v[1]) {
		const char *dl[] = { "dlopen", "dlsym", "dlclose" };

		if (!pp_pyproc_lib_syms(in->pid, "libdl", dl, w, 3) &&
		    w[0] && w[1]) {
			v[0] = w[0];
			v[1] = w[1];
			v[4] = w[2];
		} else if (!pp_pyproc_lib_syms(in->pid, "libc", priv, w, 3) &&
			   w[0] && w[1]) {
			v[0] = w[0];
			v[1] = w[1];
			v[4] = w[2];
		} else {
			snprintf(err, errlen, "no dlopen in the target");
			return -1;
		}
	}
	in->d.dlopen = v[0];
	in->d.dlsym = v[1];
	in->d.munmap = v[2];
	in->d.dlclose = v[4];
	in->d.close = v[5];
	if (!v[4])
		in->d.gil_ensure = in->d.gil_release = 0;
	in->d.page_size = PAGE;
	r->libc_syscall = v[3];
	r->restore_rt = in->restore_rt = find_restore_rt(in->pid);
	if (!r->restore_rt) {
		snprintf(err, errlen, "no signal return code in the target's "
			 "libc");
		return -1;
	}
	return 0;
}

/*
 * 3.9-3.12: a pending call queued by another thread than the main one
 * does not set the main thread's eval_breaker (Python/ceval.c,
 * COMPUTE_EVAL_BREAKER tests whether the *caller* may handle pending
 * calls), so a main thread that never waits for the GIL would not run it.
 * Setting the breaker (an int the interpreter recomputes anyway) makes
 * it look at its pending calls at the next check. While waiting only.
 */
static void kick(struct pp_inject *in)
{
	int one = 1;
	struct iovec l = { &one, sizeof(one) };
	struct iovec r = { (void *)in->breaker, sizeof(one) };

	if (in->breaker)
		process_vm_writev(in->pid, &l, 1, &r, 1, 0);
}

/* offsetof(PyInterpreterState, ceval.eval_breaker), from each version's
 * Include/internal/pycore_interp.h (3.13 sets the main thread's own) */
static uint64_t breaker_off(int minor)
{
	switch (minor) {
	case 9: return 72;
	case 10: return 68;
	case 11: return 100;
	case 12: return 368;
	}
	return 0;
}

static void inject_free(struct pp_inject *in)
{
	drop_copy(in);
	if (in->lfd >= 0)
		close(in->lfd);
	if (in->lfd_fd >= 0)
		close(in->lfd_fd);
	if (in->shim_fd >= 0)
		close(in->shim_fd);
	if (in->ring_fd >= 0)
		close(in->ring_fd);
	if (in->conn >= 0)
		close(in->conn);
	if (in->ring.hdr)
		pp_ring_unmap(&in->ring);
	free(in);
}

/*
 * A stopped process (state T) runs no pending call and answers no
 * pending-call flag: the shim's entry would wait until it is continued,
 * long after pyprof has gone. Left stopped, as found.
 */
static int stopped(int pid)
{
	char buf[512];
	const char *st = pp_procfs_stat(pid, buf, sizeof(buf));

	return st && *st == 'T';
}

/* pp_remote.idle: accept the shim's connection while its direct call
 * is followed (inject_ptrace.c put_back) */
static void answer(void *ctx)
{
	char err[256];

	pp_inject_poll(ctx, err, sizeof(err));
}

struct pp_inject *pp_inject_start(const struct pp_pyproc *p,
				  const char *shim_path, uint64_t ring_bytes,
				  uint64_t sample_bytes, int native,
				  char *err, size_t errlen)
{
	struct pp_inject *in = calloc(1, sizeof(*in));
	struct pp_remote r = { .pid = p->pid, .fill = fill,
			       .direct = pick_direct, .idle = answer };
	int e;

	if (!in)
		return NULL;
	in->pid = p->pid;
	in->gil = p->gil;
	in->interp_head = p->runtime + p->layout.runtime_interp_head;
	in->interp = p->interp;
	in->finalizing = finalizing_addr(p);
	in->tid_off = p->layout.tstate_thread_id;
	in->lfd = in->ring_fd = in->conn = -1;
	in->lfd_fd = in->shim_fd = in->script_fd = -1;
	r.ctx = in;
	snprintf(in->d.sym, sizeof(in->d.sym), "%s", PP_INJ_ENTRY);
	if (p->major != 3 || p->minor < 9 || p->minor > 15) {
		snprintf(err, errlen, "injection supports CPython 3.9-3.15, "
			 "not %s", p->version);
		goto fail;
	}
	if (stopped(p->pid)) {
		snprintf(err, errlen, "it is stopped (SIGSTOP): the shim loads "
			 "only into a running process (kill -CONT %d)", p->pid);
		goto fail;
	}
	if (p->minor <= 13 && resolve(in, p, &r, err, errlen) < 0)
		goto fail;
	if (p->minor >= 14 && pp_remote_exec_ok(p, err, errlen) < 0)
		goto fail;
	in->ring_fd = pp_ring_create(&in->ring, ring_bytes, PP_RING_DROP);
	if (in->ring_fd < 0) {
		snprintf(err, errlen, "cannot create the event ring: %s",
			 strerror(-in->ring_fd));
		in->ring_fd = -1;
		goto fail;
	}
	in->ring.hdr->sample_bytes = sample_bytes;
	in->ring.hdr->opts = native ? PP_OPT_NATIVE : 0;
	in->ring.hdr->attached = 1;
	in->shim_src = shim_path;
	in->d.memfd = -1;
	e = copy_shim(in, shim_path, err, errlen);
	if (e < 0)
		goto fail;
	if (e > 0) {
		memfd_name(in);
		r.memfd_name = in->shim_base;
		if (getenv("PYPROF_DEBUG"))
			fprintf(stderr, "pyprof: pid %d's /tmp: %s: the shim "
				"goes into a memfd\n", in->pid, in->why_memfd);
	}
	in->lfd = listen_on(in);
	if (in->lfd < 0) {
		snprintf(err, errlen, "cannot listen for the shim: %s",
			 strerror(-in->lfd));
		in->lfd = -1;
		goto fail;
	}
	in->start_ns = pp_now_ns();
	if (breaker_off(p->minor) && p->interp)
		in->breaker = p->interp + breaker_off(p->minor);
	e = -1;
	if (p->minor >= 14) {
		/* a main thread blocked with the GIL released: the direct
		 * call (as for 3.9-3.13; its remote debugging is enabled),
		 * or else PEP 768's request, never both */
		char e2[256];

		r.direct_only = 1;
		e2[0] = 0;
		if (resolve(in, p, &r, e2, sizeof(e2)) == 0)
			e = pp_remote_call(&r, e2, sizeof(e2));
		if (e < 0 && getenv("PYPROF_DEBUG"))
			fprintf(stderr, "pyprof: no direct call: %s\n", e2);
		if (e < 0 && in->direct) {
			snprintf(err, errlen, "%s", e2);
			goto fail;
		}
	}
	if (p->minor >= 14 && e < 0) {
		char script[PATH_MAX];

		if (r.memfd_name) {
			if (script_memfd(in, &r, script, sizeof(script), err,
					 errlen) < 0)
				goto fail;
		} else if (write_script(in, script, sizeof(script)) < 0) {
			snprintf(err, errlen, "cannot write a script into the "
				 "target's /tmp: %s", strerror(errno));
			goto fail;
		}
		e = pp_remote_exec(p, script, &in->pending, err, errlen);
	} else if (p->minor <= 13) {
		e = pp_remote_call(&r, err, errlen);
	}
	if (e < 0)
		goto fail;
	return in;
fail:
	inject_free(in);
	return NULL;
}

/* the process at the other end of fd, in our pid namespace */
static int peer_is(int fd, int pid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return 0;
	if (cr.pid != pid && getenv("PYPROF_DEBUG"))
		fprintf(stderr, "pyprof: refused the shim of pid %d (forked "
			"from %d before it loaded its own)\n", cr.pid, pid);
	return cr.pid == pid;
}

int pp_inject_poll(struct pp_inject *in, char *err, size_t errlen)
{
	struct pp_inject_hello hello = { PP_INJ_MAGIC, PP_ABI_VERSION,
					 in->breaker };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &hello, sizeof(hello) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (in->connected)
		return 1;
	hand_shim(in);
	fd = accept4(in->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0 && !peer_is(fd, in->pid)) {
		/* a child forked before the pending call ran, running the
		 * copy it inherited: closed without a word, it unloads (and
		 * leaves the file to the target) */
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		if (!in->direct)
			kick(in);
		if (!in->said_waiting &&
		    pp_now_ns() - in->start_ns > 2000000000ull) {
			in->said_waiting = 1;
			if (in->direct)
				fprintf(stderr, "pyprof: waiting for pid %d's "
					"main thread to take the GIL (it loads "
					"the shim from inside a system call)\n",
					in->pid);
			else
				fprintf(stderr, "pyprof: waiting for pid %d's "
					"main thread to run Python code (it loads "
					"the shim between two bytecodes)\n",
					in->pid);
		}
		return 0;
	}
	memset(cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &in->ring_fd, sizeof(int));
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0) {
		snprintf(err, errlen, "cannot hand the ring to the shim: %s",
			 strerror(errno));
		close(fd);
		return -1;
	}
	in->conn = fd;
	close(in->lfd);
	in->lfd = -1;
	close(in->ring_fd);
	in->ring_fd = -1;
	drop_copy(in);		/* mapped by now */
	in->connected = 1;
	return 1;
}

struct pp_ring *pp_inject_ring(struct pp_inject *in)
{
	return in && in->connected ? &in->ring : NULL;
}

static int shim_mapped(const struct pp_inject *in)
{
	char fn[64], line[PATH_MAX + 128];
	int found = 0;
	FILE *f;

	snprintf(fn, sizeof(fn), "/proc/%d/maps", in->pid);
	f = fopen(fn, "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, in->shim_base) != NULL;
	fclose(f);
	return found;
}

void pp_inject_release(struct pp_inject *in)
{
	if (!in || !in->connected || in->conn < 0)
		return;
	/* the shim's next recorded event sees this and unhooks */
	__atomic_store_n(&in->ring.hdr->collector_alive, 0, __ATOMIC_RELEASE);
	close(in->conn);	/* its watcher queues the detach */
	in->conn = -1;
}

int pp_inject_stop(struct pp_inject *in, pp_ring_fn fn, void *ctx,
		   double wait_s)
{
	uint64_t end = pp_now_ns() + (uint64_t)(wait_s * 1e9);
	struct timespec nap = { 0, 5000000 };
	int gone = 1;

	if (!in)
		return 1;
	if (!in->connected && in->pending) {
		/* 3.14+: withdraw a request not run yet (the interpreter would
		 * report the missing script on its stderr) */
		int zero = 0;
		struct iovec l = { &zero, sizeof(zero) };
		struct iovec r = { (void *)in->pending, sizeof(zero) };

		process_vm_writev(in->pid, &l, 1, &r, 1, 0);
	}
	drop_copy(in);
	if (in->lfd >= 0) {
		close(in->lfd);
		in->lfd = -1;
	}
	if (in->connected) {
		pp_inject_release(in);
		while ((gone = !shim_mapped(in)) == 0 && pp_now_ns() < end) {
			kick(in);
			if (fn)
				pp_ring_drain(&in->ring, 4u << 20, fn, ctx);
			nanosleep(&nap, NULL);
		}
		/* all of it: a process that ran its whole life while pyprof
		 * was busy elsewhere (attaching to its siblings) left more
		 * than one drain's worth */
		while (fn && pp_ring_drain(&in->ring, 4u << 20, fn, ctx) > 0)
			;
	}
	inject_free(in);
	return gone;
}

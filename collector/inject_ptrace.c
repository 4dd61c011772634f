// SPDX-License-Identifier: MIT
/*
 * One call made by one thread of the target (inject.h), by ptrace,
 * x86-64 only. Safe points and a pyprof killed at any moment:
 *
 * - The thread is taken at a system call boundary only: blocked in one
 *   (interrupted), or stopped at the entry of its next (PTRACE_SYSCALL).
 *   A thread there holds no user-space lock it would need again: it
 *   released the GIL or is inside a libc wrapper; the only code that
 *   runs on it is the target's libc syscall() and Py_AddPendingCall
 *   (Python/ceval.c: a lock of its own, no allocation).
 * - Its registers R (as they must be to carry on: an interrupted system
 *   call is made to run again, as the kernel's own restart would) go
 *   into a signal frame written below its stack's red zone, with its FP
 *   state and signal mask. What it is made to run returns into glibc's
 *   __restore_rt (rt_sigreturn), which puts R back. So the thread puts
 *   itself back whatever happens to pyprof: from the first changed
 *   register on, if pyprof dies, the kernel resumes the thread into that
 *   return path. It is never stopped by us for longer than the steps.
 * - Steps: the thread calls syscall(SYS_mmap, ...) (stopped at that
 *   system call's exit to learn the address), the page is written, and
 *   from that stop it is sent into fn(a0, a1) and detached.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "procfs.h"
#include "pp_clock.h"

#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516
#define NR_restart_syscall 219
#define NR_close 3
#define NR_mmap 9
#define NR_munmap 11
#define NR_memfd_create 319
#define MFD_NOEXEC_SEAL_ 0x08u	/* linux/memfd.h, 6.3+ */
#define MFD_EXEC_ 0x10u
#define NR_rt_sigreturn 15
#define RED_ZONE 128

/* the kernel's struct ucontext and rt_sigframe, x86-64
 * (arch/x86/include/uapi/asm/sigcontext.h, asm/sigframe.h) */
struct k_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2;
	uint64_t fpstate;
	uint64_t reserved1[8];
};
struct k_ucontext {
	uint64_t uc_flags;
	uint64_t uc_link;
	uint64_t ss_sp;
	int32_t ss_flags, pad;
	uint64_t ss_size;
	struct k_sigcontext mc;
	uint64_t sigmask;
};
struct k_rt_sigframe {
	uint64_t pretcode;
	struct k_ucontext uc;
	uint8_t info[128];
};
_Static_assert(sizeof(struct k_sigcontext) == 256, "sigcontext");
_Static_assert(__builtin_offsetof(struct k_ucontext, mc) == 40, "uc_mcontext");
_Static_assert(__builtin_offsetof(struct k_ucontext, sigmask) == 296, "sigmask");

static void seterr(char *err, size_t n, const char *fmt, const char *a)
{
	snprintf(err, n, fmt, a);
}

/* while put_back follows a direct call: pyprof's side of the shim's
 * handshake, which that call waits for (inject.c pp_inject_poll) */
static void (*idle_fn)(void *ctx);
static void *idle_ctx;

static int wait_stop(int tid, int *status, double secs)
{
	uint64_t end = pp_now_ns() + (uint64_t)(secs * 1e9);
	struct timespec nap = { 0, 200000 };

	for (;;) {
		int rc = waitpid(tid, status, WNOHANG | __WALL);

		if (rc == tid)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (pp_now_ns() >= end)
			return -ETIMEDOUT;
		if (idle_fn)
			idle_fn(idle_ctx);
		nanosleep(&nap, NULL);
	}
}

/* a stop that is a signal for the thread: pass it on */
static int is_signal_stop(int st)
{
	int sig = WSTOPSIG(st);

	return WIFSTOPPED(st) && !(st >> 16) && sig != (SIGTRAP | 0x80);
}

/* Resume with req and wait for the next stop of ours, handing signals
 * on to the thread. */
static int step(int tid, int req, int *st, double secs)
{
	int sig = 0, e;

	for (;;) {
		if (ptrace(req, tid, 0, (void *)(long)sig) < 0)
			return -errno;
		e = wait_stop(tid, st, secs);
		if (e < 0)
			return e;
		if (!WIFSTOPPED(*st))
			return -ESRCH;	/* it exited */
		if (!is_signal_stop(*st))
			return 0;
		sig = WSTOPSIG(*st);
	}
}

/* Blocked in a system call, per /proc: a candidate. */
static int in_syscall(int pid, int tid)
{
	char fn[96], buf[64];

	snprintf(fn, sizeof(fn), "/proc/%d/task/%d/syscall", pid, tid);
	return pp_procfs_read(fn, buf, sizeof(buf)) > 0 &&
	       buf[0] >= '0' && buf[0] <= '9';
}

/* a field of a thread's /proc status ("SigBlk:", hex; "TracerPid:",
 * decimal), 0 when absent */
static unsigned long long status_field(int pid, int tid, const char *key,
					int base)
{
	char fn[96], line[256];
	unsigned long long v = 0;
	size_t k = strlen(key);
	FILE *f;

	snprintf(fn, sizeof(fn), "/proc/%d/task/%d/status", pid, tid);
	f = fopen(fn, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, k)) {
			v = strtoull(line + k, NULL, base);
			break;
		}
	fclose(f);
	return v;
}

static uint64_t sig_blocked(int pid, int tid)
{
	return status_field(pid, tid, "SigBlk:", 16);
}

static int write_mem(int pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec l = { (void *)buf, len }, r = { (void *)addr, len };

	return process_vm_writev(pid, &l, 1, &r, 1, 0) == (ssize_t)len ? 0 :
									-EFAULT;
}

/* R: where the thread must be to carry on, from the stop's registers */
static void carry_on(struct user_regs_struct *R, int entry)
{
	long rax = (long)R->rax;

	if ((long)R->orig_rax < 0)
		return;
	if (entry) {
		R->rip -= 2;
		R->rax = R->orig_rax;
	} else if (rax == -ERESTARTSYS || rax == -ERESTARTNOINTR ||
		   rax == -ERESTARTNOHAND) {
		R->rip -= 2;
		R->rax = R->orig_rax;
	} else if (rax == -ERESTART_RESTARTBLOCK) {
		R->rip -= 2;
		R->rax = NR_restart_syscall;
	}
	R->orig_rax = -1;
}

/* The frame that puts R back; returns its address (the pretcode). */
static int write_frame(int pid, int tid, const struct user_regs_struct *R,
		       uint64_t restore_rt, uint64_t *frame,
		       struct user_fpregs_struct *fp0)
{
	struct user_fpregs_struct fp;
	struct k_rt_sigframe f;
	uint64_t top, fpa, F;

	memset(&f, 0, sizeof(f));
	if (ptrace(PTRACE_GETFPREGS, tid, 0, &fp) < 0)
		return -errno;
	*fp0 = fp;
	/* no xsave magic: the kernel restores x87/SSE state (caller-saved
	 * registers at a call boundary aside, this is all the thread has) */
	memset((char *)&fp + 464, 0, 48);
	top = (R->rsp - RED_ZONE - 256) & ~63ull;
	fpa = top - sizeof(fp);
	F = ((fpa - sizeof(f)) & ~15ull) - 8;	/* a call's entry alignment */
	f.pretcode = restore_rt;
	f.uc.uc_flags = 0;		/* also syscall()'s 7th argument: 0 */
	f.uc.ss_flags = 0x7;		/* invalid: the alternate stack stays */
	f.uc.mc = (struct k_sigcontext){
		.r8 = R->r8, .r9 = R->r9, .r10 = R->r10, .r11 = R->r11,
		.r12 = R->r12, .r13 = R->r13, .r14 = R->r14, .r15 = R->r15,
		.rdi = R->rdi, .rsi = R->rsi, .rbp = R->rbp, .rbx = R->rbx,
		.rdx = R->rdx, .rax = R->rax, .rcx = R->rcx, .rsp = R->rsp,
		.rip = R->rip, .eflags = R->eflags, .cs = R->cs, .ss = R->ss,
		.fpstate = fpa,
	};
	f.uc.sigmask = sig_blocked(pid, tid);
	if (write_mem(pid, fpa, &fp, sizeof(fp)) < 0 ||
	    write_mem(pid, F, &f, sizeof(f)) < 0)
		return -EFAULT;
	*frame = F;
	return 0;
}

/* Take tid to a system call boundary: 1 entry-stop, 0 other, <0 no. */
static int to_boundary(int tid, struct user_regs_struct *R0)
{
	int st, e;

	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)PTRACE_O_TRACESYSGOOD) < 0)
		return -errno;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		return -errno;
	for (;;) {
		e = wait_stop(tid, &st, 2.0);
		if (e < 0)
			return e;
		if (!WIFSTOPPED(st))
			return -ESRCH;
		if (!is_signal_stop(st))
			break;
		/* a signal came first: hand it on, the interrupt still holds */
		if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)WSTOPSIG(st)) < 0)
			return -errno;
	}
	if (ptrace(PTRACE_GETREGS, tid, 0, R0) < 0)
		return -errno;
	if ((long)R0->orig_rax >= 0)
		return 0;
	/* running user code: its next system call entry, briefly */
	e = step(tid, PTRACE_SYSCALL, &st, 0.3);
	if (e == -ETIMEDOUT) {
		ptrace(PTRACE_INTERRUPT, tid, 0, 0);
		wait_stop(tid, &st, 5.0);
		return -EAGAIN;
	}
	if (e < 0)
		return e;
	if (WSTOPSIG(st) != (SIGTRAP | 0x80) ||
	    ptrace(PTRACE_GETREGS, tid, 0, R0) < 0)
		return -EAGAIN;
	return 1;
}

/*
 * fn has been set going: put R back ourselves rather than through the
 * frame. rt_sigreturn makes a pending restart of the interrupted system
 * call fail with EINTR (the kernel resets the thread's restart block:
 * arch/x86/kernel/signal_64.c), which a sleep (nanosleep, a timed futex
 * or poll) in C code that does not retry would see as cut short. So fn
 * is followed to its return into __restore_rt, whose rt_sigreturn is
 * skipped and R and the FP state set instead: the thread restarts its
 * call as the kernel would have. If that does not come within 10 s (fn
 * blocked: a direct call waiting for the GIL) or pyprof dies meanwhile,
 * the frame still puts R back. Left stopped, for the detach.
 */
static void put_back(int tid, const struct user_regs_struct *R,
		     const struct user_fpregs_struct *fp, uint64_t F)
{
	uint64_t end = pp_now_ns() + 10000000000ull;
	struct user_regs_struct A, B;
	struct __ptrace_syscall_info si;
	int st, e;

	while (pp_now_ns() < end) {
		e = step(tid, PTRACE_SYSCALL, &st,
			 (end - pp_now_ns()) / 1e9 + 0.001);
		if (e == -ETIMEDOUT) {
			/* running: stopped again, so that it can be let go */
			ptrace(PTRACE_INTERRUPT, tid, 0, 0);
			wait_stop(tid, &st, 5.0);
			return;
		}
		if (e < 0 || ptrace(PTRACE_GETREGS, tid, 0, &A) < 0)
			return;
		if (WSTOPSIG(st) != (SIGTRAP | 0x80) ||
		    ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof(si), &si) <= 0 ||
		    si.op != 1 /* PTRACE_SYSCALL_INFO_ENTRY */ ||
		    A.orig_rax != NR_rt_sigreturn || A.rsp != F + 8)
			continue;
		B = *R;
		B.orig_rax = (uint64_t)-1;	/* rt_sigreturn is skipped */
		if (ptrace(PTRACE_SETFPREGS, tid, 0, (void *)fp) < 0 ||
		    ptrace(PTRACE_SETREGS, tid, 0, &B) < 0)
			ptrace(PTRACE_SETREGS, tid, 0, &A);	/* the frame's way */
		return;
	}
}

/*
 * At a system call stop, A the thread's registers: it calls libc's
 * syscall(nr, a..e) with its stack at F (where a return would go into
 * __restore_rt: R again) and is stopped at that call's exit, *ret its
 * raw result (errno is not touched). An entry-stop's own system call,
 * skipped by orig_rax -1, has an exit-stop first: only stops of nr
 * count. 0 or -errno (then the thread may be anywhere on its way back).
 */
static int remote_syscall(int tid, uint64_t libc_syscall, uint64_t F,
			  struct user_regs_struct *A, long nr, uint64_t a,
			  uint64_t b, uint64_t c, uint64_t d, uint64_t e5,
			  uint64_t *ret)
{
	int st, e = 0, i, seen;

	A->rip = libc_syscall;
	A->rsp = F;
	A->rdi = nr;
	A->rsi = a;
	A->rdx = b;
	A->rcx = c;
	A->r8 = d;
	A->r9 = e5;
	A->orig_rax = (uint64_t)-1;
	if (ptrace(PTRACE_SETREGS, tid, 0, A) < 0)
		return -errno;
	for (i = 0, seen = 0; i < 16 && seen < 2; i++) {
		e = step(tid, PTRACE_SYSCALL, &st, 5.0);
		if (e < 0 || ptrace(PTRACE_GETREGS, tid, 0, A) < 0)
			break;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80) &&
		    A->orig_rax == (uint64_t)nr)
			seen++;
	}
	if (seen < 2)
		return e < 0 ? e : -EPROTO;
	*ret = A->rax;
	return 0;
}

/*
 * The memfd the shim is loaded from when it cannot be copied into the
 * target's /tmp (inject.c): made by the thread itself, so that the
 * descriptor is the target's, named r->memfd_name (written into the
 * page, which fill overwrites). MFD_EXEC first: vm.memfd_noexec=1 seals
 * a memfd made without it against execution; kernels before 6.3 do not
 * know it (EINVAL); vm.memfd_noexec=2 refuses it (EACCES). Data (a
 * script) is made MFD_NOEXEC_SEAL, which every setting allows.
 */
static int make_memfd(const struct pp_remote *r, int tid, uint64_t F,
		      struct user_regs_struct *A, uint64_t page, int *fd,
		      char *err, size_t errlen)
{
	char fn[64];
	uint64_t ret = 0;
	int m, e, ok;

	snprintf(fn, sizeof(fn), "/proc/%d/mem", r->pid);
	m = open(fn, O_RDWR | O_CLOEXEC);
	ok = m >= 0 && pwrite(m, r->memfd_name, strlen(r->memfd_name) + 1,
			      page) == (ssize_t)strlen(r->memfd_name) + 1;
	if (m >= 0)
		close(m);
	if (!ok) {
		seterr(err, errlen, "cannot write the target's page%s", "");
		return -EIO;
	}
	e = remote_syscall(tid, r->libc_syscall, F, A, NR_memfd_create, page,
			   MFD_CLOEXEC | (r->memfd_data ? MFD_NOEXEC_SEAL_ :
					  MFD_EXEC_), 0, 0, 0, &ret);
	if (!e && (long)ret == -EINVAL)
		e = remote_syscall(tid, r->libc_syscall, F, A, NR_memfd_create,
				   page, MFD_CLOEXEC, 0, 0, 0, &ret);
	if (e < 0) {
		seterr(err, errlen, "the target's thread did not make a memfd "
		       "(%s)", strerror(-e));
		return e;
	}
	if ((long)ret == -EACCES) {
		seterr(err, errlen, "the target's /tmp is not usable and "
		       "vm.memfd_noexec=2 forbids an executable memfd%s", "");
		return -EACCES;
	}
	if ((long)ret < 0) {
		seterr(err, errlen, "memfd_create in the target failed (%s)",
		       strerror(-(long)ret));
		return (int)(long)ret;
	}
	*fd = (int)ret;
	return 0;
}

/*
 * A failed step after the page, or nothing to call: the thread closes
 * memfd (>= 0) and unmaps the page itself, then returns from syscall()
 * into __restore_rt, where put_back sets R (else, the frame does).
 */
static void undo(const struct pp_remote *r, int tid, uint64_t F,
		 struct user_regs_struct *A, uint64_t page, int memfd,
		 const struct user_regs_struct *R,
		 const struct user_fpregs_struct *fp)
{
	uint64_t ret;

	if (memfd >= 0 && remote_syscall(tid, r->libc_syscall, F, A, NR_close,
					 memfd, 0, 0, 0, 0, &ret) < 0)
		return;
	if (remote_syscall(tid, r->libc_syscall, F, A, NR_munmap, page, 4096,
			   0, 0, 0, &ret) == 0)
		put_back(tid, R, fp, F);
}

/* 0, -EIO (err set: give up), -EPERM/-EACCES, or another -errno (this
 * thread cannot be used: try the next) */
static int call_on(const struct pp_remote *r, int tid, char *err,
		   size_t errlen)
{
	struct user_regs_struct R0, R, A;
	struct user_fpregs_struct fp;
	uint64_t F = 0, page, rip = 0, a0 = 0, a1 = 0, ret;
	int entry, e, direct, memfd = -1;

	entry = to_boundary(tid, &R0);
	if (entry < 0) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return entry;
	}
	direct = r->direct && r->direct(r->ctx, tid, &R0);
	if (getenv("PYPROF_DEBUG"))
		fprintf(stderr, "pyprof: thread %d stopped in system call %ld "
			"(%ld): %s\n", tid, (long)R0.orig_rax, (long)R0.rax,
			direct ? "direct call" : r->direct_only ? "not blocked "
			"with the GIL released" : r->memfd_data ? "a memfd only" :
			"pending call");
	if (!direct && r->direct_only) {
		ptrace(PTRACE_DETACH, tid, 0, 0);	/* nothing changed */
		return -EAGAIN;
	}
	R = R0;
	carry_on(&R, entry);
	e = write_frame(r->pid, tid, &R, r->restore_rt, &F, &fp);
	if (e < 0) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		seterr(err, errlen, "cannot write to the target's stack (%s)",
		       strerror(-e));
		return -EIO;
	}
	/* from here on a dead pyprof leaves the thread on its way back */
	A = R;
	e = remote_syscall(tid, r->libc_syscall, F, &A, NR_mmap, 0, 4096,
			   PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
			   (uint64_t)-1, &ret);
	if (e < 0) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		seterr(err, errlen, "the target's thread did not map a page "
		       "(%s)", strerror(-e));
		return -EIO;
	}
	page = ret;
	if ((long)page < 0 && (long)page > -4096) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		seterr(err, errlen, "mmap in the target failed (%s)",
		       strerror(-(long)page));
		return -EIO;
	}
	if (r->memfd_name) {
		e = make_memfd(r, tid, F, &A, page, &memfd, err, errlen);
		if (e < 0) {
			undo(r, tid, F, &A, page, -1, &R, &fp);
			ptrace(PTRACE_DETACH, tid, 0, 0);
			return -EIO;
		}
	}
	e = r->fill(r->ctx, page, direct, memfd, &rip, &a0, &a1);
	if (e == 0 && !rip) {
		/* the memfd was all (it stays the target's): no call */
		undo(r, tid, F, &A, page, -1, &R, &fp);
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return 0;
	}
	if (e < 0) {
		undo(r, tid, F, &A, page, memfd, &R, &fp);
		ptrace(PTRACE_DETACH, tid, 0, 0);
		seterr(err, errlen, "cannot write the target's page%s",
		       memfd >= 0 ? " or memfd" : "");
		return -EIO;
	}
	A.rip = rip;
	A.rsp = F;	/* it returns into __restore_rt: R again */
	A.rdi = a0;
	A.rsi = a1;
	A.rax = 0;
	A.orig_rax = (uint64_t)-1;
	e = ptrace(PTRACE_SETREGS, tid, 0, &A) < 0 ? -errno : 0;
	if (e < 0) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		seterr(err, errlen, "cannot set the thread's registers (%s)",
		       strerror(-e));
		return -EIO;
	}
	if (direct) {
		/* the shim's entry waits for pyprof's hello meanwhile */
		idle_fn = r->idle;
		idle_ctx = r->ctx;
	}
	put_back(tid, &R, &fp, F);
	idle_fn = NULL;
	ptrace(PTRACE_DETACH, tid, 0, 0);
	return 0;
}

/* TracerPid of a thread: another tracer holds it */
static int tracer_of(int pid, int tid)
{
	return (int)status_field(pid, tid, "TracerPid:", 10);
}

static int tids(int pid, int *out, int max)
{
	char fn[64];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	snprintf(fn, sizeof(fn), "/proc/%d/task", pid);
	dir = opendir(fn);
	if (!dir)
		return -errno;
	while ((d = readdir(dir)) && n < max)
		if (d->d_name[0] != '.')
			out[n++] = atoi(d->d_name);
	closedir(dir);
	return n;
}

int pp_remote_call(const struct pp_remote *r, char *err, size_t errlen)
{
	int t[256], tried[256], n, i, pass, e = -EAGAIN;

	n = tids(r->pid, t, 256);
	if (n <= 0) {
		seterr(err, errlen, "cannot list the target's threads%s", "");
		return -1;
	}
	/* the main thread first: the one a direct call is made on */
	for (i = 1; i < n; i++)
		if (t[i] == r->pid) {
			t[i] = t[0];
			t[0] = r->pid;
		}
	if (r->direct_only)
		n = t[0] == r->pid && in_syscall(r->pid, t[0]);
	memset(tried, 0, sizeof(tried));
	/* threads blocked in a system call first, then every other one
	 * (states change meanwhile: each thread is tried once) */
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < n; i++) {
			if (tried[i] || (!pass && !in_syscall(r->pid, t[i])))
				continue;
			tried[i] = 1;
			e = call_on(r, t[i], err, errlen);
			if (getenv("PYPROF_DEBUG"))
				fprintf(stderr, "pyprof: thread %d (%s): %d\n",
					t[i], pass ? "running" : "in a system call",
					e);
			if (e == 0)
				return 0;
			if (e == -EIO)
				return -1;
			if (r->direct_only)
				return -1;
			if (e == -EPERM || e == -EACCES) {
				int tracer = tracer_of(r->pid, t[i]);

				if (tracer > 0)
					snprintf(err, errlen, "thread %d is "
						 "traced by pid %d (a debugger, "
						 "strace?)", t[i], tracer);
				else
					seterr(err, errlen, "ptrace is not "
					       "permitted (%s)", strerror(-e));
				return -1;
			}
		}
	(void)e;
	seterr(err, errlen, "no thread of the target made a system call "
	       "within 0.3 s: loading needs one%s", "");
	return -1;
}

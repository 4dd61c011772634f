/* SPDX-License-Identifier: MIT */
/*
 * Loading the shim into a running CPython 3.9-3.15 (attach mode with
 * injection). Only a pending call puts code of ours on the main thread
 * (between bytecodes, GIL held): on 3.9-3.13 Py_AddPendingCall, queued by
 * one thread found at a system call boundary through ptrace
 * (inject_ptrace.c); on 3.14+ PEP 768's remote execution
 * (inject_pep768.c). The shim connects back over an abstract unix
 * socket and receives the ring (preload/attach.c).
 */
#ifndef PP_INJECT_H
#define PP_INJECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

#include "pp_inject.h"
#include "pp_ring.h"
#include "pyproc.h"

struct pp_inject;

/*
 * Queue the shim's loading into p->pid: copies the shim into the
 * target's /tmp (or, when it cannot, has the target make a memfd that
 * pyprof fills), creates the ring, listens, queues the pending call.
 * Returns NULL with one line in err when it could not.
 */
struct pp_inject *pp_inject_start(const struct pp_pyproc *p,
				  const char *shim_path, uint64_t ring_bytes,
				  uint64_t sample_bytes, int native,
				  char *err, size_t errlen);

/* Accept the shim's connection and hand it the ring (non-blocking).
 * 1 once connected, 0 not yet, -1 with err when it timed out. */
int pp_inject_poll(struct pp_inject *in, char *err, size_t errlen);

/*
 * Answer the shim from a thread while the caller does something else
 * (inject_answer.c); the caller leaves in alone until _end, which
 * returns what pp_inject_poll last did (err with -1). NULL in: nothing.
 */
struct pp_inject_answer *pp_inject_answer_begin(struct pp_inject *in);
int pp_inject_answer_end(struct pp_inject_answer *a, char *err,
			 size_t errlen);

/* the ring, once connected (else NULL) */
struct pp_ring *pp_inject_ring(struct pp_inject *in);

/* Tell the shim recording is over, not waiting (pp_inject_stop then
 * waits): several processes unload at once. */
void pp_inject_release(struct pp_inject *in);

/*
 * Tell the shim recording is over (it unhooks and unloads itself at the
 * target's next pending call), drain with fn meanwhile, wait up to
 * wait_s for its mapping to go, free everything. 1 if it is gone.
 */
int pp_inject_stop(struct pp_inject *in, pp_ring_fn fn, void *ctx,
		   double wait_s);

/* inject_ptrace.c: the target's thread tid, found at a system call
 * boundary, calls rip(a0, a1), with nothing left behind but a page of
 * ours written by fill. 0, or -errno with err. */
struct pp_remote {
	int pid;
	uint64_t libc_syscall;	/* libc's syscall() */
	uint64_t restore_rt;	/* mov $15,%rax; syscall */
	/* with the thread stopped, R its registers at the stop: 1 for the
	 * direct call (on this thread), 0 for the pending call */
	int (*direct)(void *ctx, int tid, const struct user_regs_struct *R);
	int direct_only;	/* the main thread's direct call, or nothing */
	/* called while a direct call is followed to its end (the shim's
	 * entry, inside it, waits for pyprof to answer its connection) */
	void (*idle)(void *ctx);
	/* non-NULL: after the page, the thread makes a memfd of this name
	 * (MFD_CLOEXEC), closed and the page unmapped again if fill fails */
	const char *memfd_name;
	int memfd_data;		/* not to be mapped executable (a script) */
	/* after the page is mapped at addr (and the memfd made: its fd in
	 * the target, else -1): its contents, what the thread calls (rip)
	 * and the call's arguments (a0, a1); *rip 0: nothing to call (the
	 * memfd was all: it stays open in the target, the page goes) */
	int (*fill)(void *ctx, uint64_t addr, int direct, int memfd,
		    uint64_t *rip, uint64_t *a0, uint64_t *a1);
	void *ctx;
};
int pp_remote_call(const struct pp_remote *r, char *err, size_t errlen);

/* inject_pep768.c, 3.14+: have the main thread run the Python script at
 * path (in the target's namespace) at its next eval-breaker check; the
 * address of the request's flag in *pending. 0, or -1 with err (remote
 * debugging disabled or absent: one line). */
int pp_remote_exec(const struct pp_pyproc *p, const char *path,
		   uint64_t *pending, char *err, size_t errlen);

/* inject_pep768.c: 0 if p's remote execution is there and enabled, or
 * -1 with err (the same lines as pp_remote_exec) */
int pp_remote_exec_ok(const struct pp_pyproc *p, char *err, size_t errlen);

#endif

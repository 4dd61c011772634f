/* SPDX-License-Identifier: MIT */
/*
 * eBPF probes on a running CPython process: GIL waits/holds, cycle-GC
 * pauses, contended lock waits with their Python stack, mmap/munmap/brk.
 * Kernel events come out as pp wire records (include/pp_wire.h).
 *
 *	pp_bpf_attach(&b, pid, PP_BPF_STALLS, emit, ctx, err, sizeof(err));
 *	while (running)
 *		pp_bpf_poll(b, 100);
 *	pp_bpf_detach(b);
 *
 * Records go to emit() from inside pp_bpf_attach (the target's threads
 * at attach), pp_bpf_poll and pp_bpf_detach (intervals still open),
 * always on the calling thread. Ids of STACK and FUNC records are
 * >= PP_BPF_ID_BASE, each defined once before the first record using
 * it. Timestamps are CLOCK_MONOTONIC ns.
 */
#ifndef PP_BPF_H
#define PP_BPF_H

#include <stddef.h>
#include <stdint.h>

#include "pp_wire.h"

/* what to observe */
#define PP_BPF_GIL	 0x01	/* take_gil/drop_gil uprobes, else libc condvars */
#define PP_BPF_GC	 0x02	/* USDT gc__start/done, else collector uprobes */
#define PP_BPF_LOCKS	 0x04	/* blocked futex waits outside the GIL */
#define PP_BPF_KMEM	 0x08	/* mmap/munmap/brk syscalls */
#define PP_BPF_STALLS	 (PP_BPF_GIL | PP_BPF_GC | PP_BPF_LOCKS)
/* how */
#define PP_BPF_GIL_COND	 0x10	/* libc pthread_cond_* even if take_gil exists */
#define PP_BPF_GIL_FUTEX 0x20	/* futex waits at sched_switch: waits, no holds */
#define PP_BPF_GC_UPROBE 0x40	/* collector uprobes even if USDT exists */
#define PP_BPF_KMEM_LINES 0x80	/* no shim: anonymous mmaps are blocks of
				 * the caller's Python line (MMAP/MUNMAP) */
#define PP_BPF_KMEM_FAULTS 0x100 /* with KMEM_LINES: first-touch page
				 * faults of memory not charged whole */

struct pp_bpf;
struct pp_pyproc;

typedef void (*pp_emit_fn)(const struct pp_hdr *rec, void *ctx);

/* 0, or -1 with one line in err (no such pid, not Python, unsupported
 * version, no privilege, nothing could be attached). */
int pp_bpf_attach(struct pp_bpf **out, int pid, unsigned mode,
		  pp_emit_fn emit, void *ctx, char *err, size_t errlen);
/* Deliver what the kernel has; waits up to timeout_ms for the first
 * event. Returns events handled or -errno. */
int pp_bpf_poll(struct pp_bpf *b, int timeout_ms);
/* An fd that polls readable when events wait (epoll of the rings). */
int pp_bpf_fd(const struct pp_bpf *b);
/* Drain, close open intervals at now, remove every probe. */
void pp_bpf_detach(struct pp_bpf *b);
/* The same when the target has exited: the kernel's slow uprobe removal
 * is left to a short-lived child instead of delaying pyprof. */
void pp_bpf_detach_target_gone(struct pp_bpf *b);

/* One line per concern: which probe source produced its numbers. */
const char *pp_bpf_sources(const struct pp_bpf *b);
/* PP_BPF_* bits actually attached. */
unsigned pp_bpf_active(const struct pp_bpf *b);
/* Events the kernel could not queue (ring full) so far, for one
 * PP_LOST_BPF_* source (pp_wire.h); 0 for any other. */
uint64_t pp_bpf_lost(const struct pp_bpf *b, int src);
const struct pp_pyproc *pp_bpf_proc(const struct pp_bpf *b);

#endif

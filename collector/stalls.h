/* SPDX-License-Identifier: MIT */
/*
 * Stalls: what the GC, GIL and lock records (PP_REC_GC/GIL/LOCK, from
 * the eBPF probes or the shim's in-process fallback) add up to, as the
 * report shows it. Feed every record of a recording to pp_stalls_add
 * (others are ignored, except THREAD, FUNC and STACK which it keeps to
 * name threads and resolve stack ids itself).
 *
 * When both sources report the same concern (a GC record with and one
 * without PP_SRC_SHIM), the eBPF one wins and the shim's is not counted.
 */
#ifndef PP_STALLS_H
#define PP_STALLS_H

#include <stdint.h>

#include "pp_wire.h"

struct pp_stalls;

struct pp_loc {
	const char *file;
	int line;
	const char *function;
};

/*
 * Frame i (0 = innermost) of stack id: 0, or -1 past the last frame or
 * for an unknown id. Strings must live until the report is written.
 * Pass NULL to use the FUNC/STACK records given to pp_stalls_add.
 */
typedef int (*pp_frame_fn)(void *ctx, uint32_t stack, int i,
			   struct pp_loc *out);

struct pp_gc_summary {
	int generation;
	uint64_t collections;
	double pause_total_ms, pause_p50_ms, pause_p99_ms, pause_max_ms;
	uint64_t collected, uncollectable;
};

struct pp_gil_thread {
	uint32_t tid;
	const char *name;
	double held_s, wait_s, lifetime_s;
	double wait_fraction;		/* wait_s / lifetime_s */
	uint64_t acquisitions;
	/* intervals that overlapped another of the thread's or fell
	 * outside its life: a producer's bug (0 when all is well) */
	uint64_t anomalies;
};

/* a GC pause, kept for the viewer's strip of recent pauses */
#define PP_GC_RECENT 256
struct pp_gc_pause {
	uint64_t ts_end;
	float ms;
	uint8_t gen;
};

struct pp_lock_summary {
	const char *kind;	/* "threading.Lock", "pthread_mutex", "futex",
				 * "threading.Condition", "thread.join" */
	int contention;		/* 1: a lock held by another thread; 0: a
				 * wait for a notification or a thread's end */
	double wait_s, max_wait_s;
	uint64_t contentions;
	uint32_t stack;		/* one stack id of the site */
	struct pp_loc site;	/* first frame outside threading.py */
};

struct pp_stalls *pp_stalls_init(void);
void pp_stalls_free(struct pp_stalls *s);
void pp_stalls_add(struct pp_stalls *s, const struct pp_hdr *rec);
/* The recording's span (CLOCK_MONOTONIC ns); default: first and last
 * timestamp seen. Bounds each thread's lifetime. */
void pp_stalls_span(struct pp_stalls *s, uint64_t start, uint64_t end);

/* Which source's records of type (PP_REC_GC, _GIL or _LOCK) the
 * summaries count: 1 the shim's (PP_SRC_SHIM set), 0 eBPF's. An export
 * re-reading the trace keeps the same ones. */
int pp_stalls_uses_shim(const struct pp_stalls *s, int type);

/* Generation gen (0-2): 0, or -1 if no collection was seen at all. */
int pp_stalls_gc(const struct pp_stalls *s, int gen,
		 struct pp_gc_summary *out);
/* Up to max of the last GC pauses, oldest first, from the source the
 * figures come from; returns the count. */
size_t pp_stalls_gc_recent(const struct pp_stalls *s, struct pp_gc_pause *out,
			   size_t max);
/* Threads that touched the GIL, by tid; returns how many (may exceed
 * max: call again with a bigger out). */
int pp_stalls_gil_threads(const struct pp_stalls *s,
			  struct pp_gil_thread *out, int max);
/* All waits / all lifetimes of the threads that touched the GIL. */
double pp_stalls_gil_wait_fraction(const struct pp_stalls *s);
/* The threads' anomalies summed (struct pp_gil_thread). */
uint64_t pp_stalls_gil_anomalies(const struct pp_stalls *s);
/* Waits grouped by (kind, site), contention first, then by wait_s
 * descending; returns how many (may exceed max). */
int pp_stalls_locks(const struct pp_stalls *s, pp_frame_fn fn, void *ctx,
		    struct pp_lock_summary *out, int max);

/* Which producer the figures come from: "ebpf" (it wins when both
 * sent them), "shim", or "none". */
const char *pp_stalls_gc_source(const struct pp_stalls *s);
const char *pp_stalls_gil_source(const struct pp_stalls *s);
/* pp_stalls_gil_threads and pp_stalls_locks into an array of their own
 * size (free it); return how many. */
int pp_stalls_gil_threads_all(const struct pp_stalls *s,
			      struct pp_gil_thread **out);
int pp_stalls_locks_all(const struct pp_stalls *s, pp_frame_fn fn, void *ctx,
			struct pp_lock_summary **out);

#endif

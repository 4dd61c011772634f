/* SPDX-License-Identifier: MIT */
/*
 * What the GC and Threads & locks views show, read out of the model's
 * stalls (collector/stalls.h) in one place, so the drawing code does
 * not depend on how the stalls are kept. have_* = 0: no data.
 */
#ifndef PP_STALLS_VIEW_H
#define PP_STALLS_VIEW_H

#include <stdint.h>

#include "../collector/model.h"
#include "../collector/stalls.h"

#define PP_VW_GENS 3
#define PP_VW_RECENT 256

struct pp_vw_gen {
	uint64_t count;
	double total_ms, p50_ms, p99_ms, max_ms;
	uint64_t collected, uncollectable;
};

struct pp_vw_lock {
	char kind[40];
	int contention;			/* 0: a wait for a notification/join */
	uint32_t stack;			/* where it was waited on (0: unknown) */
	char site[160];			/* "file.py:12 func", or empty */
	double wait_s, max_ms;
	uint64_t contentions;
};

struct pp_vw_stalls {
	int have_gc, have_gil, have_locks;
	char why[96];			/* when there is no data: why */
	/* GC */
	struct pp_vw_gen gen[PP_VW_GENS];
	uint64_t gc_count;
	double gc_last_ms, gc_max_ms, gc_total_ms;
	double recent_ms[PP_VW_RECENT];	/* last pauses, oldest first */
	int recent_gen[PP_VW_RECENT];
	int nrecent;
	/* GIL and locks */
	double gil_wait;		/* share of thread time waiting */
	struct pp_gil_thread *threads;	/* the aggregation's own (stalls.h) */
	size_t nthreads;
	struct pp_vw_lock *locks;	/* most waited first */
	size_t nlocks;
};

/* Fill *s (threads/locks malloc'd: free with pp_vw_stalls_free). */
void pp_vw_stalls_get(const struct pp_model *m, struct pp_vw_stalls *s);
void pp_vw_stalls_free(struct pp_vw_stalls *s);

#endif

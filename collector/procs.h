/* SPDX-License-Identifier: MIT */
/*
 * A stream of several processes (--children: PID records, pp_wire.h)
 * seen as one of them or as all of them merged. Each process's records
 * are its own world (ids, addresses, ticks); merging renumbers ids,
 * moves each process's addresses apart (bit 47 up: user addresses lie
 * below), sums RSS and losses over the processes and keeps the first
 * process's META, PROC, marks and EXIT. A stream without PID records
 * passes through either way unchanged.
 *
 * Reading a trace:
 *	s = pp_procsel_new(pid);		// or PP_PROCS_MERGE
 *	pp_trace_set_filter(r, pp_procsel_filter, s);
 * Live (the viewer): pp_procmux_feed() keeps a model per process and
 * the merged one.
 */
#ifndef PP_PROCS_H
#define PP_PROCS_H

#include <stddef.h>

#include "model.h"
#include "trace.h"

#define PP_PROCS_MERGE 0

struct pp_procsel;

struct pp_procsel *pp_procsel_new(int pid);
void pp_procsel_free(struct pp_procsel *s);
/* a pp_trace_filter_fn (trace.h); also usable on a live stream */
int pp_procsel_filter(void *ctx, const struct pp_hdr *rec,
		      const struct pp_hdr **out);

struct pp_proc_id {
	int pid, ppid;		/* ppid 0: the root (the pid attached to) */
	int wrapped;		/* the root, a command pyprof ran */
};
/*
 * The processes of the trace, the root first, then in order of their
 * first record; *out malloc'd. Reads the trace once (no filter may be
 * set) and rewinds it. The count (>= 1), or -1 if it cannot be read.
 */
long pp_trace_procs(struct pp_trace_reader *r, struct pp_proc_id **out);

/* Live: one model per process, and the merged model. */
struct pp_procmux {
	struct pp_model *merged;	/* the caller's */
	struct pp_procsel *sel;		/* merging it */
	struct pp_procview {
		int pid, ppid;
		struct pp_model m;
	} **procs;
	size_t nprocs, cap;
	long cur;			/* whose records come, -1: none */
};

void pp_procmux_init(struct pp_procmux *x, struct pp_model *merged);
void pp_procmux_feed(struct pp_procmux *x, const struct pp_hdr *rec);
/* Every model empty again, for the stream from its start (a replay
 * seeking back); the per-process models stay where they are. */
void pp_procmux_reset(struct pp_procmux *x);
/* The model shown for i: -1 the merged one, else process i's. */
struct pp_model *pp_procmux_model(struct pp_procmux *x, long i);
void pp_procmux_free(struct pp_procmux *x);

#endif

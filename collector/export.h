/* SPDX-License-Identifier: MIT */
/*
 * Exports of a finished model for other tools: folded stacks
 * (FlameGraph, speedscope, Pyroscope) and Chrome's Trace Event JSON
 * (Perfetto). Timed records are re-read from the trace rather than kept
 * in the model; --from/--to windows are seconds since the trace start.
 */
#ifndef PP_EXPORT_H
#define PP_EXPORT_H

#include <stdio.h>

#include "model.h"
#include "trace.h"

struct pp_window {
	double from_s, to_s;		/* to_s = INFINITY: to the end */
};

/* per-stack figures at one moment, so a window shows what it added */
struct pp_stack_fig {
	double live, alloc;
};
struct pp_stack_snap {
	struct pp_stack_fig *lo, *hi;	/* by stack id, as model.stacks(_hi) */
	size_t nlo, nhi;
	struct pp_stack_fig nostack;	/* blocks without a Python stack */
};

/* The model's stacks as they are now (end: their end-of-run live bytes,
 * for a finished model). */
void pp_stack_snap_take(struct pp_stack_snap *s, const struct pp_model *m,
			int end);
void pp_stack_snap_free(struct pp_stack_snap *s);

enum pp_collapsed_by { PP_BY_LIVE, PP_BY_ALLOC, PP_BY_GIL, PP_BY_LOCKS };

/*
 * Folded stacks, "outer;...;inner VALUE" per distinct stack. live/alloc:
 * bytes of to minus from (from NULL: since the start), lines with
 * nothing left out; gil/locks: waits in µs within w, read again from r.
 * Returns 0, or -1 when the trace cannot be re-read.
 */
int pp_export_collapsed(const struct pp_model *m, struct pp_trace_reader *r,
			FILE *out, enum pp_collapsed_by by,
			const struct pp_stack_snap *from, const struct pp_stack_snap *to,
			const struct pp_window *w);

/* "outer (file:line);...;inner (file:line)" of stack id, malloc'd;
 * "[no Python frame]" for an unknown or empty one */
char *pp_collapsed_stack_text(const struct pp_model *m, uint32_t id);
#define PP_COLLAPSED_NOSTACK "[no Python frame]"

/* Trace Event JSON of the records in w, re-read from r: 0 or -1. */
int pp_export_chrome(const struct pp_model *m, struct pp_trace_reader *r,
		     FILE *out, const struct pp_window *w);

/* pprof's profile.proto heap profile, gzipped, of the window w
 * (window.h; [0, end]: the whole run): 0, or -1 when out failed. */
struct pp_win;
int pp_export_pprof(const struct pp_model *m, const struct pp_win *w,
		    FILE *out);

/*
 * One self-contained HTML page (export_html.c): the timeline, a flame
 * graph of the live stacks of --format collapsed, the leak table and
 * the GC/GIL/lock summaries of the JSON report; w as for
 * pp_report_json_win (NULL: no window). 0, or -1 when out failed.
 */
int pp_export_html(const struct pp_model *m, const struct pp_win *w,
		   FILE *out);
/* pyprof diff's page: a differential flame graph of the change in live
 * (by_alloc: allocated) bytes per stack, with both sides' totals. */
struct pp_diff_side;
int pp_export_html_diff(const struct pp_diff_side *a,
			const struct pp_diff_side *b, int by_alloc, FILE *out);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * A time window of a trace (--from SEC --to SEC, seconds since the
 * trace start), the figures every report format shows for it:
 *
 *   live   bytes (blocks) allocated inside the window and still live at
 *          its end: what the window added that stayed;
 *   alloc  bytes (blocks) allocated inside the window, freed or not;
 *   growth the net change of live bytes over the window (live at its
 *          end minus live at its start, blocks of any age): negative
 *          where the window freed more than it kept.
 *
 * The edges fall on time stamps: the window opens after the first
 * record whose time is at or past --from, closes at the first at or
 * past --to. As the whole-run report takes its live figures at the end
 * of the program's own run (the atexit mark), a window ending later
 * takes its live figures there; allocations count to --to or the end
 * of the recording. With no window ([0, end]) every figure equals the
 * whole-run report's. GC collections count in the window they began
 * in, GIL and lock waits by their part inside it.
 *
 * Feed every record to the model, then pp_win_step(); at the end of
 * the data pp_model_finish() then pp_win_end().
 */
#ifndef PP_WINDOW_H
#define PP_WINDOW_H

#include <math.h>
#include <stdint.h>

#include "hashmap.h"
#include "model.h"
#include "trace.h"

struct pp_win_fig {
	double live_bytes, live_count;
	double alloc_bytes, alloc_count;
	double growth_bytes;
};

enum pp_win_state {
	PP_WIN_BEFORE,		/* --from not reached */
	PP_WIN_OPEN,
	PP_WIN_LIVE_DONE,	/* live figures taken (end of the run);
				 * allocations still count to --to */
	PP_WIN_CLOSED,
};

struct pp_win {
	double from_s, to_s;		/* asked; to_s INFINITY: the end */
	double open_s, close_s;		/* where the edges fell */
	double live_s;			/* where the live figures were taken */
	enum pp_win_state state;
	/* by stack id, as model.stacks / stacks_hi (id 0: no stack) */
	struct pp_win_fig *lo, *hi;
	size_t nlo, nhi;
	/* blocks born in the window and live (only when from_s > 0:
	 * from the start every block is) */
	struct pp_map born;
	int track;
	/* the whole heap's live bytes at the edges; frees in the window */
	double heap_at_open, heap_at_close;
	double free_bytes, free_count;
	/* the GC, GIL and lock records of the window */
	struct pp_stalls *stalls;
	/* per site after pp_win_apply(): growth_bytes by site index */
	double *site_growth;
	size_t nsites;
};

/* Set up w over [from_s, to_s] and hook it to m (pp_model_init'ed,
 * nothing fed yet). */
void pp_win_init(struct pp_win *w, struct pp_model *m, double from_s,
		 double to_s);
/* after each pp_model_feed(m, rec) */
void pp_win_step(struct pp_win *w, struct pp_model *m,
		 const struct pp_hdr *rec);
/* after pp_model_finish(m): 0, or -1 when the window lies past the
 * trace's end (nothing in it) */
int pp_win_end(struct pp_win *w, struct pp_model *m);
/* The figures of stack id (zeroes when it had none). */
struct pp_win_fig pp_win_stack(const struct pp_win *w, uint32_t id);

/*
 * Turn the finished model into the window's: sites' and stacks' end
 * figures, the heap totals, the timeline, leak flags (the run's
 * verdict, kept where the site grew in the window) and the stalls
 * become the window's, so every report and export shows the window.
 */
void pp_win_apply(struct pp_win *w, struct pp_model *m);
void pp_win_free(struct pp_win *w);
/* After pp_win_apply: the sites that allocated in the window or whose
 * live bytes changed in it (freed older blocks), by live then allocated
 * bytes, as pp_model_sorted_sites; the count, *out malloc'd. */
size_t pp_win_sorted_sites(const struct pp_model *m, const struct pp_win *w,
			   uint32_t **out);

/*
 * Read every record of r into m (pp_model_init'ed here) and w (set up
 * over [from_s, to_s]), then finish both. Returns pp_trace_next's last
 * result (0 at the end, -1 corrupt); *past_end is set when the window
 * lies past the trace's end. figures 0: the caller needs no per-stack
 * figures of a whole-run window (pp_win_stack, pp_win_apply), which
 * are then not kept (a faster read).
 */
int pp_win_read(struct pp_trace_reader *r, struct pp_model *m,
		struct pp_win *w, double from_s, double to_s, int figures,
		int *past_end);

#endif

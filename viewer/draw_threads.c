// SPDX-License-Identifier: MIT
/* The Threads & locks view: per thread, the share of its life holding
 * the GIL, waiting for it, and neither (blocked: on a lock, I/O, sleep,
 * with the GIL released); then the contended locks, most waited on
 * first, with where they were waited on. */
#include <stdio.h>

#include "vw.h"
#include "stalls_view.h"

static void meter_cell(struct pp_canvas *c, int x, int y, int w, double s,
		       double life)
{
	pp_draw_meter(c, x, y, w - 7, life > 0 ? s / life : 0);
	pp_canvas_printf(c, x + w - 7, y, VA_NORMAL, "%6.1fs", s);
}

int pp_draw_threads(struct pp_vw *v, struct pp_canvas *c, int y, int h)
{
	struct pp_vw_stalls g;
	char a[32];
	int r = 0, bw;
	size_t i;

	pp_vw_stalls_get(v->m, &g);
	bw = (c->w - 30) / 3;
	if (bw < 12)
		bw = 12;
	pp_canvas_fill(c, 0, y, c->w, ' ', VA_TITLE);
	pp_canvas_printf(c, 0, y + r++, VA_TITLE, "%8s %-14s %6s %-*s%-*s%-*s",
			 "TID", "THREAD", "WAIT%", bw, " GIL HELD", bw,
			 " GIL WAIT", bw, " BLOCKED");
	if (!g.have_gil && !g.nthreads) {
		pp_canvas_put(c, 1, y + r++, VA_WARN, g.why[0] ? g.why :
			      "no data");
	}
	for (i = 0; i < g.nthreads && r < h / 2; i++, r++) {
		const struct pp_gil_thread *t = &g.threads[i];
		double blocked;
		int x;

		x = pp_canvas_printf(c, 0, y + r, VA_NORMAL, "%8u ", t->tid);
		x = pp_canvas_put_w(c, x, y + r, VA_NORMAL,
				    t->name ? t->name : "", 14) + 1;
		x = pp_canvas_printf(c, x, y + r, t->lifetime_s > 0 &&
				     t->wait_s / t->lifetime_s > 0.2 ? VA_LEAK :
				     VA_VALUE, "%5.1f%%", t->lifetime_s > 0 ?
				     100 * t->wait_s / t->lifetime_s : 0);
		meter_cell(c, x + 1, y + r, bw, t->held_s, t->lifetime_s);
		meter_cell(c, x + 1 + bw, y + r, bw, t->wait_s, t->lifetime_s);
		blocked = t->lifetime_s - t->held_s - t->wait_s;
		meter_cell(c, x + 1 + 2 * bw, y + r, bw, blocked > 0 ?
			   blocked : 0, t->lifetime_s);
	}
	r++;
	if (r >= h)
		goto out;
	pp_canvas_fill(c, 0, y + r, c->w, ' ', VA_TITLE);
	pp_canvas_printf(c, 0, y + r++, VA_TITLE, "%-26s %7s %10s %9s  %s",
			 "CONTENDED LOCK", "WAITS", "WAITED", "MAX", "SITE");
	if (!g.have_locks && !g.nlocks)
		pp_canvas_put(c, 1, y + r++, VA_WARN, g.why[0] ? g.why :
			      "no data");
	else if (!g.nlocks)
		pp_canvas_put(c, 1, y + r++, VA_DIM, "no contended lock");
	for (i = 0; i < g.nlocks && r < h; i++, r++) {
		const struct pp_vw_lock *l = &g.locks[i];
		int x;

		x = pp_canvas_printf(c, 0, y + r, VA_NORMAL,
				     "%-26.26s %7s %9.3fs %7.2fms  ", l->kind,
				     pp_vw_count(l->contentions, a, sizeof(a)),
				     l->wait_s, l->max_ms);
		pp_canvas_put(c, x, y + r, VA_NORMAL, l->site[0] ? l->site :
			      "?");
	}
out:
	pp_vw_stalls_free(&g);
	return r;
}

// SPDX-License-Identifier: MIT
/* The GC view: collections and pause percentiles per generation, and a
 * strip of the most recent pauses. */
#include <math.h>
#include <stdio.h>

#include "vw.h"
#include "stalls_view.h"

static int strip(struct pp_canvas *c, const struct pp_vw_stalls *g, int y,
		 int h)
{
	const int lw = 9;
	int w = c->w - lw, n = g->nrecent < w ? g->nrecent : w, i, r;
	double max = 0;

	for (i = g->nrecent - n; i < g->nrecent; i++)
		max = fmax(max, g->recent_ms[i]);
	pp_canvas_printf(c, 0, y, VA_DIM, "%.1fms", max);
	pp_canvas_put(c, 0, y + h - 1, VA_DIM, "0");
	for (r = 0; r < h; r++)
		pp_canvas_put(c, lw - 1, y + r, VA_DIM, "|");
	for (i = 0; i < n && max > 0; i++) {
		int k = g->nrecent - n + i;
		double v = g->recent_ms[k] / max * h;

		for (r = 0; r < h; r++) {
			int level = h - 1 - r;

			if (v > level + 0.5 || (level == 0 && v > 0))
				pp_canvas_fill(c, lw + i, y + r, 1,
					       '0' + g->recent_gen[k] % 10,
					       g->recent_gen[k] == 2 ? VA_LEAK :
					       VA_BAR);
		}
	}
	return h;
}

int pp_draw_gc(struct pp_vw *v, struct pp_canvas *c, int y, int h)
{
	struct pp_vw_stalls g;
	int r = 0, i, sh;

	pp_vw_stalls_get(v->m, &g);
	pp_canvas_fill(c, 0, y, c->w, ' ', VA_TITLE);
	pp_canvas_put(c, 0, y + r++, VA_TITLE,
		      " GEN COLLECTIONS   TOTAL ms    p50 ms    p99 ms    "
		      "max ms  COLLECTED UNCOLLECT");
	if (!g.have_gc) {
		pp_canvas_put(c, 1, y + r++, VA_WARN, g.why[0] ? g.why :
			      "no data");
		pp_vw_stalls_free(&g);
		return r;
	}
	for (i = 0; i < PP_VW_GENS && r < h; i++) {
		const struct pp_vw_gen *q = &g.gen[i];

		pp_canvas_printf(c, 0, y + r++, i == 2 ? VA_VALUE : VA_NORMAL,
				 "%4d %11llu %10.1f %9.2f %9.2f %9.2f "
				 "%10llu %9llu", i, (unsigned long long)q->count,
				 q->total_ms, q->p50_ms, q->p99_ms,
				 q->max_ms, (unsigned long long)q->collected,
				 (unsigned long long)q->uncollectable);
	}
	if (r < h)
		pp_canvas_printf(c, 0, y + r++, VA_LABEL,
				 " all %11llu %10.1f  (%.2f%% of the run; last "
				 "pause %.2f ms)", (unsigned long long)g.gc_count,
				 g.gc_total_ms, v->snap.t > 0 ? g.gc_total_ms /
				 10 / v->snap.t : 0, g.gc_last_ms);
	r++;
	if (r + 3 < h) {
		pp_canvas_printf(c, 0, y + r++, VA_LABEL,
				 "Recent pauses, newest right (%d; digit = "
				 "generation):", g.nrecent);
		sh = h - r < 8 ? h - r : 8;
		r += strip(c, &g, y + r, sh);
	}
	pp_vw_stalls_free(&g);
	return r;
}

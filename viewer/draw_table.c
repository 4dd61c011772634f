// SPDX-License-Identifier: MIT
/*
 * The Sites and Leaks tables. Sites: what is alive per allocation site
 * and what it does now. Leaks: the sites judged leaking, with the
 * judged growth and a line of their lowest live bytes per window.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vw.h"

struct col {
	const char *title;
	int width;
	enum pp_vw_sort sort;
};

static const struct col site_cols[] = {
	{ "LIVE", 9, SORT_LIVE }, { "GROWTH/s", 10, SORT_GROWTH },
	{ "COUNT", 8, SORT_COUNT }, { "ALLOC/s", 9, SORT_RATE },
	{ "ALLOCATED", 10, SORT_ALLOC }, { "", 5, SORT_N },
	{ "SITE", 0, SORT_SITE }, { 0 } };

static const struct col leak_cols[] = {
	{ "GROWTH/s", 10, SORT_GROWTH }, { "LIVE", 9, SORT_LIVE },
	{ "COUNT", 8, SORT_COUNT }, { "KEPT", 5, SORT_N },
	{ "", 1, SORT_N }, { "LIVE FLOOR", 0, SORT_N },
	{ "SITE", 0, SORT_SITE }, { 0 } };

static int spark_w(const struct pp_canvas *c)
{
	return c->w >= 110 ? 24 : 12;
}

/* ALLOCATED is dropped on narrow screens */
static int want(const struct col *k, int w)
{
	return !(k->sort == SORT_ALLOC && w < 100);
}

static void titles(struct pp_vw *v, struct pp_canvas *c, int y,
		   const struct col *cols)
{
	enum pp_vw_sort on = v->sort[v->view];
	const struct col *k;
	char buf[64];
	int x = 0, w;

	pp_canvas_fill(c, 0, y, c->w, ' ', VA_TITLE);
	for (k = cols; k->title; k++) {
		if (!want(k, c->w))
			continue;
		w = k->width;
		if (!w && !strcmp(k->title, "SITE")) {
			pp_canvas_put(c, x + 1, y, k->sort == on ? VA_TAB_ON :
				      VA_TITLE, "SITE");
			break;
		}
		if (!w)
			w = spark_w(c) + 1;
		if (k->width)
			snprintf(buf, sizeof(buf), "%*s", w, k->title);
		else
			snprintf(buf, sizeof(buf), " %-*s", w - 1, k->title);
		pp_canvas_put(c, x, y, k->sort == on ? VA_TAB_ON : VA_TITLE,
			      buf);
		x += w;
	}
}

static void spark(struct pp_vw *v, struct pp_canvas *c, int x, int y,
		  uint32_t site)
{
	static const char lv[] = "_.-=+*#";
	const struct pp_site *s = &v->m->sites[site];
	int nw = s->window + 1, sw = spark_w(c), i, k;
	double lo = INFINITY, hi = -INFINITY, f;

	if (nw > PP_WINDOWS)
		nw = PP_WINDOWS;
	for (i = 0; i < nw; i++) {
		lo = fmin(lo, s->floor[i]);
		hi = fmax(hi, s->floor[i]);
	}
	for (k = 0; k < sw && nw > 0; k++) {
		i = nw * k / sw;
		if (nw < sw && k >= nw)
			break;
		if (nw < sw)
			i = k;
		f = hi > lo ? (s->floor[i] - lo) / (hi - lo) : 0;
		pp_canvas_fill(c, x + k, y, 1, lv[(int)lround(f * 6)],
			       VA_LEAK);
	}
}

static void row_sites(struct pp_vw *v, struct pp_canvas *c, int y,
		      const struct pp_vw_row *r)
{
	char a[40], b[32], lab[512];
	int x = 0, at = r->leak ? VA_LEAK : VA_NORMAL;

	x = pp_canvas_printf(c, x, y, VA_VALUE, "%9s",
			     pp_vw_bytes(r->live, a, sizeof(a)));
	pp_vw_bytes(r->growth, b, sizeof(b));
	snprintf(a, sizeof(a), "%s%s", r->growth > 0.5 ? "+" : "",
		 fabs(r->growth) < 0.5 ? "0" : b);
	x = pp_canvas_printf(c, x, y, r->growth > 0.5 ? at : VA_NORMAL,
			     "%10s", a);
	x = pp_canvas_printf(c, x, y, VA_NORMAL, "%8s",
			     pp_vw_count(r->count, a, sizeof(a)));
	x = pp_canvas_printf(c, x, y, VA_NORMAL, "%9s",
			     pp_vw_bytes(r->rate, a, sizeof(a)));
	if (c->w >= 100)
		x = pp_canvas_printf(c, x, y, VA_DIM, "%10s",
				     pp_vw_bytes(r->alloc, a, sizeof(a)));
	x = pp_canvas_put(c, x, y, VA_LEAK, r->leak ? " LEAK" : "     ");
	pp_vw_site_label(v, r->site, lab, sizeof(lab), c->w - x - 1);
	pp_canvas_put(c, x + 1, y, VA_NORMAL, lab);
}

static void row_leaks(struct pp_vw *v, struct pp_canvas *c, int y,
		      const struct pp_vw_row *r)
{
	char a[32], lab[512];
	int x = 0;

	pp_vw_bytes(r->judged_growth, a, sizeof(a));
	snprintf(lab, sizeof(lab), "+%s", a);
	x = pp_canvas_printf(c, 0, y, VA_LEAK, "%10s", lab);
	x = pp_canvas_printf(c, x, y, VA_VALUE, "%9s",
			     pp_vw_bytes(r->live, a, sizeof(a)));
	x = pp_canvas_printf(c, x, y, VA_NORMAL, "%8s",
			     pp_vw_count(r->count, a, sizeof(a)));
	x = pp_canvas_printf(c, x, y, VA_NORMAL, "%4.0f%%",
			     r->retention * 100);
	spark(v, c, x + 2, y, r->site);
	x += 2 + spark_w(c);
	pp_vw_site_label(v, r->site, lab, sizeof(lab), c->w - x - 1);
	pp_canvas_put(c, x + 1, y, VA_NORMAL, lab);
}

/* growth by importing modules is told apart from leaks (README) */
static void imports_note(struct pp_canvas *c, int y, size_t n)
{
	char buf[96];

	snprintf(buf, sizeof(buf), "not leaks: %zu site%s that grew by "
		 "importing modules", n, n == 1 ? "" : "s");
	pp_canvas_put(c, 1, y, VA_DIM, buf);
}

int pp_draw_table(struct pp_vw *v, struct pp_canvas *c, int y, int h)
{
	struct pp_vw_snap *s = &v->snap;
	int leaks = v->view == VIEW_LEAKS, i;
	long n;

	if (h < 2)
		return 0;
	titles(v, c, y, leaks ? leak_cols : site_cols);
	v->table_h = h - 1;
	if (!v->batch) {
		/* keep the selection in sight */
		if (v->sel < v->top)
			v->top = v->sel;
		if (v->sel >= v->top + v->table_h)
			v->top = v->sel - v->table_h + 1;
	}
	pp_vw_order(v, v->top + v->table_h);
	if (!s->nrows && v->m->attach_mode &&
	    !strcmp(v->m->attach_mode, "ebpf")) {
		pp_canvas_put(c, 1, y + 1, VA_DIM, "no memory made since attach "
			      "is live (blocks inside memory already made "
			      "need injection)");
		return 2;
	}
	if (!s->nrows) {
		pp_canvas_put(c, 1, y + 1, VA_DIM, leaks ?
			      (v->filter[0] ? "no leaking site matches the filter" :
			       "no site judged leaking (yet): a site must grow "
			       "through most of the run") :
			      (v->filter[0] ? "no site matches the filter" :
			       "no allocations seen yet"));
		if (leaks && s->nimported && !v->filter[0] && h > 2) {
			imports_note(c, y + 2, s->nimported);
			return 3;
		}
		return 2;
	}
	for (i = 0; i < v->table_h; i++) {
		n = v->top + i;
		if (n >= (long)s->nrows)
			break;
		if (leaks)
			row_leaks(v, c, y + 1 + i, &s->all[s->rows[n]]);
		else
			row_sites(v, c, y + 1 + i, &s->all[s->rows[n]]);
		if (n == v->sel && !v->batch)
			pp_canvas_paint(c, y + 1 + i, VA_SELECT);
	}
	if (leaks && s->nimported && i < v->table_h) {
		imports_note(c, y + 1 + i, s->nimported);
		i++;
	}
	return 1 + i;
}

// SPDX-License-Identifier: MIT
/*
 * Snapshots. pp_vw_take copies what the screen shows out of the model
 * (so a paused screen stays still while the model moves on);
 * pp_vw_select filters it and orders only the rows that can be seen:
 * a quickselect brings the top K to the front and only those K are
 * sorted, so a frame costs O(sites + K log K), not a full sort.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../collector/alloc.h"
#include "vw.h"

static const char *sort_names[SORT_N] = {
	[SORT_LIVE] = "LIVE", [SORT_GROWTH] = "GROWTH", [SORT_COUNT] = "COUNT",
	[SORT_RATE] = "ALLOC/s", [SORT_ALLOC] = "ALLOCATED", [SORT_SITE] = "SITE",
};

const char *pp_vw_sort_name(enum pp_vw_sort s)
{
	return s < SORT_N ? sort_names[s] : "?";
}

void pp_snap_free(struct pp_vw_snap *s)
{
	free(s->all);
	free(s->rows);
	memset(s, 0, sizeof(*s));
}

/* heap growth per minute over the last minute of the timeline */
static double heap_per_min(const struct pp_model *m, double now, double live)
{
	size_t lo = 0, hi = m->ntimeline, mid;
	const struct pp_point *p;

	if (!m->ntimeline)
		return NAN;
	while (lo < hi) {	/* first point at or after now - 60 */
		mid = (lo + hi) / 2;
		if (m->timeline[mid].t < now - 60)
			lo = mid + 1;
		else
			hi = mid;
	}
	p = &m->timeline[lo < m->ntimeline ? lo : m->ntimeline - 1];
	if (now - p->t < 1.0)
		return NAN;
	return (live - p->live_bytes) / (now - p->t) * 60;
}

void pp_vw_take(struct pp_vw *v)
{
	const struct pp_model *m = v->m;
	struct pp_vw_snap *s = &v->snap;
	const struct pp_rates *r = &v->rates;
	size_t i;

	s->t = pp_model_secs(m, m->t_now);
	s->live = m->live_bytes;
	s->rss = m->rss_bytes;
	s->peak = m->peak_bytes;
	s->heap_per_min = heap_per_min(m, s->t, s->live);
	if (m->t_end_run) {
		/* after the run: the heap as the program left it */
		s->live = m->end_live_bytes;
		s->heap_per_min = heap_per_min(m, pp_model_secs(m,
					       m->t_end_run), s->live);
	}
	s->alloc_rate = r->alloc_rate_g;
	s->allocn_rate = r->allocn_rate_g;
	s->events = m->events;
	s->dropped = m->dropped;
	s->exited = m->exited;
	s->exit_status = m->exit_status;
	s->killed_by = m->killed_by;

	s->all = pp_grow(s->all, &s->cap_all, m->nsites, sizeof(*s->all));
	s->nall = 0;
	s->nleaks = 0;
	s->nimported = 0;
	for (i = 0; i < m->nsites; i++) {
		const struct pp_site *st = &m->sites[i];
		struct pp_vw_row *row;

		if (st->alloc_count <= 0)
			continue;
		row = &s->all[s->nall++];
		row->site = i;
		row->leak = !!st->leak;
		/* after the run: the state at its end (before finalization) */
		row->live = m->t_end_run ? st->end_live_bytes : st->live_bytes;
		row->count = m->t_end_run ? st->end_live_count : st->live_count;
		row->alloc = st->alloc_bytes;
		row->growth = i < r->n ? r->live_rate[i] : 0;
		row->rate = i < r->n ? r->alloc_rate[i] : 0;
		row->judged_growth = st->growth_bytes_per_s;
		row->retention = st->retention;
		s->nleaks += row->leak;
		s->nimported += !!st->imported;
	}
}

/* ---- ordering ---------------------------------------------------------- */

static const struct pp_vw *cmp_v;
static enum pp_vw_sort cmp_key;
static int cmp_rev;

static double key_of(const struct pp_vw_row *r)
{
	switch (cmp_key) {
	case SORT_LIVE:
		return r->live;
	case SORT_GROWTH:
		return cmp_v->view == VIEW_LEAKS ? r->judged_growth : r->growth;
	case SORT_COUNT:
		return r->count;
	case SORT_RATE:
		return r->rate;
	case SORT_ALLOC:
		return r->alloc;
	default:
		return 0;
	}
}

static int cmp_site(const struct pp_vw_row *a, const struct pp_vw_row *b)
{
	const struct pp_model *m = cmp_v->m;
	const struct pp_site *x = &m->sites[a->site], *y = &m->sites[b->site];
	const struct pp_func *fx = pp_model_func(m, x->func);
	const struct pp_func *fy = pp_model_func(m, y->func);
	int c = strcmp(fx ? fx->file : "", fy ? fy->file : "");

	if (c)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* < 0: a is shown before b */
static int cmp_rows(uint32_t ia, uint32_t ib)
{
	const struct pp_vw_row *a = &cmp_v->snap.all[ia];
	const struct pp_vw_row *b = &cmp_v->snap.all[ib];
	double ka, kb;
	int c;

	if (cmp_key == SORT_SITE) {
		c = cmp_site(a, b);
	} else {
		ka = key_of(a);
		kb = key_of(b);
		c = ka > kb ? -1 : ka < kb ? 1 : 0;
		if (!c)
			c = a->alloc > b->alloc ? -1 : a->alloc < b->alloc;
	}
	if (!c)
		c = a->site < b->site ? -1 : a->site > b->site;
	return cmp_rev ? -c : c;
}

static int cmp_qsort(const void *a, const void *b)
{
	return cmp_rows(*(const uint32_t *)a, *(const uint32_t *)b);
}

static void swap(uint32_t *a, uint32_t *b)
{
	uint32_t t = *a;

	*a = *b;
	*b = t;
}

/* Rearrange x[0, n) so that its k first are the k smallest (any order). */
static void select_top(uint32_t *x, size_t n, size_t k)
{
	size_t lo = 0, hi = n, i, store, mid;
	uint32_t pivot;

	while (hi - lo > 1 && k > lo && k < hi) {
		mid = lo + (hi - lo) / 2;
		/* median of three as the pivot, parked at hi - 1 */
		if (cmp_rows(x[mid], x[lo]) < 0)
			swap(&x[mid], &x[lo]);
		if (cmp_rows(x[hi - 1], x[lo]) < 0)
			swap(&x[hi - 1], &x[lo]);
		if (cmp_rows(x[mid], x[hi - 1]) < 0)
			swap(&x[mid], &x[hi - 1]);
		pivot = x[hi - 1];
		for (store = lo, i = lo; i < hi - 1; i++)
			if (cmp_rows(x[i], pivot) < 0)
				swap(&x[i], &x[store++]);
		swap(&x[store], &x[hi - 1]);
		if (store == k || store + 1 == k)
			return;
		if (store < k)
			lo = store + 1;
		else
			hi = store;
	}
}

static void set_cmp(const struct pp_vw *v)
{
	cmp_v = v;
	cmp_key = v->sort[v->view];
	cmp_rev = v->reverse[v->view];
}

void pp_vw_order(struct pp_vw *v, size_t upto)
{
	struct pp_vw_snap *s = &v->snap;

	if (upto > s->nrows)
		upto = s->nrows;
	if (upto <= s->nsorted)
		return;
	set_cmp(v);
	select_top(s->rows + s->nsorted, s->nrows - s->nsorted,
		   upto - s->nsorted);
	qsort(s->rows + s->nsorted, upto - s->nsorted, sizeof(*s->rows),
	      cmp_qsort);
	s->nsorted = upto;
}

static int matches(const struct pp_vw *v, uint32_t site)
{
	const struct pp_site *s = &v->m->sites[site];
	const struct pp_func *f = pp_model_func(v->m, s->func);
	char buf[32];

	if (!f)
		return strcasestr("<native>", v->filter) != NULL;
	if (strcasestr(f->file, v->filter) || strcasestr(f->name, v->filter))
		return 1;
	/* "file.py:48" */
	if (strchr(v->filter, ':')) {
		const char *base = strrchr(f->file, '/');
		char lab[512];

		snprintf(buf, sizeof(buf), "%u", s->line);
		snprintf(lab, sizeof(lab), "%s:%s", base ? base + 1 : f->file,
			 buf);
		return strcasestr(lab, v->filter) != NULL;
	}
	return 0;
}

void pp_vw_select(struct pp_vw *v)
{
	struct pp_vw_snap *s = &v->snap;
	size_t i;

	s->rows = pp_grow(s->rows, &s->cap_rows, s->nall + 1, sizeof(*s->rows));
	s->nrows = 0;
	s->nsorted = 0;
	for (i = 0; i < s->nall; i++) {
		if (v->view == VIEW_LEAKS && !s->all[i].leak)
			continue;
		if (v->filter[0] && !matches(v, s->all[i].site))
			continue;
		s->rows[s->nrows++] = i;
	}
	if (v->sel >= (long)s->nrows)
		v->sel = s->nrows ? s->nrows - 1 : 0;
	if (v->sel < 0)
		v->sel = 0;
	if (v->top > v->sel)
		v->top = v->sel;
	pp_vw_order(v, v->top + (v->table_h > 0 ? v->table_h : 50) + 1);
}

// SPDX-License-Identifier: MIT
/* A time window's figures (window.h), told of every block by the model. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "stalls.h"
#include "window.h"

static struct pp_win_fig *fig_slot(struct pp_win *w, uint32_t id)
{
	struct pp_win_fig **arr = &w->lo;
	size_t *n = &w->nlo;

	if (id & PP_BPF_ID_BASE) {
		arr = &w->hi;
		n = &w->nhi;
		id &= ~PP_BPF_ID_BASE;
	}
	if (id >= *n)
		*arr = pp_grow(*arr, n, id + 1, sizeof(**arr));
	return &(*arr)[id];
}

struct pp_win_fig pp_win_stack(const struct pp_win *w, uint32_t id)
{
	static const struct pp_win_fig none;

	if (id & PP_BPF_ID_BASE) {
		id &= ~PP_BPF_ID_BASE;
		return id < w->nhi ? w->hi[id] : none;
	}
	return id < w->nlo ? w->lo[id] : none;
}

static void on_block(void *ctx, int arrive, uint64_t addr, uint64_t size,
		     double weight, uint32_t stack)
{
	struct pp_win *w = ctx;
	struct pp_win_fig *f;
	double bytes = weight * size;
	int fresh;

	if (w->state != PP_WIN_OPEN && w->state != PP_WIN_LIVE_DONE)
		return;
	f = fig_slot(w, stack);
	if (arrive == 2) {
		/* live already at a checkpoint: not allocated in the window,
		 * and older than any window that has an edge of its own */
		if (w->state == PP_WIN_OPEN && !w->track) {
			f->live_bytes += bytes;
			f->live_count += weight;
		}
		return;
	}
	if (arrive) {
		f->alloc_bytes += bytes;
		f->alloc_count += weight;
		if (w->state != PP_WIN_OPEN)
			return;
		f->live_bytes += bytes;
		f->live_count += weight;
		f->growth_bytes += bytes;
		if (w->track)
			pp_map_put(&w->born, addr, &fresh);
		return;
	}
	if (w->state != PP_WIN_OPEN)
		return;
	w->free_bytes += bytes;
	w->free_count += weight;
	f->growth_bytes -= bytes;
	/* a block older than the window was not in its live figures */
	if (!w->track || pp_map_del(&w->born, addr, NULL)) {
		f->live_bytes -= bytes;
		f->live_count -= weight;
	}
}

void pp_win_init(struct pp_win *w, struct pp_model *m, double from_s,
		 double to_s)
{
	memset(w, 0, sizeof(*w));
	w->from_s = from_s;
	w->to_s = to_s;
	w->track = from_s > 0;
	pp_map_init(&w->born, 1);
	w->stalls = pp_stalls_init();
	m->block_fn = on_block;
	m->block_ctx = w;
	if (from_s <= 0)
		w->state = PP_WIN_OPEN;		/* from the first record */
}

static uint64_t edge_ns(const struct pp_model *m, double s)
{
	if (!isfinite(s))
		return UINT64_MAX;
	return m->t0 + (uint64_t)(s * 1e9);
}

/*
 * The window's GC, GIL and lock records for its own stalls: a
 * collection by its start, waits and holds by their part inside.
 */
static void stall_rec(struct pp_win *w, const struct pp_model *m,
		      const struct pp_hdr *rec)
{
	uint64_t lo, hi, a, b;
	union {
		struct pp_rec_gil gil;
		struct pp_rec_lock lock;
	} copy;

	if (rec->type == PP_REC_THREAD) {
		pp_stalls_add(w->stalls, rec);
		return;
	}
	if (!m->t0)
		return;
	lo = edge_ns(m, w->from_s);
	hi = edge_ns(m, w->to_s);
	if (rec->type == PP_REC_GC) {
		a = ((const struct pp_rec_gc *)rec)->ts_start;
		if (a >= lo && a < hi)
			pp_stalls_add(w->stalls, rec);
		return;
	}
	if (rec->type == PP_REC_GIL) {
		if (rec->len < sizeof(copy.gil))
			return;
		memcpy(&copy.gil, rec, sizeof(copy.gil));
		a = copy.gil.ts_start;
		b = copy.gil.ts_end;
	} else {
		if (rec->len < sizeof(copy.lock))
			return;
		memcpy(&copy.lock, rec, sizeof(copy.lock));
		a = copy.lock.ts_start;
		b = copy.lock.ts_end;
	}
	if (b < a || b <= lo || a >= hi)
		return;		/* outside (or one the stalls refuse) */
	a = a < lo ? lo : a;
	b = b > hi ? hi : b;
	if (rec->type == PP_REC_GIL) {
		copy.gil.ts_start = a;
		copy.gil.ts_end = b;
		copy.gil.h.len = sizeof(copy.gil);
	} else {
		copy.lock.ts_start = a;
		copy.lock.ts_end = b;
		copy.lock.h.len = sizeof(copy.lock);
	}
	pp_stalls_add(w->stalls, &copy.gil.h);
}

static void take_live(struct pp_win *w, double heap, double t)
{
	w->heap_at_close = heap;
	w->live_s = t;
	w->state = PP_WIN_LIVE_DONE;
	pp_map_free(&w->born);
	pp_map_init(&w->born, 1);
}

void pp_win_step(struct pp_win *w, struct pp_model *m,
		 const struct pp_hdr *rec)
{
	double t;

	if (rec->type == PP_REC_GC || rec->type == PP_REC_GIL ||
	    rec->type == PP_REC_LOCK || rec->type == PP_REC_THREAD)
		stall_rec(w, m, rec);
	/* only the collector's clock records move time or end the run */
	if (rec->type != PP_REC_MARK && rec->type < PP_REC_TICK)
		return;
	if (!m->t0 || w->state == PP_WIN_CLOSED)
		return;
	t = pp_model_secs(m, m->t_now);
	if (w->state == PP_WIN_BEFORE) {
		if (t < w->from_s)
			return;
		w->state = PP_WIN_OPEN;
		w->open_s = t;
		w->heap_at_open = m->live_bytes;
		if (m->finalized)
			take_live(w, m->end_live_bytes, t);
		return;		/* what this record did came before */
	}
	if (w->state == PP_WIN_OPEN && m->finalized)
		take_live(w, m->end_live_bytes, t);
	if (t >= w->to_s) {
		if (w->state == PP_WIN_OPEN)
			take_live(w, m->live_bytes, t);
		w->state = PP_WIN_CLOSED;
		w->close_s = t;
	}
}

int pp_win_end(struct pp_win *w, struct pp_model *m)
{
	double t = pp_model_secs(m, m->t_now);

	pp_stalls_span(w->stalls, edge_ns(m, w->from_s),
		       isfinite(w->to_s) && edge_ns(m, w->to_s) < m->t_now ?
		       edge_ns(m, w->to_s) : m->t_now);
	m->block_fn = NULL;
	if (w->state == PP_WIN_BEFORE)
		return -1;
	if (w->state == PP_WIN_OPEN)
		take_live(w, m->end_live_bytes, t);
	if (w->state != PP_WIN_CLOSED) {
		w->state = PP_WIN_CLOSED;
		w->close_s = t;
	}
	return 0;
}

static uint32_t site_of(const struct pp_model *m, uint32_t id)
{
	const struct pp_stack *st = pp_model_stack(m, id);

	return st && st->site < m->nsites ? st->site : 0;
}

static void apply_stacks(struct pp_win *w, struct pp_model *m,
			 struct pp_stack *st, size_t n, uint32_t base)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint32_t id = (uint32_t)i | base;
		struct pp_win_fig f = pp_win_stack(w, id);
		struct pp_site *s;

		if (!i && !base)
			continue;	/* id 0: no stack, counted below */
		st[i].live_bytes = st[i].end_live_bytes = f.live_bytes;
		st[i].alloc_bytes = f.alloc_bytes;
		s = &m->sites[site_of(m, id)];
		if (st[i].frames && f.live_bytes >
		    (pp_model_stack(m, s->top_stack) ?
		     pp_model_stack(m, s->top_stack)->end_live_bytes : -1))
			s->top_stack = id;
	}
}

static void add_site(struct pp_win *w, struct pp_model *m, uint32_t site,
		     const struct pp_win_fig *f)
{
	struct pp_site *s = &m->sites[site];

	s->end_live_bytes += f->live_bytes;
	s->end_live_count += f->live_count;
	s->alloc_bytes += f->alloc_bytes;
	s->alloc_count += f->alloc_count;
	w->site_growth[site] += f->growth_bytes;
	m->end_live_bytes += f->live_bytes;
	m->end_live_count += f->live_count;
	m->alloc_bytes += f->alloc_bytes;
	m->alloc_count += f->alloc_count;
}

static void apply_timeline(struct pp_win *w, struct pp_model *m)
{
	size_t i, n = 0;
	double peak = fmax(w->heap_at_open, w->heap_at_close), rss = 0;

	for (i = 0; i < m->ntimeline; i++) {
		const struct pp_point *p = &m->timeline[i];

		if (p->t < w->open_s || p->t > w->close_s)
			continue;
		if (p->t <= w->live_s && p->live_bytes > peak)
			peak = p->live_bytes;
		if (p->rss_bytes > rss)
			rss = p->rss_bytes;
		m->timeline[n++] = *p;
	}
	m->ntimeline = n;
	m->peak_bytes = peak;
	m->rss_peak_bytes = rss;
}

void pp_win_apply(struct pp_win *w, struct pp_model *m)
{
	size_t i;

	free(w->site_growth);
	w->nsites = m->nsites;
	w->site_growth = pp_xcalloc(m->nsites + 1, sizeof(double));
	for (i = 0; i < m->nsites; i++) {
		struct pp_site *s = &m->sites[i];

		s->end_live_bytes = s->end_live_count = 0;
		s->alloc_bytes = s->alloc_count = 0;
		s->top_stack = 0;
	}
	m->end_live_bytes = m->end_live_count = 0;
	m->alloc_bytes = m->alloc_count = 0;
	m->free_count = w->free_count;
	apply_stacks(w, m, m->stacks, m->nstacks, 0);
	apply_stacks(w, m, m->stacks_hi, m->nstacks_hi, PP_BPF_ID_BASE);
	for (i = 0; i < w->nlo; i++)
		add_site(w, m, site_of(m, (uint32_t)i), &w->lo[i]);
	for (i = 0; i < w->nhi; i++)
		add_site(w, m, site_of(m, (uint32_t)i | PP_BPF_ID_BASE),
			 &w->hi[i]);
	for (i = 1; i < m->nsites; i++)
		m->sites[i].leak = m->sites[i].leak && w->site_growth[i] > 0;
	apply_timeline(w, m);
	pp_stalls_free(m->stalls);
	m->stalls = w->stalls;
	w->stalls = NULL;
}

static const struct pp_model *sort_m;
static const struct pp_win *sort_w;

static int by_live(const void *a, const void *b)
{
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	const struct pp_site *x = &sort_m->sites[i], *y = &sort_m->sites[j];

	if (x->end_live_bytes != y->end_live_bytes)
		return x->end_live_bytes < y->end_live_bytes ? 1 : -1;
	if (x->alloc_bytes != y->alloc_bytes)
		return x->alloc_bytes < y->alloc_bytes ? 1 : -1;
	if (sort_w->site_growth[i] != sort_w->site_growth[j])
		return sort_w->site_growth[i] < sort_w->site_growth[j] ? 1 : -1;
	return i < j ? -1 : i > j;
}

size_t pp_win_sorted_sites(const struct pp_model *m, const struct pp_win *w,
			   uint32_t **out)
{
	size_t i, n = 0;

	*out = pp_xmalloc((m->nsites + 1) * sizeof(**out));
	for (i = 0; i < m->nsites && i < w->nsites; i++)
		if (m->sites[i].alloc_count > 0 || fabs(w->site_growth[i]) >= 0.5)
			(*out)[n++] = i;
	sort_m = m;
	sort_w = w;
	qsort(*out, n, sizeof(**out), by_live);
	return n;
}

void pp_win_free(struct pp_win *w)
{
	free(w->lo);
	free(w->hi);
	free(w->site_growth);
	pp_map_free(&w->born);
	pp_stalls_free(w->stalls);
	memset(w, 0, sizeof(*w));
}

int pp_win_read(struct pp_trace_reader *r, struct pp_model *m,
		struct pp_win *w, double from_s, double to_s, int figures,
		int *past_end)
{
	const struct pp_hdr *rec;
	int rc;

	pp_model_init(m);
	pp_win_init(w, m, from_s, to_s);
	if (!figures && from_s <= 0 && !isfinite(to_s))
		m->block_fn = NULL;	/* the whole run's: the model's own */
	while ((rc = pp_trace_next(r, &rec)) > 0) {
		pp_model_feed(m, rec);
		pp_win_step(w, m, rec);
	}
	pp_model_finish(m);
	*past_end = pp_win_end(w, m) < 0;
	return rc;
}

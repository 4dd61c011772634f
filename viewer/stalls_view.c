// SPDX-License-Identifier: MIT
/*
 * Reading GC, GIL and lock figures for the views: from the model's
 * stalls (collector/stalls.h) and its ring of recent GC pauses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../collector/alloc.h"
#include "stalls_view.h"
#include "../collector/stalls.h"

void pp_vw_stalls_free(struct pp_vw_stalls *s)
{
	free(s->threads);
	free(s->locks);
	s->threads = NULL;
	s->locks = NULL;
	s->nthreads = s->nlocks = 0;
}

static void gc(const struct pp_model *m, struct pp_vw_stalls *s)
{
	struct pp_gc_pause p[PP_VW_RECENT];
	struct pp_gc_summary g;
	size_t n, i;
	int gen;

	for (gen = 0; gen < PP_VW_GENS; gen++) {
		struct pp_vw_gen *o = &s->gen[gen];

		if (pp_stalls_gc(m->stalls, gen, &g) < 0)
			continue;
		s->have_gc = 1;
		o->count = g.collections;
		o->total_ms = g.pause_total_ms;
		o->p50_ms = g.pause_p50_ms;
		o->p99_ms = g.pause_p99_ms;
		o->max_ms = g.pause_max_ms;
		o->collected = g.collected;
		o->uncollectable = g.uncollectable;
		s->gc_count += g.collections;
		s->gc_total_ms += g.pause_total_ms;
		if (g.pause_max_ms > s->gc_max_ms)
			s->gc_max_ms = g.pause_max_ms;
	}
	n = pp_stalls_gc_recent(m->stalls, p, PP_VW_RECENT);
	for (i = 0; i < n; i++) {
		s->recent_ms[i] = p[i].ms;
		s->recent_gen[i] = p[i].gen;
	}
	s->nrecent = n;
	if (n)
		s->gc_last_ms = p[n - 1].ms;
}

static void gil(const struct pp_model *m, struct pp_vw_stalls *s)
{
	int n = pp_stalls_gil_threads_all(m->stalls, &s->threads);

	s->nthreads = n > 0 ? n : 0;
	s->have_gil = n > 0;
	s->gil_wait = pp_stalls_gil_wait_fraction(m->stalls);
}

static void locks(const struct pp_model *m, struct pp_vw_stalls *s)
{
	struct pp_lock_summary *l;
	int n = pp_stalls_locks_all(m->stalls, pp_model_frame, (void *)m, &l), i;

	if (n > 0)
		s->locks = pp_xcalloc(n, sizeof(*s->locks));
	for (i = 0; s->locks && i < n; i++) {
		struct pp_vw_lock *o = &s->locks[i];
		const char *base = l[i].site.file ?
			strrchr(l[i].site.file, '/') : NULL;

		snprintf(o->kind, sizeof(o->kind), "%s%s", l[i].kind ?
			 l[i].kind : "?", l[i].contention ? "" : " (wait)");
		o->contention = l[i].contention;
		o->stack = l[i].stack;
		o->wait_s = l[i].wait_s;
		o->max_ms = l[i].max_wait_s * 1e3;
		o->contentions = l[i].contentions;
		if (l[i].site.file)
			snprintf(o->site, sizeof(o->site), "%s:%d %s",
				 base ? base + 1 : l[i].site.file,
				 l[i].site.line, l[i].site.function ?
				 l[i].site.function : "");
	}
	s->nlocks = s->locks ? n : 0;
	s->have_locks = s->nlocks > 0;
	free(l);
}

void pp_vw_stalls_get(const struct pp_model *m, struct pp_vw_stalls *s)
{
	memset(s, 0, sizeof(*s));
	if (!m->stalls) {
		snprintf(s->why, sizeof(s->why), "no data");
		return;
	}
	gc(m, s);
	gil(m, s);
	locks(m, s);
	if (!s->have_gc && !s->have_gil && !s->have_locks)
		snprintf(s->why, sizeof(s->why), "no data: no GC, GIL or "
			 "lock records in this %s", m->exited ? "run" :
			 "run yet");
}

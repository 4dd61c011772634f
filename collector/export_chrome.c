// SPDX-License-Identifier: MIT
/*
 * Chrome's Trace Event Format (the JSON object form), as Perfetto and
 * chrome://tracing open it: "M" events name the process and threads,
 * "X" complete events are GIL waits/holds, lock waits and GC pauses on
 * the thread they happened on, "C" counters carry heap and RSS. Times
 * are microseconds since the trace start. The GC, GIL and lock records
 * counted are those the report counts (pp_stalls_uses_shim).
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "export.h"
#include "hashmap.h"
#include "stalls.h"
#include "utf8.h"

enum { EV_GIL_WAIT, EV_GIL_HOLD, EV_LOCK, EV_GC };

struct ev {
	uint32_t tid;
	uint8_t kind, sub;		/* sub: GC generation, lock kind */
	uint64_t start, end;		/* ns */
	uint64_t a, b;			/* GC: collected, uncollectable;
					 * lock: stack id, lock address */
};

struct evs {
	struct ev *v;
	size_t n, cap;
};

static int by_thread_time(const void *x, const void *y)
{
	const struct ev *a = x, *b = y;

	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	/* the longer one first, so a slice encloses what starts with it */
	if (a->end != b->end)
		return a->end > b->end ? -1 : 1;
	return 0;
}

/* in the window: clipped to it, 1; else 0 */
static int clip(const struct pp_model *m, const struct pp_window *w,
		uint64_t *a, uint64_t *b)
{
	double s = pp_model_secs(m, *a), e = pp_model_secs(m, *b);
	uint64_t lo, hi;

	if (*b < *a || e < w->from_s || s > w->to_s)
		return 0;
	lo = m->t0 + (uint64_t)(w->from_s * 1e9);
	if (*a < lo)
		*a = lo;
	if (w->to_s < 1e15) {
		hi = m->t0 + (uint64_t)(w->to_s * 1e9);
		if (*b > hi)
			*b = hi;
	}
	return *b >= *a;
}

static int collect(const struct pp_model *m, struct pp_trace_reader *r,
		   const struct pp_window *w, struct evs *e)
{
	int shim_gc = pp_stalls_uses_shim(m->stalls, PP_REC_GC);
	int shim_gil = pp_stalls_uses_shim(m->stalls, PP_REC_GIL);
	int shim_lock = pp_stalls_uses_shim(m->stalls, PP_REC_LOCK);
	struct pp_map last = { 0 };	/* tid + 1 -> end of its last GIL slice */
	const struct pp_hdr *rec;
	int rc;

	pp_map_init(&last, sizeof(uint64_t));
	if (pp_trace_rewind(r) < 0)
		return -1;
	while ((rc = pp_trace_next(r, &rec)) > 0) {
		int shim = !!(rec->flags & PP_SRC_SHIM);
		struct ev v = { 0 };

		if (rec->type == PP_REC_GC && shim == shim_gc) {
			const struct pp_rec_gc *g = (const void *)rec;

			/* the report counts generations 0-2 only */
			if ((rec->flags & 0x7f) > 2)
				continue;
			v = (struct ev){ rec->aux, EV_GC, rec->flags & 0x7f,
					 g->ts_start, g->ts_end,
					 g->collected, g->uncollectable };
		} else if (rec->type == PP_REC_GIL && shim == shim_gil) {
			const struct pp_rec_gil *g = (const void *)rec;
			uint64_t *end;
			int fresh;

			v = (struct ev){ rec->aux, (rec->flags & 0x7f) ==
					 PP_GIL_WAIT ? EV_GIL_WAIT : EV_GIL_HOLD,
					 0, g->ts_start, g->ts_end, 0, 0 };
			/* as the report sums them: an overlap (a producer's
			 * bug) keeps only its part after the previous one */
			end = pp_map_put(&last, (uint64_t)rec->aux + 1, &fresh);
			if (end) {
				if (v.start < *end)
					v.start = *end;
				if (v.end > *end)
					*end = v.end;
			}
			if (v.end <= v.start)
				continue;
		} else if (rec->type == PP_REC_LOCK && shim == shim_lock) {
			const struct pp_rec_lock *k = (const void *)rec;

			v = (struct ev){ k->tid, EV_LOCK, rec->flags & 0x7f,
					 k->ts_start, k->ts_end, rec->aux,
					 k->lock_addr };
		} else {
			continue;
		}
		if (!clip(m, w, &v.start, &v.end))
			continue;
		e->v = pp_grow(e->v, &e->cap, e->n + 1, sizeof(*e->v));
		e->v[e->n++] = v;
	}
	pp_map_free(&last);
	return rc < 0 ? -1 : 0;
}

static double us(const struct pp_model *m, uint64_t ns)
{
	return ns > m->t0 ? (ns - m->t0) / 1e3 : 0;
}

static const char *lock_kind(int k)
{
	return k == PP_LOCK_PY ? "threading.Lock" :
	       k == PP_LOCK_PTHREAD ? "pthread_mutex" : "futex";
}

/* the lock's site: the first frame outside threading.py, as the report */
static void lock_site(FILE *f, const struct pp_model *m, uint32_t stack)
{
	struct pp_loc loc, first = { NULL, 0, NULL };
	int i;

	for (i = 0; pp_model_frame((void *)m, stack, i, &loc) == 0; i++) {
		const char *slash = loc.file ? strrchr(loc.file, '/') : NULL;

		if (!first.file)
			first = loc;
		if (strcmp(slash ? slash + 1 : loc.file ? loc.file : "",
			   "threading.py")) {
			first = loc;
			break;
		}
	}
	if (!first.file)
		return;
	fputs(", \"site\": ", f);
	pp_json_str(f, first.function);
	fputs(", \"file\": ", f);
	pp_json_str(f, first.file);
	fprintf(f, ", \"line\": %d", first.line);
}

static void x_event(FILE *f, const struct pp_model *m, const struct ev *v)
{
	static const char *const names[] = {
		[EV_GIL_WAIT] = "GIL wait", [EV_GIL_HOLD] = "GIL held",
		[EV_LOCK] = "lock wait", [EV_GC] = "GC",
	};
	static const char *const cats[] = {
		[EV_GIL_WAIT] = "gil", [EV_GIL_HOLD] = "gil",
		[EV_LOCK] = "lock", [EV_GC] = "gc",
	};

	fprintf(f, ",\n{\"ph\": \"X\", \"name\": \"%s", names[v->kind]);
	if (v->kind == EV_GC)
		fprintf(f, " gen %u", v->sub);
	fprintf(f, "\", \"cat\": \"%s\", \"pid\": %d, \"tid\": %u, "
		"\"ts\": %.3f, \"dur\": %.3f, \"args\": {", cats[v->kind],
		m->pid, v->tid, us(m, v->start), (v->end - v->start) / 1e3);
	if (v->kind == EV_GC) {
		fprintf(f, "\"generation\": %u, \"collected\": %llu, "
			"\"uncollectable\": %llu", v->sub,
			(unsigned long long)v->a, (unsigned long long)v->b);
	} else if (v->kind == EV_LOCK) {
		fputs("\"kind\": ", f);
		pp_json_str(f, lock_kind(v->sub));
		fprintf(f, ", \"lock\": \"0x%llx\"", (unsigned long long)v->b);
		lock_site(f, m, (uint32_t)v->a);
	}
	fputs("}}", f);
}

static void meta_event(FILE *f, const struct pp_model *m, const char *what,
		       uint32_t tid, const char *name)
{
	fprintf(f, ",\n{\"ph\": \"M\", \"name\": \"%s\", \"pid\": %d, "
		"\"tid\": %u, \"ts\": 0, \"args\": {\"name\": ", what, m->pid,
		tid);
	pp_json_str(f, name);
	fputs("}}", f);
}

static void process_name(FILE *f, const struct pp_model *m)
{
	char buf[512];
	const char *a = m->argv ? m->argv : "python";
	size_t i;

	/* argv is tab-separated: spaces read better in a track name */
	snprintf(buf, sizeof(buf), "%s", a);
	for (i = 0; buf[i]; i++)
		if (buf[i] == '\t')
			buf[i] = ' ';
	fprintf(f, "{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": %d, "
		"\"tid\": %d, \"ts\": 0, \"args\": {\"name\": ", m->pid, m->pid);
	pp_json_str(f, buf);
	fputs("}}", f);
}

static void threads(FILE *f, const struct pp_model *m, const struct evs *e)
{
	struct pp_gil_thread *t;
	int n, i;
	size_t k;
	char name[32];

	n = pp_stalls_gil_threads(m->stalls, NULL, 0);
	t = pp_xcalloc(n + 1, sizeof(*t));
	n = pp_stalls_gil_threads(m->stalls, t, n);
	for (i = 0; i < n; i++)
		meta_event(f, m, "thread_name", t[i].tid,
			   t[i].name ? t[i].name : "thread");
	/* threads seen only in lock or GC records */
	for (k = 0; k < e->n; k++) {
		if (k && e->v[k].tid == e->v[k - 1].tid)
			continue;
		for (i = 0; i < n && t[i].tid != e->v[k].tid; i++)
			;
		if (i < n)
			continue;
		snprintf(name, sizeof(name), "tid %u", e->v[k].tid);
		meta_event(f, m, "thread_name", e->v[k].tid, name);
	}
	free(t);
}

static void counters(FILE *f, const struct pp_model *m,
		     const struct pp_window *w)
{
	size_t i;

	for (i = 0; i < m->ntimeline; i++) {
		const struct pp_point *p = &m->timeline[i];

		if (p->t < w->from_s || p->t > w->to_s)
			continue;
		fprintf(f, ",\n{\"ph\": \"C\", \"name\": \"heap\", \"pid\": %d, "
			"\"tid\": %d, \"ts\": %.3f, \"args\": {\"live_bytes\": "
			"%.0f}}", m->pid, m->pid, p->t * 1e6, p->live_bytes);
		fprintf(f, ",\n{\"ph\": \"C\", \"name\": \"rss\", \"pid\": %d, "
			"\"tid\": %d, \"ts\": %.3f, \"args\": {\"rss_bytes\": "
			"%.0f}}", m->pid, m->pid, p->t * 1e6, p->rss_bytes);
	}
}

int pp_export_chrome(const struct pp_model *m, struct pp_trace_reader *r,
		     FILE *out, const struct pp_window *w)
{
	struct evs e = { 0 };
	size_t i;
	int rc;

	rc = collect(m, r, w, &e);
	if (e.n)	/* none: e.v is NULL, which qsort may not take */
		qsort(e.v, e.n, sizeof(*e.v), by_thread_time);
	fputs("{\"traceEvents\": [\n", out);
	process_name(out, m);
	threads(out, m, &e);
	for (i = 0; i < e.n; i++)
		x_event(out, m, &e.v[i]);
	counters(out, m, w);
	fputs("\n], \"displayTimeUnit\": \"ms\"}\n", out);
	free(e.v);
	return rc;
}

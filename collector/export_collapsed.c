// SPDX-License-Identifier: MIT
/*
 * Folded stacks (Brendan Gregg's collapsed format): one line per
 * distinct stack, frames outermost first joined by ';', a space, the
 * value. Frames read "function (file:line)"; a ';' in a name becomes
 * ',' and control characters '?', so a line always splits back into
 * its frames. All text is valid UTF-8 (utf8.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "export.h"
#include "hashmap.h"
#include "stalls.h"
#include "utf8.h"

#define NOSTACK "[no Python frame]"

struct line {
	char *text;
	double value;
};

struct lines {
	struct line *v;
	size_t n, cap;
};

static void put_name(FILE *f, const char *s)
{
	char buf[1024];
	const char *t = pp_text_str(s ? s : "?", buf, sizeof(buf));

	for (; *t; t++)
		fputc(*t == ';' ? ',' : *t, f);
}

/* the folded text of stack id (outermost first) */
char *pp_collapsed_stack_text(const struct pp_model *m, uint32_t id)
{
	const struct pp_stack *st = pp_model_stack(m, id);
	char *buf = NULL;
	size_t len = 0;
	struct pp_loc loc;
	FILE *f;
	int i;

	if (!st || !st->nframes)
		return pp_xstrdup(NOSTACK);
	f = open_memstream(&buf, &len);
	if (!f)
		abort();
	for (i = st->nframes - 1; i >= 0; i--) {
		if (pp_model_frame((void *)m, id, i, &loc) < 0)
			continue;
		put_name(f, loc.function);
		fputs(" (", f);
		put_name(f, loc.file);
		fprintf(f, ":%d)", loc.line);
		if (i)
			fputc(';', f);
	}
	fclose(f);
	return buf;
}

static void add(struct lines *l, char *text, double value)
{
	if (!text)
		abort();
	l->v = pp_grow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = (struct line){ text, value };
}

static int by_text(const void *a, const void *b)
{
	return strcmp(((const struct line *)a)->text,
		      ((const struct line *)b)->text);
}

/* sorted, equal texts merged (two ids may fold to one text), > 0 only */
static void emit(struct lines *l, FILE *out)
{
	size_t i, j;

	if (l->n)	/* none: l->v is NULL, which qsort may not take */
		qsort(l->v, l->n, sizeof(*l->v), by_text);
	for (i = 0; i < l->n; i = j) {
		double v = 0;

		for (j = i; j < l->n && !strcmp(l->v[i].text, l->v[j].text);
		     j++)
			v += l->v[j].value;
		if (llround(v) > 0)
			fprintf(out, "%s %lld\n", l->v[i].text, llround(v));
	}
	for (i = 0; i < l->n; i++)
		free(l->v[i].text);
	free(l->v);
}

static double fig(const struct pp_stack_fig *f, enum pp_collapsed_by by)
{
	return by == PP_BY_LIVE ? f->live : f->alloc;
}

static void heap_lines(const struct pp_model *m, struct lines *l,
		       enum pp_collapsed_by by, const struct pp_stack_snap *from,
		       const struct pp_stack_snap *to)
{
	size_t i;

	for (i = 1; i < to->nlo + to->nhi; i++) {
		int hi = i >= to->nlo;
		size_t k = hi ? i - to->nlo : i;
		uint32_t id = hi ? (uint32_t)k | 0x80000000u : (uint32_t)k;
		const struct pp_stack *st = pp_model_stack(m, id);
		double v = fig(hi ? &to->hi[k] : &to->lo[k], by);

		if (!st || !st->frames)
			continue;	/* undefined: its blocks are "nostack" */
		if (from && (hi ? k < from->nhi : k < from->nlo))
			v -= fig(hi ? &from->hi[k] : &from->lo[k], by);
		if (v > 0)
			add(l, pp_collapsed_stack_text(m, id), v);
	}
	{
		double v = fig(&to->nostack, by) -
			   (from ? fig(&from->nostack, by) : 0);

		if (v > 0)
			add(l, pp_xstrdup(NOSTACK), v);
	}
}

/* the part of [a, b] (ns since t0) inside the window, µs */
static double clip_us(const struct pp_model *m, uint64_t a, uint64_t b,
		      const struct pp_window *w)
{
	double s = pp_model_secs(m, a), e = pp_model_secs(m, b);

	if (s < w->from_s)
		s = w->from_s;
	if (e > w->to_s)
		e = w->to_s;
	return e > s ? (e - s) * 1e6 : 0;
}

static char *thread_text(const struct pp_gil_thread *t, int n, uint32_t tid)
{
	char *buf = NULL;
	size_t len = 0;
	const char *name = NULL;
	FILE *f = open_memstream(&buf, &len);
	int i;

	if (!f)
		abort();
	for (i = 0; i < n; i++)
		if (t[i].tid == tid)
			name = t[i].name;
	if (name)
		put_name(f, name);
	else
		fputs("thread", f);
	fprintf(f, " [tid %u];GIL wait", tid);
	fclose(f);
	return buf;
}

/* GIL records carry no stack: GIL waits fold per thread */
static int wait_lines(const struct pp_model *m, struct pp_trace_reader *r,
		      struct lines *l, enum pp_collapsed_by by,
		      const struct pp_window *w)
{
	int type = by == PP_BY_GIL ? PP_REC_GIL : PP_REC_LOCK;
	int shim = pp_stalls_uses_shim(m->stalls, type), rc, n = 0;
	struct pp_gil_thread *thr = NULL;
	const struct pp_hdr *rec;
	struct pp_map sums = { 0 };	/* stack id or tid -> µs */
	size_t i;

	pp_map_init(&sums, sizeof(double));
	if (by == PP_BY_GIL) {
		n = pp_stalls_gil_threads(m->stalls, NULL, 0);
		thr = pp_xcalloc(n + 1, sizeof(*thr));
		n = pp_stalls_gil_threads(m->stalls, thr, n);
	}
	if (pp_trace_rewind(r) < 0)
		return -1;
	while ((rc = pp_trace_next(r, &rec)) > 0) {
		uint64_t a, b, key;
		double *v;
		int fresh;

		if (rec->type != type || !(rec->flags & PP_SRC_SHIM) != !shim)
			continue;
		if (type == PP_REC_GIL) {
			const struct pp_rec_gil *g = (const void *)rec;

			if ((rec->flags & 0x7f) != PP_GIL_WAIT)
				continue;
			a = g->ts_start;
			b = g->ts_end;
		} else {
			const struct pp_rec_lock *k = (const void *)rec;

			a = k->ts_start;
			b = k->ts_end;
		}
		/* key + 1: the map takes no zero key (stack 0, tid 0) */
		key = (uint64_t)rec->aux + 1;
		v = pp_map_put(&sums, key, &fresh);
		if (v)
			*v += clip_us(m, a, b, w);
	}
	pp_map_for_each(&sums, i) {
		uint32_t id = (uint32_t)(sums.keys[i] - 1);
		double v = *(double *)pp_map_val(&sums, i);

		add(l, by == PP_BY_GIL ? thread_text(thr, n, id) :
		    pp_collapsed_stack_text(m, id), v);
	}
	pp_map_free(&sums);
	free(thr);
	return rc < 0 ? -1 : 0;
}

int pp_export_collapsed(const struct pp_model *m, struct pp_trace_reader *r,
			FILE *out, enum pp_collapsed_by by,
			const struct pp_stack_snap *from, const struct pp_stack_snap *to,
			const struct pp_window *w)
{
	struct lines l = { 0 };
	int rc = 0;

	if (by == PP_BY_LIVE || by == PP_BY_ALLOC)
		heap_lines(m, &l, by, from, to);
	else
		rc = wait_lines(m, r, &l, by, w);
	emit(&l, out);
	return rc;
}

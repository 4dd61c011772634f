// SPDX-License-Identifier: MIT
/* pyprof diff (diff.h): sites and stacks of two sides, matched by name. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "diff.h"
#include "export.h"
#include "fmt.h"
#include "hashmap.h"
#include "report.h"
#include "utf8.h"

#define TEXT_ROWS 20
#define NONE UINT32_MAX

struct fig {
	double live_bytes, live_count, alloc_bytes, alloc_count, growth_bytes;
};

/* one site or stack, on either side or both */
struct entry {
	char *key;
	uint32_t id[2];		/* site index / stack id per side, or NONE */
	struct fig f[2];
};

struct table {
	struct entry *v;
	size_t n, cap;
	struct pp_map ix;	/* key hash (probing on) -> index */
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

/* the entry of key (taken over, or freed when already there) */
static struct entry *entry(struct table *t, char *key)
{
	uint64_t h = hash_str(key);
	uint32_t *slot;

	for (;; h++) {
		slot = pp_map_u32(&t->ix, h, 1, NONE);
		if (*slot == NONE)
			break;
		if (!strcmp(t->v[*slot].key, key)) {
			free(key);
			return &t->v[*slot];
		}
	}
	t->v = pp_grow(t->v, &t->cap, t->n + 1, sizeof(*t->v));
	*slot = t->n;
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	t->v[t->n].key = key;
	t->v[t->n].id[0] = t->v[t->n].id[1] = NONE;
	return &t->v[t->n++];
}

static void add(struct fig *to, const struct fig *f)
{
	to->live_bytes += f->live_bytes;
	to->live_count += f->live_count;
	to->alloc_bytes += f->alloc_bytes;
	to->alloc_count += f->alloc_count;
	to->growth_bytes += f->growth_bytes;
}

static char *site_key(const struct pp_model *m, const struct pp_site *s)
{
	const struct pp_func *f = pp_model_func(m, s->func);
	char *k = NULL;

	if (asprintf(&k, "%s\x1f%s\x1f%u", f ? f->file : "<native>",
		     f ? f->name : "<no Python frame>", f ? s->line : 0) < 0)
		abort();
	return k;
}

static void add_sites(struct table *t, const struct pp_diff_side *d, int k)
{
	const struct pp_model *m = d->m;
	size_t i;

	for (i = 0; i < m->nsites; i++) {
		const struct pp_site *s = &m->sites[i];
		struct fig f = { s->end_live_bytes, s->end_live_count,
				 s->alloc_bytes, s->alloc_count,
				 i < d->w->nsites ? d->w->site_growth[i] : 0 };
		struct entry *e;

		/* a window's site may only have freed older blocks */
		if (!(s->alloc_count > 0) && !s->end_live_bytes &&
		    !(fabs(f.growth_bytes) >= 0.5))
			continue;
		e = entry(t, site_key(m, s));
		if (e->id[k] == NONE)
			e->id[k] = i;
		add(&e->f[k], &f);
	}
}

static void add_stack_figs(struct table *t, const struct pp_diff_side *d,
			   int k, const struct pp_win_fig *figs, size_t n,
			   uint32_t base)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct pp_win_fig *w = &figs[i];
		struct fig f = { w->live_bytes, w->live_count, w->alloc_bytes,
				 w->alloc_count, w->growth_bytes };
		struct entry *e;

		if (!(w->alloc_count > 0) && !w->live_bytes)
			continue;
		e = entry(t, pp_collapsed_stack_text(d->m, (uint32_t)i | base));
		if (e->id[k] == NONE)
			e->id[k] = (uint32_t)i | base;
		add(&e->f[k], &f);
	}
}

static void add_stacks(struct table *t, const struct pp_diff_side *d, int k)
{
	add_stack_figs(t, d, k, d->w->lo, d->w->nlo, 0);
	add_stack_figs(t, d, k, d->w->hi, d->w->nhi, PP_BPF_ID_BASE);
}

static int by_alloc_sort;

static double delta(const struct entry *e)
{
	return by_alloc_sort ? e->f[1].alloc_bytes - e->f[0].alloc_bytes :
			       e->f[1].live_bytes - e->f[0].live_bytes;
}

/* growth first, then the largest shrink last; ties by key */
static int by_delta(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	double dx = delta(x), dy = delta(y);

	if (dx != dy)
		return dx < dy ? 1 : -1;
	return strcmp(x->key, y->key);
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->key,
		      ((const struct entry *)b)->key);
}

static void free_table(struct table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->v[i].key);
	free(t->v);
	pp_map_free(&t->ix);
}

/* ---- JSON ---- */

static void side_json(FILE *out, const struct pp_diff_side *d)
{
	const struct pp_model *m = d->m;
	const struct pp_win *w = d->w;

	fputs("{\"name\": ", out);
	pp_json_str(out, d->name);
	fputs(", \"trace\": ", out);
	pp_json_str(out, d->path);
	fprintf(out, ", \"pid\": %d, \"python\": ", m->pid);
	pp_json_str(out, m->pyver);
	fprintf(out, ", \"duration_s\": %.3f, \"from_s\": %.3f, \"to_s\": "
		"%.3f, \"live_at_s\": %.3f, \"sample_bytes\": %llu, "
		"\"live_bytes\": %.0f, \"live_count\": %.0f, "
		"\"alloc_bytes\": %.0f, \"alloc_count\": %.0f, "
		"\"heap_growth_bytes\": %.0f}", pp_model_secs(m, m->t_now),
		w->open_s, w->close_s, w->live_s,
		(unsigned long long)m->sample_bytes, m->end_live_bytes,
		m->end_live_count, m->alloc_bytes, m->alloc_count,
		w->heap_at_close - w->heap_at_open);
}

static void fig_json(FILE *out, const struct fig *f)
{
	fprintf(out, "{\"live_bytes\": %.0f, \"live_count\": %.0f, "
		"\"alloc_bytes\": %.0f, \"alloc_count\": %.0f, "
		"\"growth_bytes\": %.0f}", f->live_bytes, f->live_count,
		f->alloc_bytes, f->alloc_count, f->growth_bytes);
}

static void frames_json(FILE *out, const struct pp_model *m, uint32_t id)
{
	const struct pp_stack *st = pp_model_stack(m, id);
	uint32_t i;

	fputc('[', out);
	for (i = 0; st && i < st->nframes; i++) {
		const struct pp_func *f = pp_model_func(m, st->frames[i].func);

		fputs(i ? ", {\"file\": " : "{\"file\": ", out);
		pp_json_str(out, f ? f->file : "?");
		fprintf(out, ", \"line\": %u, \"function\": ",
			st->frames[i].line);
		pp_json_str(out, f ? f->name : "?");
		if (f && f->native)
			fputs(", \"native\": true", out);
		fputc('}', out);
	}
	fputc(']', out);
}

static void deltas_json(FILE *out, const struct entry *e)
{
	fprintf(out, ", \"delta_live_bytes\": %.0f, \"delta_live_count\": "
		"%.0f, \"delta_alloc_bytes\": %.0f, \"delta_alloc_count\": %.0f",
		e->f[1].live_bytes - e->f[0].live_bytes,
		e->f[1].live_count - e->f[0].live_count,
		e->f[1].alloc_bytes - e->f[0].alloc_bytes,
		e->f[1].alloc_count - e->f[0].alloc_count);
}

static void site_json(FILE *out, const struct pp_diff_side *side,
		      const struct entry *e)
{
	int k = e->id[1] != NONE;	/* names and stack from B when there */
	const struct pp_model *m = side[k].m;
	const struct pp_site *s = &m->sites[e->id[k]];
	const struct pp_func *f = pp_model_func(m, s->func);

	fputs("{\"file\": ", out);
	pp_json_str(out, f ? f->file : "<native>");
	fprintf(out, ", \"line\": %u, \"function\": ", f ? s->line : 0);
	pp_json_str(out, f ? f->name : "<no Python frame>");
	fputs(", \"a\": ", out);
	fig_json(out, &e->f[0]);
	fputs(", \"b\": ", out);
	fig_json(out, &e->f[1]);
	deltas_json(out, e);
	fputs(", \"stack\": ", out);
	frames_json(out, m, s->top_stack);
	fputc('}', out);
}

static void stack_json(FILE *out, const struct pp_diff_side *side,
		       const struct entry *e)
{
	int k = e->id[1] != NONE;

	fputs("{\"folded\": ", out);
	pp_json_str(out, e->key);
	fputs(", \"frames\": ", out);
	frames_json(out, side[k].m, e->id[k]);
	fputs(", \"a\": ", out);
	fig_json(out, &e->f[0]);
	fputs(", \"b\": ", out);
	fig_json(out, &e->f[1]);
	deltas_json(out, e);
	fputc('}', out);
}

static void write_json(FILE *out, const struct pp_diff_side *side,
		       struct table *sites, struct table *stacks, int by_alloc)
{
	size_t i;

	fprintf(out, "{\n  \"pyprof\": {\"version\": \"%s\", \"format\": %d},\n"
		"  \"diff\": {\"ranked_by\": \"%s\", \"a\": ", PP_VERSION,
		PP_REPORT_FORMAT, by_alloc ? "delta_alloc_bytes" :
		"delta_live_bytes");
	side_json(out, &side[0]);
	fputs(",\n    \"b\": ", out);
	side_json(out, &side[1]);
	fprintf(out, ",\n    \"delta_live_bytes\": %.0f, "
		"\"delta_alloc_bytes\": %.0f},\n  \"sites\": [",
		side[1].m->end_live_bytes - side[0].m->end_live_bytes,
		side[1].m->alloc_bytes - side[0].m->alloc_bytes);
	for (i = 0; i < sites->n; i++) {
		fputs(i ? ",\n    " : "\n    ", out);
		site_json(out, side, &sites->v[i]);
	}
	fputs("],\n  \"stacks\": [", out);
	for (i = 0; i < stacks->n; i++) {
		fputs(i ? ",\n    " : "\n    ", out);
		stack_json(out, side, &stacks->v[i]);
	}
	fputs("]\n}\n", out);
}

/* ---- text ---- */

static const char *signed_bytes(double v, char *buf, size_t len)
{
	char b[32];

	snprintf(buf, len, "%s%s", v < 0 ? "-" : v > 0 ? "+" : "",
		 pp_fmt_bytes(fabs(v), b, sizeof(b)));
	return buf;
}

static void side_text(FILE *out, const char *tag,
		      const struct pp_diff_side *d)
{
	char buf[1024], a[32], b[32];

	fprintf(out, "%s: %s, %.1f-%.1f s: %s live at %.1f s, %s allocated\n",
		tag, pp_text_str(d->name, buf, sizeof(buf)), d->w->open_s,
		d->w->close_s, pp_fmt_bytes(d->m->end_live_bytes, a, sizeof(a)),
		d->w->live_s, pp_fmt_bytes(d->m->alloc_bytes, b, sizeof(b)));
}

static void row_text(FILE *out, const struct pp_diff_side *side,
		     const struct entry *e, int by_alloc)
{
	int k = e->id[1] != NONE;
	const struct pp_model *m = side[k].m;
	const struct pp_site *s = &m->sites[e->id[k]];
	const struct pp_func *f = pp_model_func(m, s->func);
	char d[32], a[32], b[32], fb[512], nb[256];
	double va = by_alloc ? e->f[0].alloc_bytes : e->f[0].live_bytes;
	double vb = by_alloc ? e->f[1].alloc_bytes : e->f[1].live_bytes;

	fprintf(out, "  %11s %10s %10s  %s:%u %s\n",
		signed_bytes(vb - va, d, sizeof(d)),
		pp_fmt_bytes(va, a, sizeof(a)), pp_fmt_bytes(vb, b, sizeof(b)),
		f ? pp_text_str(f->file, fb, sizeof(fb)) : "<native>",
		f ? s->line : 0,
		f ? pp_text_str(f->name, nb, sizeof(nb)) : "<no Python frame>");
}

static void write_text(FILE *out, const struct pp_diff_side *side,
		       const struct table *sites, int by_alloc)
{
	const char *what = by_alloc ? "allocated bytes" : "live bytes";
	size_t i, n, grew = 0, shrank = 0;
	char a[32], b[32];

	fprintf(out, "pyprof %s diff, sites ranked by the change in %s\n",
		PP_VERSION, what);
	side_text(out, "A", &side[0]);
	side_text(out, "B", &side[1]);
	fprintf(out, "B - A: %s live, %s allocated\n",
		signed_bytes(side[1].m->end_live_bytes -
			     side[0].m->end_live_bytes, a, sizeof(a)),
		signed_bytes(side[1].m->alloc_bytes - side[0].m->alloc_bytes,
			     b, sizeof(b)));
	for (i = 0; i < sites->n; i++) {
		grew += delta(&sites->v[i]) >= 0.5;
		shrank += delta(&sites->v[i]) <= -0.5;
	}
	fprintf(out, "\nGrew most (%zu sites)\n", grew);
	fprintf(out, "  %11s %10s %10s  %s\n", "B - A", "A", "B", "SITE");
	for (i = 0; i < grew && i < TEXT_ROWS; i++)
		row_text(out, side, &sites->v[i], by_alloc);
	fprintf(out, "\nShrank most (%zu sites)\n", shrank);
	if (shrank)
		fprintf(out, "  %11s %10s %10s  %s\n", "B - A", "A", "B",
			"SITE");
	for (n = 0; n < shrank && n < TEXT_ROWS; n++)
		row_text(out, side, &sites->v[sites->n - 1 - n], by_alloc);
}

/* ---- collapsed ---- */

static void write_collapsed(FILE *out, const struct table *stacks,
			    int by_alloc)
{
	size_t i;

	for (i = 0; i < stacks->n; i++) {
		const struct entry *e = &stacks->v[i];
		long long a = llround(by_alloc ? e->f[0].alloc_bytes :
					       e->f[0].live_bytes);
		long long b = llround(by_alloc ? e->f[1].alloc_bytes :
					       e->f[1].live_bytes);

		if (a > 0 || b > 0)
			fprintf(out, "%s %lld %lld\n", e->key, a > 0 ? a : 0,
				b > 0 ? b : 0);
	}
}

void pp_diff_write(const struct pp_diff_side *a, const struct pp_diff_side *b,
		   enum pp_diff_format fmt, int by_alloc, FILE *out)
{
	struct pp_diff_side side[2] = { *a, *b };
	struct table sites = { 0 }, stacks = { 0 };
	int k;

	pp_map_init(&sites.ix, sizeof(uint32_t));
	pp_map_init(&stacks.ix, sizeof(uint32_t));
	for (k = 0; k < 2; k++) {
		if (fmt != PP_DIFF_COLLAPSED)
			add_sites(&sites, &side[k], k);
		if (fmt != PP_DIFF_TEXT)
			add_stacks(&stacks, &side[k], k);
	}
	by_alloc_sort = by_alloc;
	if (sites.n)	/* no qsort of NULL (the table is empty) */
		qsort(sites.v, sites.n, sizeof(*sites.v), by_delta);
	if (stacks.n)
		qsort(stacks.v, stacks.n, sizeof(*stacks.v), by_key);
	if (fmt == PP_DIFF_JSON)
		write_json(out, side, &sites, &stacks, by_alloc);
	else if (fmt == PP_DIFF_TEXT)
		write_text(out, side, &sites, by_alloc);
	else
		write_collapsed(out, &stacks, by_alloc);
	free_table(&sites);
	free_table(&stacks);
}

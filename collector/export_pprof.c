// SPDX-License-Identifier: MIT
/*
 * pprof heap profile (profile.proto, gzipped), as Go's pprof, Pyroscope
 * and Parca read it: one sample per distinct stack with the four values
 * Go's own heap profiles carry (alloc_objects, alloc_space,
 * inuse_objects, inuse_space), leaf first. A location is one (function,
 * line); Python frames are functions named as the JSON report names
 * them, with their file and first line; native frames (--native) are
 * functions named by their symbol, in their library. Figures are the
 * window's (window.h), the whole run's without one: the same unbiased
 * estimates as the JSON report when sampled, rounded per stack.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "alloc.h"
#include "export.h"
#include "hashmap.h"
#include "report.h"
#include "utf8.h"
#include "window.h"
#include "collector/profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Mapping Mapping;

#define NVALUES 4
#define NO_FRAME_FN "<no Python frame>"	/* as the JSON report's site 0 */
#define NO_FRAME_FILE "<native>"

struct builder {
	const struct pp_model *m;
	/* strings: hash -> index, chained by probing the next key */
	char **strs;
	size_t nstrs, capstrs;
	struct pp_map str_ix;
	Function **funcs;
	size_t nfuncs, capfuncs;
	struct pp_map func_ix;		/* model func id -> pprof id */
	Location **locs;
	size_t nlocs, caplocs;
	struct pp_map loc_ix;		/* (pprof func id, line) -> loc id */
	Sample **samples;
	size_t nsamples, capsamples;
	uint32_t nostack_fn;		/* pprof func id, 0 until needed */
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

/* the string table index of s (valid UTF-8, as every output) */
static int64_t str_id(struct builder *b, const char *s)
{
	char buf[4096];
	const char *t = pp_text_str(s ? s : "?", buf, sizeof(buf));
	uint64_t key = hash_str(t);
	uint32_t *slot;

	for (;; key++) {
		slot = pp_map_u32(&b->str_ix, key, 1, UINT32_MAX);
		if (*slot == UINT32_MAX)
			break;
		if (!strcmp(b->strs[*slot], t))
			return *slot;
	}
	b->strs = pp_grow(b->strs, &b->capstrs, b->nstrs + 1,
			  sizeof(*b->strs));
	b->strs[b->nstrs] = pp_xstrdup(t);
	*slot = b->nstrs;
	return b->nstrs++;
}

/*
 * A Python name is final: no system_name, else pprof takes it for a C++
 * name to simplify and strips "<module>" to nothing. A native one is
 * the symbol as linked (pprof demangles C++ itself).
 */
static uint32_t new_func(struct builder *b, const char *name,
			 const char *file, int64_t start_line, int native)
{
	Function *f = pp_xmalloc(sizeof(*f));

	perftools__profiles__function__init(f);
	f->id = b->nfuncs + 1;
	f->name = str_id(b, name);
	f->system_name = native ? f->name : 0;
	f->filename = str_id(b, file);
	f->start_line = start_line;
	b->funcs = pp_grow(b->funcs, &b->capfuncs, b->nfuncs + 1,
			   sizeof(*b->funcs));
	b->funcs[b->nfuncs++] = f;
	return f->id;
}

static uint32_t func_id(struct builder *b, uint32_t model_id)
{
	const struct pp_func *mf = pp_model_func(b->m, model_id);
	uint32_t *slot = pp_map_u32(&b->func_ix, model_id, 1, 0);

	if (!*slot)
		*slot = new_func(b, mf ? mf->name : "?", mf ? mf->file : "?",
				 mf && !mf->native ? mf->firstlineno : 0,
				 mf && mf->native);
	return *slot;
}

static uint64_t loc_id(struct builder *b, uint32_t fid, uint32_t line)
{
	uint32_t *slot = pp_map_u32(&b->loc_ix, (uint64_t)fid << 32 | line,
				    1, 0);
	Location *l;
	Line *ln;

	if (*slot)
		return *slot;
	l = pp_xmalloc(sizeof(*l));
	ln = pp_xmalloc(sizeof(*ln));
	perftools__profiles__location__init(l);
	perftools__profiles__line__init(ln);
	ln->function_id = fid;
	ln->line = line;
	l->id = b->nlocs + 1;
	l->mapping_id = 1;	/* the interpreter: names known (below) */
	l->n_line = 1;
	l->line = pp_xmalloc(sizeof(*l->line));
	l->line[0] = ln;
	b->locs = pp_grow(b->locs, &b->caplocs, b->nlocs + 1,
			  sizeof(*b->locs));
	b->locs[b->nlocs++] = l;
	*slot = l->id;
	return l->id;
}

static void add_sample(struct builder *b, const struct pp_stack *st,
		       const struct pp_win_fig *f)
{
	int64_t v[NVALUES] = { llround(f->alloc_count), llround(f->alloc_bytes),
			       llround(f->live_count), llround(f->live_bytes) };
	Sample *s;
	uint32_t i;
	int k;

	for (k = 0; k < NVALUES && v[k] <= 0; k++)
		;
	if (k == NVALUES)
		return;		/* nothing to show (pprof drops zeroes too) */
	s = pp_xmalloc(sizeof(*s));
	perftools__profiles__sample__init(s);
	s->n_value = NVALUES;
	s->value = pp_xmalloc(sizeof(v));
	for (k = 0; k < NVALUES; k++)
		s->value[k] = v[k] > 0 ? v[k] : 0;
	if (st) {
		s->n_location_id = st->nframes;
		s->location_id = pp_xmalloc(st->nframes * sizeof(uint64_t));
		for (i = 0; i < st->nframes; i++)	/* innermost first */
			s->location_id[i] = loc_id(b,
				func_id(b, st->frames[i].func),
				st->frames[i].line);
	} else {
		if (!b->nostack_fn)
			b->nostack_fn = new_func(b, NO_FRAME_FN, NO_FRAME_FILE,
						 0, 0);
		s->n_location_id = 1;
		s->location_id = pp_xmalloc(sizeof(uint64_t));
		s->location_id[0] = loc_id(b, b->nostack_fn, 0);
	}
	b->samples = pp_grow(b->samples, &b->capsamples, b->nsamples + 1,
			     sizeof(*b->samples));
	b->samples[b->nsamples++] = s;
}

static void add_fig(struct pp_win_fig *to, const struct pp_win_fig *f)
{
	to->live_bytes += f->live_bytes;
	to->live_count += f->live_count;
	to->alloc_bytes += f->alloc_bytes;
	to->alloc_count += f->alloc_count;
}

static void add_stacks(struct builder *b, const struct pp_win_fig *figs, size_t n, uint32_t base,
		       struct pp_win_fig *nostack)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct pp_stack *st = pp_model_stack(b->m,
							   (uint32_t)i | base);

		if (st && st->frames && st->nframes)
			add_sample(b, st, &figs[i]);
		else	/* id 0 or never defined: no stack known */
			add_fig(nostack, &figs[i]);
	}
}

static ValueType *value_type(struct builder *b, const char *type,
			     const char *unit)
{
	ValueType *v = pp_xmalloc(sizeof(*v));

	perftools__profiles__value_type__init(v);
	v->type = str_id(b, type);
	v->unit = str_id(b, unit);
	return v;
}

/* the command's first word (argv is tab-separated), or "python" */
static const char *first_arg(const char *argv, char *buf, size_t len)
{
	size_t n = argv ? strcspn(argv, "\t") : 0;

	if (!n)
		return "python";
	snprintf(buf, len, "%.*s", (int)n, argv);
	return buf;
}

/* gzip (zlib's deflate with a gzip header) of buf to out */
static int write_gzip(const uint8_t *buf, size_t len, FILE *out)
{
	uint8_t chunk[1 << 16];
	z_stream z = { 0 };
	int rc;

	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	z.next_in = (uint8_t *)buf;
	z.avail_in = len;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = deflate(&z, Z_FINISH);
		if (rc == Z_STREAM_ERROR ||
		    fwrite(chunk, 1, sizeof(chunk) - z.avail_out, out) !=
			    sizeof(chunk) - z.avail_out) {
			deflateEnd(&z);
			return -1;
		}
	} while (rc != Z_STREAM_END);
	deflateEnd(&z);
	return 0;
}

static void free_builder(struct builder *b)
{
	size_t i;

	for (i = 0; i < b->nstrs; i++)
		free(b->strs[i]);
	for (i = 0; i < b->nfuncs; i++)
		free(b->funcs[i]);
	for (i = 0; i < b->nlocs; i++) {
		free(b->locs[i]->line[0]);
		free(b->locs[i]->line);
		free(b->locs[i]);
	}
	for (i = 0; i < b->nsamples; i++) {
		free(b->samples[i]->value);
		free(b->samples[i]->location_id);
		free(b->samples[i]);
	}
	free(b->strs);
	free(b->funcs);
	free(b->locs);
	free(b->samples);
	pp_map_free(&b->str_ix);
	pp_map_free(&b->func_ix);
	pp_map_free(&b->loc_ix);
}

int pp_export_pprof(const struct pp_model *m, const struct pp_win *w,
		    FILE *out)
{
	static const char *const types[NVALUES][2] = {
		{ "alloc_objects", "count" }, { "alloc_space", "bytes" },
		{ "inuse_objects", "count" }, { "inuse_space", "bytes" },
	};
	struct builder b = { .m = m };
	struct pp_win_fig nostack = { 0 };
	ValueType *st[NVALUES], *period;
	Mapping map, *mapp;
	Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
	int64_t comment[2];
	char text[256];
	uint8_t *buf;
	size_t len;
	int i, rc;

	pp_map_init(&b.str_ix, sizeof(uint32_t));
	pp_map_init(&b.func_ix, sizeof(uint32_t));
	pp_map_init(&b.loc_ix, sizeof(uint32_t));
	str_id(&b, "");		/* string_table[0] is "" */
	for (i = 0; i < NVALUES; i++)
		st[i] = value_type(&b, types[i][0], types[i][1]);
	period = value_type(&b, "space", "bytes");
	/*
	 * One mapping, the interpreter, that says every location already
	 * has its function, file and line: nothing for pprof to symbolize
	 * (and no "main binary not available" notice).
	 */
	perftools__profiles__mapping__init(&map);
	map.id = 1;
	map.filename = str_id(&b, first_arg(m->argv, text, sizeof(text)));
	map.has_functions = map.has_filenames = map.has_line_numbers = 1;
	mapp = &map;
	add_stacks(&b, w->lo, w->nlo, 0, &nostack);
	add_stacks(&b, w->hi, w->nhi, PP_BPF_ID_BASE, &nostack);
	add_sample(&b, NULL, &nostack);

	p.n_sample_type = NVALUES;
	p.sample_type = st;
	p.default_sample_type = st[3]->type;	/* inuse_space */
	p.period_type = period;
	p.period = m->sample_bytes;
	p.time_nanos = m->realtime0 + (int64_t)(w->open_s * 1e9);
	p.duration_nanos = (int64_t)((w->close_s - w->open_s) * 1e9);
	snprintf(text, sizeof(text), "pyprof %s: pid %d, Python %s%s",
		 PP_VERSION, m->pid, m->pyver[0] ? m->pyver : "?",
		 m->sample_bytes ? ", sampled (unbiased estimates)" : "");
	comment[0] = str_id(&b, text);
	snprintf(text, sizeof(text), "window %.3f-%.3f s: inuse = allocated "
		 "in it and live at %.3f s, alloc = allocated in it", w->open_s,
		 w->close_s, w->live_s);
	comment[1] = str_id(&b, text);
	p.n_comment = 2;
	p.comment = comment;
	p.n_mapping = 1;
	p.mapping = &mapp;
	p.n_sample = b.nsamples;
	p.sample = b.samples;
	p.n_location = b.nlocs;
	p.location = b.locs;
	p.n_function = b.nfuncs;
	p.function = b.funcs;
	p.n_string_table = b.nstrs;
	p.string_table = b.strs;

	len = perftools__profiles__profile__get_packed_size(&p);
	buf = pp_xmalloc(len + 1);
	perftools__profiles__profile__pack(&p, buf);
	rc = write_gzip(buf, len, out);
	free(buf);
	for (i = 0; i < NVALUES; i++)
		free(st[i]);
	free(period);
	free_builder(&b);
	if (rc < 0)
		errno = EIO;
	return rc;
}

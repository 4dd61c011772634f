// SPDX-License-Identifier: MIT
/*
 * Building the model from records. The hot part is ALLOC/FREE: one
 * table operation and a few additions each, since the collector must
 * keep up with the target on the other core.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "model.h"
#include "stalls.h"

struct pp_block {
	uint64_t size;
	uint32_t stack;
	uint8_t domain;
};

struct pp_mapping {
	uint64_t len;
	uint32_t stack;
	uint8_t arena;
};

void pp_model_init(struct pp_model *m)
{
	memset(m, 0, sizeof(*m));
	m->py_supported = -1;
	m->window_ns = PP_WINDOW0_NS;
	pp_map_init(&m->live, sizeof(struct pp_block));
	pp_map_init(&m->maps, sizeof(struct pp_mapping));
	pp_map_init(&m->site_index, sizeof(uint32_t));
	pp_map_init(&m->kmaps, sizeof(uint64_t));
	/* site 0: allocations with no Python frame */
	m->sites = pp_grow(NULL, &m->cap_sites, 1, sizeof(*m->sites));
	m->nsites = 1;
	m->stalls = pp_stalls_init();
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

const struct pp_func *pp_model_func(const struct pp_model *m, uint32_t id)
{
	if (id & PP_BPF_ID_BASE) {
		id &= ~PP_BPF_ID_BASE;
		return id < m->nfuncs_hi && m->funcs_hi[id].file ?
		       &m->funcs_hi[id] : NULL;
	}
	return id && id < m->nfuncs && m->funcs[id].file ? &m->funcs[id] : NULL;
}

const struct pp_stack *pp_model_stack(const struct pp_model *m, uint32_t id)
{
	if (id & PP_BPF_ID_BASE) {
		id &= ~PP_BPF_ID_BASE;
		return id < m->nstacks_hi ? &m->stacks_hi[id] : NULL;
	}
	return id && id < m->nstacks ? &m->stacks[id] : NULL;
}

/*
 * Where definition id goes: lo[] holds the shim's ids, hi[] the eBPF
 * side's (from PP_BPF_ID_BASE); the array grows to hold it.
 */
static void *id_slot(void **lo, size_t *nlo, void **hi, size_t *nhi,
		     uint32_t id, size_t elem)
{
	void **arr = lo;
	size_t *n = nlo;

	if (id & PP_BPF_ID_BASE) {
		arr = hi;
		n = nhi;
		id &= ~PP_BPF_ID_BASE;
	}
	if (id >= *n)
		*arr = pp_grow(*arr, n, id + 1, elem);
	return (char *)*arr + (size_t)id * elem;
}

static struct pp_stack *stack_slot(struct pp_model *m, uint32_t id)
{
	return id_slot((void **)&m->stacks, &m->nstacks,
		       (void **)&m->stacks_hi, &m->nstacks_hi, id,
		       sizeof(struct pp_stack));
}

static struct pp_func *func_slot(struct pp_model *m, uint32_t id)
{
	return id_slot((void **)&m->funcs, &m->nfuncs, (void **)&m->funcs_hi,
		       &m->nfuncs_hi, id, sizeof(struct pp_func));
}

static void def_func(struct pp_model *m, const struct pp_rec_func *r)
{
	struct pp_func *f;
	char *s;

	if (sizeof(*r) + r->file_len + r->name_len > r->h.len)
		return;
	f = func_slot(m, r->h.aux);
	s = pp_xmalloc(r->file_len + r->name_len + 2);
	memcpy(s, r->data, r->file_len);
	s[r->file_len] = 0;
	memcpy(s + r->file_len + 1, r->data + r->file_len, r->name_len);
	s[r->file_len + 1 + r->name_len] = 0;
	free((char *)f->file);
	f->file = s;
	f->name = s + r->file_len + 1;
	f->firstlineno = r->firstlineno;
	/* native names were resolved at record time (symbols.h) */
	f->native = !!(r->h.flags & PP_FUNC_NATIVE);
}

/* the leak windows' origin: the program's own start, when known, or
 * the checkpoint a capped trace starts from, whichever is later */
static uint64_t win_origin(const struct pp_model *m)
{
	uint64_t o = m->t_run ? m->t_run : m->t0;

	return m->t_kept > o ? m->t_kept : o;
}

static int cur_window(const struct pp_model *m)
{
	uint64_t o = win_origin(m);

	if (!o || m->t_now <= o)
		return 0;
	return (m->t_now - o) / m->window_ns;
}

static uint32_t site_for(struct pp_model *m, uint32_t func, uint32_t line)
{
	const struct pp_func *f = pp_model_func(m, func);
	uint64_t key;
	uint32_t *idx;
	struct pp_site *s;
	int fresh, w;

	if (!f)
		return 0;
	key = hash_str(hash_str(0xcbf29ce484222325ull ^ line, f->file), f->name);
	idx = pp_map_put(&m->site_index, key | 1, &fresh);
	if (!fresh)
		return *idx;
	m->sites = pp_grow(m->sites, &m->cap_sites, m->nsites + 1,
			      sizeof(*m->sites));
	*idx = m->nsites;
	s = &m->sites[m->nsites++];
	s->func = func;
	s->line = line;
	/* it had nothing before now */
	w = m->finalized ? 0 : cur_window(m);
	s->window = w < PP_WINDOWS ? w : PP_WINDOWS - 1;
	s->born = s->window;
	return *idx;
}

/*
 * A stack under the import system: a module body run by an import, a
 * finder, the loader's compile. What it allocates is the memory of the
 * modules a program loads, which grows while it imports and stays: not a
 * leak. importlib and zipimport are frozen modules in every supported
 * version (Python/frozen.c), so these names are theirs alone.
 */
static int under_import(const struct pp_model *m, const struct pp_frame *fr,
			uint32_t n)
{
	static const char frozen[] = "<frozen ";
	uint32_t i;

	for (i = 0; i < n; i++) {
		const struct pp_func *f = pp_model_func(m, fr[i].func);

		if (f && f->file && !strncmp(f->file, frozen, 8) &&
		    (!strncmp(f->file + 8, "importlib.", 10) ||
		     !strncmp(f->file + 8, "zipimport>", 10)))
			return 1;
	}
	return 0;
}

static void def_stack(struct pp_model *m, const struct pp_rec_stack *r)
{
	const struct pp_stack *up = NULL;
	struct pp_stack *st;
	uint32_t i, n = r->nframes, nup = 0;

	if (sizeof(*r) + n * sizeof(struct pp_frame) > r->h.len)
		return;
	/* first: making the slot may move the table */
	st = stack_slot(m, r->h.aux);
	if (r->h.flags & PP_STACK_PARENT) {
		up = pp_model_stack(m, r->parent);
		if (up == st)
			return;		/* its own parent: nothing to take */
		nup = up && up->frames ? up->nframes : 0;
		if (n > PP_MAX_FRAMES)
			n = PP_MAX_FRAMES;
		if (nup > PP_MAX_FRAMES - n)	/* the innermost are kept */
			nup = PP_MAX_FRAMES - n;
	}
	free(st->frames);
	st->nframes = n + nup;
	st->frames = pp_xmalloc((n + nup) * sizeof(struct pp_frame) + 1);
	memcpy(st->frames, r->frames, n * sizeof(struct pp_frame));
	if (nup)
		memcpy(st->frames + n, up->frames, nup * sizeof(struct pp_frame));
	st->site = 0;
	/* the outer frames' verdict is the parent's when all were taken */
	st->import = under_import(m, r->frames, n) ||
		     (nup && nup == up->nframes ? up->import :
		      under_import(m, st->frames + n, nup));
	/* the site is the innermost Python frame */
	for (i = 0; i < st->nframes; i++) {
		const struct pp_func *f = pp_model_func(m, st->frames[i].func);

		if (f && !f->native) {
			st->site = site_for(m, st->frames[i].func,
					    st->frames[i].line);
			break;
		}
	}
}

/* Move a site's window bookkeeping up to the current window. */
static void site_catch_up(struct pp_model *m, struct pp_site *s)
{
	int w = m->window;

	while (s->window < w) {
		s->window++;
		s->floor[s->window] = s->live_bytes;
		s->cum_alloc[s->window] = s->alloc_bytes;
	}
}

static void site_note(struct pp_model *m, struct pp_site *s)
{
	if (m->finalized || m->live_only)
		return;		/* the verdict is about the program's own run */
	if (s->window != m->window)
		site_catch_up(m, s);
	if (s->live_bytes < s->floor[s->window])
		s->floor[s->window] = s->live_bytes;
	s->cum_alloc[s->window] = s->alloc_bytes;
	s->active |= 1ull << s->window;
	s->nrec++;
}

/* fold bit pairs of a window mask when two windows become one */
static uint64_t fold_mask(uint64_t v)
{
	uint64_t out = 0;
	int w;

	for (w = 0; w < PP_WINDOWS / 2; w++)
		if (v & (3ull << (2 * w)))
			out |= 1ull << w;
	return out;
}

/*
 * Halve the resolution: two windows become one. Time may have jumped
 * past the last windows (no record came in them: attach mode's ticks
 * are 100 ms apart, the first windows 25 ms): each site's floor there
 * is its live bytes now, not what an earlier use of the slot left (a
 * zero made the merged window a fall to nothing, and a run that ended
 * in it no leak).
 */
static void compact_windows(struct pp_model *m)
{
	size_t i;
	int w;

	m->window = PP_WINDOWS - 1;
	for (i = 0; i < m->nsites; i++) {
		struct pp_site *s = &m->sites[i];

		site_catch_up(m, s);
		for (w = 0; w < PP_WINDOWS / 2; w++) {
			s->floor[w] = fmin(s->floor[2 * w], s->floor[2 * w + 1]);
			s->cum_alloc[w] = s->cum_alloc[2 * w + 1];
		}
		s->window = PP_WINDOWS / 2 - 1;
		s->born /= 2;
		s->active = fold_mask(s->active);
	}
	m->stamped = fold_mask(m->stamped);
	m->window = PP_WINDOWS / 2 - 1;
	m->window_ns *= 2;
}

static void advance_time(struct pp_model *m, uint64_t ts)
{
	int w;

	if (!m->t0)
		m->t0 = ts;
	if (ts > m->t_now)
		m->t_now = ts;
	if (m->finalized)
		return;
	while ((w = cur_window(m)) >= PP_WINDOWS)
		compact_windows(m);
	m->window = w;
	m->stamped |= 1ull << w;
}

/* Sampling: the estimate a recorded block of n bytes stands for. */
static inline double weight(const struct pp_model *m, uint64_t n)
{
	double p;

	if (!m->sample_bytes)
		return 1.0;
	p = -expm1(-(double)n / (double)m->sample_bytes);
	return p > 0 ? 1.0 / p : 1.0;
}

static struct pp_site *site_of_stack(struct pp_model *m, uint32_t stack)
{
	const struct pp_stack *st = pp_model_stack(m, stack);

	return &m->sites[st ? st->site : 0];
}

/* Take a block out of the figures; the caller notes its site's floor. */
static struct pp_site *block_drop(struct pp_model *m, uint64_t addr,
				  const struct pp_block *b)
{
	double w, bytes;
	struct pp_site *s;
	struct pp_stack *st;

	if (m->live_only)
		return m->sites;
	w = weight(m, b->size);
	bytes = w * b->size;
	s = site_of_stack(m, b->stack);
	st = (struct pp_stack *)pp_model_stack(m, b->stack);

	if (m->block_fn)
		m->block_fn(m->block_ctx, 0, addr, b->size, w, b->stack);
	m->live_bytes -= bytes;
	m->live_count -= w;
	m->free_count += w;
	s->live_bytes -= bytes;
	s->live_count -= w;
	if (st)
		st->live_bytes -= bytes;
	return s;
}

static void block_gone(struct pp_model *m, uint64_t addr,
		       const struct pp_block *b)
{
	site_note(m, block_drop(m, addr, b));
}

static void block_new(struct pp_model *m, uint64_t addr, uint64_t size,
		      uint32_t stack, uint8_t domain)
{
	struct pp_block *b, old;
	struct pp_site *s;
	struct pp_stack *st;
	double w, bytes;
	int fresh;

	b = pp_map_put(&m->live, addr, &fresh);
	if (!b)
		return;
	if (!fresh) {
		/* its free was not seen (dropped): the old block is gone */
		old = *b;
		block_gone(m, addr, &old);
	}
	b->size = size;
	b->stack = stack;
	b->domain = domain;
	if (m->live_only)
		return;
	w = weight(m, size);
	bytes = w * size;
	if (m->block_fn)
		m->block_fn(m->block_ctx, 1, addr, size, w, stack);
	m->live_bytes += bytes;
	m->live_count += w;
	m->alloc_count += w;
	m->alloc_bytes += bytes;
	if (m->live_bytes > m->peak_bytes)
		m->peak_bytes = m->live_bytes;
	s = site_of_stack(m, stack);
	s->live_bytes += bytes;
	s->live_count += w;
	s->alloc_bytes += bytes;
	s->alloc_count += w;
	st = (struct pp_stack *)pp_model_stack(m, stack);
	if (st) {
		st->live_bytes += bytes;
		st->alloc_bytes += bytes;
		if (st->import)
			s->import_bytes += bytes;
	}
	site_note(m, s);
}

static void block_free(struct pp_model *m, uint64_t addr)
{
	struct pp_block b;

	if (!pp_map_del(&m->live, addr, &b)) {
		m->unknown_frees++;	/* made before the hooks: not ours */
		return;
	}
	block_gone(m, addr, &b);
}

/*
 * RETAG: a live block handed out again without an allocator call (an
 * object re-created from a freelist) belongs to its new stack from now
 * on: it leaves its old site as if freed and arrives at the new one as
 * an allocation, with the same size (and weight, when sampled).
 */
static void block_retag(struct pp_model *m, const struct pp_hdr *rec)
{
	const struct pp_rec_free *r = (const void *)rec;
	const struct pp_block *b = pp_map_get(&m->live, r->addr);
	uint64_t size;
	uint8_t domain;

	if (!b) {
		/* made before the hooks (start-up, or before attach), so
		 * unknown here: with its size (a 24-byte RETAG), an object
		 * made now, like any allocation */
		if (rec->len >= sizeof(struct pp_rec_alloc) &&
		    (size = ((const struct pp_rec_alloc *)rec)->size))
			block_new(m, r->addr, size, rec->aux, rec->flags);
		return;
	}
	size = b->size;
	domain = b->domain;
	if (b->stack == rec->aux) {
		/* re-made where it was last made (it waited on a freelist
		 * charged here): one more allocation here all the same, out
		 * and in again with no dip of the site's floor between */
		struct pp_block old;

		if (pp_map_del(&m->live, r->addr, &old))
			block_drop(m, r->addr, &old);
	}
	block_new(m, r->addr, size, rec->aux, domain);
	m->free_count -= weight(m, size);	/* a move, not a free */
}

static void map_new(struct pp_model *m, const struct pp_rec_alloc *r)
{
	struct pp_mapping *mp;
	int fresh;

	if (r->h.flags == PP_DOM_ARENA) {
		mp = pp_map_put(&m->maps, r->addr, &fresh);
		if (!mp)
			return;
		mp->len = r->size;
		mp->arena = 1;
		m->arena_bytes += r->size;
		return;
	}
	/* a program's own mapping is a block like any other */
	mp = pp_map_put(&m->maps, r->addr, &fresh);
	if (mp) {
		mp->len = r->size;
		mp->stack = r->h.aux;
		mp->arena = 0;
	}
	block_new(m, r->addr, r->size, r->h.aux, PP_DOM_MMAP);
}

static void map_gone(struct pp_model *m, const struct pp_rec_alloc *r)
{
	struct pp_mapping mp;

	if (!pp_map_del(&m->maps, r->addr, &mp))
		return;		/* not an anonymous mapping we saw */
	if (mp.arena) {
		m->arena_bytes -= mp.len;
	} else {
		block_free(m, r->addr);
	}
	if (r->size < mp.len) {
		/* partial unmap from the start: the rest stays mapped */
		int fresh;
		struct pp_mapping *rest;

		rest = pp_map_put(&m->maps, r->addr + r->size, &fresh);
		if (rest) {
			rest->len = mp.len - r->size;
			rest->arena = mp.arena;
		}
		if (mp.arena)
			m->arena_bytes += rest ? rest->len : 0;
		else
			block_new(m, r->addr + r->size, mp.len - r->size,
				  mp.stack, PP_DOM_MMAP);
	}
}

/*
 * A realloc is one step: the old block's site must not see the moment
 * between its free and the new block's arrival, or every move of a
 * growing list's buffer would look like a fall of the site's floor.
 */
static void realloc_rec(struct pp_model *m, const struct pp_rec_realloc *r)
{
	struct pp_site *old_site = NULL;
	struct pp_block b;

	if (!r->addr)
		return;		/* failed: the old block is untouched */
	if (r->old) {
		if (pp_map_del(&m->live, r->old, &b))
			old_site = block_drop(m, r->old, &b);
		else
			m->unknown_frees++;	/* made before the hooks */
	}
	block_new(m, r->addr, r->size, r->h.aux, r->h.flags);
	if (old_site)
		site_note(m, old_site);
}

/*
 * Address-space growth seen by the kernel. Mappings are tracked by start
 * so an unmap of something that was never anonymous heap (a file, the
 * ring) counts for nothing; unmapping the head of a mapping keeps the
 * rest, as glibc does when it trims.
 */
static void kmem(struct pp_model *m, const struct pp_rec_kmem *r)
{
	uint64_t len, *v;
	int fresh;

	m->have_kernel = 1;
	switch (r->h.flags) {
	case PP_KMEM_MMAP:
		v = pp_map_put(&m->kmaps, r->addr, &fresh);
		if (!v)
			return;
		if (!fresh)
			m->kernel_bytes -= *v;
		*v = r->size;
		m->kernel_bytes += r->size;
		break;
	case PP_KMEM_MUNMAP:
		if (!pp_map_del(&m->kmaps, r->addr, &len))
			return;
		if (r->size < len) {
			v = pp_map_put(&m->kmaps, r->addr + r->size, &fresh);
			if (v)
				*v = len - r->size;
			len = r->size;
		}
		m->kernel_bytes -= len;
		break;
	case PP_KMEM_BRK:
		m->kernel_bytes += (double)(int64_t)r->size;
		break;
	}
	if (m->kernel_bytes > m->kernel_peak_bytes)
		m->kernel_peak_bytes = m->kernel_bytes;
}

/*
 * The program is let run its own code: what came before (interpreter
 * start-up, pyprof attaching its probes) is not the program's run, so
 * the leak windows start again from here.
 */
static void windows_restart(struct pp_model *m)
{
	size_t i;

	m->window_ns = PP_WINDOW0_NS;
	/* records already seen may lie far past the mark (a hostile
	 * trace): widen the windows so that now falls in one */
	while (cur_window(m) >= PP_WINDOWS)
		m->window_ns *= 2;
	m->window = cur_window(m);
	m->stamped = 1ull << m->window;
	for (i = 0; i < m->nsites; i++) {
		struct pp_site *s = &m->sites[i];

		memset(s->floor, 0, sizeof(s->floor));
		memset(s->cum_alloc, 0, sizeof(s->cum_alloc));
		s->window = s->born = m->window;
		s->active = 0;
		s->nrec = 0;
		s->floor[s->window] = s->live_bytes;
		s->cum_alloc[s->window] = s->alloc_bytes;
	}
}

static void run_starts(struct pp_model *m, uint64_t ts)
{
	m->t_run = ts;
	windows_restart(m);
}

/*
 * A checkpoint (pp_wire.h PP_REC_CKPT): the trace starts with the live
 * state at ts. Taken only by a model that has nothing yet; one met
 * later (it repeats what the model knows) changes nothing.
 */
static void ckpt_rec(struct pp_model *m, const struct pp_rec_ckpt *r)
{
	if (r->h.flags == PP_CKPT_BEGIN) {
		if (m->t_kept || m->events || m->live.count || m->ntimeline ||
		    m->finalized)
			return;
		m->ckpt_loading = 1;
		m->t_kept = r->ts;
		m->tick_dropped = r->tick_dropped;
		m->kernel_bytes += (double)r->brk_bytes;
		if (r->brk_bytes)
			m->have_kernel = 1;
		advance_time(m, r->ts);
		return;
	}
	if (!m->ckpt_loading)
		return;
	m->ckpt_loading = 0;
	/* sums and peaks are the kept part's; the verdicts judge it */
	m->peak_bytes = m->live_bytes;
	m->kernel_peak_bytes = m->kernel_bytes;
	windows_restart(m);
}

/* A block live at the checkpoint: live, not allocated in the trace. */
static void block_load(struct pp_model *m, uint64_t addr, uint64_t size,
		       uint32_t stack, uint8_t domain)
{
	struct pp_block *b;
	struct pp_site *s;
	struct pp_stack *st;
	double w, bytes;
	int fresh;

	b = pp_map_put(&m->live, addr, &fresh);
	if (!b || !fresh)
		return;
	b->size = size;
	b->stack = stack;
	b->domain = domain;
	w = weight(m, size);
	bytes = w * size;
	if (m->block_fn)
		m->block_fn(m->block_ctx, 2, addr, size, w, stack);
	m->live_bytes += bytes;
	m->live_count += w;
	s = site_of_stack(m, stack);
	s->live_bytes += bytes;
	s->live_count += w;
	st = (struct pp_stack *)pp_model_stack(m, stack);
	if (st)
		st->live_bytes += bytes;
}

static void live_rec(struct pp_model *m, const struct pp_rec_live *r)
{
	uint32_t i, n = r->h.aux;

	if (!m->ckpt_loading ||
	    n > (r->h.len - sizeof(*r)) / sizeof(r->ent[0]))
		return;
	for (i = 0; i < n; i++) {
		const struct pp_live_ent *e = &r->ent[i];
		struct pp_mapping *mp;
		uint64_t *v;
		int fresh;

		if (e->kind == PP_LIVE_KMAP) {
			v = pp_map_put(&m->kmaps, e->addr, &fresh);
			if (!v || !fresh)
				continue;
			*v = e->size;
			m->kernel_bytes += e->size;
			m->have_kernel = 1;
			continue;
		}
		if (e->kind == PP_DOM_ARENA || e->kind == PP_DOM_MMAP) {
			mp = pp_map_put(&m->maps, e->addr, &fresh);
			if (!mp || !fresh)
				continue;
			mp->len = e->size;
			mp->stack = e->kind == PP_DOM_MMAP ? e->stack : 0;
			mp->arena = e->kind == PP_DOM_ARENA;
			if (mp->arena) {
				m->arena_bytes += e->size;
				continue;
			}
		}
		if (e->kind < PP_DOM_ARENA)
			block_load(m, e->addr, e->size, e->stack, e->kind);
	}
}

void pp_model_each_live(const struct pp_model *m,
			void (*fn)(void *ctx, const struct pp_live_ent *e),
			void *ctx)
{
	struct pp_live_ent e = { 0 };
	size_t i;

	pp_map_for_each(&m->live, i) {
		const struct pp_block *b = pp_map_val(&m->live, i);

		e.addr = m->live.keys[i];
		e.size = b->size;
		e.stack = b->stack;
		e.kind = b->domain;
		fn(ctx, &e);
	}
	e.stack = 0;
	pp_map_for_each(&m->maps, i) {
		const struct pp_mapping *mp = pp_map_val(&m->maps, i);

		if (!mp->arena)
			continue;	/* a block, given above */
		e.addr = m->maps.keys[i];
		e.size = mp->len;
		e.kind = PP_DOM_ARENA;
		fn(ctx, &e);
	}
	pp_map_for_each(&m->kmaps, i) {
		e.addr = m->kmaps.keys[i];
		e.size = *(const uint64_t *)pp_map_val(&m->kmaps, i);
		e.kind = PP_LIVE_KMAP;
		fn(ctx, &e);
	}
}

double pp_model_brk_bytes(const struct pp_model *m)
{
	double mapped = 0;
	size_t i;

	pp_map_for_each(&m->kmaps, i)
		mapped += *(const uint64_t *)pp_map_val(&m->kmaps, i);
	return m->kernel_bytes - mapped;
}

void pp_model_judged(const struct pp_model *m, double *from_s, double *to_s)
{
	uint64_t end = m->t_end_run ? m->t_end_run : m->t_now;

	*from_s = pp_model_secs(m, win_origin(m));
	*to_s = pp_model_secs(m, end);
}

static void snapshot_end(struct pp_model *m)
{
	size_t i;

	for (i = 0; i < m->nsites; i++) {
		site_catch_up(m, &m->sites[i]);
		m->sites[i].end_live_bytes = m->sites[i].live_bytes;
		m->sites[i].end_live_count = m->sites[i].live_count;
	}
	for (i = 1; i < m->nstacks; i++)
		m->stacks[i].end_live_bytes = m->stacks[i].live_bytes;
	for (i = 0; i < m->nstacks_hi; i++)
		m->stacks_hi[i].end_live_bytes = m->stacks_hi[i].live_bytes;
	m->end_live_bytes = m->live_bytes;
	m->end_live_count = m->live_count;
	m->t_end_run = m->t_now;
}

static const char *const lost_names[PP_LOST_NSRC] = {
	[PP_LOST_SHIM_RING] = "shim_ring",
	[PP_LOST_BPF_GIL] = "bpf_gil",
	[PP_LOST_BPF_GC] = "bpf_gc",
	[PP_LOST_BPF_LOCKS] = "bpf_locks",
	[PP_LOST_BPF_KMEM] = "bpf_kmem",
	[PP_LOST_TRACE_WRITE] = "trace_write",
};

const char *pp_lost_src_name(int src)
{
	return src >= 0 && src < PP_LOST_NSRC ? lost_names[src] : NULL;
}

/* A source's total so far (ticks and LOST records both carry totals). */
static void lost(struct pp_model *m, unsigned src, uint64_t total)
{
	int i;

	if (src >= PP_LOST_NSRC || total <= m->dropped_by[src])
		return;
	m->dropped_by[src] = total;
	m->dropped = 0;
	for (i = 0; i < PP_LOST_NSRC; i++)
		m->dropped += m->dropped_by[i];
}

static void drop_window(struct pp_model *m, uint64_t n, double t)
{
	struct pp_drop_window *w = m->ndrops ? &m->drops[m->ndrops - 1] : NULL;

	if (w && w->to_s == m->tick_t) {	/* the previous interval too */
		w->to_s = t;
		w->count += n;
		return;
	}
	m->drops = pp_grow(m->drops, &m->cap_drops, m->ndrops + 1,
			   sizeof(*m->drops));
	m->drops[m->ndrops++] = (struct pp_drop_window){ m->tick_t, t, n };
}

static void tick(struct pp_model *m, const struct pp_rec_tick *r)
{
	struct pp_point *p;

	advance_time(m, r->ts);
	if (r->h.flags & PP_TICK_CLOCK)
		return;		/* a time stamp only */
	m->rss_bytes = r->rss_bytes;
	if (r->rss_bytes > m->rss_peak_bytes)
		m->rss_peak_bytes = r->rss_bytes;
	lost(m, PP_LOST_SHIM_RING, r->dropped);
	if (m->live_only) {	/* no timeline: it would grow for days */
		if (r->dropped > m->tick_dropped)
			m->tick_dropped = r->dropped;
		return;
	}
	if (r->dropped > m->tick_dropped)
		drop_window(m, r->dropped - m->tick_dropped,
			    pp_model_secs(m, r->ts));
	if (r->dropped > m->tick_dropped)
		m->tick_dropped = r->dropped;
	m->tick_t = pp_model_secs(m, r->ts);
	m->timeline = pp_grow(m->timeline, &m->cap_timeline,
				 m->ntimeline + 1, sizeof(*m->timeline));
	p = &m->timeline[m->ntimeline++];
	p->t = pp_model_secs(m, r->ts);
	p->live_bytes = m->live_bytes;
	p->rss_bytes = r->rss_bytes;
	p->kernel_bytes = m->kernel_bytes;
}

static void meta(struct pp_model *m, const struct pp_rec_meta *r)
{
	size_t n = r->h.len - sizeof(*r);
	const char *argv = memmem(r->data, n, "argv\t", 5);
	const char *att = memmem(r->data, n, "\nattach\t", 8);

	m->pid = r->h.aux;
	m->sample_bytes = r->sample_bytes;
	m->realtime0 = r->realtime_ns;
	advance_time(m, r->ts);
	if (att) {
		const char *end = memchr(att + 1, '\n', r->data + n - att - 1);
		size_t len = (end ? end : r->data + n) - (att + 8);

		free(m->attach_mode);
		m->attach_mode = pp_xstrndup(att + 8, len);
	}
	if (argv) {
		const char *end = memchr(argv, '\n', r->data + n - argv);
		size_t len = (end ? end : r->data + n) - (argv + 5);

		free(m->argv);
		m->argv = pp_xstrndup(argv + 5, len);
	}
}

static void proc(struct pp_model *m, const struct pp_rec_proc *r)
{
	size_t n = r->pyver_len < sizeof(m->pyver) ? r->pyver_len :
						     sizeof(m->pyver) - 1;

	if (sizeof(*r) + r->pyver_len > r->h.len)
		return;
	m->pid = r->h.aux;
	memcpy(m->pyver, r->data, n);
	m->pyver[n] = 0;
	m->py_supported = r->flags & 1;
}

void pp_model_feed(struct pp_model *m, const struct pp_hdr *rec)
{
	/* the producers' records; LOST and the RUN mark are the collector's */
	if (rec->type < PP_REC_TICK && rec->type != PP_REC_LOST &&
	    !(rec->type == PP_REC_MARK && rec->aux == PP_MARK_RUN) &&
	    !m->ckpt_loading)
		m->events++;
	switch (rec->type) {
	case PP_REC_ALLOC:
		{
			const struct pp_rec_alloc *r = (const void *)rec;

			block_new(m, r->addr, r->size, rec->aux, rec->flags);
		}
		break;
	case PP_REC_FREE:
		block_free(m, ((const struct pp_rec_free *)rec)->addr);
		break;
	case PP_REC_REALLOC:
		realloc_rec(m, (const void *)rec);
		break;
	case PP_REC_RETAG:
		block_retag(m, rec);
		break;
	case PP_REC_MMAP:
		map_new(m, (const void *)rec);
		break;
	case PP_REC_MUNMAP:
		map_gone(m, (const void *)rec);
		break;
	case PP_REC_FUNC:
		def_func(m, (const void *)rec);
		break;
	case PP_REC_STACK:
		def_stack(m, (const void *)rec);
		break;
	case PP_REC_PROC:
		proc(m, (const void *)rec);
		break;
	case PP_REC_MARK:
		{
			const struct pp_rec_mark *r = (const void *)rec;

			advance_time(m, r->ts);
			if (rec->aux == PP_MARK_RUN && !m->t_run &&
			    !m->finalized)
				run_starts(m, r->ts);
			if (rec->aux == PP_MARK_PY_READY)
				m->shim_ready = 1;
			if (rec->aux == PP_MARK_FINALIZE && !m->finalized) {
				snapshot_end(m);
				m->finalized = 1;
			}
		}
		break;
	case PP_REC_LOST:
		lost(m, rec->flags, ((const struct pp_rec_lost *)rec)->count);
		break;
	case PP_REC_TICK:
		tick(m, (const void *)rec);
		break;
	case PP_REC_META:
		meta(m, (const void *)rec);
		break;
	case PP_REC_EXIT:
		{
			const struct pp_rec_exit *r = (const void *)rec;

			/* not a time: recording may have stopped long before */
			m->exited = 1;
			if (rec->flags)
				m->killed_by = r->status;
			else
				m->exit_status = r->status;
		}
		break;
	case PP_REC_KMEM:
		kmem(m, (const void *)rec);
		break;
	case PP_REC_CKPT:
		ckpt_rec(m, (const void *)rec);
		break;
	case PP_REC_LIVE:
		live_rec(m, (const void *)rec);
		break;
	case PP_REC_GC:
	case PP_REC_GIL:
	case PP_REC_LOCK:
	case PP_REC_THREAD:
		if (!m->live_only)
			pp_stalls_add(m->stalls, rec);
		break;
	default:
		break;
	}
}

double pp_model_secs(const struct pp_model *m, uint64_t ns)
{
	return ns > m->t0 ? (ns - m->t0) / 1e9 : 0.0;
}

/*
 * The leak rule (README, "What counts as a leak"): over the site's life
 * after a warm-up quarter, its lowest live bytes per window must rise
 * in most steps and fall in almost none, and what it kept must be a
 * real share of what it allocated meanwhile. Windows no time stamp fell
 * in are skipped: their floor is only a copy of the next one's start.
 */
static void judge(struct pp_model *m, struct pp_site *s, int nwin)
{
	int first = -1, prev = -1, i, steps = 0, rises = 0, falls = 0;
	int from = s->born + (nwin - s->born) / 4, sparse;
	double grown, allocated, span;

	s->leak = 0;
	s->imported = 0;
	s->growth_bytes_per_s = 0;
	s->retention = 0;
	/*
	 * Sampled: a window in which the sampler recorded nothing at this
	 * site says nothing of it (a leak of 40 sampled blocks over 30
	 * windows leaves a third of them empty), so it is skipped like an
	 * unstamped one; growth that stopped is still growth that stopped:
	 * the site must have records in the last quarter of the judged
	 * windows.
	 */
	/* sparse: fewer than 4 records per judged window on average */
	sparse = m->sample_bytes && from < nwin &&
		 s->nrec < 4ull * (uint64_t)(nwin - from);
	if (sparse && !(s->active >> (from + (nwin - from) * 3 / 4)))
		return;
	/* the warm-up: a quarter of the site's life in the run */
	for (i = from; i < nwin; i++) {
		if (!(m->stamped & (1ull << i)))
			continue;
		if (sparse && !(s->active & (1ull << i)) && first >= 0)
			continue;
		if (first < 0) {
			first = prev = i;
			continue;
		}
		steps++;
		if (s->floor[i] > s->floor[prev])
			rises++;
		else if (s->floor[i] < s->floor[prev])
			falls++;
		prev = i;
	}
	if (steps < PP_MIN_STEPS)
		return;		/* too short a run to tell */
	grown = s->floor[prev] - s->floor[first];
	allocated = s->cum_alloc[prev] - s->cum_alloc[first];
	span = (prev - first) * (m->window_ns / 1e9);
	if (grown <= 0 || allocated <= 0 || span <= 0)
		return;
	s->growth_bytes_per_s = grown / span;
	s->retention = grown / allocated;
	s->leak = rises * 10 >= steps * 6 && falls * 10 <= steps &&
		  s->retention >= 0.05;
	/* most of it allocated by imports: modules loaded, not a leak */
	if (s->leak && s->import_bytes * 2 >= s->alloc_bytes) {
		s->leak = 0;
		s->imported = 1;
	}
}

void pp_model_judge(struct pp_model *m)
{
	uint64_t end = m->t_end_run ? m->t_end_run : m->t_now;
	size_t i;
	int nwin;

	/* windows up to the end of the run (the last may be partial) */
	nwin = end > win_origin(m) ?
	       (int)((end - win_origin(m)) / m->window_ns) : 0;
	if (nwin > PP_WINDOWS)
		nwin = PP_WINDOWS;
	for (i = 1; i < m->nsites; i++) {
		struct pp_site *s = &m->sites[i];

		if (!m->t_end_run)
			site_catch_up(m, s);
		judge(m, s, nwin);
	}
}

void pp_model_finish(struct pp_model *m)
{
	size_t i;

	if (!m->finalized) {
		snapshot_end(m);
		m->finalized = 1;
	}
	pp_stalls_span(m->stalls, m->t0, m->t_now);
	pp_model_judge(m);
	/* a site's shown stack: its heaviest at the end of the run, as
	 * the site's live bytes are taken */
	for (i = 1; i < m->nstacks; i++) {
		struct pp_stack *st = &m->stacks[i];
		struct pp_site *s = &m->sites[st->site];
		const struct pp_stack *top = pp_model_stack(m, s->top_stack);

		if (st->frames && (!top || st->end_live_bytes >
					       top->end_live_bytes))
			s->top_stack = i;
	}
}

int pp_model_frame(void *ctx, uint32_t stack, int i, struct pp_loc *out)
{
	const struct pp_model *m = ctx;
	const struct pp_stack *st = pp_model_stack(m, stack);
	const struct pp_func *f;

	if (!st || i < 0 || (uint32_t)i >= st->nframes)
		return -1;
	f = pp_model_func(m, st->frames[i].func);
	out->file = f ? f->file : "?";
	out->function = f ? f->name : "?";
	out->line = st->frames[i].line;
	return 0;
}

static const struct pp_model *sort_model;

static int by_live(const void *a, const void *b)
{
	const struct pp_site *x = &sort_model->sites[*(const uint32_t *)a];
	const struct pp_site *y = &sort_model->sites[*(const uint32_t *)b];

	if (x->end_live_bytes != y->end_live_bytes)
		return x->end_live_bytes < y->end_live_bytes ? 1 : -1;
	return x->alloc_bytes < y->alloc_bytes ? 1 :
	       x->alloc_bytes > y->alloc_bytes ? -1 : 0;
}

static int by_growth(const void *a, const void *b)
{
	const struct pp_site *x = &sort_model->sites[*(const uint32_t *)a];
	const struct pp_site *y = &sort_model->sites[*(const uint32_t *)b];

	if (x->growth_bytes_per_s != y->growth_bytes_per_s)
		return x->growth_bytes_per_s < y->growth_bytes_per_s ? 1 : -1;
	return 0;
}

static size_t collect(const struct pp_model *m, uint32_t **out, int leaks,
		      int (*cmp)(const void *, const void *))
{
	size_t i, n = 0;

	*out = pp_xmalloc((m->nsites + 1) * sizeof(**out));
	for (i = 0; i < m->nsites; i++) {
		const struct pp_site *s = &m->sites[i];

		/* a capped trace's site may hold only blocks of its
		 * checkpoint, allocated before what it kept */
		if (leaks ? s->leak : s->alloc_count > 0 ||
				      s->end_live_count > 0)
			(*out)[n++] = i;
	}
	sort_model = m;
	qsort(*out, n, sizeof(**out), cmp);
	return n;
}

size_t pp_model_sorted_sites(const struct pp_model *m, uint32_t **out)
{
	return collect(m, out, 0, by_live);
}

size_t pp_model_leaks(const struct pp_model *m, uint32_t **out)
{
	return collect(m, out, 1, by_growth);
}

void pp_model_free(struct pp_model *m)
{
	size_t i;

	for (i = 0; i < m->nfuncs; i++)
		free((char *)m->funcs[i].file);
	for (i = 0; i < m->nfuncs_hi; i++)
		free((char *)m->funcs_hi[i].file);
	for (i = 0; i < m->nstacks; i++)
		free(m->stacks[i].frames);
	for (i = 0; i < m->nstacks_hi; i++)
		free(m->stacks_hi[i].frames);
	free(m->drops);
	free(m->funcs);
	free(m->funcs_hi);
	free(m->stacks);
	free(m->stacks_hi);
	free(m->sites);
	free(m->timeline);
	free(m->argv);
	free(m->attach_mode);
	pp_map_free(&m->live);
	pp_map_free(&m->maps);
	pp_map_free(&m->site_index);
	pp_map_free(&m->kmaps);
	pp_stalls_free(m->stalls);
	memset(m, 0, sizeof(*m));
}

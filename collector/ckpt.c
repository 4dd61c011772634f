// SPDX-License-Identifier: MIT
/*
 * Checkpoints (ckpt.h). The state is the model's own (live blocks,
 * mappings, definitions), so what a reader rebuilds from a checkpoint
 * is what it would have had reading from the start; the few records
 * the model does not keep as they came (META, PROC, the marks, thread
 * names) are kept here. A checkpoint is written in record order:
 * definitions before the live blocks that name them.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ckpt.h"
#include "hashmap.h"
#include "model.h"

struct thr {
	uint64_t created;
	char *name;
	uint32_t tid;
	uint8_t pyname, exited;
};

struct ckpt {
	struct pp_model m;
	struct pp_hdr *meta;		/* the first META, as written */
	struct pp_hdr *proc;		/* the last PROC */
	struct pp_rec_mark ready, run;	/* the first of each (len 0: none) */
	struct pp_map tix;		/* tid -> index into thr */
	struct thr *thr;
	size_t nthr, cap_thr;
	uint64_t t_tick;		/* the last TICK's time */
	struct pp_trace_writer *w;
	int err;
	/* records are built here (last: pp_rec_live ends in a flexible
	 * array) */
	union {
		struct pp_hdr h;
		struct pp_rec_live live;
		uint64_t u[PP_REC_MAXLEN / 8];
	} buf;
};

static struct pp_hdr *copy_rec(struct pp_hdr *old, const struct pp_hdr *rec)
{
	free(old);
	old = pp_xmalloc(rec->len);
	memcpy(old, rec, rec->len);
	return old;
}

static void thread_rec(struct ckpt *c, const struct pp_rec_thread *r)
{
	uint32_t *ix = pp_map_u32(&c->tix, r->h.aux, 1, UINT32_MAX);
	size_t n = r->h.len - sizeof(*r), l = strnlen(r->name, n);
	struct thr *t;

	if (!ix)
		return;
	if (*ix == UINT32_MAX) {	/* a new tid */
		c->thr = pp_grow(c->thr, &c->cap_thr, c->nthr + 1,
				 sizeof(*c->thr));
		memset(&c->thr[c->nthr], 0, sizeof(*c->thr));
		c->thr[c->nthr].tid = r->h.aux;
		*ix = c->nthr++;
	}
	t = &c->thr[*ix];
	if (r->h.flags & PP_THREAD_EXIT) {
		t->exited = 1;
		return;
	}
	if (t->exited || !t->created || r->ts < t->created)
		t->created = r->ts;
	t->exited = 0;
	/* as the stalls name threads: a Python name is never replaced */
	if (l && (r->h.flags & PP_THREAD_PYNAME || !t->pyname)) {
		free(t->name);
		t->name = pp_xstrndup(r->name, l);
		t->pyname = !!(r->h.flags & PP_THREAD_PYNAME);
	}
}

static void observe(void *ctx, const struct pp_hdr *rec)
{
	struct ckpt *c = ctx;

	pp_model_feed(&c->m, rec);
	if (__builtin_expect(rec->type < PP_REC_THREAD, 1))
		return;
	switch (rec->type) {
	case PP_REC_THREAD:
		thread_rec(c, (const void *)rec);
		break;
	case PP_REC_PROC:
		c->proc = copy_rec(c->proc, rec);
		break;
	case PP_REC_META:
		if (!c->meta)
			c->meta = copy_rec(NULL, rec);
		break;
	case PP_REC_MARK:
		if (rec->aux == PP_MARK_PY_READY && !c->ready.h.len)
			memcpy(&c->ready, rec, sizeof(c->ready));
		if (rec->aux == PP_MARK_RUN && !c->run.h.len)
			memcpy(&c->run, rec, sizeof(c->run));
		break;
	case PP_REC_TICK:
		c->t_tick = ((const struct pp_rec_tick *)rec)->ts;
		break;
	}
}

/* After the program's run ends, the live state is no longer the one a
 * report takes its figures from: the current segment just grows. */
static int ready(void *ctx)
{
	struct ckpt *c = ctx;

	return c->meta && c->t_tick && !c->m.finalized;
}

static void put(struct ckpt *c, const struct pp_hdr *rec)
{
	if (!c->err)
		c->err = pp_trace_append(c->w, rec);
}

static void put_func(struct ckpt *c, uint32_t id, const struct pp_func *f)
{
	struct pp_rec_func *r = (void *)&c->buf;
	size_t fl = strlen(f->file), nl = strlen(f->name);
	size_t room = sizeof(c->buf) - sizeof(*r);

	if (fl > room)
		fl = room;
	if (nl > room - fl)
		nl = room - fl;
	memset(r, 0, PP_REC_ALIGN(sizeof(*r) + fl + nl));
	r->h = (struct pp_hdr){ .len = PP_REC_ALIGN(sizeof(*r) + fl + nl),
				.type = PP_REC_FUNC,
				.flags = f->native ? PP_FUNC_NATIVE : 0,
				.aux = id };
	r->firstlineno = f->firstlineno;
	r->file_len = fl;
	r->name_len = nl;
	memcpy(r->data, f->file, fl);
	memcpy(r->data + fl, f->name, nl);
	put(c, &r->h);
}

static void put_stack(struct ckpt *c, uint32_t id, const struct pp_stack *st)
{
	struct pp_rec_stack *r = (void *)&c->buf;
	uint32_t n = st->nframes;

	if (n > (sizeof(c->buf) - sizeof(*r)) / sizeof(r->frames[0]))
		n = (sizeof(c->buf) - sizeof(*r)) / sizeof(r->frames[0]);
	r->h = (struct pp_hdr){ .len = sizeof(*r) + n * sizeof(r->frames[0]),
				.type = PP_REC_STACK, .aux = id };
	r->nframes = n;
	r->tid = 0;
	memcpy(r->frames, st->frames, n * sizeof(r->frames[0]));
	put(c, &r->h);
}

static void put_thread(struct ckpt *c, const struct thr *t)
{
	struct pp_rec_thread *r = (void *)&c->buf;
	size_t l = t->name ? strlen(t->name) : 0, len;

	if (l > 255)
		l = 255;
	len = PP_REC_ALIGN(sizeof(*r) + l + 1);
	memset(r, 0, len);
	r->h = (struct pp_hdr){ .len = len, .type = PP_REC_THREAD,
				.flags = t->pyname ? PP_THREAD_PYNAME : 0,
				.aux = t->tid };
	r->ts = t->created;
	if (l)
		memcpy(r->name, t->name, l);
	put(c, &r->h);
}

static void flush_live(struct ckpt *c)
{
	struct pp_rec_live *r = &c->buf.live;

	if (!r->h.aux)
		return;
	r->h.len = sizeof(*r) + r->h.aux * sizeof(r->ent[0]);
	r->h.type = PP_REC_LIVE;
	put(c, &r->h);
	r->h.aux = 0;
}

static void put_live(void *ctx, const struct pp_live_ent *e)
{
	struct ckpt *c = ctx;
	struct pp_rec_live *r = &c->buf.live;

	r->ent[r->h.aux++] = *e;
	if (r->h.aux == PP_LIVE_MAX)
		flush_live(c);
}

static int write_ckpt(void *ctx, struct pp_trace_writer *w, uint32_t seq)
{
	struct ckpt *c = ctx;
	const struct pp_model *m = &c->m;
	struct pp_rec_ckpt ck = {
		.h = { .len = sizeof(ck), .type = PP_REC_CKPT,
		       .flags = PP_CKPT_BEGIN, .aux = seq },
		.ts = c->t_tick,
		.tick_dropped = m->tick_dropped,
		.brk_bytes = (int64_t)pp_model_brk_bytes(m),
	};
	struct pp_rec_tick tick = {
		.h = { .len = sizeof(tick), .type = PP_REC_TICK },
		.ts = c->t_tick,
		.rss_bytes = m->rss_bytes,
		.dropped = m->tick_dropped,
	};
	size_t i;

	c->w = w;
	c->err = 0;
	put(c, c->meta);
	put(c, &ck.h);
	if (c->proc)
		put(c, c->proc);
	if (c->ready.h.len)
		put(c, &c->ready.h);
	if (c->run.h.len)
		put(c, &c->run.h);
	for (i = 0; i < c->nthr; i++)
		if (!c->thr[i].exited)
			put_thread(c, &c->thr[i]);
	for (i = 1; i < m->nfuncs; i++)
		if (m->funcs[i].file)
			put_func(c, i, &m->funcs[i]);
	for (i = 0; i < m->nfuncs_hi; i++)
		if (m->funcs_hi[i].file)
			put_func(c, i | PP_BPF_ID_BASE, &m->funcs_hi[i]);
	for (i = 1; i < m->nstacks; i++)
		if (m->stacks[i].frames)
			put_stack(c, i, &m->stacks[i]);
	for (i = 0; i < m->nstacks_hi; i++)
		if (m->stacks_hi[i].frames)
			put_stack(c, i | PP_BPF_ID_BASE, &m->stacks_hi[i]);
	c->buf.live.h.aux = 0;
	pp_model_each_live(m, put_live, c);
	flush_live(c);
	for (i = 0; i < PP_LOST_NSRC; i++) {
		struct pp_rec_lost l = {
			.h = { .len = sizeof(l), .type = PP_REC_LOST,
			       .flags = i },
			.count = m->dropped_by[i],
		};

		if (l.count)
			put(c, &l.h);
	}
	put(c, &tick.h);
	ck.h.flags = PP_CKPT_END;
	put(c, &ck.h);
	return c->err;
}

static void free_ckpt(void *ctx)
{
	struct ckpt *c = ctx;
	size_t i;

	pp_model_free(&c->m);
	for (i = 0; i < c->nthr; i++)
		free(c->thr[i].name);
	free(c->thr);
	pp_map_free(&c->tix);
	free(c->meta);
	free(c->proc);
	free(c);
}

static const struct pp_trace_cap_ops ops = {
	.observe = observe,
	.ready = ready,
	.write = write_ckpt,
	.free = free_ckpt,
};

void pp_ckpt_cap(struct pp_trace_writer *w, uint64_t max_bytes)
{
	struct ckpt *c = pp_xcalloc(1, sizeof(*c));

	pp_model_init(&c->m);
	c->m.live_only = 1;	/* the collector keeps up with the target */
	pp_trace_set_cap(w, max_bytes, &ops, c);
}

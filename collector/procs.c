// SPDX-License-Identifier: MIT
/*
 * One process of a --children stream, or all of them merged (procs.h).
 * Merged ids are given at first sight and never forgotten, so a second
 * pass over a trace (exports re-read it) numbers them alike.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hashmap.h"
#include "procs.h"

#define HI_BIT 0x80000000u
#define TAG_SHIFT 47		/* x86-64 user addresses lie below 2^47 */

enum { FUNC, STACK };

struct mproc {
	int pid;
	int finalized;		/* a child past its FINALIZE mark */
	uint64_t rss, dropped;
	uint64_t lost[PP_LOST_NSRC];
};

struct pp_procsel {
	int want;			/* a pid, or PP_PROCS_MERGE */
	int root, cur;			/* pids; cur: whose records come */
	size_t k;			/* merged: cur's index in procs */
	struct mproc *procs;
	size_t nprocs, cap;
	struct pp_map ids;		/* (k, kind, id) -> merged id */
	uint32_t next[2][2];		/* [FUNC, STACK][low, high range] */
	union {
		struct pp_hdr h;
		uint64_t u[PP_REC_MAXLEN / 8 + 1];
	} buf;
};

struct pp_procsel *pp_procsel_new(int pid)
{
	struct pp_procsel *s = pp_xcalloc(1, sizeof(*s));

	s->want = pid;
	s->next[FUNC][0] = s->next[STACK][0] = 1;
	s->next[FUNC][1] = s->next[STACK][1] = HI_BIT;
	return s;
}

void pp_procsel_free(struct pp_procsel *s)
{
	if (!s)
		return;
	pp_map_free(&s->ids);
	free(s->procs);
	free(s);
}

static size_t proc_index(struct pp_procsel *s, int pid)
{
	size_t i;

	for (i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid)
			return i;
	s->procs = pp_grow(s->procs, &s->cap, s->nprocs + 1,
			   sizeof(*s->procs));
	memset(&s->procs[i], 0, sizeof(s->procs[i]));
	s->procs[i].pid = pid;
	s->nprocs++;
	return i;
}

static uint32_t new_id(struct pp_procsel *s, int kind, uint32_t id)
{
	uint64_t key = (uint64_t)s->k << 34 | (uint64_t)kind << 32 | id;
	uint32_t *slot;

	if (!id)
		return 0;
	slot = pp_map_u32(&s->ids, key, 1, 0);
	if (slot && !*slot)
		*slot = s->next[kind][!!(id & HI_BIT)]++;
	return slot ? *slot : 0;
}

static uint64_t tag(const struct pp_procsel *s, uint64_t addr)
{
	return addr ? addr | (uint64_t)s->k << TAG_SHIFT : 0;
}

/* the merged view of one record of process k: 0 to drop it */
static int merge(struct pp_procsel *s, const struct pp_hdr *rec,
		 const struct pp_hdr **out)
{
	struct pp_hdr *h = &s->buf.h;
	struct mproc *p = &s->procs[s->k];
	uint64_t sum = 0;
	size_t i;

	memcpy(h, rec, rec->len);
	*out = h;
	switch (rec->type) {
	case PP_REC_FUNC:
		h->aux = new_id(s, FUNC, rec->aux);
		return 1;
	case PP_REC_STACK: {
		struct pp_rec_stack *r = (void *)h;

		for (i = 0; i < r->nframes; i++)
			r->frames[i].func = new_id(s, FUNC, r->frames[i].func);
		if (r->h.flags & PP_STACK_PARENT)
			r->parent = new_id(s, STACK, r->parent);
		h->aux = new_id(s, STACK, rec->aux);
		return 1;
	}
	case PP_REC_ALLOC:
	case PP_REC_MMAP:
		h->aux = new_id(s, STACK, rec->aux);
		((struct pp_rec_alloc *)h)->addr =
			tag(s, ((struct pp_rec_alloc *)h)->addr);
		return 1;
	case PP_REC_MUNMAP:
		/* a child's teardown: it is kept as it ended (PP_REC_MARK) */
		if (p->finalized)
			return 0;
		((struct pp_rec_alloc *)h)->addr =
			tag(s, ((struct pp_rec_alloc *)h)->addr);
		return 1;
	case PP_REC_FREE:
		if (p->finalized)
			return 0;
		((struct pp_rec_free *)h)->addr =
			tag(s, ((struct pp_rec_free *)h)->addr);
		return 1;
	case PP_REC_RETAG:
		h->aux = new_id(s, STACK, rec->aux);
		((struct pp_rec_free *)h)->addr =
			tag(s, ((struct pp_rec_free *)h)->addr);
		return 1;
	case PP_REC_REALLOC: {
		struct pp_rec_realloc *r = (void *)h;

		h->aux = new_id(s, STACK, rec->aux);
		r->old = tag(s, r->old);
		r->addr = tag(s, r->addr);
		return 1;
	}
	case PP_REC_LOCK: {
		struct pp_rec_lock *r = (void *)h;

		h->aux = new_id(s, STACK, rec->aux);
		r->lock_addr = tag(s, r->lock_addr);
		return 1;
	}
	case PP_REC_KMEM: {
		struct pp_rec_kmem *r = (void *)h;

		r->addr = tag(s, r->addr);
		return 1;
	}
	case PP_REC_TICK: {
		struct pp_rec_tick *r = (void *)h;
		uint64_t drops = 0;

		p->rss = r->rss_bytes;
		p->dropped = r->dropped;
		for (i = 0; i < s->nprocs; i++) {
			sum += s->procs[i].rss;
			drops += s->procs[i].dropped;
		}
		r->rss_bytes = sum;
		r->dropped = drops;
		return 1;
	}
	case PP_REC_LOST: {
		struct pp_rec_lost *r = (void *)h;

		if (rec->flags >= PP_LOST_NSRC)
			return 1;
		p->lost[rec->flags] = r->count;
		for (i = 0; i < s->nprocs; i++)
			sum += s->procs[i].lost[rec->flags];
		r->count = sum;
		return 1;
	}
	case PP_REC_MARK:
		/*
		 * A child that begins to finalize has ended its run: the
		 * merged view keeps its heap as it was then, as the child's
		 * own report does (its end-of-run state), rather than let
		 * its teardown's frees empty it before the root's end.
		 */
		if (s->k && rec->aux == PP_MARK_FINALIZE)
			p->finalized = 1;
		return s->k == 0;
	case PP_REC_META:
	case PP_REC_PROC:
	case PP_REC_EXIT:
		/* the root's: the merged run is its run */
		return s->k == 0;
	default:
		return 1;
	}
}

int pp_procsel_filter(void *ctx, const struct pp_hdr *rec,
		      const struct pp_hdr **out)
{
	struct pp_procsel *s = ctx;
	size_t i;

	if (!rec) {		/* rewound: the root's records come first */
		s->cur = s->root;
		s->k = 0;
		for (i = 0; i < s->nprocs; i++) {
			int pid = s->procs[i].pid;

			memset(&s->procs[i], 0, sizeof(s->procs[i]));
			s->procs[i].pid = pid;
		}
		return 0;
	}
	if (!s->root && rec->type == PP_REC_META) {
		s->root = s->cur = rec->aux;
		s->k = proc_index(s, s->root);
	}
	if (rec->type == PP_REC_PID) {
		s->cur = rec->aux;
		if (s->want == PP_PROCS_MERGE)
			s->k = proc_index(s, s->cur);
		return 0;
	}
	if (s->want != PP_PROCS_MERGE) {
		*out = rec;
		return s->cur == s->want;
	}
	if (!s->nprocs)		/* no META yet: a fragment, as it is */
		s->k = proc_index(s, s->cur);
	return merge(s, rec, out);
}

/* a META with an "attach" key (attach.c): the root was attached to,
 * not started by pyprof */
static int meta_attached(const struct pp_hdr *rec)
{
	const struct pp_rec_meta *m = (const void *)rec;
	size_t len = rec->len - sizeof(*m);

	return (len >= 7 && !memcmp(m->data, "attach\t", 7)) ||
	       memmem(m->data, len, "\nattach\t", 8);
}

long pp_trace_procs(struct pp_trace_reader *r, struct pp_proc_id **out)
{
	struct pp_proc_id *v = NULL;
	const struct pp_hdr *rec;
	size_t n = 0, cap = 0, i;
	int rc;

	pp_trace_rewind(r);
	while ((rc = pp_trace_next(r, &rec)) > 0) {
		int pid, ppid = 0;

		if (rec->type == PP_REC_META && !n)
			pid = rec->aux;
		else if (rec->type == PP_REC_PID && n)
			pid = rec->aux,
			ppid = ((const struct pp_rec_pid *)rec)->ppid;
		else
			continue;
		for (i = 0; i < n && v[i].pid != pid; i++)
			;
		if (i < n)
			continue;
		v = pp_grow(v, &cap, n + 1, sizeof(*v));
		v[n] = (struct pp_proc_id){ pid, ppid, !n &&
					    !meta_attached(rec) };
		n++;
	}
	pp_trace_rewind(r);
	if (rc < 0 || !n) {
		free(v);
		v = NULL;
		if (rc < 0)
			return -1;
		/* no META: one process all the same */
		v = pp_xcalloc(1, sizeof(*v));
		n = 1;
	}
	*out = v;
	return n;
}

/* ---- live ---- */

void pp_procmux_init(struct pp_procmux *x, struct pp_model *merged)
{
	memset(x, 0, sizeof(*x));
	x->merged = merged;
	x->sel = pp_procsel_new(PP_PROCS_MERGE);
	x->cur = -1;
}

static long view_of(struct pp_procmux *x, int pid, int ppid)
{
	struct pp_procview *v;
	size_t i;

	for (i = 0; i < x->nprocs; i++)
		if (x->procs[i]->pid == pid)
			return i;
	v = pp_xcalloc(1, sizeof(*v));
	v->pid = pid;
	v->ppid = ppid;
	pp_model_init(&v->m);
	x->procs = pp_grow(x->procs, &x->cap, x->nprocs + 1,
			   sizeof(*x->procs));
	x->procs[x->nprocs] = v;
	return x->nprocs++;
}

void pp_procmux_feed(struct pp_procmux *x, const struct pp_hdr *rec)
{
	const struct pp_hdr *out;

	if (rec->type == PP_REC_PID)
		x->cur = view_of(x, rec->aux,
				 ((const struct pp_rec_pid *)rec)->ppid);
	else if (x->cur < 0 && rec->type == PP_REC_META)
		x->cur = view_of(x, rec->aux, 0);
	if (rec->type != PP_REC_PID && x->cur >= 0)
		pp_model_feed(&x->procs[x->cur]->m, rec);
	if (pp_procsel_filter(x->sel, rec, &out))
		pp_model_feed(x->merged, out);
}

void pp_procmux_reset(struct pp_procmux *x)
{
	size_t i;

	for (i = 0; i < x->nprocs; i++) {
		pp_model_free(&x->procs[i]->m);
		pp_model_init(&x->procs[i]->m);
	}
	pp_procsel_free(x->sel);
	x->sel = pp_procsel_new(PP_PROCS_MERGE);
	x->cur = -1;
}

struct pp_model *pp_procmux_model(struct pp_procmux *x, long i)
{
	return i >= 0 && (size_t)i < x->nprocs ? &x->procs[i]->m : x->merged;
}

void pp_procmux_free(struct pp_procmux *x)
{
	size_t i;

	for (i = 0; i < x->nprocs; i++) {
		pp_model_free(&x->procs[i]->m);
		free(x->procs[i]);
	}
	free(x->procs);
	pp_procsel_free(x->sel);
	memset(x, 0, sizeof(*x));
}

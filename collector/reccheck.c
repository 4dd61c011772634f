// SPDX-License-Identifier: MIT
/*
 * Is a record consistent with the stream so far? The model and the
 * stalls index arrays by id, read bodies at fixed offsets and cut time
 * into windows; a record that passes here cannot make them read past
 * it, dereference an undefined id, grow a table by more than a bounded
 * multiple of the file, or overflow a window index.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "reccheck.h"

#define HI_BIT 0x80000000u

/* the fixed part of each type: what its reader takes at fixed offsets */
static const uint16_t min_len[PP_REC_MAX] = {
	[PP_REC_ALLOC] = sizeof(struct pp_rec_alloc),
	[PP_REC_FREE] = sizeof(struct pp_rec_free),
	[PP_REC_REALLOC] = sizeof(struct pp_rec_realloc),
	[PP_REC_MMAP] = sizeof(struct pp_rec_alloc),
	[PP_REC_MUNMAP] = sizeof(struct pp_rec_alloc),
	[PP_REC_FUNC] = sizeof(struct pp_rec_func),
	[PP_REC_STACK] = sizeof(struct pp_rec_stack),
	[PP_REC_THREAD] = sizeof(struct pp_rec_thread),
	[PP_REC_PROC] = sizeof(struct pp_rec_proc),
	[PP_REC_MARK] = sizeof(struct pp_rec_mark),
	[PP_REC_LOST] = sizeof(struct pp_rec_lost),
	[PP_REC_GC] = sizeof(struct pp_rec_gc),
	[PP_REC_GIL] = sizeof(struct pp_rec_gil),
	[PP_REC_LOCK] = sizeof(struct pp_rec_lock),
	[PP_REC_KMEM] = sizeof(struct pp_rec_kmem),
	[PP_REC_RETAG] = sizeof(struct pp_rec_free),
	[PP_REC_TICK] = sizeof(struct pp_rec_tick),
	[PP_REC_META] = sizeof(struct pp_rec_meta),
	[PP_REC_EXIT] = sizeof(struct pp_rec_exit),
	[PP_REC_CKPT] = sizeof(struct pp_rec_ckpt),
	[PP_REC_LIVE] = sizeof(struct pp_rec_live),
	[PP_REC_PID] = sizeof(struct pp_rec_pid),
};

static const char *const type_name[PP_REC_MAX] = {
	[PP_REC_ALLOC] = "ALLOC", [PP_REC_FREE] = "FREE",
	[PP_REC_REALLOC] = "REALLOC", [PP_REC_MMAP] = "MMAP",
	[PP_REC_MUNMAP] = "MUNMAP", [PP_REC_FUNC] = "FUNC",
	[PP_REC_STACK] = "STACK", [PP_REC_THREAD] = "THREAD",
	[PP_REC_PROC] = "PROC", [PP_REC_MARK] = "MARK",
	[PP_REC_LOST] = "LOST", [PP_REC_GC] = "GC", [PP_REC_GIL] = "GIL",
	[PP_REC_LOCK] = "LOCK", [PP_REC_KMEM] = "KMEM",
	[PP_REC_RETAG] = "RETAG", [PP_REC_TICK] = "TICK",
	[PP_REC_META] = "META", [PP_REC_EXIT] = "EXIT",
	[PP_REC_CKPT] = "CKPT", [PP_REC_LIVE] = "LIVE",
	[PP_REC_PID] = "PID",
};

enum { FUNC, STACK };

void pp_rec_state_init(struct pp_rec_state *s)
{
	memset(s, 0, sizeof(*s));
}

void pp_rec_state_free(struct pp_rec_state *s)
{
	for (int k = 0; k < 2; k++)
		for (int r = 0; r < 2; r++)
			free(s->ids[k][r].bits);
	memset(s, 0, sizeof(*s));
}

static int bad(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

static struct pp_idset *idset(struct pp_rec_state *s, int kind, uint32_t id,
			      uint32_t *ix)
{
	*ix = id & ~HI_BIT;
	return &s->ids[kind][!!(id & HI_BIT)];
}

/* id 0 of the shim's range means "none"; eBPF ids start at 2^31 */
static int is_none(uint32_t id)
{
	return id == 0;
}

static int defined(struct pp_rec_state *s, int kind, uint32_t id)
{
	uint32_t ix;
	const struct pp_idset *d = idset(s, kind, id, &ix);

	return ix / 64 < d->nwords && d->bits[ix / 64] >> (ix % 64) & 1;
}

static int define(struct pp_rec_state *s, int kind, uint32_t id,
		  uint64_t file_size, char *why, size_t n)
{
	const char *what = kind == FUNC ? "function" : "stack";
	uint32_t ix;
	struct pp_idset *d = idset(s, kind, id, &ix);
	uint64_t max = d->ndef + PP_ID_SLACK + file_size / PP_ID_SLACK_DIV;

	if (is_none(id))
		return bad(why, n, "%s id 0", what);
	if (ix > max)
		return bad(why, n, "%s id %#x: only %llu defined so far", what,
			   id, (unsigned long long)d->ndef);
	if (ix / 64 >= d->nwords) {
		size_t w = d->nwords ? d->nwords : 64;
		uint64_t *p;

		while (w <= ix / 64)
			w *= 2;
		p = pp_xrealloc(d->bits, w * sizeof(*p));
		memset(p + d->nwords, 0, (w - d->nwords) * sizeof(*p));
		d->bits = p;
		d->nwords = w;
	}
	if (!(d->bits[ix / 64] >> (ix % 64) & 1)) {
		d->bits[ix / 64] |= 1ull << (ix % 64);
		d->ndef++;
	}
	return 0;
}

static int use(struct pp_rec_state *s, int kind, uint32_t id, char *why,
	       size_t n)
{
	if (is_none(id) || defined(s, kind, id))
		return 0;
	return bad(why, n, "%s id %#x used before it is defined",
		   kind == FUNC ? "function" : "stack", id);
}

/* a producer's time: 0 (unknown) or near the recording's */
static int time_ok(const struct pp_rec_state *s, uint64_t ts)
{
	if (!ts || !s->t0)
		return 1;
	return ts >= s->t0 ? ts - s->t0 <= PP_SPAN_MAX_NS :
			     s->t0 - ts <= PP_SPAN_MAX_NS;
}

/*
 * The collector's clock (META, TICK, MARK) places records in time and
 * cuts the leak windows: it starts at the first of them and stays
 * within PP_SPAN_MAX_NS after it; ticks never go back.
 */
static int clock_ok(struct pp_rec_state *s, const struct pp_hdr *rec,
		    uint64_t ts, char *why, size_t n)
{
	if (!ts)
		return bad(why, n, "time 0");
	if (!s->t0) {
		if (ts > UINT64_MAX - PP_SPAN_MAX_NS)
			return bad(why, n, "time %llu ns is not a clock",
				   (unsigned long long)ts);
		s->t0 = ts;
	}
	if (ts + (rec->type == PP_REC_MARK ? PP_MARK_EARLY_NS : 0) < s->t0 ||
	    ts > s->t0 + PP_SPAN_MAX_NS)
		return bad(why, n, "time %llu ns is %s the recording's start "
			   "(%llu ns)", (unsigned long long)ts,
			   ts < s->t0 ? "before" : "a year or more after",
			   (unsigned long long)s->t0);
	if (rec->type == PP_REC_TICK) {
		if (ts < s->t_tick)
			return bad(why, n, "tick at %llu ns goes back before "
				   "the last one (%llu ns)",
				   (unsigned long long)ts,
				   (unsigned long long)s->t_tick);
		s->t_tick = ts;
	}
	return 0;
}

/* A checkpoint's live blocks and mappings: kinds known, stacks defined. */
static int check_live(struct pp_rec_state *s, const struct pp_rec_live *r,
		      char *why, size_t n)
{
	uint32_t i;

	if (r->h.aux > (r->h.len - sizeof(*r)) / sizeof(r->ent[0]))
		return bad(why, n, "%u entries in %u bytes", r->h.aux,
			   r->h.len);
	for (i = 0; i < r->h.aux; i++) {
		const struct pp_live_ent *e = &r->ent[i];

		if (e->kind >= PP_DOM_MAX && e->kind != PP_LIVE_KMAP)
			return bad(why, n, "entry %u: kind %u", i, e->kind);
		if (!e->addr || e->size > (1ull << 56))
			return bad(why, n, "entry %u: %#llx + %llu bytes", i,
				   (unsigned long long)e->addr,
				   (unsigned long long)e->size);
		if (use(s, STACK, e->stack, why, n))
			return -1;
	}
	return 0;
}

static int check_body(struct pp_rec_state *s, const struct pp_hdr *rec,
		      uint64_t file_size, char *why, size_t n)
{
	switch (rec->type) {
	case PP_REC_ALLOC:
	case PP_REC_MMAP:
	case PP_REC_RETAG:
	case PP_REC_REALLOC:
	case PP_REC_LOCK:
		if (use(s, STACK, rec->aux, why, n))
			return -1;
		if (rec->type == PP_REC_LOCK) {
			const struct pp_rec_lock *r = (const void *)rec;

			if (!time_ok(s, r->ts_start) || !time_ok(s, r->ts_end))
				return bad(why, n, "time out of the recording");
		}
		return 0;
	case PP_REC_FUNC: {
		const struct pp_rec_func *r = (const void *)rec;

		if (sizeof(*r) + r->file_len + r->name_len > rec->len)
			return bad(why, n, "names of %u + %u bytes in %u",
				   r->file_len, r->name_len, rec->len);
		return define(s, FUNC, rec->aux, file_size, why, n);
	}
	case PP_REC_STACK: {
		const struct pp_rec_stack *r = (const void *)rec;

		if (r->nframes > (rec->len - sizeof(*r)) / sizeof(r->frames[0]))
			return bad(why, n, "%u frames in %u bytes", r->nframes,
				   rec->len);
		for (uint32_t i = 0; i < r->nframes; i++)
			if (use(s, FUNC, r->frames[i].func, why, n))
				return -1;
		if (rec->flags & PP_STACK_PARENT) {
			if (!r->parent || r->parent == rec->aux)
				return bad(why, n, "stack %#x under stack %#x",
					   rec->aux, r->parent);
			if (use(s, STACK, r->parent, why, n))
				return -1;
		}
		return define(s, STACK, rec->aux, file_size, why, n);
	}
	case PP_REC_PROC: {
		const struct pp_rec_proc *r = (const void *)rec;

		if (sizeof(*r) + r->pyver_len > rec->len)
			return bad(why, n, "version of %u bytes in %u",
				   r->pyver_len, rec->len);
		return time_ok(s, r->ts) ? 0 :
		       bad(why, n, "time out of the recording");
	}
	case PP_REC_THREAD:
		return time_ok(s, ((const struct pp_rec_thread *)rec)->ts) ? 0 :
		       bad(why, n, "time out of the recording");
	case PP_REC_GC: {
		const struct pp_rec_gc *r = (const void *)rec;

		return time_ok(s, r->ts_start) && time_ok(s, r->ts_end) ? 0 :
		       bad(why, n, "time out of the recording");
	}
	case PP_REC_GIL: {
		const struct pp_rec_gil *r = (const void *)rec;

		return time_ok(s, r->ts_start) && time_ok(s, r->ts_end) ? 0 :
		       bad(why, n, "time out of the recording");
	}
	case PP_REC_KMEM:
		return time_ok(s, ((const struct pp_rec_kmem *)rec)->ts) ? 0 :
		       bad(why, n, "time out of the recording");
	case PP_REC_PID:
		return time_ok(s, ((const struct pp_rec_pid *)rec)->ts) ? 0 :
		       bad(why, n, "time out of the recording");
	case PP_REC_EXIT:
		return time_ok(s, ((const struct pp_rec_exit *)rec)->ts) ? 0 :
		       bad(why, n, "time out of the recording");
	case PP_REC_MARK:
		return clock_ok(s, rec, ((const struct pp_rec_mark *)rec)->ts,
				why, n);
	case PP_REC_TICK:
		return clock_ok(s, rec, ((const struct pp_rec_tick *)rec)->ts,
				why, n);
	case PP_REC_META:
		return clock_ok(s, rec, ((const struct pp_rec_meta *)rec)->ts,
				why, n);
	case PP_REC_CKPT:
		if (rec->flags > PP_CKPT_END)
			return bad(why, n, "flags %#x", rec->flags);
		return clock_ok(s, rec, ((const struct pp_rec_ckpt *)rec)->ts,
				why, n);
	case PP_REC_LIVE:
		return check_live(s, (const void *)rec, why, n);
	default:
		return 0;
	}
}

int pp_rec_check(struct pp_rec_state *s, const struct pp_hdr *rec,
		 uint64_t file_size, char *why, size_t whylen)
{
	char what[160];

	if (!rec->type || rec->type >= PP_REC_MAX || !type_name[rec->type])
		return bad(why, whylen, "unknown type %u", rec->type);
	if (rec->len < min_len[rec->type])
		return bad(why, whylen, "%s of %u bytes (at least %u)",
			   type_name[rec->type], rec->len, min_len[rec->type]);
	if (!check_body(s, rec, file_size, what, sizeof(what)))
		return 0;
	return bad(why, whylen, "%s: %s", type_name[rec->type], what);
}

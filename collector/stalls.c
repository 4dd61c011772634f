// SPDX-License-Identifier: MIT
/* GC pauses, GIL waits and lock contention, summed up (see stalls.h). */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hashmap.h"
#include "stalls.h"

enum { SRC_BPF, SRC_SHIM, NSRC };

struct gen_acc {
	uint64_t *pause;		/* ns, one per collection */
	size_t n, cap;
	uint64_t collected, uncollectable;
};

/*
 * Per thread and source, GIL intervals arrive in time order (each
 * producer emits a thread's intervals as that thread closes them) and
 * must be disjoint and inside the thread's life. An interval that
 * breaks this is an anomaly: a producer's bug, counted and shown in the
 * report; only the part of it after the previous interval is summed,
 * so one GIL never adds up to more than the time that passed.
 */
struct thread_acc {
	uint32_t tid;
	int seen_gil[NSRC];
	uint64_t held[NSRC], wait[NSRC], acq[NSRC];
	uint64_t first[NSRC], last_end[NSRC];
	uint64_t overlaps[NSRC];	/* intervals that overlapped */
	uint64_t created, exited;
	char *name;
	int pyname;		/* name is threading.Thread.name */
};

struct lock_acc {
	uint32_t stack, flags;
	uint64_t wait, max, count;
};

struct func_def {
	char *file, *name;
};

struct stack_def {
	uint32_t n;
	struct pp_frame *f;
};

struct pp_stalls {
	struct gen_acc gc[NSRC][3];
	int have_gc[NSRC], have_gil[NSRC], have_lock[NSRC];
	struct thread_acc *thr;
	size_t nthr, capthr;
	struct pp_map thr_ix;
	struct lock_acc *locks[NSRC];
	size_t nlocks[NSRC], caplocks[NSRC];
	struct pp_map lock_ix[NSRC];
	struct func_def *funcs;
	size_t nfuncs, capfuncs;
	struct pp_map func_ix;
	struct stack_def *stacks;
	size_t nstacks, capstacks;
	struct pp_map stack_ix;
	uint64_t t_min, t_max, span_start, span_end;
	/* the last GC pauses of each source (a ring each) */
	struct pp_gc_pause recent[NSRC][PP_GC_RECENT];
	uint64_t nrecent[NSRC];
};

/* room for element n; out of memory aborts (alloc.h), so never fails */
static int grow(void **v, size_t *cap, size_t n, size_t sz)
{
	*v = pp_grow(*v, cap, n + 1, sz);
	return 0;
}

struct pp_stalls *pp_stalls_init(void)
{
	return pp_xcalloc(1, sizeof(struct pp_stalls));
}

void pp_stalls_free(struct pp_stalls *s)
{
	size_t i;
	int k, g;

	if (!s)
		return;
	for (k = 0; k < NSRC; k++) {
		for (g = 0; g < 3; g++)
			free(s->gc[k][g].pause);
		free(s->locks[k]);
		pp_map_free(&s->lock_ix[k]);
	}
	for (i = 0; i < s->nthr; i++)
		free(s->thr[i].name);
	free(s->thr);
	pp_map_free(&s->thr_ix);
	for (i = 0; i < s->nfuncs; i++) {
		free(s->funcs[i].file);
		free(s->funcs[i].name);
	}
	free(s->funcs);
	pp_map_free(&s->func_ix);
	for (i = 0; i < s->nstacks; i++)
		free(s->stacks[i].f);
	free(s->stacks);
	pp_map_free(&s->stack_ix);
	free(s);
}

void pp_stalls_span(struct pp_stalls *s, uint64_t start, uint64_t end)
{
	s->span_start = start;
	s->span_end = end;
}

static void saw(struct pp_stalls *s, uint64_t t)
{
	if (!t)
		return;
	if (!s->t_min || t < s->t_min)
		s->t_min = t;
	if (t > s->t_max)
		s->t_max = t;
}

static struct thread_acc *thread(struct pp_stalls *s, uint32_t tid)
{
	uint32_t *slot = pp_map_u32(&s->thr_ix, tid, 1, UINT32_MAX);
	struct thread_acc *t;

	if (!slot)
		return NULL;
	if (*slot != UINT32_MAX)
		return &s->thr[*slot];
	if (grow((void **)&s->thr, &s->capthr, s->nthr, sizeof(*s->thr)))
		return NULL;
	*slot = s->nthr;
	t = &s->thr[s->nthr++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	return t;
}

static void add_gc(struct pp_stalls *s, const struct pp_rec_gc *r)
{
	int src = r->h.flags & PP_SRC_SHIM ? SRC_SHIM : SRC_BPF;
	int gen = r->h.flags & 0x7f;
	struct gen_acc *g;

	struct pp_gc_pause *p = &s->recent[src][s->nrecent[src]++ %
						 PP_GC_RECENT];

	p->ts_end = r->ts_end;
	p->ms = r->ts_end > r->ts_start ? (r->ts_end - r->ts_start) / 1e6 : 0;
	p->gen = r->h.flags & ~PP_SRC_SHIM;
	saw(s, r->ts_start);
	saw(s, r->ts_end);
	s->have_gc[src] = 1;
	if (gen > 2 || r->ts_end < r->ts_start)
		return;
	g = &s->gc[src][gen];
	if (grow((void **)&g->pause, &g->cap, g->n, sizeof(*g->pause)))
		return;
	g->pause[g->n++] = r->ts_end - r->ts_start;
	g->collected += r->collected;
	g->uncollectable += r->uncollectable;
}

static void add_gil(struct pp_stalls *s, const struct pp_rec_gil *r)
{
	int src = r->h.flags & PP_SRC_SHIM ? SRC_SHIM : SRC_BPF;
	struct thread_acc *t = thread(s, r->h.aux);
	uint64_t d, start;

	saw(s, r->ts_start);
	saw(s, r->ts_end);
	s->have_gil[src] = 1;
	if (!t || r->ts_end < r->ts_start)
		return;
	t->seen_gil[src] = 1;
	if (!t->first[src] || r->ts_start < t->first[src])
		t->first[src] = r->ts_start;
	start = r->ts_start;
	if (start < t->last_end[src]) {
		t->overlaps[src]++;
		start = t->last_end[src];
	}
	if (r->ts_end > t->last_end[src])
		t->last_end[src] = r->ts_end;
	d = r->ts_end > start ? r->ts_end - start : 0;
	if ((r->h.flags & 0x7f) == PP_GIL_WAIT) {
		t->wait[src] += d;
	} else {
		t->held[src] += d;
		t->acq[src]++;
	}
}

static void add_lock(struct pp_stalls *s, const struct pp_rec_lock *r)
{
	int src = r->h.flags & PP_SRC_SHIM ? SRC_SHIM : SRC_BPF;
	uint32_t kind = r->h.flags & 0x7f, *slot;
	struct lock_acc *l;
	uint64_t d;

	saw(s, r->ts_start);
	saw(s, r->ts_end);
	s->have_lock[src] = 1;
	if (r->ts_end < r->ts_start)
		return;
	d = r->ts_end - r->ts_start;
	slot = pp_map_u32(&s->lock_ix[src], (uint64_t)kind << 32 | r->h.aux, 1,
			  UINT32_MAX);
	if (!slot)
		return;
	if (*slot == UINT32_MAX) {
		if (grow((void **)&s->locks[src], &s->caplocks[src],
			 s->nlocks[src], sizeof(struct lock_acc)))
			return;
		*slot = s->nlocks[src]++;
		l = &s->locks[src][*slot];
		memset(l, 0, sizeof(*l));
		l->stack = r->h.aux;
		l->flags = kind;
	}
	l = &s->locks[src][*slot];
	l->wait += d;
	l->count++;
	if (d > l->max)
		l->max = d;
}

static void add_thread(struct pp_stalls *s, const struct pp_rec_thread *r)
{
	struct thread_acc *t = thread(s, r->h.aux);
	size_t n = r->h.len - sizeof(*r), l;

	saw(s, r->ts);
	if (!t)
		return;
	if (r->h.flags & PP_THREAD_EXIT) {
		/* the shim sees the exit before the kernel does */
		if (r->ts > t->exited)
			t->exited = r->ts;
		return;
	}
	if (!t->created || r->ts < t->created)
		t->created = r->ts;
	l = strnlen(r->name, n);
	/* a Python name (the shim's) is never replaced by an OS name
	 * (eBPF's comm, which may arrive later from its own ring) */
	if (l && (r->h.flags & PP_THREAD_PYNAME || !t->pyname)) {
		free(t->name);
		t->name = pp_xstrndup(r->name, l);
		t->pyname = !!(r->h.flags & PP_THREAD_PYNAME);
	}
}

static void add_func(struct pp_stalls *s, const struct pp_rec_func *r)
{
	uint32_t *slot = pp_map_u32(&s->func_ix, r->h.aux, 1, UINT32_MAX);
	struct func_def *f;

	if (!slot || *slot != UINT32_MAX ||
	    sizeof(*r) + r->file_len + r->name_len > r->h.len ||
	    grow((void **)&s->funcs, &s->capfuncs, s->nfuncs, sizeof(*f)))
		return;
	*slot = s->nfuncs;
	f = &s->funcs[s->nfuncs++];
	f->file = pp_xstrndup(r->data, r->file_len);
	f->name = pp_xstrndup(r->data + r->file_len, r->name_len);
}

static void add_stack(struct pp_stalls *s, const struct pp_rec_stack *r)
{
	uint32_t *slot, *up, n = r->nframes, nup = 0, pi = UINT32_MAX;
	struct stack_def *d;

	if (sizeof(*r) + n * sizeof(struct pp_frame) > r->h.len)
		return;
	if (r->h.flags & PP_STACK_PARENT) {	/* frames, then the parent's */
		up = pp_map_u32(&s->stack_ix, r->parent, 0, UINT32_MAX);
		pi = up ? *up : UINT32_MAX;
		nup = pi != UINT32_MAX ? s->stacks[pi].n : 0;
		if (n > PP_MAX_FRAMES)
			n = PP_MAX_FRAMES;
		if (nup > PP_MAX_FRAMES - n)	/* the innermost are kept */
			nup = PP_MAX_FRAMES - n;
	}
	slot = pp_map_u32(&s->stack_ix, r->h.aux, 1, UINT32_MAX);
	if (!slot || *slot != UINT32_MAX)
		return;
	if (grow((void **)&s->stacks, &s->capstacks, s->nstacks, sizeof(*d)))
		return;
	*slot = s->nstacks;
	d = &s->stacks[s->nstacks++];
	d->n = n + nup;
	d->f = pp_xmalloc(d->n * sizeof(struct pp_frame) + 1);
	memcpy(d->f, r->frames, n * sizeof(struct pp_frame));
	if (nup)
		memcpy(d->f + n, s->stacks[pi].f, nup * sizeof(struct pp_frame));
}

void pp_stalls_add(struct pp_stalls *s, const struct pp_hdr *rec)
{
	switch (rec->type) {
	case PP_REC_GC:
		add_gc(s, (const struct pp_rec_gc *)rec);
		break;
	case PP_REC_GIL:
		add_gil(s, (const struct pp_rec_gil *)rec);
		break;
	case PP_REC_LOCK:
		add_lock(s, (const struct pp_rec_lock *)rec);
		break;
	case PP_REC_THREAD:
		add_thread(s, (const struct pp_rec_thread *)rec);
		break;
	case PP_REC_FUNC:
		add_func(s, (const struct pp_rec_func *)rec);
		break;
	case PP_REC_STACK:
		add_stack(s, (const struct pp_rec_stack *)rec);
		break;
	default:
		break;
	}
}

/* ---- summaries ---- */

/* eBPF over the shim: one source per concern (stalls.h) */
static int gc_src(const struct pp_stalls *s)
{
	return s->have_gc[SRC_BPF] ? SRC_BPF : SRC_SHIM;
}

size_t pp_stalls_gc_recent(const struct pp_stalls *s, struct pp_gc_pause *out,
			   size_t max)
{
	int src = gc_src(s);
	uint64_t all = s->nrecent[src], n, i;

	n = all < PP_GC_RECENT ? all : PP_GC_RECENT;
	if (n > max)
		n = max;
	for (i = 0; i < n; i++)
		out[i] = s->recent[src][(all - n + i) % PP_GC_RECENT];
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* nearest-rank percentile of sorted v[n] */
static uint64_t pct(const uint64_t *v, size_t n, double p)
{
	size_t k = (size_t)(p * n + 0.999999);

	if (!n)
		return 0;
	if (k < 1)
		k = 1;
	return v[k > n ? n - 1 : k - 1];
}

int pp_stalls_uses_shim(const struct pp_stalls *s, int type)
{
	const int *have = type == PP_REC_GC ? s->have_gc :
			  type == PP_REC_GIL ? s->have_gil : s->have_lock;

	return !have[SRC_BPF];
}

int pp_stalls_gc(const struct pp_stalls *s, int gen,
		 struct pp_gc_summary *out)
{
	int src = gc_src(s);
	const struct gen_acc *g;
	uint64_t *v, tot = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->generation = gen;
	if (gen < 0 || gen > 2 || !s->have_gc[src])
		return -1;
	g = &s->gc[src][gen];
	out->collections = g->n;
	out->collected = g->collected;
	out->uncollectable = g->uncollectable;
	if (!g->n)
		return 0;
	v = pp_xmalloc(g->n * sizeof(*v));
	if (!v)
		return 0;
	memcpy(v, g->pause, g->n * sizeof(*v));
	qsort(v, g->n, sizeof(*v), cmp_u64);
	for (i = 0; i < g->n; i++)
		tot += v[i];
	out->pause_total_ms = tot / 1e6;
	out->pause_p50_ms = pct(v, g->n, 0.50) / 1e6;
	out->pause_p99_ms = pct(v, g->n, 0.99) / 1e6;
	out->pause_max_ms = v[g->n - 1] / 1e6;
	free(v);
	return 0;
}

static int gil_src(const struct pp_stalls *s)
{
	return s->have_gil[SRC_BPF] ? SRC_BPF : SRC_SHIM;
}

/*
 * A thread's life inside the recording: from its creation (or first
 * sighting) to its exit (or the end). An interval outside it is an
 * anomaly; the life then reaches out to it, so that held + wait never
 * exceeds it even then.
 */
static void thread_summary(const struct pp_stalls *s,
			   const struct thread_acc *t, int src,
			   struct pp_gil_thread *o)
{
	uint64_t lo = s->span_start && s->span_start < s->t_min ?
			      s->span_start : s->t_min;
	uint64_t hi = s->span_end > s->t_max ? s->span_end : s->t_max;
	uint64_t a = t->created ? t->created : t->first[src];
	uint64_t b = t->exited && t->exited < hi ? t->exited : hi;

	if (a < lo)
		a = lo;
	o->anomalies = t->overlaps[src];
	if (t->first[src] < a) {
		o->anomalies++;
		a = t->first[src];
	}
	if (t->last_end[src] > b) {
		o->anomalies++;
		b = t->last_end[src];
	}
	o->tid = t->tid;
	o->name = t->name ? t->name : "";
	o->held_s = t->held[src] / 1e9;
	o->wait_s = t->wait[src] / 1e9;
	o->acquisitions = t->acq[src];
	o->lifetime_s = b > a ? (b - a) / 1e9 : 0;
	o->wait_fraction = o->lifetime_s > 0 ? o->wait_s / o->lifetime_s : 0;
}

static int cmp_thread(const void *a, const void *b)
{
	const struct pp_gil_thread *x = a, *y = b;

	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

int pp_stalls_gil_threads(const struct pp_stalls *s,
			  struct pp_gil_thread *out, int max)
{
	int src = gil_src(s), n = 0;
	size_t i;

	for (i = 0; i < s->nthr; i++) {
		if (!s->thr[i].seen_gil[src])
			continue;
		if (n < max)
			thread_summary(s, &s->thr[i], src, &out[n]);
		n++;
	}
	if (out && max)	/* a count call passes NULL, 0 */
		qsort(out, n < max ? n : max, sizeof(*out), cmp_thread);
	return n;
}

uint64_t pp_stalls_gil_anomalies(const struct pp_stalls *s)
{
	struct pp_gil_thread t;
	int src = gil_src(s);
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < s->nthr; i++) {
		if (!s->thr[i].seen_gil[src])
			continue;
		thread_summary(s, &s->thr[i], src, &t);
		n += t.anomalies;
	}
	return n;
}

double pp_stalls_gil_wait_fraction(const struct pp_stalls *s)
{
	double wait = 0, life = 0;
	struct pp_gil_thread t;
	int src = gil_src(s);
	size_t i;

	for (i = 0; i < s->nthr; i++) {
		if (!s->thr[i].seen_gil[src])
			continue;
		thread_summary(s, &s->thr[i], src, &t);
		wait += t.wait_s;
		life += t.lifetime_s;
	}
	return life > 0 ? wait / life : 0;
}

/* the FUNC/STACK records given to pp_stalls_add */
static int own_frame(void *ctx, uint32_t stack, int i, struct pp_loc *o)
{
	const struct pp_stalls *s = ctx;
	uint32_t *slot = pp_map_u32((struct pp_map *)&s->stack_ix, stack, 0,
				    UINT32_MAX);
	const struct stack_def *d;
	const struct func_def *f;

	if (!slot || *slot == UINT32_MAX)
		return -1;
	d = &s->stacks[*slot];
	if (i < 0 || (uint32_t)i >= d->n)
		return -1;
	slot = pp_map_u32((struct pp_map *)&s->func_ix, d->f[i].func, 0,
			  UINT32_MAX);
	if (!slot || *slot == UINT32_MAX)
		return -1;
	f = &s->funcs[*slot];
	o->file = f->file;
	o->function = f->name;
	o->line = d->f[i].line;
	return 0;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && !strcmp(s + a - b, suf);
}

static const char *leaf(const char *qualname)
{
	const char *d = strrchr(qualname, '.');

	return d ? d + 1 : qualname;
}

/* The standard library's waiting wrappers: a wait's site is the line
 * that called them (Queue.get, Future.result), not their insides. */
static int in_sync_lib(const char *file)
{
	static const char *const libs[] = {
		"/threading.py", "/queue.py", "/concurrent/futures/_base.py",
		"/multiprocessing/synchronize.py", "/multiprocessing/queues.py",
		"/multiprocessing/pool.py",
	};
	size_t i;

	for (i = 0; i < sizeof(libs) / sizeof(libs[0]); i++)
		if (ends_with(file, libs[i]))
			return 1;
	return 0;
}

/*
 * Kind and site of a wait. Inside threading.py the innermost function
 * says what was waited for: Condition.wait (Event, Semaphore, Queue...)
 * waits for a notification, join/_wait_for_tstate_lock for a thread's
 * end; anything else there (Condition.__enter__...) is contention on a
 * lock. The site is the first frame outside threading.py and the
 * library modules built on it (in_sync_lib).
 */
static void classify(pp_frame_fn fn, void *ctx, const struct lock_acc *l,
		     struct pp_lock_summary *o)
{
	struct pp_loc f;
	int i;

	o->contention = 1;
	o->kind = l->flags == PP_LOCK_PTHREAD ? "pthread_mutex" :
		  l->flags == PP_LOCK_FUTEX   ? "futex" :
						"threading.Lock";
	o->site.file = "";
	o->site.function = l->stack ? "<unknown>" : "<native>";
	o->site.line = 0;
	if (!l->stack || fn(ctx, l->stack, 0, &f))
		return;
	if (ends_with(f.file, "/threading.py")) {
		const char *fun = leaf(f.function);

		if (!strcmp(fun, "wait")) {
			o->kind = "threading.Condition";
			o->contention = 0;
		} else if (!strcmp(fun, "join") ||
			   !strcmp(fun, "_wait_for_tstate_lock")) {
			o->kind = "thread.join";
			o->contention = 0;
		}
	}
	o->site = f;
	for (i = 0; !fn(ctx, l->stack, i, &f); i++) {
		if (!in_sync_lib(f.file)) {
			o->site = f;
			break;
		}
	}
}

static int cmp_lock(const void *a, const void *b)
{
	const struct pp_lock_summary *x = a, *y = b;

	if (x->contention != y->contention)
		return y->contention - x->contention;
	return x->wait_s < y->wait_s ? 1 : x->wait_s > y->wait_s ? -1 : 0;
}

static int same_site(const struct pp_lock_summary *a,
		     const struct pp_lock_summary *b)
{
	return a->kind == b->kind && a->site.line == b->site.line &&
	       !strcmp(a->site.file, b->site.file) &&
	       !strcmp(a->site.function, b->site.function);
}

int pp_stalls_locks(const struct pp_stalls *s, pp_frame_fn fn, void *ctx,
		    struct pp_lock_summary *out, int max)
{
	int src = s->have_lock[SRC_BPF] ? SRC_BPF : SRC_SHIM;
	struct pp_lock_summary *all, one;
	size_t i, j, n = 0;

	if (!fn) {
		fn = own_frame;
		ctx = (void *)s;
	}
	all = pp_xcalloc(s->nlocks[src] + 1, sizeof(*all));
	if (!all)
		return 0;
	for (i = 0; i < s->nlocks[src]; i++) {
		const struct lock_acc *l = &s->locks[src][i];

		classify(fn, ctx, l, &one);
		one.wait_s = l->wait / 1e9;
		one.max_wait_s = l->max / 1e9;
		one.contentions = l->count;
		one.stack = l->stack;
		for (j = 0; j < n && !same_site(&all[j], &one); j++)
			;
		if (j == n) {
			all[n++] = one;
			continue;
		}
		all[j].wait_s += one.wait_s;
		all[j].contentions += one.contentions;
		if (one.max_wait_s > all[j].max_wait_s)
			all[j].max_wait_s = one.max_wait_s;
	}
	qsort(all, n, sizeof(*all), cmp_lock);
	if (out && max)
		memcpy(out, all, (n < (size_t)max ? n : (size_t)max) *
				 sizeof(*all));
	free(all);
	return n;
}

const char *pp_stalls_gc_source(const struct pp_stalls *s)
{
	return s->have_gc[SRC_BPF] ? "ebpf" : s->have_gc[SRC_SHIM] ? "shim" :
								    "none";
}

const char *pp_stalls_gil_source(const struct pp_stalls *s)
{
	return s->have_gil[SRC_BPF] ? "ebpf" : s->have_gil[SRC_SHIM] ? "shim" :
								      "none";
}

int pp_stalls_gil_threads_all(const struct pp_stalls *s,
			      struct pp_gil_thread **out)
{
	int n = pp_stalls_gil_threads(s, NULL, 0);

	*out = pp_xcalloc(n + 1, sizeof(**out));
	return pp_stalls_gil_threads(s, *out, n);
}

int pp_stalls_locks_all(const struct pp_stalls *s, pp_frame_fn fn, void *ctx,
			struct pp_lock_summary **out)
{
	int n = pp_stalls_locks(s, fn, ctx, NULL, 0);

	*out = pp_xcalloc(n + 1, sizeof(**out));
	return pp_stalls_locks(s, fn, ctx, *out, n);
}

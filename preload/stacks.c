// SPDX-License-Identifier: MIT
/*
 * Stacks: read the current thread's Python frames (and native ones
 * with --native), hash them, and look the hash up in an insert-only
 * table. A new stack is resolved to functions and lines once and
 * defined in the stream (FUNC records for new functions, then STACK
 * records) before the id is first used, so the hot path of a known
 * stack is a walk, a hash and one table probe. A deep stack is defined
 * prefix by prefix, each under its parent (PP_STACK_PARENT: the
 * parent's id and one frame), so that a new stack below a known one,
 * as every new site of a module body below the same import chain, costs
 * one frame (memo_prefix).
 *
 * Between two allocations of a thread usually only the innermost
 * frames have moved. A thread whose last stack had MEMO_MIN frames or
 * more walks against the chain it walked last (pp_walkmemo, outermost
 * first, with the hash of every prefix): the links that match it from
 * the outer end, by address and by the words read from them (code,
 * position, owner), give what they gave and keep their prefix's hash
 * (no generation loads, no offsets) and, once a new stack resolved
 * them, their function and line; only the rest are read in full, hashed
 * and resolved. Every link is still followed and compared: no field of a
 * frame tells one call from the next (3.11+ _PyFrame_Initialize in
 * Include/internal/pycore_frame.h sets no serial, and 3.9/3.10 reuse
 * frame objects), so a caller can run on and call again from another
 * line while its callee's frame comes back at the same address with
 * the same code, position and link: a frame that looks unchanged
 * proves nothing about the frames outside it. A code object dying
 * anywhere (pp_code_deaths) empties every thread's memo, as
 * generations may have moved. Shorter stacks are known by a quick key
 * (pp_stack_current): one pass hashing each frame's code and
 * instruction words, looked up in a per-thread table that holds while
 * no code object dies; on a miss they are walked and hashed afresh
 * (comparing costs more than it saves there). Either way the finished
 * hash looks for its id in a per-thread map before the big table.
 */

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pywalk.h"
#include "shim.h"

#define PP_MAX_NATIVE 32
#define PP_STR_MAX 1024
#define PROBE_MAX 64

enum { SLOT_EMPTY = 0, SLOT_CLAIMED = 1, SLOT_READY = 2 };

struct slot {
	uint64_t key;
	uint32_t id;
	uint32_t state;
};

struct table {
	struct slot *slots;
	uint64_t mask;
	uint32_t next_id;
};

static struct table stacks = { .next_id = 1 };	/* raw frames -> id */
static struct table shapes;			/* resolved frames -> id */
static struct table funcs = { .next_id = 1 };
static uintptr_t self_lo, self_hi;	/* our own text: frames to skip */
static pp_py_walk_fn walk;		/* this interpreter's walker */

static pp_py_memo_walk_fn memo_walk;	/* the same against the last walk */
static pp_py_key_walk_fn key_walk;	/* a short chain's quick key */
/* the calling thread's current thread state, whoever holds the GIL
 * before 3.12 (_PyRuntime's tstate_current), this thread's own if it
 * holds it from 3.12 on (_Py_tss_tstate): no TSS lookup */
static void *(*tstate_now)(void);
static int tstate_own;			/* 3.12+: tstate_now() is ours */

#define HOT_WAYS 256

struct hot {				/* finished hash -> id */
	uint64_t key;
	uint32_t id;
};

/*
 * Chains shorter than this go by their quick key, and are walked and
 * hashed afresh on a miss: comparing with the memo costs more than it
 * saves there (callgrind, scripts/bench.sh's loop of two frames: +60
 * instructions an event with the memo).
 */
#define MEMO_MIN 8

#define QUICK_WAYS 256

struct quick {				/* quick key of a short chain -> id */
	uint64_t key;
	uint32_t id;
	uint32_t deaths;		/* pp_code_deaths when it was made */
};

struct chain {
	uint32_t deaths;		/* pp_code_deaths when h[] was made */
	uint32_t last_id;		/* the memo's stack's id, 0: unknown */
	uint32_t deep;			/* the last walk had MEMO_MIN frames */
	const void *ts;			/* this thread's state, last seen */
	unsigned long self;		/* pthread_self() */
	struct quick quick[QUICK_WAYS];
	struct hot hot[HOT_WAYS];
	uint64_t h[PP_MEMO_LINKS];	/* hash of the frames of links 0..j */
	/* links 0..nres-1 of the memo were resolved (res[j]: the frame of
	 * link j) and have not changed since: a new stack resolves only
	 * the links below its common part with the last one resolved */
	uint32_t nres;
	struct pp_frame res[PP_MEMO_LINKS];
	uint64_t rh[PP_MEMO_LINKS];	/* shape hash of links 0..j's frames */
	uint32_t pid[PP_MEMO_LINKS];	/* their stack's id, 0: not known */
	struct pp_walkmemo memo;	/* the last walk, outermost first */
};

#define CHAIN_BYTES ((sizeof(struct chain) + 4095) & ~(size_t)4095)
#define CHAIN_DEAD ((struct chain *)1)	/* the thread is exiting */
/* a pointer, not the chain: static TLS is scarce for a dlopen()ed shim */
static __thread struct chain *chain;
static pthread_key_t chain_key;
static int chain_key_ok;

static void chain_free(void *p)
{
	chain = CHAIN_DEAD;
	syscall(SYS_munmap, p, CHAIN_BYTES);
}

/*
 * This thread's chain, mapped on first use and unmapped at its exit;
 * NULL when there is none (an exiting thread: allocations in other
 * destructors are walked in full). A system call, not our mmap hook,
 * which would record it.
 */
static __attribute__((noinline)) struct chain *chain_make(void)
{
	long p;

	if (chain == CHAIN_DEAD || !chain_key_ok)
		return NULL;
	p = syscall(SYS_mmap, NULL, CHAIN_BYTES, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p < 0 && p > -4096)
		return NULL;
	if (pthread_setspecific(chain_key, (void *)p)) {
		syscall(SYS_munmap, p, CHAIN_BYTES);
		return NULL;
	}
	chain = (struct chain *)p;
	chain->self = (unsigned long)pthread_self();
	return chain;
}

static inline struct chain *chain_get(void)
{
	if (likely((uintptr_t)chain > 1))
		return chain;
	return chain_make();
}
/*
 * libunwind's unw_backtrace, loaded only for --native: the shim itself
 * needs nothing beyond libc, so it also loads inside a container or
 * chroot that has no libunwind.
 */
static int (*unw_backtrace_fn)(void **ips, int max);

static int table_init(struct table *t, unsigned bits)
{
	size_t len = sizeof(struct slot) << bits;

	t->slots = mmap(NULL, len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t->slots == MAP_FAILED)
		return -1;
	t->mask = (1ull << bits) - 1;
	return 0;
}

/* one multiply per word on the hot path; fold() finishes the hash */
static inline uint64_t mix(uint64_t h, uint64_t v)
{
	return (h ^ v) * 0x9e3779b97f4a7c15ull;
}

static inline uint64_t fold(uint64_t h)
{
	h ^= h >> 31;
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 29);
}

/*
 * Find key; 0 = new slot claimed by the caller (who must publish it),
 * >0 = id, and *slot_out set either way; NULL slot = table full.
 */
static uint32_t table_find(struct table *t, uint64_t key, struct slot **out)
{
	uint64_t i = key, n;

	key |= 1;		/* 0 marks an empty slot */
	for (n = 0; n < PROBE_MAX; n++, i++) {
		struct slot *s = &t->slots[i & t->mask];
		uint64_t k = __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);

		if (!k) {
			uint64_t zero = 0;

			if (__atomic_compare_exchange_n(&s->key, &zero, key, 0,
							__ATOMIC_ACQ_REL,
							__ATOMIC_ACQUIRE)) {
				*out = s;
				return 0;
			}
			k = zero;
		}
		if (k != key)
			continue;
		/* someone is defining it: definitions are short */
		while (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) !=
		       SLOT_READY)
			__builtin_ia32_pause();
		*out = s;
		return s->id;
	}
	*out = NULL;
	return 0;
}

static void table_publish(struct slot *s, uint32_t id)
{
	s->id = id;
	__atomic_store_n(&s->state, SLOT_READY, __ATOMIC_RELEASE);
}

static uint32_t new_id(struct table *t)
{
	return __atomic_fetch_add(&t->next_id, 1, __ATOMIC_RELAXED);
}

/*
 * A definition the ring had no room for (pyprof behind: records are being
 * dropped). The stack being defined then is not kept: its frames would
 * name function 0 for good in the tables and the per-thread caches, and
 * every later block made there would have no Python frame. It is defined
 * again next time.
 */
static __thread int def_lost;

/* The function's id (0: lost), taken only once its record has room: a
 * lost definition leaves no gap in the ids (a reader bounds the gaps,
 * collector/reccheck.h), however long the drops last. */
static uint32_t emit_func(int native, uint32_t firstlineno,
			  const char *file, size_t flen, const char *name,
			  size_t nlen)
{
	uint32_t len = PP_REC_ALIGN(sizeof(struct pp_rec_func) + flen + nlen);
	struct pp_rec_func *r = pp_emit_reserve(len);
	uint32_t id;

	if (!r) {
		def_lost = 1;
		return 0;
	}
	id = new_id(&funcs);
	r->firstlineno = firstlineno;
	r->file_len = flen;
	r->name_len = nlen;
	memcpy(r->data, file, flen);
	memcpy(r->data + flen, name, nlen);
	memset(r->data + flen + nlen, 0, len - sizeof(*r) - flen - nlen);
	pp_ring_commit(r, PP_REC_FUNC, native ? PP_FUNC_NATIVE : 0, id, len);
	return id;
}

#define FIELD(p, off, type) (*(type *)((const char *)(p) + (off)))

/* FNV-1a over a string, one step per byte (the slow path only) */
static uint64_t mix_bytes(uint64_t h, const char *p, size_t n)
{
	while (n--)
		h = (h ^ (uint8_t)*p++) * 0x100000001b3ull;
	return h;
}

/*
 * A Python function by what it shows (file, name, first line), not by
 * the code object's address: addresses are reused by new code objects,
 * and a program that makes code objects in a loop (exec, templates)
 * would otherwise define a new function for every one of them.
 */
static uint32_t py_func(const void *code)
{
	const struct pp_pylayout *L = &pp_shim.layout;
	const void *file = FIELD(code, L->code_filename, void *);
	const void *name = FIELD(code, L->code_name, void *);
	int first = FIELD(code, L->code_firstlineno, int);
	char fbuf[PP_STR_MAX], nbuf[256];
	struct slot *s;
	uint64_t key;
	uint32_t id;
	size_t fl, nl;

	fl = pp_py_str(L, file, fbuf, sizeof(fbuf));
	nl = pp_py_str(L, name, nbuf, sizeof(nbuf));
	key = mix_bytes(mix(0x70790000, first), fbuf, fl);
	key = fold(mix_bytes(mix(key, fl), nbuf, nl));
	id = table_find(&funcs, key, &s);
	if (id || !s)
		return id;
	id = emit_func(0, first, fbuf, fl, nbuf, nl);
	table_publish(s, id);
	return id;
}

/* function and line of one Python frame (codelines lock held) */
static void py_frame(const struct pp_rawframe *raw, struct pp_frame *out)
{
	const struct pp_pylayout *L = &pp_shim.layout;
	struct pp_codelines *c = pp_codelines_get(L, raw->code);
	uint32_t *func;

	if (!c) {	/* a table too big to keep: scan it */
		out->func = py_func(raw->code);
		out->line = pp_code_line(L, raw->code, raw->offset);
		return;
	}
	func = pp_codelines_func(c);
	if (!*func)
		*func = py_func(raw->code);
	out->func = *func;
	out->line = pp_codelines_line(c, raw->offset);
}

static uint32_t native_func(uintptr_t ip, int *is_eval)
{
	char nbuf[256];
	const char *file = "?", *name;
	uintptr_t sym = ip;
	struct slot *s;
	uint32_t id;
	Dl_info info;

	*is_eval = 0;
	if (dladdr((void *)(ip - 1), &info)) {
		file = info.dli_fname ? info.dli_fname : "?";
		if (info.dli_saddr) {
			sym = (uintptr_t)info.dli_saddr;
			name = info.dli_sname;
		} else {
			snprintf(nbuf, sizeof(nbuf), "+0x%lx",
				 (unsigned long)(ip - (uintptr_t)info.dli_fbase));
			name = nbuf;
		}
	} else {
		snprintf(nbuf, sizeof(nbuf), "0x%lx", (unsigned long)ip);
		name = nbuf;
	}
	*is_eval = name && strstr(name, "EvalFrame") != NULL;
	id = table_find(&funcs, fold(mix(0x6e6100, sym)), &s);
	if (id || !s)
		return id;
	id = emit_func(1, 0, file, strlen(file), name, strlen(name));
	table_publish(s, id);
	return id;
}

#define SHAPE_SEED 0x73686170ull

/* a resolved frame into a shape's hash, outermost frame first */
static inline uint64_t shape_mix(uint64_t h, const struct pp_frame *f)
{
	return mix(h, (uint64_t)f->func << 32 | f->line);
}

/*
 * Resolve the memo's links that changed since the last time (codelines
 * lock held): the links below c->nres kept their frames, and with them
 * their function and line, their shape's hash (rh) and their prefix's
 * stack id (pid). 0: a function's definition was lost (retried next
 * time).
 */
static int memo_resolve(struct chain *c)
{
	const struct pp_walkmemo *m = &c->memo;
	uint32_t j, nl = m->nlinks;
	uint64_t h = c->nres ? c->rh[c->nres - 1] : SHAPE_SEED;
	int ok = 1;

	for (j = c->nres; j < nl; j++) {
		c->pid[j] = 0;
		if (m->link[j].kind == PP_LINK_FRAME) {
			py_frame(&m->link[j].raw, &c->res[j]);
			ok &= !!c->res[j].func;	/* 0: tried again next time */
			h = shape_mix(h, &c->res[j]);
		}
		c->rh[j] = h;
	}
	c->nres = ok ? nl : 0;
	return !def_lost;
}

/* the memo's frames into out[max], innermost first (memo_resolve'd) */
static int memo_frames(const struct chain *c, struct pp_frame *out, int max)
{
	const struct pp_walkmemo *m = &c->memo;
	int j, k = 0;

	for (j = (int)m->nlinks - 1; j >= 0 && k < max; j--)
		if (m->link[j].kind == PP_LINK_FRAME)
			out[k++] = c->res[j];
	return k;
}

/* the frame link above link j, -1: none */
static inline int outer_frame(const struct chain *c, int j)
{
	while (--j >= 0 && c->memo.link[j].kind != PP_LINK_FRAME)
		;
	return j;
}

/* One STACK record: f[k] innermost first, under parent (0: none). */
static uint32_t emit_stack(uint32_t parent, const struct pp_frame *f, int k)
{
	uint32_t len = sizeof(struct pp_rec_stack) + k * sizeof(*f), id;
	struct pp_rec_stack *r = pp_emit_reserve(len);

	if (!r)
		return 0;	/* no id taken: see emit_func */
	id = new_id(&stacks);
	r->nframes = k;
	r->parent = parent;
	memcpy(r->frames, f, k * sizeof(*f));
	pp_ring_commit(r, PP_REC_STACK, parent ? PP_STACK_PARENT : 0, id, len);
	return id;
}

/*
 * The stack of the memo's links 0..i (i a frame link), each prefix
 * defined as its parent and one frame: a new stack under a known one
 * (the next allocation of a module body, below the same import chain)
 * costs one frame, in the shim and in the stream. Prefixes are looked
 * for from the inside out and the new ones defined from the outside
 * in. A thread waits (table_find) only for a shorter prefix than those
 * it has claimed, so two threads cannot wait for each other.
 */
static uint32_t memo_prefix(struct chain *c, int i)
{
	struct slot *slot[PP_MEMO_LINKS];
	int todo[PP_MEMO_LINKS], n = 0, j, t;
	uint32_t id = 0, parent = 0;

	for (j = i; j >= 0; j = outer_frame(c, j)) {
		struct slot *s;

		if ((parent = c->pid[j]))
			break;
		parent = table_find(&shapes, fold(c->rh[j]), &s);
		if (parent) {
			c->pid[j] = parent;
			break;
		}
		if (!s)
			break;	/* full: no stack (as a full table always was) */
		todo[n] = j;
		slot[n++] = s;
	}
	if (j >= 0 && !parent) {	/* full */
		while (n--)
			table_publish(slot[n], 0);
		return 0;
	}
	for (t = n - 1; t >= 0; t--) {
		id = emit_stack(parent, &c->res[todo[t]], 1);
		table_publish(slot[t], id);
		if (!id) {
			while (t--)
				table_publish(slot[t], 0);
			def_lost = 1;
			c->nres = 0;
			return 0;
		}
		c->pid[todo[t]] = parent = id;
	}
	return n ? id : parent;
}

/*
 * Resolve a new raw stack: raw[n], or with mc the memo's frames.
 * Several raw stacks (two instructions of one line) can resolve to the
 * same frames: those share one id, so each stack is defined once in
 * the stream. A stack's key in shapes is the hash of its frames from
 * the outermost in, as memo_resolve builds it link by link.
 */
static uint32_t define(const struct pp_rawframe *raw, int n,
		       void *const *ips, int nn, struct chain *mc)
{
	struct pp_frame frames[PP_MAX_FRAMES];
	struct slot *s;
	uint64_t h = SHAPE_SEED;
	uint32_t id;
	int i, k = 0, eval, ok;

	def_lost = 0;
	if (mc && !nn) {
		pp_codelines_lock();
		ok = memo_resolve(mc);
		pp_codelines_unlock();
		if (!ok)
			return 0;
		i = outer_frame(mc, mc->memo.nlinks);
		return i < 0 ? 0 : memo_prefix(mc, i);
	}
	for (i = 0; i < nn && k < PP_MAX_FRAMES; i++) {
		frames[k].func = native_func((uintptr_t)ips[i], &eval);
		frames[k++].line = 0;
		if (eval)
			break;	/* the Python frames take over from here */
	}
	pp_codelines_lock();
	if (mc) {
		memo_resolve(mc);
		k += memo_frames(mc, frames + k, PP_MAX_FRAMES - k);
	} else {
		for (i = 0; i < n && k < PP_MAX_FRAMES; i++)
			py_frame(&raw[i], &frames[k++]);
	}
	pp_codelines_unlock();
	if (unlikely(def_lost))
		return 0;	/* a function not defined: not kept (above) */
	for (i = k - 1; i >= 0; i--)
		h = shape_mix(h, &frames[i]);
	id = table_find(&shapes, fold(h), &s);
	if (id || !s)
		return id;
	id = emit_stack(0, frames, k);
	table_publish(s, id);
	return id;
}

#define HASH_SEED 0x737461636bull

/* one frame into a stack's hash: a code object is its address and that
 * address's generation */
static inline uint64_t hash_frame(uint64_t h, const struct pp_rawframe *r)
{
	h = mix(h, (uintptr_t)r->code);
	return mix(h, (uint32_t)r->offset |
		      (uint64_t)__atomic_load_n(pp_code_gen(r->code),
						__ATOMIC_RELAXED) << 32);
}

/* raw[n], innermost first, hashed from the outermost frame in */
static uint64_t hash_raw(const struct pp_rawframe *raw, int n)
{
	uint64_t h = HASH_SEED;

	while (n--)
		h = hash_frame(h, &raw[n]);
	return h;
}

/*
 * The same hash of c's memo: links below same kept their frames and
 * generations (no code object died since c->h[] was made), so their
 * prefix's hash stands; the others are hashed on top of it.
 */
static uint64_t memo_hash(struct chain *c, int same)
{
	const struct pp_walklink *k = &c->memo.link[same];
	uint64_t h = same ? c->h[same - 1] : HASH_SEED;
	int j, nl = (int)c->memo.nlinks;

	for (j = same; j < nl; j++, k++) {
		if (k->kind == PP_LINK_FRAME)
			h = hash_frame(h, &k->raw);
		c->h[j] = h;
	}
	return h;
}

/* the native stack without the shim's own frames: ips[skip..nn) */
static int native_stack(void **ips, int *skip)
{
	int nn = unw_backtrace_fn(ips, PP_MAX_NATIVE);

	for (*skip = 0; *skip < nn && (uintptr_t)ips[*skip] >= self_lo &&
	     (uintptr_t)ips[*skip] < self_hi;)
		++*skip;
	return nn;
}

/*
 * The id of the stack whose hash is h (native frames not yet mixed
 * in); raw[n] its Python frames, or NULL: c's memo's.
 * A key's id never changes once published: the per-thread map needs
 * no invalidation.
 */
static inline __attribute__((always_inline)) uint32_t
stack_id(struct chain *c, uint64_t h, struct pp_rawframe *raw, int n)
{
	void *ips[PP_MAX_NATIVE];
	int nn = 0, skip = 0, i;
	struct hot *hot = NULL;
	struct slot *s;
	uint64_t key;
	uint32_t id;

	if (unw_backtrace_fn) {
		nn = native_stack(ips, &skip);
		for (i = skip; i < nn; i++)
			h = mix(h, (uintptr_t)ips[i]);
	}
	if (!n && nn == skip)
		return 0;
	key = fold(h);
	if (c) {
		hot = &c->hot[key & (HOT_WAYS - 1)];
		if (hot->key == key && hot->id)
			return hot->id;
	}
	id = table_find(&stacks, key, &s);
	if (!id) {
		/* full (code objects made in a loop): resolve each time */
		id = define(raw, n, ips + skip, nn - skip, raw ? NULL : c);
		if (s)
			table_publish(s, id);
	}
	if (hot && id) {
		hot->key = key;
		hot->id = id;
	}
	return id;
}

/* A deep chain: walked against the last one. -1: walk it afresh. */
static __attribute__((noinline)) int64_t stack_memo(struct chain *c,
						    const void *ts)
{
	uint32_t deaths, before;
	int same, whole;

	/* before the walk: a death during it is seen next time */
	deaths = __atomic_load_n(&pp_code_deaths, __ATOMIC_ACQUIRE);
	if (c->deaths != deaths) {
		c->memo.nlinks = 0;
		c->deaths = deaths;
	}
	before = c->memo.nlinks;
	same = memo_walk(&pp_shim.layout, ts, pp_shim.py.code_type, &c->memo);
	if (same < 0 || c->memo.nkept > PP_MAX_FRAMES) {
		c->memo.nlinks = 0;	/* too deep: cut as walk() cuts */
		c->nres = 0;
		c->deep = 0;
		return -1;
	}
	if (c->nres > (uint32_t)same)
		c->nres = same;
	c->deep = c->memo.nkept >= MEMO_MIN;
	/* the same stack as the last one (several blocks of one line) */
	whole = same && same == (int)c->memo.nlinks && before == (uint32_t)same;
	if (whole && c->last_id && !unw_backtrace_fn)
		return c->last_id;
	c->last_id = stack_id(c, memo_hash(c, same), NULL, c->memo.nkept);
	return c->last_id;
}

/* Walked in full: against the memo, or afresh and hashed. */
static __attribute__((noinline)) uint32_t stack_full(struct chain *c,
						     const void *ts)
{
	struct pp_rawframe raw[PP_MAX_FRAMES];
	int64_t id;
	int n = 0;

	if (ts && walk) {
		if (c && c->deep && (id = stack_memo(c, ts)) >= 0)
			return (uint32_t)id;
		n = walk(&pp_shim.layout, ts, pp_shim.py.code_type, raw,
			 PP_MAX_FRAMES);
		if (c && n >= MEMO_MIN && n < PP_MAX_FRAMES && memo_walk) {
			c->deep = 1;	/* the memo from the next walk on */
			c->memo.nlinks = 0;
		}
	}
	return stack_id(c, hash_raw(raw, n), raw, n);
}

/*
 * This thread's state. The interpreter's current one is ours when it
 * is the one the TSS lookup gave last time: from 3.12 on it is this
 * thread's own (_Py_tss_tstate); before, it is the GIL holder's
 * (_PyRuntime.gilstate.tstate_current), so it must also say it belongs
 * to this thread (a state freed and made again at that address for
 * another thread says that thread). Otherwise the lookup, as before.
 */
static inline const void *this_tstate(struct chain *c)
{
	const void *ts;

	if (tstate_now && c) {
		ts = tstate_now();
		if (ts && ts == c->ts &&
		    (tstate_own ||
		     FIELD(ts, pp_shim.layout.tstate_thread_id,
			   const unsigned long) == c->self))
			return ts;
	}
	ts = pp_shim.py.this_tstate();
	if (c)
		c->ts = ts;
	return ts;
}

/* the thread state to walk, outside the common state (PP_PY_HOOKED) */
static __attribute__((noinline)) const void *tstate_other(struct chain *c)
{
	if (pp_shim.py_state < PP_PY_HOOKED)
		return NULL;	/* code objects' deaths are seen from then on */
	if (!pp_shim.py.is_initialized())
		return NULL;	/* finalizing: thread states being torn down */
	return this_tstate(c);
}

/* a quick key not in the table: walk in full, remember the id */
static __attribute__((noinline)) uint32_t quick_miss(struct chain *c,
						     const void *ts,
						     struct quick *q,
						     uint64_t key,
						     uint32_t deaths)
{
	uint32_t id = stack_full(c, ts);

	if (id) {
		q[1] = q[0];
		q[0].key = key;
		q[0].id = id;
		q[0].deaths = deaths;
	}
	return id;
}

/*
 * A short chain (fewer than MEMO_MIN frames) by its quick key: a hit
 * costs one pass over the links, no offsets, generations or tables.
 * Sound while no code object has died since the entry was made (the
 * deaths are read before the walk): until then an address is the same
 * code object, and (code, instruction word) the same frame. kw is the
 * key walker, a shape's own (inlined) in the per-shape copies below.
 */
static __attribute__((always_inline)) inline uint32_t
stack_with(pp_py_key_walk_fn kw)
{
	struct chain *c = chain_get();
	const void *ts;
	struct quick *q;
	uint64_t key;
	uint32_t deaths;
	int n;

	if (likely(pp_shim.py_state == PP_PY_HOOKED))
		ts = this_tstate(c);
	else
		ts = tstate_other(c);
	if (!ts || !c || c->deep || !kw)
		return stack_full(c, ts);
	deaths = __atomic_load_n(&pp_code_deaths, __ATOMIC_ACQUIRE);
	n = kw(&pp_shim.layout, ts, pp_shim.py.code_type, &key, MEMO_MIN - 1);
	if (n <= 0)
		return n ? stack_full(c, ts) : 0;
	/* two ways a set, the last one made first: a loop's few dozen
	 * keys would collide in a direct-mapped table of this size */
	q = &c->quick[(key >> 56) & (QUICK_WAYS - 2)];
	if (likely(q[0].key == key && q[0].deaths == deaths && q[0].id))
		return q[0].id;
	if (q[1].key == key && q[1].deaths == deaths && q[1].id)
		return q[1].id;
	return quick_miss(c, ts, q, key, deaths);
}

/* any shape, the key walker called through key_walk (NULL: none) */
static uint32_t stack_any(void)
{
	return stack_with(key_walk);
}

/* one copy per frame shape, its key walk inlined (pywalk.h) */
#define CURRENT_OF(v, ...)						\
	DEFINE_KEY_WALK(qkey_##v, __VA_ARGS__)				\
	static uint32_t current_##v(void)				\
	{								\
		return stack_with(qkey_##v);				\
	}
FRAME_SHAPES(CURRENT_OF)
#undef CURRENT_OF

uint32_t (*pp_stack_now)(void) = stack_any;

uint32_t pp_stack_current(void)
{
	return pp_stack_now();
}

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
	uintptr_t me = (uintptr_t)data;
	int i;

	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) &&
		    me >= lo && me < lo + ph->p_memsz) {
			self_lo = lo;
			self_hi = lo + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

/* Unloaded (a detach that dlclose()s the shim): no thread may call
 * chain_free once its code is gone; live threads' chains are left. */
__attribute__((destructor)) static void stacks_fini(void)
{
	if (chain_key_ok) {
		chain_key_ok = 0;
		pthread_key_delete(chain_key);
	}
}

int pp_stacks_init(void)
{
	if (table_init(&stacks, 20) < 0 || table_init(&shapes, 20) < 0 ||
	    table_init(&funcs, 18) < 0 || pp_codelines_init() < 0)
		return -1;
	dl_iterate_phdr(find_self, (void *)(uintptr_t)pp_stacks_init);
	walk = pp_py_walker(&pp_shim.layout, pp_shim.py.code_type);
	memo_walk = pp_py_memo_walker(&pp_shim.layout, pp_shim.py.code_type);
	key_walk = pp_py_key_walker(&pp_shim.layout, pp_shim.py.code_type);
	if (pp_shim.have_layout) {
		tstate_now = dlsym(RTLD_DEFAULT, "PyThreadState_GetUnchecked");
		if (!tstate_now)
			tstate_now = dlsym(RTLD_DEFAULT,
					   "_PyThreadState_UncheckedGet");
		tstate_own = pp_shim.layout.minor >= 12;
		if (!tstate_own &&
		    pp_shim.layout.tstate_thread_id == PP_OFF_NONE)
			tstate_now = NULL;
	}
	/*
	 * Attached, no chains: the detach unloads the shim while threads
	 * live on, and their chains would stay mapped in the target.
	 */
	chain_key_ok = !pp_shim.injected &&
		       pthread_key_create(&chain_key, chain_free) == 0;
	if (pp_shim.native) {
		void *lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);

		unw_backtrace_fn = lib ? dlsym(lib, "unw_backtrace") : NULL;
		if (!unw_backtrace_fn)
			pp_shim.native = 0;	/* no libunwind: Python frames only */
		else
			key_walk = NULL;	/* the key holds no native frames */
	}
	if (key_walk) {
#define SHAPE_CASE(v, ...) case v: pp_stack_now = current_##v; break;
		switch (pp_py_shape(&pp_shim.layout, pp_shim.py.code_type)) {
		FRAME_SHAPES(SHAPE_CASE)
		}
#undef SHAPE_CASE
	}
	return 0;
}

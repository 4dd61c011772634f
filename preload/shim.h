/* SPDX-License-Identifier: MIT */
/* Internal interfaces of the preload shim (all hidden). */
#ifndef PP_SHIM_H
#define PP_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pp_clock.h"
#include "pp_pylayout.h"
#include "pp_ring.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

enum pp_py_state {
	PP_PY_NONE = 0,		/* not a Python process, or not recording */
	PP_PY_WAIT,		/* Python, not initialized yet */
	PP_PY_SCHEDULED,	/* install pending call queued */
	PP_PY_HOOKED,		/* PyMem hooks installed */
	PP_PY_FINALIZING,	/* atexit ran: thread states may go away */
};

/* the Python C API the shim calls, found with dlsym(RTLD_DEFAULT) */
struct pp_pyapi {
	int (*is_initialized)(void);
	void *(*this_tstate)(void);	/* PyGILState_GetThisThreadState */
	int (*add_pending_call)(int (*fn)(void *), void *arg);
	void (*get_allocator)(int domain, void *alloc);
	void (*set_allocator)(int domain, void *alloc);
	const char *(*get_version)(void);
	void *(*cfunction_new)(void *def, void *self, void *module);
	void *(*import_module)(const char *name);
	void *(*call_method)(void *obj, const char *name, const char *fmt, ...);
	void (*decref)(void *obj);	/* Py_DecRef */
	void (*err_clear)(void);
	const void *code_type;		/* &PyCode_Type */
	const void *runtime;		/* &_PyRuntime */
};

struct pp_shim {
	struct pp_ring ring;
	int active;			/* ring claimed: recording */
	int native;			/* --native */
	uint64_t sample_bytes;		/* 0 = record everything */
	volatile int py_state;		/* enum pp_py_state */
	int have_layout;
	struct pp_pylayout layout;
	struct pp_pyapi py;
	pid_t pid;
	int injected;			/* loaded into a running process */
};

extern struct pp_shim pp_shim;

/*
 * This thread's hook state in one TLS block: initial-exec TLS costs a
 * GOT load per variable, so the hooks' short paths reach all of it
 * with one (a separate variable each was two loads more per call).
 */
struct pp_tls {
	int64_t sample_left;	/* sample.c: bytes until the next recorded one */
	uintptr_t fl_last;	/* freelist.c, below */
	int in_hook;		/* nesting depth of our hooks: inner ones pass */
};
extern __thread struct pp_tls pp_tls;
#define pp_in_hook (pp_tls.in_hook)
#define pp_sample_left (pp_tls.sample_left)
#define pp_fl_last (pp_tls.fl_last)

/* shim.c */
void pp_shim_disable(void);
/* a forked child's PyMem hooks are the program's again, GIL held:
 * with --children, its freelists too and the parent's ring let go */
void pp_shim_forked_quiet(void);
void pp_emit_proc(void);
/* map the ring at fd and own it (one process records into a ring) */
int pp_shim_claim_ring(int fd, int native);

/* the libc allocation family: interpose.c's next definitions, got.c's
 * entries before they were rewritten */
struct pp_alloc_fns {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*reallocarray)(void *, size_t, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	int (*munmap)(void *, size_t);
};

/* attach.c, got.c: attach mode (loaded into a running process) */
void pp_attach_disabled(void);
/* a MEM/OBJ hook in a forked child, GIL held: queue its detach (0: not
 * queued yet, the hook stays a pass-through) */
int pp_attach_child_queue(void);
/* in a forked child, inside fork(): what the threads not copied held */
void pp_got_atfork_child(void);
void pp_freelist_atfork_child(void);
/* a wrapper that kept the shim loaded after the detach is done: unload
 * if nothing else does (any thread) */
void pp_attach_idle(void);
int pp_got_hook(void *self);
void pp_got_unhook(void);
/* a dlopen in progress through got.c's wrapper */
int pp_got_busy(void);
/* interpose.c: its next definitions taken from lib's handle */
void pp_interpose_resolve_in(void *lib);

/*
 * The collector stopped recording, or is gone: so do we, for good
 * (pp_shim.active, which every hook tests first, goes to 0: the hooks
 * pass straight through from then on).
 */
static inline void *pp_emit_reserve(uint32_t len)
{
	void *p;

	if (unlikely(!pp_shim.ring.hdr->collector_alive)) {
		pp_shim_disable();
		return NULL;
	}
	p = pp_ring_reserve(&pp_shim.ring, len);
	if (unlikely(!p) && pp_shim.ring.lost)
		pp_shim_disable();
	return p;
}

/* A stalled collector: drop the event before walking its stack. */
static inline int pp_emit_dropping(void)
{
	if (likely(!pp_ring_dropping(&pp_shim.ring)))
		return 0;
	if (pp_shim.ring.lost)
		pp_shim_disable();
	return 1;
}
void pp_emit_mark(uint32_t mark);
/* a THREAD record: tid's name (n bytes), flags PP_THREAD_* */
void pp_emit_thread(uint32_t tid, uint8_t flags, uint64_t ts,
		    const char *name, size_t n);
void pp_wait_for_probes(void);

/* sample.c */
#define PP_FILTER_BITS 16
extern uint8_t pp_sample_filter[1u << PP_FILTER_BITS];
int pp_sample_init(void);
int pp_sample_crossed(size_t n);
void pp_sample_insert(const void *p);
int pp_sample_remove(const void *p);
int pp_sample_contains(const void *p);

/* multiplicative (Fibonacci) hashing: use the top bits only; they
 * depend on every bit of the address, the low ones do not */
static inline uint64_t pp_sample_hash(const void *p)
{
	return (uintptr_t)p * 0x9e3779b97f4a7c15ull;
}

/*
 * The filter's counter for p: its 64-byte granule, modulo the filter
 * (4 MiB of address space, cyclically). Not a hash: a hash sent each
 * free to a random line of the 64 KiB filter (more than L1 holds);
 * this way frees of nearby blocks (one pymalloc pool, one glibc run)
 * share a line, and it is a shift and a mask instead of a multiply.
 */
#define PP_FILTER_GRAIN 6
static inline uint8_t *pp_sample_slot(const void *p)
{
	return &pp_sample_filter[((uintptr_t)p >> PP_FILTER_GRAIN) &
				 ((1u << PP_FILTER_BITS) - 1)];
}

/* Sampling: 1 if this block is to be recorded (inline: most are not). */
static inline int pp_sample_take(size_t n)
{
	pp_sample_left -= (int64_t)n;
	if (likely(pp_sample_left > 0))
		return 0;
	return pp_sample_crossed(n);
}

/* 0 if p is certainly not a recorded block: a shift, a mask and one
 * byte load, in cache (the sampled free hooks' only test). */
static inline int pp_sample_maybe(const void *p)
{
	return *pp_sample_slot(p);
}

/* record.c: the hot path, called by the interposers with pp_in_hook set */
void pp_emit_alloc(uint8_t domain, const void *p, size_t n);
void pp_emit_free(uint8_t domain, const void *p);
uint32_t pp_stack_current(void);
/* stacks.c: what pp_stack_current calls, this interpreter's own copy */
extern uint32_t (*pp_stack_now)(void);

/*
 * The bodies of an ALLOC and of a FREE, inline in the
 * PyMem hooks' every-allocation path (one frame for the hook and its
 * record: that call's saves and restores were a fifth of the hook's
 * own cost); pp_emit_alloc and pp_emit_free for the other callers.
 */
static __attribute__((always_inline)) inline void
pp_emit_py_alloc(uint8_t domain, const void *p, size_t n)
{
	struct pp_rec_alloc *r;
	uint32_t stack;

	if (pp_emit_dropping())
		return;
	stack = pp_stack_now();
	r = pp_emit_reserve(sizeof(*r));
	if (!r)
		return;
	r->addr = (uintptr_t)p;
	r->size = n;
	pp_ring_commit(r, PP_REC_ALLOC, domain, stack, sizeof(*r));
}

static __attribute__((always_inline)) inline void
pp_emit_free_inline(uint8_t domain, const void *p)
{
	struct pp_rec_free *r;

	r = pp_emit_reserve(sizeof(*r));
	if (!r)
		return;
	r->addr = (uintptr_t)p;
	pp_ring_commit(r, PP_REC_FREE, domain, 0, sizeof(*r));
}
struct pp_realloc_tx {
	struct pp_rec_realloc *r;
	uint32_t stack;
	uint8_t domain;
};
void pp_record_realloc_begin(struct pp_realloc_tx *tx, uint8_t domain,
			     const void *old, size_t n);
void pp_record_realloc_end(struct pp_realloc_tx *tx, const void *p);
void pp_record_munmap(const void *p, size_t n);

static inline void pp_record_alloc(uint8_t domain, const void *p, size_t n)
{
	if (pp_shim.sample_bytes && domain != PP_DOM_ARENA) {
		if (likely(!pp_sample_take(n)))
			return;
		pp_sample_insert(p);
	}
	pp_emit_alloc(domain, p, n);
}

static inline void pp_record_free(uint8_t domain, const void *p)
{
	if (pp_shim.sample_bytes &&
	    (likely(!pp_sample_maybe(p)) || !pp_sample_remove(p)))
		return;
	pp_emit_free(domain, p);
}

/*
 * freelist.c: objects re-created from CPython's freelists. pp_fl_last is
 * the last block this thread's PyMem hooks returned (0 once an object
 * creation consumed it or it was freed); the OBJ hook counts
 * pp_fl_check down and calls pp_fl_recheck() at zero (GIL held).
 */
extern int pp_fl_check;
void pp_fl_recheck(void);
void pp_freelist_install(void);
void pp_freelist_undo(void);
/* attach mode: undo, and leave nothing of ours reachable (-1: something
 * stays, the shim must too); busy: a wrapper frame or an object still
 * pointing at a private type copy (the shim may not unload yet) */
int pp_freelist_detach(void);
int pp_freelist_busy(void);

/* stacks.c (pp_stack_current: above) */
int pp_stacks_init(void);

static inline uint64_t pp_hash_ptr(const void *p)
{
	uint64_t h = (uintptr_t)p * 0x9e3779b97f4a7c15ull;

	return h ^ (h >> 29);
}

/*
 * codelines.c: each code object's line table decoded once. A code
 * object is known by its address and that address's generation, which
 * the OBJ free hook bumps when a code object there dies (addresses are
 * reused at once by the next code object of the same size).
 */
#define PP_CODE_GEN_BITS 16
extern uint32_t pp_code_gens[1u << PP_CODE_GEN_BITS];
/* code objects seen dying: stacks.c's per-thread prefixes hold while
 * it stays put */
extern uint32_t pp_code_deaths;

static inline uint32_t *pp_code_gen(const void *code)
{
	return &pp_code_gens[pp_hash_ptr(code) >> (64 - PP_CODE_GEN_BITS)];
}

/* p is being freed from the OBJ domain: a code object? (code objects
 * are not GC-tracked in 3.9-3.14, so the block is the object; every
 * OBJ block has at least 16 bytes) */
static inline void pp_code_freeing(const void *p)
{
	if (*(const void *const *)((const char *)p + pp_shim.layout.ob_type) ==
	    pp_shim.py.code_type) {
		__atomic_fetch_add(pp_code_gen(p), 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&pp_code_deaths, 1, __ATOMIC_RELEASE);
	}
}

struct pp_codelines;
int pp_codelines_init(void);
/* get, line and func only between lock and unlock */
void pp_codelines_lock(void);
void pp_codelines_unlock(void);
/* NULL: not cached (a huge table); use pp_code_line */
struct pp_codelines *pp_codelines_get(const struct pp_pylayout *l,
				      const void *code);
int pp_codelines_line(const struct pp_codelines *c, int off);
/* the code object's FUNC id, 0 until set */
uint32_t *pp_codelines_func(struct pp_codelines *c);

/* pyhooks.c */
void pp_py_detect(void);
void pp_py_maybe_install(void);
/* attach mode, GIL held: MEM and OBJ hooked; put back (-1: something
 * was chained in front of ours since, which stay pass-throughs) */
void pp_pyhooks_attach(void);
int pp_pyhooks_detach(void);

/*
 * pystalls.c: Python thread names (always); with fallback set (no
 * eBPF), GC pauses, GIL waits and lock waits measured in-process.
 * Called once from install(), main thread, GIL held.
 */
void pp_pystalls_install(int fallback);

/* OS tid of the calling thread, cached */
extern __thread uint32_t pp_tid_cache;
uint32_t pp_tid_slow(void);
static inline uint32_t pp_tid(void)
{
	return likely(pp_tid_cache) ? pp_tid_cache : pp_tid_slow();
}

/*
 * stallwrap.c: libc condition variables and semaphores, passed straight
 * through while pp_stall_hooks is NULL (one load and branch).
 */
struct pp_stall_hooks {
	/* pthread_cond_signal(cond), before signalling */
	void (*cond_signal)(const void *cond);
	/* pthread_cond_timedwait (timed) / pthread_cond_wait, before waiting */
	void (*cond_wait)(const void *cond, int timed);
	/* a sem_*wait that could not take the semaphore at once returned;
	 * t0 = when it began (errno is saved around this) */
	void (*sem_waited)(const void *sem, uint64_t t0);
};
extern const struct pp_stall_hooks *pp_stall_hooks;

/* gilwatch.c: GIL intervals from the GIL's own condition variables */
int pp_gilwatch_start(uintptr_t gil);
void pp_gilwatch_cond_signal(const void *cond);
void pp_gilwatch_cond_wait(const void *cond, int timed);

/* lockwatch.c: contended semaphore waits (threading.Lock and friends) */
void pp_lockwatch_sem_waited(const void *sem, uint64_t t0);

#endif

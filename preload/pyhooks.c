// SPDX-License-Identifier: MIT
/*
 * Python's own allocators. pymalloc serves most objects without ever
 * calling malloc, so the shim chains PyMem_SetAllocator wrappers in
 * front of the RAW, MEM and OBJ domains (as tracemalloc does). They are
 * installed from a pending call, which the interpreter runs on its
 * main thread with the GIL held, queued as soon as a libc hook sees the
 * interpreter initialized: before site runs, so before any user code.
 */
#include <dlfcn.h>
#include <string.h>

#include "shim.h"

/* PyMemAllocatorEx (Include/cpython/pymem.h), the same in 3.9-3.14 */
struct pymem_allocator {
	void *ctx;
	void *(*malloc)(void *ctx, size_t size);
	void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
	void *(*realloc)(void *ctx, void *ptr, size_t new_size);
	void (*free)(void *ctx, void *ptr);
};

/* PyMemAllocatorDomain order: RAW, MEM, OBJ */
static struct domain {
	struct pymem_allocator orig;
	uint8_t pp_domain;
	uint8_t gone;		/* orig put back: this domain is the program's */
} domains[3] = {
	{ .pp_domain = PP_DOM_PYRAW },
	{ .pp_domain = PP_DOM_PYMEM },
	{ .pp_domain = PP_DOM_PYOBJ },
};

/* freelist.c: the last block that may hold an object (RAW never does:
 * tracemalloc's own tables, allocated between an object's allocation
 * and its creation, must not hide it) */
static inline void note_block(const struct domain *d, const void *p)
{
	if (d->pp_domain != PP_DOM_PYRAW)
		pp_fl_last = (uintptr_t)p;
}

/*
 * Recording stopped (collector lost, --duration, a forked child): put
 * the domain's own allocator back, so the program pays nothing from now
 * on. Only MEM and OBJ, whose callers hold the GIL (no other thread can
 * be half way through reading the allocator); RAW stays a pass-through.
 * If something was chained in front of us since (tracemalloc.start()),
 * we stay its pass-through too. Our wrappers never change a block, so
 * blocks they handed out are the original allocator's.
 */
static void step_aside(struct domain *d)
{
	struct pymem_allocator cur;
	int i = (int)(d - domains);

	if (d->gone || d->pp_domain == PP_DOM_PYRAW || pp_in_hook)
		return;
	/* attached, a forked child: its detach first (the hook stays a
	 * pass-through until that is queued) */
	if (pp_shim.injected && !pp_attach_child_queue())
		return;
	d->gone = 1;
	pp_shim.py.get_allocator(i, &cur);
	if (cur.ctx == d)
		pp_shim.py.set_allocator(i, &d->orig);
	if (domains[1].gone && domains[2].gone)	/* MEM, OBJ */
		pp_shim_forked_quiet();
}

/*
 * Attach mode: no atexit callback of ours can be registered (it would
 * outlive the shim's unloading), so the end of the program's own run is
 * the first free recorded once the interpreter finalizes
 * (Py_IsFinalizing: set after the atexit callbacks, before the modules
 * are torn down): the FINALIZE mark goes before it, and the live state
 * of a process that ends while attached is the one it ran with, as
 * wrapped. Only recorded frees ask (a sampled run's others change no
 * figure): the common free pays nothing.
 */
static int (*is_finalizing)(void);
static int fin_watch;

static __attribute__((noinline)) void fin_check(void)
{
	if (!is_finalizing())
		return;
	fin_watch = 0;
	if (pp_shim.active)
		pp_emit_mark(PP_MARK_FINALIZE);
}

static void *hook_calloc(void *ctx, size_t nelem, size_t elsize)
{
	struct domain *d = ctx;
	void *p;

	if (pp_in_hook || !pp_shim.active) {
		p = d->orig.calloc(d->orig.ctx, nelem, elsize);
		note_block(d, p);
		return p;
	}
	pp_in_hook++;
	p = d->orig.calloc(d->orig.ctx, nelem, elsize);
	note_block(d, p);
	if (p)
		pp_record_alloc(d->pp_domain, p, nelem * elsize);
	pp_in_hook--;
	return p;
}

static void *hook_realloc(void *ctx, void *old, size_t n)
{
	struct domain *d = ctx;
	struct pp_realloc_tx tx;
	void *p;

	if (pp_in_hook || !pp_shim.active) {
		p = d->orig.realloc(d->orig.ctx, old, n);
		note_block(d, p);
		return p;
	}
	if (unlikely(fin_watch) && old)
		fin_check();
	pp_in_hook++;
	pp_record_realloc_begin(&tx, d->pp_domain, old, n);
	p = d->orig.realloc(d->orig.ctx, old, n);
	note_block(d, p);
	pp_record_realloc_end(&tx, p);
	pp_in_hook--;
	return p;
}

/* a PyMem free after its first two steps (free_a, free_s) */
static __attribute__((always_inline)) inline void free_rest(struct domain *d,
							   void *p)
{
	if (!p || pp_in_hook || !pp_shim.active) {
		d->orig.free(d->orig.ctx, p);
		if (!pp_shim.active)
			step_aside(d);
		return;
	}
	if (unlikely(fin_watch))
		fin_check();
	pp_in_hook++;
	pp_record_free(d->pp_domain, p);
	d->orig.free(d->orig.ctx, p);
	pp_in_hook--;
}

/*
 * --sample: the same hooks, with the common call (nothing recorded)
 * kept short, one copy per domain. A malloc that the countdown does not
 * pick lowers it and runs the domain's allocator (pp_in_hook set, so a
 * layer below, such as pymalloc's PyMem_RawMalloc for a large block,
 * neither counts down nor records); a free whose block the filter rules
 * out (sample.c) jumps to the domain's free: no record, so nothing to
 * order and no pp_in_hook (a layer below tests its own blocks the same
 * way). Neither tests pp_shim.active: nothing is recorded there, and a
 * stopped recording is seen (step_aside) at the next crossing or
 * recorded free. note: the freelist note (pp_fl_last) is kept, which
 * only the 3.13+ reference tracer reads. Everything else takes the full
 * hooks' paths, out of line.
 */
static __attribute__((noinline)) void *malloc_pass(struct domain *d, size_t n)
{
	void *p;

	if (!pp_shim.active)
		step_aside(d);
	p = d->orig.malloc(d->orig.ctx, n);
	note_block(d, p);
	return p;
}

/* nested, stopped, or the countdown crosses zero (not lowered yet) */
static __attribute__((noinline)) void *malloc_slow(struct domain *d, size_t n)
{
	int take;
	void *p;

	if (pp_in_hook || !pp_shim.active)
		return malloc_pass(d, n);
	pp_sample_left -= (int64_t)n;
	take = pp_sample_crossed(n);
	pp_in_hook++;
	p = d->orig.malloc(d->orig.ctx, n);
	note_block(d, p);
	if (p && take) {
		pp_sample_insert(p);
		pp_emit_alloc(d->pp_domain, p, n);
	}
	pp_in_hook--;
	if (d->pp_domain == PP_DOM_PYOBJ && unlikely(--pp_fl_check < 0))
		pp_fl_recheck();
	return p;
}

static __attribute__((always_inline)) inline void *
malloc_s(struct domain *d, size_t n, int dom, int note)
{
	int64_t left = pp_sample_left - (int64_t)n;
	void *p;

	if (unlikely(pp_in_hook | (left <= 0)))
		return malloc_slow(d, n);
	pp_sample_left = left;
	pp_in_hook = 1;
	p = d->orig.malloc(d->orig.ctx, n);
	pp_in_hook = 0;
	if (note && dom != PP_DOM_PYRAW)
		pp_fl_last = (uintptr_t)p;
	if (dom == PP_DOM_PYOBJ && unlikely(--pp_fl_check < 0))
		pp_fl_recheck();
	return p;
}

static __attribute__((noinline)) void free_slow(struct domain *d, void *p)
{
	free_rest(d, p);
}

/*
 * Every allocation: one copy per domain, the record inline (one frame,
 * the domain's tests made at build time); what is not recorded (nested,
 * stopped, NULL) takes the out-of-line paths above.
 */
static __attribute__((always_inline)) inline void *
malloc_a(struct domain *d, size_t n, int dom)
{
	void *p;

	if (unlikely(pp_in_hook || !pp_shim.active))
		return malloc_pass(d, n);
	pp_in_hook = 1;
	p = d->orig.malloc(d->orig.ctx, n);
	if (dom != PP_DOM_PYRAW)
		pp_fl_last = (uintptr_t)p;
	if (likely(p))
		pp_emit_py_alloc(dom, p, n);
	pp_in_hook = 0;
	if (dom == PP_DOM_PYOBJ && unlikely(--pp_fl_check < 0))
		pp_fl_recheck();
	return p;
}

static __attribute__((always_inline)) inline void
free_a(struct domain *d, void *p, int dom)
{
	/* before anything returns: a dead code object's address must not
	 * keep its stacks and lines (codelines.c) */
	if (dom == PP_DOM_PYOBJ && p && likely(pp_shim.active))
		pp_code_freeing(p);
	if (unlikely((uintptr_t)p == pp_fl_last))
		pp_fl_last = 0;
	if (unlikely(!p || pp_in_hook || !pp_shim.active)) {
		free_slow(d, p);
		return;
	}
	pp_in_hook = 1;
	pp_emit_free_inline(dom, p);
	d->orig.free(d->orig.ctx, p);
	pp_in_hook = 0;
}

static __attribute__((always_inline)) inline void
free_s(struct domain *d, void *p, int dom, int note)
{
	/* a stopped recording bumps a dead code object's generation too:
	 * harmless, and one test fewer */
	if (dom == PP_DOM_PYOBJ && p)
		pp_code_freeing(p);
	if (note && unlikely((uintptr_t)p == pp_fl_last))
		pp_fl_last = 0;
	if (unlikely(pp_sample_maybe(p))) {
		free_slow(d, p);
		return;
	}
	d->orig.free(d->orig.ctx, p);
}

/* calloc and realloc: the countdown stays above zero and the old block
 * is not a recorded one; else the full hook (which counts down itself) */
static void *calloc_s(void *ctx, size_t nelem, size_t elsize)
{
	struct domain *d = ctx;
	size_t n;
	void *p;

	if (unlikely(pp_in_hook || !pp_shim.active) ||
	    __builtin_mul_overflow(nelem, elsize, &n) ||
	    unlikely(pp_sample_left <= (int64_t)n))
		return hook_calloc(ctx, nelem, elsize);
	pp_sample_left -= (int64_t)n;
	pp_in_hook = 1;
	p = d->orig.calloc(d->orig.ctx, nelem, elsize);
	pp_in_hook = 0;
	note_block(d, p);
	return p;
}

static void *realloc_s(void *ctx, void *old, size_t n)
{
	struct domain *d = ctx;
	void *p;

	if (unlikely(pp_in_hook || !pp_shim.active) ||
	    unlikely(pp_sample_left <= (int64_t)n) ||
	    unlikely(pp_sample_maybe(old)))
		return hook_realloc(ctx, old, n);
	pp_sample_left -= (int64_t)n;
	pp_in_hook = 1;
	p = d->orig.realloc(d->orig.ctx, old, n);
	pp_in_hook = 0;
	note_block(d, p);
	return p;
}

#define SAMPLED_HOOKS(name, dom, note)					\
	static void *name##_malloc(void *ctx, size_t n)			\
	{								\
		return malloc_s(ctx, n, dom, note);			\
	}								\
	static void name##_free(void *ctx, void *p)			\
	{								\
		free_s(ctx, p, dom, note);				\
	}
#define ALL_HOOKS(name, dom)						\
	static void *name##_malloc(void *ctx, size_t n)			\
	{								\
		return malloc_a(ctx, n, dom);				\
	}								\
	static void name##_free(void *ctx, void *p)			\
	{								\
		free_a(ctx, p, dom);					\
	}
SAMPLED_HOOKS(raw_s, PP_DOM_PYRAW, 0)
SAMPLED_HOOKS(mem_s, PP_DOM_PYMEM, 0)
SAMPLED_HOOKS(obj_s, PP_DOM_PYOBJ, 0)
SAMPLED_HOOKS(mem_sn, PP_DOM_PYMEM, 1)
SAMPLED_HOOKS(obj_sn, PP_DOM_PYOBJ, 1)
ALL_HOOKS(raw_a, PP_DOM_PYRAW)
ALL_HOOKS(mem_a, PP_DOM_PYMEM)
ALL_HOOKS(obj_a, PP_DOM_PYOBJ)
#undef SAMPLED_HOOKS
#undef ALL_HOOKS

/* the hooks of domain i (PyMemAllocatorDomain order), ctx unset */
static struct pymem_allocator hooks_of(int i)
{
	static const struct pymem_allocator all = {
		.calloc = hook_calloc, .realloc = hook_realloc,
	};
	struct pymem_allocator a = all;

	if (!pp_shim.sample_bytes) {
		a.malloc = i == 0 ? raw_a_malloc : i == 1 ? mem_a_malloc :
				    obj_a_malloc;
		a.free = i == 0 ? raw_a_free : i == 1 ? mem_a_free : obj_a_free;
		return a;
	}
	if (i > 0 && (!pp_shim.have_layout || pp_shim.layout.minor >= 13)) {
		/* the reference tracer reads pp_fl_last (freelist.c) */
		a.malloc = i == 1 ? mem_sn_malloc : obj_sn_malloc;
		a.free = i == 1 ? mem_sn_free : obj_sn_free;
	} else {
		a.malloc = i == 0 ? raw_s_malloc :
			   i == 1 ? mem_s_malloc : obj_s_malloc;
		a.free = i == 0 ? raw_s_free : i == 1 ? mem_s_free : obj_s_free;
	}
	a.calloc = calloc_s;
	a.realloc = realloc_s;
	return a;
}

/* PyMethodDef (Include/methodobject.h) */
struct py_method_def {
	const char *name;
	void *(*meth)(void *self, void *arg);
	int flags;
	const char *doc;
};
#define PY_METH_NOARGS 0x0004

static void *(*py_none)(void);

/* atexit: the program's own run is over; finalization follows. */
static void *at_exit(void *self, void *arg)
{
	if (pp_shim.active) {
		pp_shim.py_state = PP_PY_FINALIZING;
		pp_emit_mark(PP_MARK_FINALIZE);
		/* the live state is taken: give CPython its freelists back
		 * (GIL held; the attach/detach path will need the same) */
		pp_freelist_undo();
	}
	return py_none();
}

static struct py_method_def atexit_def = {
	"_pyprof_atexit", at_exit, PY_METH_NOARGS, NULL
};

static void *none_ref(void)
{
	static void (*incref)(void *);
	static void *none;

	if (!none) {
		incref = dlsym(RTLD_DEFAULT, "Py_IncRef");
		none = dlsym(RTLD_DEFAULT, "_Py_NoneStruct");
	}
	incref(none);
	return none;
}

static void register_atexit(void)
{
	struct pp_pyapi *py = &pp_shim.py;
	void *mod, *fn, *res = NULL;

	py_none = none_ref;
	mod = py->import_module("atexit");
	if (!mod) {
		py->err_clear();
		return;
	}
	fn = py->cfunction_new(&atexit_def, NULL, NULL);
	if (fn) {
		res = py->call_method(mod, "register", "O", fn);
		if (res)
			py->decref(res);
		py->decref(fn);
	}
	if (!fn || !res)
		py->err_clear();
	py->decref(mod);
}

static int install(void *arg)
{
	struct pymem_allocator a;
	int i;

	if (!pp_shim.active)
		return 0;
	pp_in_hook++;		/* what we allocate here is not the program's */
	for (i = 0; i < 3; i++) {
		pp_shim.py.get_allocator(i, &domains[i].orig);
		a = hooks_of(i);
		a.ctx = &domains[i];
		pp_shim.py.set_allocator(i, &a);
	}
	register_atexit();
	pp_freelist_install();
	pp_in_hook--;
	pp_shim.py_state = PP_PY_HOOKED;
	pp_emit_mark(PP_MARK_PY_READY);
	pp_wait_for_probes();
	pp_in_hook++;
	pp_pystalls_install(!!(pp_shim.ring.hdr->opts & PP_OPT_SHIM_STALLS));
	pp_in_hook--;
	return 0;
}

void pp_py_maybe_install(void)
{
	int expected = PP_PY_WAIT;

	if (!pp_shim.active || !pp_shim.py.is_initialized())
		return;
	if (!__atomic_compare_exchange_n(&pp_shim.py_state, &expected,
					 PP_PY_SCHEDULED, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED))
		return;
	if (pp_shim.py.add_pending_call(install, NULL) < 0)
		pp_shim.py_state = PP_PY_WAIT;
}

/* Is this process a CPython interpreter we can read? */
void pp_py_detect(void)
{
	struct pp_pyapi *py = &pp_shim.py;
	const char *why;

#define SYM(field, name) py->field = dlsym(RTLD_DEFAULT, name)
	SYM(is_initialized, "Py_IsInitialized");
	SYM(this_tstate, "PyGILState_GetThisThreadState");
	SYM(add_pending_call, "Py_AddPendingCall");
	SYM(get_allocator, "PyMem_GetAllocator");
	SYM(set_allocator, "PyMem_SetAllocator");
	SYM(get_version, "Py_GetVersion");
	SYM(cfunction_new, "PyCFunction_NewEx");
	SYM(import_module, "PyImport_ImportModule");
	SYM(call_method, "PyObject_CallMethod");
	SYM(decref, "Py_DecRef");
	SYM(err_clear, "PyErr_Clear");
	SYM(code_type, "PyCode_Type");
	SYM(runtime, "_PyRuntime");
#undef SYM
	if (!py->is_initialized || !py->get_version)
		return;
	pp_shim.py_state = PP_PY_WAIT;
	if (!py->this_tstate || !py->add_pending_call || !py->get_allocator ||
	    !py->set_allocator || !py->code_type || !py->runtime ||
	    !py->cfunction_new || !py->import_module || !py->call_method ||
	    !py->decref || !py->err_clear)
		return;
	if (pp_pylayout_init(&pp_shim.layout, py->get_version(), py->runtime,
			     &why) == 0)
		pp_shim.have_layout = 1;
}

/*
 * Attach mode (attach.c), main thread, GIL held. MEM and OBJ only:
 * their callers hold the GIL, so when the detach (GIL held) puts them
 * back no call is inside ours; RAW calls malloc, which the GOT hooks see.
 */
void pp_pyhooks_attach(void)
{
	struct pymem_allocator a;
	int i;

	/* 3.13+ named it Py_IsFinalizing (Include/cpython/pylifecycle.h) */
	is_finalizing = dlsym(RTLD_DEFAULT, "Py_IsFinalizing");
	if (!is_finalizing)
		is_finalizing = dlsym(RTLD_DEFAULT, "_Py_IsFinalizing");
	fin_watch = is_finalizing != NULL;
	for (i = 1; i < 3; i++) {
		pp_shim.py.get_allocator(i, &domains[i].orig);
		a = hooks_of(i);
		a.ctx = &domains[i];
		pp_shim.py.set_allocator(i, &a);
	}
}

int pp_pyhooks_detach(void)
{
	struct pymem_allocator cur;
	int i, rc = 0;

	for (i = 1; i < 3; i++) {
		pp_shim.py.get_allocator(i, &cur);
		if (cur.ctx == &domains[i])
			pp_shim.py.set_allocator(i, &domains[i].orig);
		else if (cur.ctx != domains[i].orig.ctx ||
			 cur.malloc != domains[i].orig.malloc)
			rc = -1;	/* chained behind another */
		domains[i].gone = 1;
	}
	return rc;
}

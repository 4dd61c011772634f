// SPDX-License-Identifier: MIT
/*
 * Objects re-created from CPython's freelists. CPython keeps freed
 * objects of common types and hands them out again without calling an
 * allocator, so an allocator hook alone leaves such an object charged
 * to whichever line first allocated its block.
 *
 * 3.13+: the public reference tracer (PyRefTracer_SetTracer) reports
 * every object creation (Objects/object.c new_reference). Most follow a
 * fresh allocation of the same block by the same thread, which our
 * PyMem hooks just saw (pp_fl_last): one compare skips them. The others
 * were reused: a RETAG record moves the block to the current stack.
 * tracemalloc.start() installs its own tracer without chaining
 * (Python/tracemalloc.c): the OBJ hook re-checks every FL_RECHECK
 * allocations and re-installs ours in front of whatever is there.
 *
 * 3.9-3.12 have no such hook that survives a static LTO build
 * (_Py_NewReference is inlined), so the freelists of list, dict, tuple
 * and float are kept empty instead and every such object goes through
 * the allocator:
 * - list_dealloc, dict_dealloc, tupledealloc, float_dealloc (3.9/3.10)
 *   push only exact instances (PyList_CheckExact, Py_IS_TYPE(mp,
 *   &PyDict_Type), ...). Our wrapper, installed as the exported type's
 *   tp_dealloc, points a dying exact instance's ob_type at a private copy
 *   of the type (same slots, tp_dealloc the original) and calls the
 *   original: the exact test fails and the block goes to tp_free. The
 *   trashcan's test (Py_TYPE(op)->tp_dealloc == the function) still
 *   holds, PyObject_GC_Del reads the same flags from the copy (3.12
 *   _PyType_PreHeaderSize), and none of these types has weak references:
 *   nothing can see the dying object.
 * - 3.11/3.12's eval loop frees floats with _PyFloat_ExactDealloc
 *   directly. Its push is guarded by numfree >= PyFloat_MAXFREELIST and
 *   PyFloat_FromDouble's pop by free_list != NULL: the list is drained
 *   and numfree saturated (interp->float_state, pycore_interp.h), after
 *   checking the offset on a float of our own.
 * - frames (3.9/3.10), slices, contexts and async generator objects
 *   (3.10-3.12) are pushed whatever their type: the wrapper takes each
 *   back off after the push ("Freelists whose dealloc pushes", below).
 * Whatever was on a freelist at install is drained (create and drop until
 * a creation is a fresh allocation). Everything is restorable:
 * pp_freelist_undo() puts the originals back, with the GIL held.
 *
 * Attach mode (attach.c) unloads the shim after the detach, so nothing
 * of it may stay reachable (pp_freelist_detach): a static subtype
 * readied meanwhile that inherited a wrapper (typeobject.c
 * inherit_slots copies tp_dealloc) gets the original, the gc.callbacks
 * entry goes, and the float freelist is left consistent. An object
 * still pointing at a private copy (its dealloc let the GIL go in an
 * item's __del__, in another thread; or it waits on that thread's
 * trashcan list, pycore_object.h) and a wrapper frame still on a stack
 * are counted: the copy's tp_free (ours) and the wrappers' return count
 * them down, and the shim stays loaded until both are 0 (pp_attach_idle).
 */
#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "shim.h"

#define FL_RECHECK 4096

/* PyTypeObject (Include/cpython/object.h), x86-64, 3.9-3.15 */
#define TP_DEALLOC 48
#define TP_FLAGS 168
#define TP_SIZE_MAX 416			/* 3.9-3.11: 408, 3.12: 416 */
#define TPF_MANAGED_WEAKREF (1ul << 3)
#define TPF_MANAGED_DICT (1ul << 4)
#define TPF_HEAPTYPE (1ul << 9)
#define TPF_HAVE_GC (1ul << 14)
#define TP_FREE 320			/* tp_free, 3.9-3.12 */
#define GC_HEAD 16			/* sizeof(PyGC_Head), GIL builds */
#define OB_TYPE 8
#define OB_SIZE 16			/* PyVarObject.ob_size */
#define DICT_VERSION_TAG 24		/* PyDictObject.ma_version_tag */
#define PYREFTRACER_CREATE 0
#define TP_BASICSIZE 32
#define TP_ITEMSIZE 40
#define TPF_LONG_SUBCLASS (1ul << 24)
#define LONG_TAG 16			/* 3.12+ PyLongObject.long_value.lv_tag */
#define LONG_DIGITS_FROM 3		/* lv_tag >> NON_SIZE_BITS */

int pp_fl_check = INT_MAX;

typedef void (*destructor)(void *);
typedef int (*reftracer)(void *op, int event, void *data);

static struct {
	void *(*list_new)(ssize_t);
	void *(*dict_new)(void);
	void *(*tuple_new)(ssize_t);
	void *(*float_new)(double);
	void *(*interp_get)(void);
	void (*obj_free)(void *);
	void *(*getattr)(void *, const char *);
	int (*list_append)(void *, void *);
	ssize_t (*list_size)(void *);
	void *(*list_item)(void *, ssize_t);	/* borrowed */
	int (*del_item)(void *, ssize_t);
	void (*incref)(void *);
	void (*gc_del)(void *);
	void *(*slice_new)(void *, void *, void *);
	void *(*context_new)(void);
	void *(*code_new)(const char *, const char *, int);
	void *(*frame_new)(void *, void *, void *, void *);
	void *(*tstate_get)(void);
	char *interp;			/* the main interpreter (3.10-3.12) */
	void *none;
	int (*set_tracer)(reftracer, void *);
	reftracer (*get_tracer)(void **);
	reftracer next;			/* the tracer ours chains to */
	void *next_data;
	int tracer_on;
	int *float_numfree;		/* 3.11/3.12, NULL when not saturated */
	int float_saved;
	int minor;
	void *gc_fn;			/* attach mode: our gc.callbacks entry */
	int detached;			/* attach mode: undone, waiting to unload */
} fl;

/* Changed with the GIL held (in deallocs), read with it (the detach):
 * wrapper frames on some thread's stack, objects pointing at a copy;
 * and this thread's share of each (a dealloc and its object's tp_free
 * run on one thread: the trashcan's list is the thread's), which is
 * all a forked child keeps of them. */
static int in_wrap, on_copy;
static __thread int my_wrap, my_copy;

static void float_resaturate(void);

/* --- 3.13+: the reference tracer ------------------------------------ */

/* Include/internal/pycore_object.h _PyType_PreHeaderSize */
static inline uintptr_t presize(const void *op)
{
	const char *tp = *(char *const *)((const char *)op + OB_TYPE);
	unsigned long f = *(const unsigned long *)(tp + TP_FLAGS);
	uintptr_t n = (f & TPF_HAVE_GC) ? GC_HEAD : 0;

	if (fl.minor >= 12 && (f & (TPF_MANAGED_DICT | TPF_MANAGED_WEAKREF)))
		n += 2 * sizeof(void *);
	else if (fl.minor == 11 && (f & TPF_MANAGED_DICT))
		n += 2 * sizeof(void *);
	return n;
}

/*
 * The size the allocator was asked for when op's block was made, for a
 * static type whose pre-header is only the GC head (the freelisted
 * built-ins: float, tuple, list, dict, int, slice, ...); 0 otherwise.
 * Objects/typeobject.c _PyType_AllocNoTrack and Include/internal/
 * pycore_object.h _PyObject_VAR_SIZE (rounded to a pointer);
 * Objects/longobject.c _PyLong_New (not rounded; 3.12+ lv_tag) and
 * _PyLong_FromMedium.
 */
static uint64_t obj_size(const void *op)
{
	const char *tp = *(char *const *)((const char *)op + OB_TYPE);
	unsigned long f = *(const unsigned long *)(tp + TP_FLAGS);
	int64_t basic = *(const int64_t *)(tp + TP_BASICSIZE);
	int64_t item = *(const int64_t *)(tp + TP_ITEMSIZE);
	int64_t n;

	if (f & (TPF_HEAPTYPE | TPF_MANAGED_DICT | TPF_MANAGED_WEAKREF))
		return 0;
	if (item && (f & TPF_LONG_SUBCLASS)) {
		/* a compact int is made as sizeof(PyLongObject), padded
		 * (_PyLong_FromMedium; the freelist holds only those) */
		n = *(const uint64_t *)((const char *)op + LONG_TAG) >>
		    LONG_DIGITS_FROM;
		if (n <= 1)
			return presize(op) + ((basic + item + 7) & ~7ull);
		return presize(op) + basic + item * n;
	}
	if (item) {
		n = *(const int64_t *)((const char *)op + OB_SIZE);
		n = n < 0 ? -n : n;
		return presize(op) + ((basic + item * n + 7) & ~7ull);
	}
	return presize(op) + basic;
}

/*
 * b = op's block; a RETAG with its size (pp_wire.h): a block made
 * before the hooks becomes an allocation here. Out of line, as is the
 * stopped path: the tracer runs for every object created and
 * destroyed, and its common path stays a leaf that jumps to the next
 * tracer.
 */
static __attribute__((noinline)) void reused(const void *op, uintptr_t b)
{
	struct pp_rec_alloc *r;
	uint32_t stack;

	if (pp_shim.sample_bytes && !pp_sample_contains((void *)b))
		return;
	pp_in_hook++;
	stack = pp_stack_current();
	r = pp_emit_reserve(sizeof(*r));
	if (r) {
		r->addr = b;
		r->size = obj_size(op);
		pp_ring_commit(r, PP_REC_RETAG, PP_DOM_PYOBJ, stack,
			       sizeof(*r));
	}
	pp_in_hook--;
}

/*
 * Sampled: a re-creation is drawn as an allocation of its size would
 * be, on the thread's countdown. A block drawn once at its malloc and
 * followed through all its re-creations made a site's count all or
 * nothing (a loop re-making one list). Drawn: its new life is recorded
 * (a RETAG); not drawn, a recorded block's old life ends there (a FREE).
 * A size unknown (0: heap types) keeps the old way: a recorded block
 * moves with its weight.
 */
static __attribute__((noinline)) void reused_sampled(const void *op,
						    uintptr_t b, uint64_t n,
						    int take)
{
	int was = pp_sample_contains((void *)b);

	if (take || (was && !n)) {
		if (!was)
			pp_sample_insert((void *)b);
		reused(op, b);
	} else if (was && pp_sample_remove((void *)b)) {
		pp_in_hook++;
		pp_emit_free(PP_DOM_PYOBJ, (void *)b);
		pp_in_hook--;
	}
}

static inline void drawn(const void *op, uintptr_t b)
{
	uint64_t n = obj_size(op);
	int take = n && pp_sample_take(n);

	if (unlikely(take) || unlikely(pp_sample_maybe((void *)b)))
		reused_sampled(op, b, n, take);
}

/* recording stopped (collector gone, --duration, a forked child): step
 * aside for good; the GIL is held here */
static __attribute__((noinline)) int tracer_stopped(void *op, int event)
{
	reftracer next = fl.next;
	void *next_data = fl.next_data;

	pp_freelist_undo();
	return next ? next(op, event, next_data) : 0;
}

static int tracer(void *op, int event, void *data)
{
	(void)data;
	if (unlikely(!pp_shim.active))
		return tracer_stopped(op, event);
	if (event == PYREFTRACER_CREATE && !pp_in_hook) {
		uintptr_t b = (uintptr_t)op - presize(op);

		if (likely(b == pp_fl_last))
			pp_fl_last = 0;		/* fresh: the hook saw it */
		else if (!pp_shim.sample_bytes)
			reused(op, b);
		else
			drawn(op, b);
	}
	if (fl.next)
		return fl.next(op, event, fl.next_data);
	return 0;
}

/* GIL held, outside our hooks. Put ours in front of whatever tracer is
 * installed now; re-saturate the float freelist (3.11/3.12). */
void pp_fl_recheck(void)
{
	void *data;
	reftracer cur;

	pp_fl_check = FL_RECHECK;
	float_resaturate();
	if (!fl.tracer_on)
		return;
	cur = fl.get_tracer(&data);
	if (cur == tracer)
		return;
	fl.next = cur;
	fl.next_data = data;
	fl.set_tracer(tracer, NULL);
}

/* --- 3.9-3.12: keep the freelists empty -------------------------------- */

struct fl_type {
	const char *sym;
	char *type;			/* the exported type object */
	destructor orig;		/* its tp_dealloc */
	destructor wrap;
	destructor free;		/* its tp_free */
	_Alignas(16) char copy[TP_SIZE_MAX];
};

enum { FL_LIST, FL_DICT, FL_TUPLE, FL_FLOAT, FL_FRAME, FL_SLICE, FL_CONTEXT,
       FL_ASEND, FL_AGVAL, FL_NTYPES };
static struct fl_type types[FL_NTYPES];

static void maybe_idle(void)
{
	if (unlikely(fl.detached) && !in_wrap && !on_copy)
		pp_attach_idle();
}

/* the original dealloc, our frame counted while it runs (it may let the
 * GIL go); what follows it runs with the GIL held. The counts are for
 * the unloading of an attached shim: a wrapped one (never unloaded)
 * keeps none, and jumps straight on. */
static void call_orig(struct fl_type *t, void *op)
{
	if (!pp_shim.injected) {
		t->orig(op);
		return;
	}
	in_wrap++;
	my_wrap++;
	t->orig(op);
	my_wrap--;
	in_wrap--;
	maybe_idle();
}

/* the copies' tp_free: the object's last use of its copy */
static void copy_free(void *op)
{
	char *copy = *(char **)((char *)op + OB_TYPE);
	struct fl_type *t = (void *)(copy - offsetof(struct fl_type, copy));

	if (!pp_shim.injected) {
		t->free(op);
		return;
	}
	on_copy--;
	my_copy--;
	t->free(op);
	maybe_idle();
}

static void redirect(struct fl_type *t, char *op)
{
	char **ob_type = (char **)(op + OB_TYPE);

	if (unlikely(!pp_shim.active)) {
		/* recording stopped: give the program its freelists back
		 * (a dealloc runs with the GIL held); attached, the detach
		 * does, from a pending call */
		if (!pp_shim.injected)
			pp_freelist_undo();
		call_orig(t, op);
		return;
	}
	if (unlikely(__atomic_load_n(&pp_shim.ring.stalled, __ATOMIC_RELAXED))) {
		/* a stalled collector: nothing is recorded, so the program
		 * keeps its freelists' speed until the ring drains (then at
		 * most their few dozen objects stay with their first line) */
		call_orig(t, op);
		return;
	}
	if (*ob_type == t->type) {
		*ob_type = t->copy;
		if (pp_shim.injected) {
			on_copy++;
			my_copy++;
		}
	}
	call_orig(t, op);
}

static void list_dealloc(void *op)
{
	redirect(&types[FL_LIST], op);
}

/* 3.12: a dict watcher may resurrect the dict it is told about
 * (dict_dealloc): a watched dict keeps its real type. */
static void dict_dealloc(void *op)
{
	struct fl_type *t = &types[FL_DICT];

	if (fl.minor == 12 &&
	    (*(uint64_t *)((char *)op + DICT_VERSION_TAG) & 0xff)) {
		call_orig(t, op);
		return;
	}
	redirect(t, op);
}

/* the empty tuple is a singleton (3.11+) or freelist slot 0 (3.9/3.10) */
static void tuple_dealloc(void *op)
{
	struct fl_type *t = &types[FL_TUPLE];

	if (*(ssize_t *)((char *)op + OB_SIZE) == 0) {
		call_orig(t, op);
		return;
	}
	redirect(t, op);
}

static void float_dealloc(void *op)
{
	redirect(&types[FL_FLOAT], op);
}

/* free: what the type's tp_free must be, checking the offsets */
static void wrap_type(struct fl_type *t, const char *sym, destructor wrap,
		      const char *free)
{
	t->sym = sym;
	t->type = dlsym(RTLD_DEFAULT, sym);
	if (!t->type || *(void **)(t->type + TP_FREE) != dlsym(RTLD_DEFAULT, free))
		return;
	t->wrap = wrap;
	t->orig = *(destructor *)(t->type + TP_DEALLOC);
	t->free = *(destructor *)(t->type + TP_FREE);
	memcpy(t->copy, t->type, fl.minor >= 12 ? 416 : 408);
	*(destructor *)(t->copy + TP_FREE) = copy_free;
	*(destructor *)(t->type + TP_DEALLOC) = wrap;
}

/* Create and drop until a creation is a fresh allocation: the freelist
 * (which no longer refills) is then empty. */
static void drain(void *(*make)(ssize_t), ssize_t arg, uintptr_t pre)
{
	int i;

	for (i = 0; i < 4096; i++) {
		char *o = make(arg);
		int fresh;

		if (!o)
			break;
		fresh = (uintptr_t)o - pre == pp_fl_last;
		pp_shim.py.decref(o);
		if (fresh)
			break;
	}
}

static void *make_list(ssize_t n)
{
	return fl.list_new(n);
}

static void *make_dict(ssize_t n)
{
	(void)n;
	return fl.dict_new();
}

static void *make_float(ssize_t n)
{
	return fl.float_new((double)n + 0.5);
}

/* pycore_interp.h: offsetof(PyInterpreterState, float_state), checked
 * against pyenv's and Debian's headers (3.11.2, 3.11.7, 3.12.1) */
static const size_t float_state_off[] = { [11] = 3608, [12] = 267408 };
#define PY_FLOAT_MAXFREELIST 100

/* 3.11/3.12: struct _Py_float_state { int numfree; PyFloatObject
 * *free_list; }. Verify it on a float of ours, drain it, saturate it. */
static void float_saturate(void)
{
	char *st, *f, *o;
	int n0;

	if (!fl.interp_get || !fl.float_new || !fl.obj_free)
		return;
	st = (char *)fl.interp_get() + float_state_off[fl.minor];
	f = fl.float_new(1.25);
	if (!f)
		return;
	n0 = *(int *)st;
	pp_shim.py.decref(f);	/* float_dealloc pushes it */
	if (*(char **)(st + 8) != f || *(int *)st != n0 + 1 ||
	    *(int *)st > PY_FLOAT_MAXFREELIST)
		return;		/* not the layout we know: leave it alone */
	while ((o = *(char **)(st + 8))) {
		*(char **)(st + 8) = *(char **)(o + OB_TYPE);	/* next */
		fl.obj_free(o);
	}
	fl.float_saved = 0;
	*(int *)st = PY_FLOAT_MAXFREELIST;
	fl.float_numfree = (int *)st;
}

/*
 * A full collection empties the freelists (gc_collect_main ->
 * clear_freelists -> _PyFloat_ClearFreeList), numfree back to 0: saturate
 * again. The floats pushed meanwhile are the program's: freed through
 * the hooks (pp_in_hook not set), so their frees are recorded.
 */
static void float_resaturate(void)
{
	int *numfree = fl.float_numfree;
	char **list, *o;

	if (!numfree || *numfree == PY_FLOAT_MAXFREELIST)
		return;
	list = (char **)((char *)numfree + 8);
	while ((o = *list)) {
		*list = *(char **)(o + OB_TYPE);
		fl.obj_free(o);
	}
	*numfree = PY_FLOAT_MAXFREELIST;
}

/*
 * Freelists whose dealloc pushes whatever the type (no exact test for a
 * type copy to fail), 3.9-3.12: the wrapper lets the original dealloc
 * push the object and takes it straight back off, to PyObject_GC_Del
 * (these types' tp_free). A push is the dealloc's last step (nothing
 * runs between it and our check; frames: below), and the lists are
 * verified at install (else that type is left alone); the checks
 * below only write when the list's top is the object just pushed.
 * - frames, 3.9/3.10 (Objects/frameobject.c frame_dealloc): to the code
 *   object's co_zombieframe if it is empty, else to the frame freelist.
 *   We empty the zombie slot before the dealloc (what is there is a dead
 *   frame: one made before us, or one a dealloc further up this stack
 *   pushed and has yet to take back) and take the frame back from it
 *   after, holding a reference to the code so that Py_DECREF(co) cannot
 *   free it: the freelist itself never gets a frame again. The trashcan's
 *   end, which may run other deallocs after the push, does not touch
 *   the frame (object.h Py_TRASHCAN_END).
 * - slices, 3.10-3.12 (Objects/sliceobject.c slice_dealloc): the
 *   interpreter's one-entry slice_cache.
 * - contextvars contexts, 3.10-3.12 (Python/context.c
 *   context_tp_dealloc): interp->context, linked through
 *   ctx_weakreflist, with a count.
 * - async generator asend objects and wrapped values, 3.10-3.12
 *   (Objects/genobject.c): interp->async_gen's two arrays of 80.
 * 3.9 keeps the last four in static variables of the interpreter (not
 * exported, stripped from Debian's build): not covered there.
 */
#define F_CODE 32			/* PyFrameObject.f_code, 3.9/3.10 */
#define CO_ZOMBIE 128			/* PyCodeObject.co_zombieframe */
#define CTX_WEAKREFLIST 32		/* PyContext.ctx_weakreflist */
#define AG_MAXFREELIST 80		/* _PyAsyncGen_MAXFREELIST */
#define AG_VALUE_NUMFREE 640		/* struct _Py_async_gen_state */
#define AG_ASEND_LIST 648
#define AG_ASEND_NUMFREE 1288

/* pycore_interp.h: offsetof(PyInterpreterState, slice_cache / async_gen
 * / context), from pyenv's 3.10.13, 3.11.7, 3.12.1 and Debian's 3.11.2
 * headers; verified at install */
static const size_t slice_off[] = { [10] = 9792, [11] = 3624, [12] = 269824 };
static const size_t ag_off[] = { [10] = 12000, [11] = 5816, [12] = 272088 };
static const size_t ctx_off[] = { [10] = 13296, [11] = 7112, [12] = 273384 };

/* may a dying object be taken back off its freelist now? */
static int pulling(void)
{
	if (unlikely(!pp_shim.active)) {
		if (!pp_shim.injected)
			pp_freelist_undo();	/* as redirect() */
		return 0;
	}
	return !__atomic_load_n(&pp_shim.ring.stalled, __ATOMIC_RELAXED);
}

static void pull_wrap(struct fl_type *t, char *op, void (*pull)(char *))
{
	int on = pulling();

	in_wrap++;
	my_wrap++;
	t->orig(op);
	if (on)
		pull(op);
	my_wrap--;
	in_wrap--;
	maybe_idle();
}

static void frame_dealloc(void *op)
{
	struct fl_type *t = &types[FL_FRAME];
	char *co = *(char **)((char *)op + F_CODE);
	void **zombie = (void **)(co + CO_ZOMBIE), *z;
	int on = pulling();

	in_wrap++;
	my_wrap++;
	if (on) {
		fl.incref(co);
		if ((z = *zombie)) {
			*zombie = NULL;
			fl.gc_del(z);
		}
	}
	t->orig(op);
	if (on) {
		if (*zombie == op) {
			*zombie = NULL;
			fl.gc_del(op);
		}
		pp_shim.py.decref(co);
	}
	my_wrap--;
	in_wrap--;
	maybe_idle();
}

static void slice_pull(char *op)
{
	char **cache = (char **)(fl.interp + slice_off[fl.minor]);

	if (*cache == op) {
		*cache = NULL;
		fl.gc_del(op);
	}
}

static void slice_dealloc(void *op)
{
	pull_wrap(&types[FL_SLICE], op, slice_pull);
}

static void context_pull(char *op)
{
	char *st = fl.interp + ctx_off[fl.minor];
	char **head = (char **)st;
	int *numfree = (int *)(st + 8);

	if (*head == op && *numfree > 0) {
		*head = *(char **)(op + CTX_WEAKREFLIST);
		(*numfree)--;
		fl.gc_del(op);
	}
}

static void context_dealloc(void *op)
{
	pull_wrap(&types[FL_CONTEXT], op, context_pull);
}

/* an array freelist: list[0..*numfree) */
static void array_pull(char **list, int *numfree, char *op)
{
	int n = *numfree;

	if (n > 0 && n <= AG_MAXFREELIST && list[n - 1] == op) {
		*numfree = n - 1;
		fl.gc_del(op);
	}
}

static void asend_pull(char *op)
{
	char *st = fl.interp + ag_off[fl.minor];

	array_pull((char **)(st + AG_ASEND_LIST),
		   (int *)(st + AG_ASEND_NUMFREE), op);
}

static void agval_pull(char *op)
{
	char *st = fl.interp + ag_off[fl.minor];

	array_pull((char **)st, (int *)(st + AG_VALUE_NUMFREE), op);
}

static void asend_dealloc(void *op)
{
	pull_wrap(&types[FL_ASEND], op, asend_pull);
}

static void agval_dealloc(void *op)
{
	pull_wrap(&types[FL_AGVAL], op, agval_pull);
}

/* an array freelist whose count is in range and whose entries are dead
 * objects of the type: emptied (1), or not the layout we know (0) */
static int array_drain(char **list, int *numfree, const char *type)
{
	int i, n = *numfree;

	if (n < 0 || n > AG_MAXFREELIST)
		return 0;
	for (i = 0; i < n; i++)
		if (!list[i] || *(const char **)(list[i] + OB_TYPE) != type)
			return 0;
	for (i = 0; i < n; i++)
		fl.gc_del(list[i]);
	*numfree = 0;
	return 1;
}

/* wrap_type() without a copy: the types whose freelist we pull from */
static void wrap_pull(struct fl_type *t, const char *sym, destructor wrap)
{
	t->sym = sym;
	t->type = dlsym(RTLD_DEFAULT, sym);
	if (!t->type || !fl.gc_del ||
	    *(void **)(t->type + TP_FREE) != (void *)fl.gc_del)
		return;
	t->wrap = wrap;
	t->orig = *(destructor *)(t->type + TP_DEALLOC);
	t->free = *(destructor *)(t->type + TP_FREE);
	*(destructor *)(t->type + TP_DEALLOC) = wrap;
}

/* 3.9/3.10: a frame of our own goes to its code's zombie slot; then the
 * frame freelist is drained (made frames come off it until one is a
 * fresh allocation: they die through our wrapper, which frees them) */
static void frames_install(void)
{
	void *code, *globals, *f, *ts;
	int i;

	if (!fl.code_new || !fl.frame_new || !fl.tstate_get || !fl.gc_del)
		return;
	ts = fl.tstate_get();
	code = fl.code_new("<pyprof>", "<pyprof>", 1);
	globals = code ? fl.dict_new() : NULL;
	f = globals ? fl.frame_new(ts, code, globals, NULL) : NULL;
	if (f && *(void **)((char *)f + F_CODE) == code) {
		void **zombie = (void **)((char *)code + CO_ZOMBIE);

		pp_shim.py.decref(f);	/* to the empty zombie slot */
		if (*zombie == f) {
			*zombie = NULL;
			fl.gc_del(f);
			wrap_pull(&types[FL_FRAME], "PyFrame_Type",
				  frame_dealloc);
		}
		f = NULL;
	}
	if (f)
		pp_shim.py.decref(f);
	for (i = 0; types[FL_FRAME].wrap && i < 4096; i++) {
		int fresh;

		f = fl.frame_new(ts, code, globals, NULL);
		if (!f)
			break;
		fresh = (uintptr_t)f - GC_HEAD == pp_fl_last;
		pp_shim.py.decref(f);
		if (fresh)
			break;
	}
	if (globals)
		pp_shim.py.decref(globals);
	if (code)
		pp_shim.py.decref(code);
	pp_shim.py.err_clear();
}

/* 3.10-3.12: verify each state on an object of ours, then empty it */
static void pulls_install(void)
{
	char *st, *o;

	fl.interp = fl.interp_get ? fl.interp_get() : NULL;
	if (!fl.interp || !fl.gc_del)
		return;
	/* the slice cache: our slice lands in it */
	if (fl.slice_new && (o = fl.slice_new(NULL, NULL, NULL))) {
		char **cache = (char **)(fl.interp + slice_off[fl.minor]);

		pp_shim.py.decref(o);
		if (*cache == o) {
			*cache = NULL;
			fl.gc_del(o);
			wrap_pull(&types[FL_SLICE], "PySlice_Type",
				  slice_dealloc);
		}
	}
	/* contexts: ours on top, count in range, then pop them all */
	st = fl.interp + ctx_off[fl.minor];
	if (fl.context_new && (o = fl.context_new())) {
		char **head = (char **)st;
		int *numfree = (int *)(st + 8), n0 = *numfree;

		pp_shim.py.decref(o);
		if (*head == o && *numfree == n0 + 1 && n0 >= 0 &&
		    n0 < 256) {
			while (*numfree > 0 && (o = *head)) {
				*head = *(char **)(o + CTX_WEAKREFLIST);
				(*numfree)--;
				fl.gc_del(o);
			}
			if (*numfree == 0 && !*head)
				wrap_pull(&types[FL_CONTEXT], "PyContext_Type",
					  context_dealloc);
		}
	}
	pp_shim.py.err_clear();
	/* async generators: none of ours to make from C; the counts in
	 * range and every entry a dead object of the type */
	st = fl.interp + ag_off[fl.minor];
	{
		char *ty = dlsym(RTLD_DEFAULT, "_PyAsyncGenASend_Type");

		if (ty && array_drain((char **)(st + AG_ASEND_LIST),
				      (int *)(st + AG_ASEND_NUMFREE), ty))
			wrap_pull(&types[FL_ASEND], "_PyAsyncGenASend_Type",
				  asend_dealloc);
		ty = dlsym(RTLD_DEFAULT, "_PyAsyncGenWrappedValue_Type");
		if (ty && array_drain((char **)st, (int *)(st + AG_VALUE_NUMFREE),
				      ty))
			wrap_pull(&types[FL_AGVAL],
				  "_PyAsyncGenWrappedValue_Type", agval_dealloc);
	}
}

/* PyMethodDef (Include/methodobject.h), METH_FASTCALL */
struct py_method_def {
	const char *name;
	void *(*meth)(void *self, void *const *args, ssize_t nargs);
	int flags;
	const char *doc;
};

/* gc.callbacks entry: runs after each collection's clear_freelists */
static void *gc_hook(void *self, void *const *args, ssize_t nargs)
{
	(void)self, (void)args, (void)nargs;
	float_resaturate();
	fl.incref(fl.none);
	return fl.none;
}

static struct py_method_def gc_def = { "_pyprof_freelists", gc_hook, 0x0080,
				       NULL };

static void gc_hook_install(void)
{
	void *gc, *cbs = NULL, *fn = NULL;

	if (!fl.getattr || !fl.list_append || !fl.incref || !fl.none)
		return;
	if (pp_shim.injected && (!fl.list_size || !fl.list_item || !fl.del_item))
		return;		/* the detach could not take it out */
	gc = pp_shim.py.import_module("gc");
	if (gc)
		cbs = fl.getattr(gc, "callbacks");
	if (cbs)
		fn = pp_shim.py.cfunction_new(&gc_def, NULL, NULL);
	if (!fn || fl.list_append(cbs, fn) < 0)
		pp_shim.py.err_clear();
	else if (pp_shim.injected)
		fl.gc_fn = fn;		/* our reference: the detach removes it */
	if (fn && !fl.gc_fn)
		pp_shim.py.decref(fn);
	if (cbs)
		pp_shim.py.decref(cbs);
	if (gc)
		pp_shim.py.decref(gc);
	else
		pp_shim.py.err_clear();
}

/* Called from install(): main thread, GIL held, pp_in_hook set. */
void pp_freelist_install(void)
{
	ssize_t n;

	fl.minor = pp_shim.layout.minor;
#define SYM(field, name) *(void **)&fl.field = dlsym(RTLD_DEFAULT, name)
	SYM(list_new, "PyList_New");
	SYM(dict_new, "PyDict_New");
	SYM(tuple_new, "PyTuple_New");
	SYM(float_new, "PyFloat_FromDouble");
	SYM(interp_get, "PyInterpreterState_Get");
	SYM(obj_free, "PyObject_Free");
	SYM(getattr, "PyObject_GetAttrString");
	SYM(list_append, "PyList_Append");
	SYM(list_size, "PyList_Size");
	SYM(list_item, "PyList_GetItem");
	SYM(del_item, "PySequence_DelItem");
	SYM(incref, "Py_IncRef");
	SYM(gc_del, "PyObject_GC_Del");
	SYM(slice_new, "PySlice_New");
	SYM(context_new, "PyContext_New");
	SYM(code_new, "PyCode_NewEmpty");
	SYM(frame_new, "PyFrame_New");
	SYM(tstate_get, "PyThreadState_Get");
	SYM(none, "_Py_NoneStruct");
	SYM(set_tracer, "PyRefTracer_SetTracer");
	SYM(get_tracer, "PyRefTracer_GetTracer");
#undef SYM
	if (fl.minor >= 13) {
		if (!fl.set_tracer || !fl.get_tracer)
			return;
		fl.tracer_on = 1;
		pp_fl_recheck();
		return;
	}
	if (!fl.list_new || !fl.dict_new || !fl.tuple_new || !fl.float_new)
		return;
	wrap_type(&types[FL_LIST], "PyList_Type", list_dealloc,
		  "PyObject_GC_Del");
	wrap_type(&types[FL_DICT], "PyDict_Type", dict_dealloc,
		  "PyObject_GC_Del");
	wrap_type(&types[FL_TUPLE], "PyTuple_Type", tuple_dealloc,
		  "PyObject_GC_Del");
	if (fl.minor <= 10)
		wrap_type(&types[FL_FLOAT], "PyFloat_Type", float_dealloc,
			  "PyObject_Free");
	else
		float_saturate();
	if (fl.float_numfree)
		gc_hook_install();
	drain(make_list, 0, GC_HEAD);
	drain(make_dict, 0, GC_HEAD);
	for (n = 1; n <= 20; n++)
		drain(fl.tuple_new, n, GC_HEAD);
	if (fl.minor <= 10)
		drain(make_float, 0, 0);
	if (fl.minor <= 10)
		frames_install();
	if (fl.minor >= 10)
		pulls_install();
}

/* Put every original back (GIL held). Wrappers stay callable: a type
 * readied meanwhile may have inherited one as its tp_dealloc. */
void pp_freelist_undo(void)
{
	int i;

	if (fl.tracer_on) {
		void *data;

		fl.tracer_on = 0;
		if (fl.get_tracer(&data) == tracer)
			fl.set_tracer(fl.next, fl.next_data);
		fl.next = NULL;
	}
	for (i = 0; i < FL_NTYPES; i++) {
		struct fl_type *t = &types[i];
		destructor *slot;

		if (!t->type || !t->wrap)
			continue;
		slot = (destructor *)(t->type + TP_DEALLOC);
		if (*slot == t->wrap)
			*slot = t->orig;
	}
	if (fl.float_numfree && *fl.float_numfree == PY_FLOAT_MAXFREELIST) {
		/* a collection emptied it since, and the program filled it
		 * up to the bound: empty it, so the count is the list's */
		char **list = (char **)((char *)fl.float_numfree + 8), *o;

		while ((o = *list)) {
			*list = *(char **)(o + OB_TYPE);
			fl.obj_free(o);
		}
		*fl.float_numfree = fl.float_saved;
	}
	fl.float_numfree = NULL;
}

/* A static subtype readied while we were installed may have inherited a
 * wrapper as its tp_dealloc: the original, and so on down. */
static void fix_inherited(char *type, struct fl_type *t, int depth)
{
	void *subs = pp_shim.py.call_method(type, "__subclasses__", NULL);
	ssize_t i, n;

	if (!subs) {
		pp_shim.py.err_clear();
		return;
	}
	n = fl.list_size(subs);
	for (i = 0; i < n; i++) {
		char *sub = fl.list_item(subs, i);
		destructor *slot = (destructor *)(sub + TP_DEALLOC);

		/* a heap type's own is subtype_dealloc, which looks its
		 * base's up at each call; its subtypes are heap types */
		if (*(unsigned long *)(sub + TP_FLAGS) & TPF_HEAPTYPE)
			continue;
		if (*slot == t->wrap)
			*slot = t->orig;
		if (depth < 8)
			fix_inherited(sub, t, depth + 1);
	}
	pp_shim.py.decref(subs);
}

/* our gc.callbacks entry out, and freed: 0, or -1 if something else
 * still holds it (it points at our PyMethodDef) */
static int gc_hook_remove(void)
{
	void *gc, *cbs;
	ssize_t i, n;
	int rc = 0;

	if (!fl.gc_fn)
		return 0;
	gc = pp_shim.py.import_module("gc");
	cbs = gc ? fl.getattr(gc, "callbacks") : NULL;
	if (cbs) {
		n = fl.list_size(cbs);
		for (i = n - 1; i >= 0; i--)
			if (fl.list_item(cbs, i) == fl.gc_fn &&
			    fl.del_item(cbs, i) < 0)
				rc = -1;
		pp_shim.py.decref(cbs);
	}
	if (gc)
		pp_shim.py.decref(gc);
	if (!cbs) {
		pp_shim.py.err_clear();
		rc = -1;
	}
	if (rc < 0 || *(ssize_t *)fl.gc_fn != 1)	/* ob_refcnt */
		return -1;
	pp_shim.py.decref(fl.gc_fn);
	fl.gc_fn = NULL;
	return 0;
}

/* Attach mode's detach, GIL held: undo, and nothing of ours reachable
 * once pp_freelist_busy() is 0. -1: something stays (the shim must). */
int pp_freelist_detach(void)
{
	int i, rc;

	pp_freelist_undo();
	for (i = 0; i < FL_NTYPES; i++)
		if (types[i].type && types[i].wrap)
			fix_inherited(types[i].type, &types[i], 0);
	rc = gc_hook_remove();
	fl.detached = 1;
	return rc;
}

/* In a forked child, inside fork(): the other threads' deallocs, and
 * the objects they were freeing (unreachable: their thread states go
 * in PyOS_AfterFork_Child), are not here. */
void pp_freelist_atfork_child(void)
{
	in_wrap = my_wrap;
	on_copy = my_copy;
}

int pp_freelist_busy(void)
{
	return in_wrap || on_copy;
}

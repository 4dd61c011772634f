// SPDX-License-Identifier: MIT
/*
 * The Python side of threads and stalls, set up once from install()
 * (main thread, GIL held, our allocations not charged):
 *  - thread names, always: a THREAD record with threading.Thread.name
 *    for every Python thread alive now, and for every thread started
 *    later from threading.setprofile(): each new Thread calls
 *    sys.setprofile(hook) before run() (Lib/threading.py,
 *    _bootstrap_inner), and our hook names the thread on its first
 *    event and removes itself from that thread;
 *  - with fallback (no eBPF): a gc.callbacks entry timing each
 *    collection (Modules/gcmodule.c invoke_gc_callback, 3.13
 *    Python/gc.c), and the libc wrappers of stallwrap.c switched on
 *    for the GIL (gilwatch.c) and lock waits (lockwatch.c).
 * What stays visible to the program: threading.getprofile() and
 * gc.callbacks hold our built-ins, and threading is imported early.
 * Python is called only from here and from the two hooks, which the
 * interpreter calls with the GIL held; never from a libc wrapper.
 */
#include <dlfcn.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pp_pystate.h"
#include "shim.h"

__thread uint32_t pp_tid_cache;

uint32_t pp_tid_slow(void)
{
	pp_tid_cache = syscall(SYS_gettid);
	return pp_tid_cache;
}

/* PyMethodDef (Include/methodobject.h) with a METH_FASTCALL function */
struct py_method_def {
	const char *name;
	void *(*meth)(void *self, void *const *args, ssize_t nargs);
	int flags;
	const char *doc;
};
#define PY_METH_FASTCALL 0x0080

/* the C API beyond pp_shim.py */
static struct {
	void *(*getattr)(void *o, const char *name);
	void *(*call_noargs)(void *fn);
	int (*list_append)(void *list, void *item);
	ssize_t (*list_size)(void *list);
	void *(*list_item)(void *list, ssize_t i);		/* borrowed */
	void *(*dict_item)(void *dict, const char *key);	/* borrowed */
	long long (*as_longlong)(void *o);
	void (*set_profile)(void *fn, void *arg);
	void *(*err_occurred)(void);
	void *(*interp_main)(void);
	void (*incref)(void *o);
	void *none;
} api;

static void *threading;	/* the module, kept */
static uint64_t gc_start;

static int resolve_api(void)
{
#define SYM(field, name) api.field = dlsym(RTLD_DEFAULT, name)
	SYM(getattr, "PyObject_GetAttrString");
	SYM(call_noargs, "PyObject_CallNoArgs");
	SYM(list_append, "PyList_Append");
	SYM(list_size, "PyList_Size");
	SYM(list_item, "PyList_GetItem");
	SYM(dict_item, "PyDict_GetItemString");
	SYM(as_longlong, "PyLong_AsLongLong");
	SYM(set_profile, "PyEval_SetProfile");
	SYM(err_occurred, "PyErr_Occurred");
	SYM(interp_main, "PyInterpreterState_Main");
	SYM(incref, "Py_IncRef");
	SYM(none, "_Py_NoneStruct");
#undef SYM
	return api.getattr && api.call_noargs && api.list_append &&
	       api.list_size && api.list_item && api.dict_item &&
	       api.as_longlong && api.set_profile && api.err_occurred &&
	       api.interp_main && api.incref && api.none ? 0 : -1;
}

static void *none(void)
{
	api.incref(api.none);
	return api.none;
}

static void clear_error(void)
{
	if (api.err_occurred())
		pp_shim.py.err_clear();
}

/* ---- thread names ---- */

static void emit_name(uint32_t tid, void *name)
{
	char buf[256];
	size_t n = pp_py_str(&pp_shim.layout, name, buf, sizeof(buf));

	if (n)
		pp_emit_thread(tid, PP_THREAD_PYNAME, pp_now_ns(), buf, n);
}

/* thread.name of a threading.Thread whose OS tid is tid */
static void name_thread(void *thread, uint32_t tid)
{
	void *name = api.getattr(thread, "name");

	if (name) {
		emit_name(tid, name);
		pp_shim.py.decref(name);
	}
}

static void name_current(void)
{
	void *t = pp_shim.py.call_method(threading, "current_thread", NULL);

	if (t) {
		name_thread(t, pp_tid());
		pp_shim.py.decref(t);
	}
}

/* Threads already running (native_id: Lib/threading.py, 3.8+). */
static void name_all(void)
{
	void *list = pp_shim.py.call_method(threading, "enumerate", NULL);
	ssize_t i, n;

	if (!list)
		return;
	n = api.list_size(list);
	for (i = 0; i < n; i++) {
		void *t = api.list_item(list, i), *id;
		long long tid;

		id = t ? api.getattr(t, "native_id") : NULL;
		if (!id)
			continue;
		tid = id == api.none ? -1 : api.as_longlong(id);
		pp_shim.py.decref(id);
		if (tid > 0)
			name_thread(t, tid);
	}
	pp_shim.py.decref(list);
}

/* sys.setprofile() hook of a new thread: name it, then step aside. */
static void *profile_hook(void *self, void *const *args, ssize_t nargs)
{
	pp_in_hook++;
	if (pp_shim.active)
		name_current();
	api.set_profile(NULL, NULL);
	clear_error();
	pp_in_hook--;
	return none();
}

static struct py_method_def profile_def = {
	"_pyprof_thread_name", profile_hook, PY_METH_FASTCALL, NULL
};

static void *add_hook(void *mod, const char *attr, struct py_method_def *def)
{
	void *fn = pp_shim.py.cfunction_new(def, NULL, NULL), *res = NULL;

	if (!fn)
		return NULL;
	if (attr)
		res = pp_shim.py.call_method(mod, attr, "O", fn);
	if (res)
		pp_shim.py.decref(res);
	return fn;
}

static void names_install(void)
{
	void *fn;

	threading = pp_shim.py.import_module("threading");
	if (!threading)
		return;
	name_all();
	fn = add_hook(threading, "setprofile", &profile_def);
	if (fn)
		pp_shim.py.decref(fn);
}

/* ---- cycle GC (fallback) ---- */

static long long info_int(void *info, const char *key)
{
	void *v = api.dict_item(info, key);
	long long x = v ? api.as_longlong(v) : 0;

	return x < 0 ? 0 : x;
}

/* gc.callbacks entry: callback(phase, info) around each collection */
static void *gc_hook(void *self, void *const *args, ssize_t nargs)
{
	uint64_t now = pp_now_ns();
	struct pp_rec_gc *r;
	char phase[8];

	if (nargs != 2 || !pp_shim.active)
		return none();
	pp_py_str(&pp_shim.layout, args[0], phase, sizeof(phase));
	if (!strcmp(phase, "start")) {
		gc_start = now;
		return none();
	}
	if (strcmp(phase, "stop") || !gc_start)
		return none();
	pp_in_hook++;
	r = pp_emit_reserve(sizeof(*r));
	if (r) {
		long long gen = info_int(args[1], "generation");

		r->ts_start = gc_start;
		r->ts_end = now;
		r->collected = info_int(args[1], "collected");
		r->uncollectable = info_int(args[1], "uncollectable");
		pp_ring_commit(r, PP_REC_GC, (gen > 2 ? 0x7f : gen) | PP_SRC_SHIM,
			       pp_tid(), sizeof(*r));
	}
	clear_error();
	pp_in_hook--;
	gc_start = 0;
	return none();
}

static struct py_method_def gc_def = {
	"_pyprof_gc", gc_hook, PY_METH_FASTCALL, NULL
};

static void gc_install(void)
{
	void *gc = pp_shim.py.import_module("gc"), *cbs, *fn;

	if (!gc)
		return;
	cbs = api.getattr(gc, "callbacks");
	fn = add_hook(NULL, NULL, &gc_def);
	if (cbs && fn)
		api.list_append(cbs, fn);
	if (fn)
		pp_shim.py.decref(fn);
	if (cbs)
		pp_shim.py.decref(cbs);
	pp_shim.py.decref(gc);
}

/* ---- GIL and locks (fallback) ---- */

/*
 * Where struct _gil_runtime_state is (offsetof probes against each
 * version's Include/internal headers): _PyRuntime.ceval.gil in 3.9-3.11,
 * the interpreter's ceval.gil pointer from 3.12 (per-interpreter GIL),
 * whose place 3.13+ give in _Py_DebugOffsets (the layout). We hold it
 * now, so it must say locked by our thread state.
 */
static uintptr_t gil_address(void)
{
	const struct pp_pylayout *L = &pp_shim.layout;
	const struct pp_pystate *ps = pp_pystate_find(L->major, L->minor);
	const char *rt = pp_shim.py.runtime, *interp;
	uintptr_t gil;

	if (!ps)
		return 0;
	if (!ps->gil_in_interp) {
		gil = (uintptr_t)(rt + ps->gil_off);
	} else {
		interp = api.interp_main();
		if (!interp)
			return 0;
		gil = *(const uintptr_t *)(interp + (ps->gil_off ? ps->gil_off :
						     L->interp_gil_ptr));
	}
	/* last_holder +8, locked +16 */
	if (!gil || *(const int *)(gil + 16) != 1 ||
	    *(void *const *)(gil + 8) != pp_shim.py.this_tstate())
		return 0;
	return gil;
}

static const struct pp_stall_hooks fallback_hooks = {
	.cond_signal = pp_gilwatch_cond_signal,
	.cond_wait = pp_gilwatch_cond_wait,
	.sem_waited = pp_lockwatch_sem_waited,
};

static void gil_unknown_signal(const void *cond)
{
}

static void gil_unknown_wait(const void *cond, int timed)
{
}

/* a GIL we could not find: locks only */
static const struct pp_stall_hooks locks_only_hooks = {
	.cond_signal = gil_unknown_signal,
	.cond_wait = gil_unknown_wait,
	.sem_waited = pp_lockwatch_sem_waited,
};

void pp_pystalls_install(int fallback)
{
	uintptr_t gil;

	if (!pp_shim.active || !pp_shim.have_layout || resolve_api() < 0)
		return;
	if (fallback) {
		/* the GIL first: what follows may release it */
		gil = gil_address();
		if (gil && pp_gilwatch_start(gil) == 0)
			__atomic_store_n(&pp_stall_hooks, &fallback_hooks,
					 __ATOMIC_RELEASE);
		else
			__atomic_store_n(&pp_stall_hooks, &locks_only_hooks,
					 __ATOMIC_RELEASE);
		gc_install();
		clear_error();
	}
	names_install();
	clear_error();
}

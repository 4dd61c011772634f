/* SPDX-License-Identifier: MIT */
/*
 * Where CPython keeps the GIL and the cycle GC's state: the one copy of
 * these facts, read by the eBPF programs (ebpf/gil.h, ebpf/gc.h), the
 * shim (preload/gilwatch.c) and the collector (collector/pyproc.c).
 * The macros are BPF-safe; the per-version table is for C only.
 */
#ifndef PP_PYSTATE_H
#define PP_PYSTATE_H

/* struct _gil_runtime_state (Include/internal/pycore_gil.h; 3.14+
 * pycore_interp_structs.h), x86-64 glibc, identical in 3.9-3.15. */
#define PP_GIL_OFF_HOLDER	8
#define PP_GIL_OFF_LOCKED	16
#define PP_GIL_OFF_COND		32
#define PP_GIL_OFF_MUTEX	80
#define PP_GIL_OFF_SWITCH_COND	120
#define PP_GIL_OFF_SWITCH_MUTEX	168
/*
 * glibc pthread_cond_t: the two __g_signals futex words waiters block
 * on, +40/+44 in glibc 2.25-2.40 and +32/+36 since 2.41, which dropped
 * __g_refs (sysdeps/nptl/bits/thread-shared-types.h; Debian 13 has
 * 2.41). Both pairs are watched: in the old layout +32/+36 are
 * __g1_orig_size, whose low bits are the condvar's internal lock (a
 * short wait inside the GIL's own condvar), and __wrefs
 * (pthread_cond_destroy only); in the new one +40/+44 are unused.
 */
#define PP_COND_OFF_SIGNALS0		40
#define PP_COND_OFF_SIGNALS1		44
#define PP_COND_OFF_SIGNALS0_2_41	32
#define PP_COND_OFF_SIGNALS1_2_41	36

/* the GC's generations; struct gc_generation_stats (Include/internal/
 * pycore_gc.h) is three Py_ssize_t per generation */
#define PP_GC_NGEN		3

#ifndef __bpf__
#include <stdint.h>

/*
 * Per minor version, from each version's Include/internal headers:
 * where the GIL lives (pycore_runtime.h / pycore_ceval_state.h) and
 * offsetof(PyInterpreterState, gc) + offsetof(struct
 * _gc_runtime_state, generation_stats) (pycore_interp.h, pycore_gc.h).
 */
struct pp_pystate {
	int minor;
	uint32_t gil_off;	/* in _PyRuntime, or in the interpreter;
				 * 3.13+: 0, the layout's interp_gil_ptr */
	int gil_in_interp;	/* 3.12+ keep a pointer in interp->ceval.gil */
	uint32_t gc_stats_off;	/* in the interpreter; 3.13+: in its gc
				 * state (the layout's interp_gc), 0 none */
	const char *gc_fn;	/* the collection function to probe */
	int gc_has_ptrs;	/* it returns its counts through pointers */
};

/* The entry for Python major.minor, or NULL when unsupported. */
const struct pp_pystate *pp_pystate_find(int major, int minor);
#endif

#endif

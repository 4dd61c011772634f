/* SPDX-License-Identifier: MIT */
/*
 * A CPython process seen from outside: which ELF holds the interpreter,
 * where it is loaded, its version, the symbols and USDT probes the eBPF
 * side attaches to, and where its GIL and GC statistics live. Files are
 * read through /proc/PID/root, so a target in another mount namespace
 * (a container) works the same.
 */
#ifndef PP_PYPROC_H
#define PP_PYPROC_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pp_pylayout.h"

struct pp_pyproc {
	int pid;
	int major, minor, micro;
	char version[32];		/* "3.11.2" */

	/* the ELF holding _PyRuntime: the executable (static builds)
	 * or libpython3.X.so; path openable from here, via /proc/PID/root */
	char pyelf[PATH_MAX];
	uint64_t bias;			/* load bias: address = vaddr + bias */
	uint64_t runtime;		/* &_PyRuntime */
	uint64_t interp;		/* main interpreter state */
	uint64_t gil;			/* struct _gil_runtime_state * */
	uint64_t gc_stats;		/* interp->gc.generation_stats, 0 none */
	uint64_t code_type;		/* &PyCode_Type, 0 if not found */

	/* file offsets in pyelf for uprobes; 0 = not there */
	uint64_t off_take_gil, off_drop_gil;
	uint64_t off_gc;		/* collect / gc_collect_main */
	const char *gc_fn;		/* its name */
	int gc_has_ptrs;		/* takes Py_ssize_t *n_collected... */
	int usdt_gc;			/* python:gc__start/gc__done notes */

	/* glibc's default-version pthread_cond_* in the libc it maps */
	char libc[PATH_MAX];
	uint64_t off_cond_signal, off_cond_timedwait, off_cond_wait;

	struct pp_pylayout layout;
};

/* Fill p for process pid. Returns 0, or -1 with one line in err. */
int pp_pyproc_open(struct pp_pyproc *p, int pid, char *err, size_t errlen);

/* Read len bytes at addr of the target (process_vm_readv); 0 or -1. */
int pp_pyproc_read(const struct pp_pyproc *p, uint64_t addr, void *buf,
		   size_t len);

/* Offsets inside struct _gil_runtime_state of the GIL futex words, for
 * filtering: fills out[] and returns how many. */
int pp_pyproc_gil_words(const struct pp_pyproc *p, uint64_t *out, int max);

/* Runtime address of a default-version dynamic symbol of the
 * interpreter's ELF; 0 or -1. */
int pp_pyproc_sym(const struct pp_pyproc *p, const char *name, uint64_t *addr);

/* Runtime addresses (0: absent) of default-version dynamic symbols in
 * the first object pid maps whose file name starts with lib ("libc":
 * glibc's libc, any version); 0 if any was found, else -1. */
int pp_pyproc_lib_syms(int pid, const char *lib, const char **names,
		       uint64_t *addrs, int n);

#endif

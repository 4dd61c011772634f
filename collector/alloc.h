/* SPDX-License-Identifier: MIT */
/*
 * Memory for pyprof itself (collector, model, viewer, trace reader): one
 * out-of-memory policy. pyprof cannot carry on without its model, and a
 * half-built state would print wrong numbers, so running out of memory
 * says so and aborts (the terminal is restored on SIGABRT, the target
 * runs on). The shim never comes here: it drops what it cannot record.
 */
#ifndef PP_ALLOC_H
#define PP_ALLOC_H

#include <stddef.h>

void *pp_xmalloc(size_t n);
void *pp_xcalloc(size_t n, size_t elem);
void *pp_xrealloc(void *p, size_t n);
char *pp_xstrdup(const char *s);
char *pp_xstrndup(const char *s, size_t n);

/*
 * p with room for need elements of elem bytes (capacity doubling from
 * 16, new room zeroed).
 */
void *pp_grow(void *p, size_t *cap, size_t need, size_t elem);

#endif

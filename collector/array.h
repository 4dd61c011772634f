/* SPDX-License-Identifier: MIT */
/* Growable arrays for the collector and the viewer. */
#ifndef PP_ARRAY_H
#define PP_ARRAY_H

#include <stdlib.h>
#include <string.h>

/*
 * p with room for need elements of elem bytes (capacity doubling, new
 * room zeroed). The collector cannot carry on without its model, so
 * running out of memory aborts rather than returning half a state.
 */
static inline void *pp_grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;

	if (need <= *cap)
		return p;
	while (n < need)
		n *= 2;
	p = realloc(p, n * elem);
	if (!p)
		abort();
	memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
	*cap = n;
	return p;
}

#endif

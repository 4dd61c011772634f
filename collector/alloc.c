// SPDX-License-Identifier: MIT
/* The out-of-memory policy of alloc.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"

static void *must(void *p)
{
	static const char msg[] = "pyprof: out of memory\n";

	if (!p) {
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
			abort();
		abort();
	}
	return p;
}

void *pp_xmalloc(size_t n)
{
	return must(malloc(n ? n : 1));
}

void *pp_xcalloc(size_t n, size_t elem)
{
	return must(calloc(n ? n : 1, elem ? elem : 1));
}

void *pp_xrealloc(void *p, size_t n)
{
	return must(realloc(p, n ? n : 1));
}

char *pp_xstrdup(const char *s)
{
	return must(strdup(s));
}

char *pp_xstrndup(const char *s, size_t n)
{
	return must(strndup(s, n));
}

void *pp_grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;

	if (need <= *cap)
		return p;
	while (n < need)
		n *= 2;
	p = pp_xrealloc(p, n * elem);
	memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
	*cap = n;
	return p;
}

// SPDX-License-Identifier: MIT
/*
 * A C library that tests/workloads/attach_freelists.py loads with
 * ctypes after pyprof attached (tests/e2e/test_inject.py): its malloc
 * calls go through its own GOT, which only a shim that hooks objects
 * loaded after attach sees.
 */
#include <stdlib.h>
#include <string.h>

#define MAX_KEPT 65536

static void *kept[MAX_KEPT];
static int nkept;

int pp_keep(int n, int size)
{
	int i;

	for (i = 0; i < n && nkept < MAX_KEPT; i++) {
		kept[nkept] = malloc(size);
		if (!kept[nkept])
			break;
		memset(kept[nkept++], 1, size);
	}
	return i;
}

void pp_drop(void)
{
	while (nkept)
		free(kept[--nkept]);
}

// SPDX-License-Identifier: MIT
/* Where the GIL and the GC keep their state, per version (pp_pystate.h). */
#include <stddef.h>

#include "pp_pystate.h"

static const struct pp_pystate pystates[] = {
	{ 9, 352, 0, 616 + 128, "collect", 1 },
	{ 10, 352, 0, 616 + 128, "gc_collect_main", 1 },
	{ 11, 360, 0, 648 + 128, "gc_collect_main", 1 },
	{ 12, 384, 1, 112 + 128, "gc_collect_main", 1 },
	{ 13, 16, 1, 7400 + 128, "gc_collect_main", 0 },
};

const struct pp_pystate *pp_pystate_find(int major, int minor)
{
	size_t i;

	for (i = 0; i < sizeof(pystates) / sizeof(pystates[0]); i++)
		if (major == 3 && pystates[i].minor == minor)
			return &pystates[i];
	return NULL;
}

// SPDX-License-Identifier: MIT
/* Where the GIL and the GC keep their state, per version (pp_pystate.h). */
#include <stddef.h>

#include "pp_pylayout.h"
#include "pp_pystate.h"

/*
 * 3.13+ give the GIL pointer's and the gc state's places in
 * _Py_DebugOffsets (the layout: interp_gil_ptr, interp_gc); what they
 * do not give is generation_stats' place inside the gc state: 3.13
 * pycore_gc.h, 3.14 pycore_interp_structs.h (checked on Debian's
 * 3.14.10 against gc.get_stats()). 3.15 keeps no cumulative
 * per-generation counts there (0: none): the USDT arguments count.
 */
static const struct pp_pystate pystates[] = {
	{ 9, 352, 0, 616 + 128, "collect", 1 },
	{ 10, 352, 0, 616 + 128, "gc_collect_main", 1 },
	{ 11, 360, 0, 648 + 128, "gc_collect_main", 1 },
	{ 12, 384, 1, 112 + 128, "gc_collect_main", 1 },
	{ 13, 0, 1, 128, "gc_collect_main", 0 },
	/* incremental GC: gc_collect_main (the automatic _Py_RunGC and
	 * gc.collect()'s _PyGC_Collect both) runs gc_collect_young,
	 * gc_collect_increment or gc_collect_full (Python/gc.c). Not
	 * tried: the builds here (Debian's) have USDT and no symbols. */
	{ 14, 0, 1, 120, "gc_collect_main", 0 },
	{ 15, 0, 1, 0, "gc_collect_main", 0 },
};
_Static_assert(sizeof(pystates) / sizeof(pystates[0]) ==
	       PP_PY_MINOR_MAX - PP_PY_MINOR_MIN + 1, "a row per version");

const struct pp_pystate *pp_pystate_find(int major, int minor)
{
	size_t i;

	for (i = 0; i < sizeof(pystates) / sizeof(pystates[0]); i++)
		if (major == 3 && pystates[i].minor == minor)
			return &pystates[i];
	return NULL;
}

/* SPDX-License-Identifier: MIT */
/* gc.bpf.c <-> collector/bpf.c: one cycle-GC collection per event. */
#ifndef PP_EBPF_GC_H
#define PP_EBPF_GC_H

#include "pp_pystate.h"	/* common/: the GC's layout */

#define GC_NGEN PP_GC_NGEN

/* struct gc_generation_stats (Include/internal/pycore_gc.h) */
struct gc_gen_stats {
	__s64 collections;
	__s64 collected;
	__s64 uncollectable;
};

#define GC_EV_STATS	0x1	/* counts from generation_stats deltas */
#define GC_EV_PTRS	0x2	/* counts from the collector's out-params */

struct gc_event {
	__u32 tid;
	__s32 generation;	/* -1 unknown */
	__u64 ts_start;
	__u64 ts_end;
	__s64 collected;
	__s64 uncollectable;
	__u32 flags;		/* GC_EV_* */
	__u32 pad;
};

#endif

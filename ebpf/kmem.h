/* SPDX-License-Identifier: MIT */
/* kmem.bpf.c <-> collector/bpf.c: address-space changes by the target. */
#ifndef PP_EBPF_KMEM_H
#define PP_EBPF_KMEM_H

#include "pystack.h"

enum kmem_op { KMEM_MMAP = 1, KMEM_MUNMAP = 2, KMEM_BRK = 3,
	       KMEM_FAULT = 4,		/* first write to an anonymous page:
					 * addr the page, size the bytes it
					 * stands for (sampled: a multiple) */
	       KMEM_DISCARD = 5 };	/* madvise DONTNEED/FREE/REMOVE */

struct kmem_event {
	__u32 op;		/* enum kmem_op (== enum pp_kmem_op) */
	__u32 tid;
	__u64 ts;
	__u64 addr;		/* BRK: the old break */
	__u64 size;		/* BRK: new - old break, two's complement */
	__u64 flags;		/* MMAP: mmap flags (MAP_ANONYMOUS...) */
	__u32 nframes;		/* MMAP, BRK up, with with_stack: the caller's */
	__u32 prot;		/* MMAP: PROT_*. Then the Python stack,
				 * innermost first */
	struct py_rawframe frames[PY_MAX_FRAMES];
};
/* what is sent: the head, then the frames read (nframes) */
#define KMEM_EVENT_HEAD 48

#endif

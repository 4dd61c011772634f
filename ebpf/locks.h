/* SPDX-License-Identifier: MIT */
/* locks.bpf.c <-> collector/bpf.c: blocked futex waits of the target
 * outside the GIL, with the waiting thread's Python stack. */
#ifndef PP_EBPF_LOCKS_H
#define PP_EBPF_LOCKS_H

#include "pystack.h"

#define LOCK_MAX_EXCLUDE 12

struct lock_event {
	__u32 tid;
	__u32 nframes;
	__u64 uaddr;		/* futex word */
	__u64 ts_start;
	__u64 ts_end;
	__s64 ret;		/* 0: not known at the switch back in */
	struct py_rawframe frames[PY_MAX_FRAMES];
};
/* sent: the head and the frames walked */
#define LOCK_EVENT_HEAD 40

#endif

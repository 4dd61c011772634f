/* SPDX-License-Identifier: MIT */
/* gil.bpf.c <-> collector/bpf.c: GIL intervals and thread lifetimes. */
#ifndef PP_EBPF_GIL_H
#define PP_EBPF_GIL_H

#include "pp_pystate.h"	/* common/: the GIL's layout */

#define GIL_OFF_LOCKED		PP_GIL_OFF_LOCKED
#define GIL_OFF_COND		PP_GIL_OFF_COND
#define GIL_OFF_MUTEX		PP_GIL_OFF_MUTEX
#define GIL_OFF_SWITCH_COND	PP_GIL_OFF_SWITCH_COND
#define GIL_OFF_SWITCH_MUTEX	PP_GIL_OFF_SWITCH_MUTEX
#define COND_OFF_SIGNALS0	PP_COND_OFF_SIGNALS0
#define COND_OFF_SIGNALS1	PP_COND_OFF_SIGNALS1
#define COND_OFF_SIGNALS0_2_41	PP_COND_OFF_SIGNALS0_2_41
#define COND_OFF_SIGNALS1_2_41	PP_COND_OFF_SIGNALS1_2_41

enum gil_ev_kind {
	GIL_EV_CYCLE = 1,	/* wait (optional) + hold, emitted at release */
	GIL_EV_WAIT = 2,	/* futex mode: one blocked futex wait on the GIL */
	GIL_EV_THREAD_NEW = 3,	/* a thread of the target was created */
	GIL_EV_THREAD_EXIT = 4,	/* a thread of the target exited */
	GIL_EV_THREAD_NAME = 5,	/* a thread of the target renamed itself */
};

struct gil_event {
	__u32 kind;		/* enum gil_ev_kind */
	__u32 tid;
	__u64 wait_start;	/* 0: took the GIL without waiting */
	__u64 acquired;		/* 0: was held when we attached */
	__u64 released;		/* CYCLE: release; WAIT: end of the wait */
};

/* THREAD_NEW and THREAD_NAME: the event, then the thread's name (its
 * comm: at creation its creator's, copied; then each rename's), so that
 * the collector reads no /proc file per thread */
struct gil_thread_event {
	struct gil_event e;
	char comm[16];		/* TASK_COMM_LEN */
};

/* a thread's state, the threads map's value (read back at detach) */
struct gil_thread {
	__u64 wait_start;	/* 0: not waiting */
	__u64 acquired;		/* 0: not holding (or not seen taking it) */
	__u64 released;		/* the last release, until the next wait */
	__u64 enter;		/* take_gil entered with the GIL free */
	__u64 nvcsw;		/* the thread's voluntary switches then */
	__u64 futex_start;
	__u64 futex_uaddr;
	__u64 switch_wait;	/* in or after drop_gil's switch_cond wait */
	__u64 switch_end;	/* another thread's acquisition that ended it */
};

#endif

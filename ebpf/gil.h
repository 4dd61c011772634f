/* SPDX-License-Identifier: MIT */
/* gil.bpf.c <-> collector/bpf.c: GIL intervals and thread lifetimes. */
#ifndef PP_EBPF_GIL_H
#define PP_EBPF_GIL_H

/* struct _gil_runtime_state (Include/internal/pycore_gil.h), x86-64
 * glibc, identical in 3.9-3.15. */
#define GIL_OFF_LOCKED		16
#define GIL_OFF_COND		32
#define GIL_OFF_MUTEX		80
#define GIL_OFF_SWITCH_COND	120
#define GIL_OFF_SWITCH_MUTEX	168
/* glibc pthread_cond_t: the two __g_signals futex words */
#define COND_OFF_SIGNALS0	40
#define COND_OFF_SIGNALS1	44

enum gil_ev_kind {
	GIL_EV_CYCLE = 1,	/* wait (optional) + hold, emitted at release */
	GIL_EV_WAIT = 2,	/* futex mode: one blocked futex wait on the GIL */
	GIL_EV_THREAD_NEW = 3,	/* a thread of the target was created */
	GIL_EV_THREAD_EXIT = 4,	/* a thread of the target exited */
};

struct gil_event {
	__u32 kind;		/* enum gil_ev_kind */
	__u32 tid;
	__u64 wait_start;	/* 0: took the GIL without waiting */
	__u64 acquired;		/* 0: was held when we attached */
	__u64 released;		/* CYCLE: release; WAIT: end of the wait */
};

#endif

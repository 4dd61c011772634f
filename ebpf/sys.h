/* SPDX-License-Identifier: MIT */
/*
 * One raw sys_enter and one sys_exit program (ebpf/sys.bpf.c) for the
 * kernel heap view (kmem), and one sched_switch program for the futex
 * waits (the GIL's futex mode, locks; ebpf/offcpu.bpf.h): they run on
 * every syscall or switch of every process of the machine, so they
 * reject first and hand the rest to the users' programs by tail call
 * through this prog array, whose slots the collector fills
 * (collector/bpf.c).
 */
#ifndef PP_SYS_H
#define PP_SYS_H

enum {
	SYS_GIL_SWITCH,		/* gil.bpf.c, then chains to SYS_LOCK_SWITCH */
	SYS_LOCK_SWITCH,	/* locks.bpf.c */
	SYS_KMEM_IN,		/* kmem.bpf.c: mmap, munmap, brk, madvise */
	SYS_KMEM_OUT,
	SYS_NSLOTS
};

/* x86-64 syscall numbers */
#define SYS_NR_mmap 9
#define SYS_NR_munmap 11
#define SYS_NR_brk 12
#define SYS_NR_madvise 28
#define SYS_NR_futex 202

#endif

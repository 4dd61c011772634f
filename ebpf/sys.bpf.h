/* SPDX-License-Identifier: MIT */
/* The prog array of ebpf/sys.h: one map, shared by every object that
 * declares it (the collector reuses sys.bpf.c's before loading them). */
#ifndef PP_SYS_BPF_H
#define PP_SYS_BPF_H

#include "sys.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, SYS_NSLOTS);
	__type(key, __u32);
	__type(value, __u32);
} sys_progs SEC(".maps");

/* What sys_switch found, for the programs it tail-calls on this CPU in
 * the same run: the futex word the target's thread switched out blocks
 * on (0: none), and the target's thread switched in from a futex wait
 * (0: none). Found once, not again in each program. Shared like
 * sys_progs. */
struct sys_switch_ctx {
	__u64 uaddr;
	__u32 next_tid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sys_switch_ctx);
} sys_switched SEC(".maps");

static __always_inline struct sys_switch_ctx *pp_switched(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sys_switched, &zero);
}

#endif

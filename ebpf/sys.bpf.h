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

#endif

/* SPDX-License-Identifier: MIT */
/* tree.bpf.c <-> collector/children.c: a process tree's forks and execs. */
#ifndef PP_EBPF_TREE_H
#define PP_EBPF_TREE_H

enum tree_op { TREE_FORK = 1, TREE_EXEC = 2, TREE_EXIT = 3 };

struct tree_event {
	__u32 op;		/* enum tree_op */
	__u32 pid;		/* the process (tgid) */
	__u32 ppid;		/* FORK: its parent's tgid */
	__u32 pad;
	__u64 ts;
};

#endif

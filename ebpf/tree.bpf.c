// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * --children: follow a process tree. Every new process (not thread)
 * forked by a process of the tree joins it in the kernel, at the fork,
 * so a worker forked while pyprof is busy is never missed; the
 * collector is told of forks, execs (its probes must be set again on
 * the new image) and ends.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tree.h"

__u64 lost;	/* events the ring had no room for */

/* tgids of the tree; the collector puts the root (and what it finds
 * already running) in */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u32);
} tree SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} tree_events SEC(".maps");

static void send(__u32 op, __u32 pid, __u32 ppid)
{
	struct tree_event e = { .op = op, .pid = pid, .ppid = ppid,
				.ts = bpf_ktime_get_ns() };

	if (bpf_ringbuf_output(&tree_events, &e, sizeof(e), 0))
		__sync_fetch_and_add(&lost, 1);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tree_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, pid = child->pid, one = 1;

	/* a thread shares its parent's tgid: not a process */
	if (child->tgid != pid || !bpf_map_lookup_elem(&tree, &ptgid))
		return 0;
	bpf_map_update_elem(&tree, &pid, &one, BPF_ANY);
	send(TREE_FORK, pid, ptgid);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tree_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid;

	if (bpf_map_lookup_elem(&tree, &tgid))
		send(TREE_EXEC, tgid, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tree_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	/* the process ends with its leader (a thread's exit is not it) */
	if (p->pid != tgid || !bpf_map_lookup_elem(&tree, &tgid))
		return 0;
	bpf_map_delete_elem(&tree, &tgid);
	send(TREE_EXIT, tgid, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The syscall and scheduler hooks of one target (ebpf/sys.h). Raw
 * tracepoints need no tracefs (not mounted on every host, and
 * per-syscall tracepoints are found through it) and no kernel BTF; but
 * any sys_enter program puts every task of the machine on the kernel's
 * slow syscall path and runs on each syscall, so there is one per target
 * instead of one per user, attached only for kmem, and it rejects in
 * the cheapest order: the syscall number (an argument), then the tgid
 * (a helper call). sys_exit has no number: the tgid first, then the
 * saved orig_ax. Futex waits are seen at sched_switch (offcpu.bpf.h):
 * a switch of the target's thread out, or into one of its threads.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sys.bpf.h"
#include "offcpu.bpf.h"

const volatile __u32 targ_tgid;
const volatile __u32 want_mem;		/* kmem: mmap, munmap, brk */
const volatile __u32 want_madvise;	/* kmem with first-touch faults */

static __always_inline int ours(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

static __always_inline int mem_nr(long nr)
{
	return want_mem && (nr == SYS_NR_mmap || nr == SYS_NR_munmap ||
			    nr == SYS_NR_brk ||
			    (nr == SYS_NR_madvise && want_madvise));
}

/* an empty slot (that user not attached) falls through */
SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long nr)
{
	if (mem_nr(nr) && ours())
		bpf_tail_call(ctx, &sys_progs, SYS_KMEM_IN);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	if (ours() && mem_nr(BPF_CORE_READ(regs, orig_ax)))
		bpf_tail_call(ctx, &sys_progs, SYS_KMEM_OUT);
	return 0;
}

/* the target's threads blocked in a futex wait (offcpu.bpf.h): most
 * of its switches are not (a thread sleeping in recv, poll, accept...),
 * and those reach no user's program */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} futex_blocked SEC(".maps");

/* prev is the current task */
SEC("raw_tp/sched_switch")
int BPF_PROG(sys_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	__u64 uaddr = 0;
	__u32 tid, next_tid = 0;
	__u8 one = 1;
	struct sys_switch_ctx *sw;

	if (!preempt && prev_state && ours())
		uaddr = pp_futex_blocked(preempt, prev_state);
	if (uaddr) {
		tid = (__u32)bpf_get_current_pid_tgid();
		bpf_map_update_elem(&futex_blocked, &tid, &one, BPF_ANY);
	}
	if (BPF_CORE_READ(next, tgid) == targ_tgid) {
		tid = BPF_CORE_READ(next, pid);
		if (!bpf_map_delete_elem(&futex_blocked, &tid))
			next_tid = tid;
	}
	if (!uaddr && !next_tid)
		return 0;
	sw = pp_switched();
	if (!sw)
		return 0;
	sw->uaddr = uaddr;
	sw->next_tid = next_tid;
	bpf_tail_call(ctx, &sys_progs, SYS_GIL_SWITCH);
	bpf_tail_call(ctx, &sys_progs, SYS_LOCK_SWITCH);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

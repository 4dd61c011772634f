/* SPDX-License-Identifier: MIT */
/*
 * Futex waits seen at the scheduler instead of at the syscall: the
 * target's threads block on the GIL and on locks by futex(2), and a
 * wait that blocks is a voluntary switch out of the thread, sitting in
 * that syscall, then a switch back in. sched_switch fires on switches
 * only (most futex calls of a busy service do not block), and unlike a
 * raw sys_enter/sys_exit program it does not put every task of the
 * machine on the kernel's slow syscall path. The wait is the time off
 * CPU (what the scheduler counts: its run queue delay once woken
 * included, the syscall's own few hundred ns around it not).
 */
#ifndef PP_OFFCPU_BPF_H
#define PP_OFFCPU_BPF_H

#include "sys.h"

/*
 * At sched_switch the switched-out task is the current one. It blocks
 * (not preempted, not runnable) inside futex(2) waiting: the futex word,
 * from the user registers saved at its syscall entry; else 0. The
 * return to user space also calls schedule() with those registers in
 * place, but runnable (prev_state 0): not a wait.
 */
static __always_inline __u64 pp_futex_blocked(int preempt,
					      unsigned int prev_state)
{
	struct pt_regs *r;
	int op;

	if (preempt || !prev_state)
		return 0;
	r = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (!r || BPF_CORE_READ(r, orig_ax) != SYS_NR_futex)
		return 0;
	op = BPF_CORE_READ(r, si) & 127;
	/* FUTEX_WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2 */
	if (op != 0 && op != 6 && op != 9 && op != 11 && op != 13)
		return 0;
	return BPF_CORE_READ(r, di);
}

#endif

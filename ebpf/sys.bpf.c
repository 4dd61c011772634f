// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The syscall hooks of one target (ebpf/sys.h). Raw tracepoints need no
 * tracefs (not mounted on every host, and per-syscall tracepoints are
 * found through it) and no kernel BTF; but any sys_enter program puts
 * every task of the machine on the kernel's slow syscall path and runs
 * on each syscall, so there is one per target instead of one per user,
 * and it rejects in the cheapest order: the syscall number (an
 * argument), then the tgid (a helper call). sys_exit has no number: the
 * tgid first, then the saved orig_ax.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sys.bpf.h"

const volatile __u32 targ_tgid;
const volatile __u32 want_futex;	/* GIL futex mode or locks */
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
static __always_inline void dispatch(void *ctx, long nr, __u32 gil,
				     __u32 lock, __u32 mem)
{
	if (nr == SYS_NR_futex) {
		bpf_tail_call(ctx, &sys_progs, gil);
		bpf_tail_call(ctx, &sys_progs, lock);
	} else {
		bpf_tail_call(ctx, &sys_progs, mem);
	}
}

SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long nr)
{
	if (!(want_futex && nr == SYS_NR_futex) && !mem_nr(nr))
		return 0;
	if (ours())
		dispatch(ctx, nr, SYS_GIL_FUTEX_IN, SYS_LOCK_FUTEX_IN,
			 SYS_KMEM_IN);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	long nr;

	if (!ours())
		return 0;
	nr = BPF_CORE_READ(regs, orig_ax);
	if ((want_futex && nr == SYS_NR_futex) || mem_nr(nr))
		dispatch(ctx, nr, SYS_GIL_FUTEX_OUT, SYS_LOCK_FUTEX_OUT,
			 SYS_KMEM_OUT);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

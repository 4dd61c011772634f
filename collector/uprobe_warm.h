/* SPDX-License-Identifier: MIT */
/*
 * The kernel makes the first uprobe registration after a quiet spell
 * wait for an RCU grace period (uprobes take dup_mmap_sem, a per-CPU
 * rwsem, for writing: rcu_sync_enter), 10-40 ms here; while
 * registrations keep coming, the next ones pass at once. Wrap mode
 * registers its uprobes once the interpreter is ready, with the program
 * held: a helper process started with the session pays that wait while
 * the interpreter starts, then keeps the way open by registering a
 * probe nothing hits every few ms, until stopped.
 *
 *	int w = pp_uprobe_warm_start();
 *	... pp_bpf_attach(...) ...
 *	pp_uprobe_warm_stop(w);
 */
#ifndef PP_UPROBE_WARM_H
#define PP_UPROBE_WARM_H

/* A handle for pp_uprobe_warm_stop, or -1 (no helper: nothing to stop). */
int pp_uprobe_warm_start(void);
void pp_uprobe_warm_stop(int w);

#endif

// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Contended waits of one CPython process: every futex wait that blocks
 * (futex(2) entry/exit, through sys.bpf.c) outside the GIL's own futex
 * words, with the Python stack of the waiting thread. A threading.Lock/
 * RLock blocks in sem_clockwait/sem_wait on the lock's semaphore
 * (3.9-3.12, Python/thread_pthread.h) or parks on the thread's semaphore
 * (3.13 PyMutex, Python/parking_lot.c); both are futex waits, both with
 * the GIL released, so only contended acquisitions reach here.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "locks.h"
#include "ringwake.bpf.h"
#include "pystack.bpf.h"
#include "sys.bpf.h"

__u64 lost;	/* events the ring had no room for */
const volatile __u64 exclude[LOCK_MAX_EXCLUDE];	/* GIL futex words */
const volatile __u64 min_wait_ns;

/* a thread in futex(2): the word and when. The stack is read at the
 * exit, of waits that blocked only: the thread's Python frames cannot
 * change while it is in the syscall, and most futex calls of a busy
 * service do not block (the word changed before it slept) */
struct lock_wait {
	__u64 uaddr;
	__u64 ts_start;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct lock_wait);
} waiting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lock_event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} lock_events SEC(".maps");

/* Called from sys.bpf.c (tail calls, ebpf/sys.h) on a futex(2) of the
 * target only. */
SEC("raw_tp")
int BPF_PROG(lock_futex_enter, struct pt_regs *regs, long nr)
{
	__u64 id = bpf_get_current_pid_tgid(), uaddr;
	__u32 tid = (__u32)id;
	struct lock_wait w;
	int op, i;

	uaddr = BPF_CORE_READ(regs, di);
	op = BPF_CORE_READ(regs, si) & 127;
	/* FUTEX_WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2 */
	if (op != 0 && op != 6 && op != 9 && op != 11 && op != 13)
		return 0;
	for (i = 0; i < LOCK_MAX_EXCLUDE; i++)
		if (exclude[i] && exclude[i] == uaddr)
			return 0;
	w.uaddr = uaddr;
	w.ts_start = bpf_ktime_get_ns();
	bpf_map_update_elem(&waiting, &tid, &w, BPF_ANY);
	return 0;
}

SEC("raw_tp")
int BPF_PROG(lock_futex_exit, struct pt_regs *regs, long ret)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
	__u32 tid = (__u32)id, zero = 0;
	struct lock_event *e;
	struct lock_wait *w;

	w = bpf_map_lookup_elem(&waiting, &tid);
	if (!w)
		return 0;
	/* -EAGAIN: the word changed before we slept, no wait happened */
	if (ret != -11 && now - w->ts_start >= min_wait_ns) {
		e = bpf_map_lookup_elem(&scratch, &zero);
		if (!e)
			goto out;
		e->tid = tid;
		e->uaddr = w->uaddr;
		e->ts_start = w->ts_start;
		e->ts_end = now;
		e->ret = ret;
		e->nframes = py_stack(e->frames);
		/* the frames walked only (see kmem.bpf.c's event_size) */
		if (bpf_ringbuf_output(&lock_events, e, LOCK_EVENT_HEAD +
				       (e->nframes > PY_MAX_FRAMES ?
					PY_MAX_FRAMES : e->nframes) *
				       sizeof(struct py_rawframe),
				       pp_rb_wake(&lock_events)))
			__sync_fetch_and_add(&lost, 1);
	}
out:
	bpf_map_delete_elem(&waiting, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

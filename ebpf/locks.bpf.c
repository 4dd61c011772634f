// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Contended waits of one CPython process: every futex wait that blocks
 * (a switch out of the thread in futex(2) and back in, through
 * sys.bpf.c's sched_switch: offcpu.bpf.h) outside the GIL's own futex
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

const volatile __u32 targ_tgid;
__u64 lost;	/* events the ring had no room for */
const volatile __u64 exclude[LOCK_MAX_EXCLUDE];	/* GIL futex words */
const volatile __u64 min_wait_ns;

/* a thread blocked in futex(2): the event but its end, the stack read
 * as it blocks (its Python frames cannot change while it is in the
 * syscall, and it is the current task then, whose memory BPF reads) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct lock_event);
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

static void blocks(__u64 uaddr, __u64 now)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	struct lock_event *e;
	int i;

	for (i = 0; i < LOCK_MAX_EXCLUDE; i++)
		if (exclude[i] && exclude[i] == uaddr)
			return;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return;
	e->tid = tid;
	e->uaddr = uaddr;
	e->ts_start = now;
	e->ts_end = 0;
	e->ret = 0;
	e->nframes = py_stack(e->frames);
	bpf_map_update_elem(&waiting, &tid, e, BPF_ANY);
}

static void resumes(__u32 tid, __u64 now)
{
	struct lock_event *e;

	e = bpf_map_lookup_elem(&waiting, &tid);
	if (!e)
		return;
	if (now - e->ts_start >= min_wait_ns) {
		e->ts_end = now;
		/* the frames walked only (kmem.bpf.c's send) */
		if (bpf_ringbuf_output(&lock_events, e, LOCK_EVENT_HEAD +
				       (e->nframes > PY_MAX_FRAMES ?
					PY_MAX_FRAMES : e->nframes) *
				       sizeof(struct py_rawframe),
				       pp_rb_wake(&lock_events)))
			__sync_fetch_and_add(&lost, 1);
	}
	bpf_map_delete_elem(&waiting, &tid);
}

/* Called from sys.bpf.c's sched_switch (tail calls, ebpf/sys.h) when
 * the target's thread switches out or one of its threads in. */
SEC("raw_tp")
int BPF_PROG(lock_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	struct sys_switch_ctx *sw = pp_switched();
	__u64 now = bpf_ktime_get_ns();

	if (!sw)
		return 0;
	if (sw->uaddr)		/* the current thread, the target's */
		blocks(sw->uaddr, now);
	if (sw->next_tid)
		resumes(sw->next_tid, now);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

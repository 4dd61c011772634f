// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * GIL waits and holds of one CPython process, three ways:
 *  - take_gil/drop_gil uprobes (builds with symbols): exact;
 *  - glibc pthread_cond_* uprobes filtered on the GIL's own condition
 *    variables (stripped/LTO builds): take_gil signals switch_cond once
 *    per acquisition, drop_gil signals cond once per release, and a
 *    waiter sits in pthread_cond_timedwait(&gil->cond) (Python/
 *    ceval_gil.c);
 *  - futex waits on the GIL's futex words, seen at sched_switch
 *    (sys.bpf.c, offcpu.bpf.h): blocked time only.
 * Thread creation/exit of the target bound each thread's lifetime.
 *
 * Per thread, a wait and the hold that follows are closed together when
 * the thread releases the GIL; a thread that exits closes what it has
 * open, so each thread's intervals stay disjoint and inside its life.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "gil.h"
#include "ringwake.bpf.h"
#include "sys.bpf.h"

const volatile __u32 targ_tgid;
__u64 lost;	/* events the ring had no room for */
const volatile __u64 gil_addr;
const volatile __u32 gil_precise;	/* take_gil/drop_gil probes attached */
/* 1 once an acquisition or a release was seen: from then on every
 * holder was seen taking the GIL */
__u32 gil_synced;
__u64 unmatched;	/* release signals of a thread not holding the GIL */
__u32 switch_tid;	/* the thread last seen waiting on switch_cond */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct gil_thread);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} gil_events SEC(".maps");

static struct gil_thread *thread_get(__u32 tid)
{
	struct gil_thread *t, zero = {};

	t = bpf_map_lookup_elem(&threads, &tid);
	if (t)
		return t;
	bpf_map_update_elem(&threads, &tid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&threads, &tid);
}

static int ours(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

static void emit(__u32 kind, __u32 tid, __u64 ws, __u64 acq, __u64 rel)
{
	struct gil_event *e;

	e = bpf_ringbuf_reserve(&gil_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return;
	}
	e->kind = kind;
	e->tid = tid;
	e->wait_start = ws;
	e->acquired = acq;
	e->released = rel;
	bpf_ringbuf_submit(e, pp_rb_wake(&gil_events));
}

/*
 * A thread seen taking the GIL (or starting to wait for it) while it
 * holds it: its release was not seen. Its hold cannot be closed at a
 * true time, so it is dropped rather than stretched over time another
 * thread may have held the GIL.
 */
static void missed_release(struct gil_thread *t)
{
	if (!t->acquired)
		return;
	__sync_fetch_and_add(&unmatched, 1);
	t->acquired = 0;
	t->wait_start = 0;
}

static void begin_wait(struct gil_thread *t, __u64 since)
{
	missed_release(t);
	if (!t->wait_start)
		t->wait_start = since ?: bpf_ktime_get_ns();
}

/*
 * drop_gil's switch_cond wait (cond_wait below) ends when another thread
 * takes the GIL. After a forced drop the thread goes straight back to
 * take_gil; after a voluntary one (PyEval_SaveThread with a drop request
 * pending) it goes on to its I/O or sleep, which is no GIL wait. With
 * take_gil's entry seen (precise), the switch wait is closed where it
 * ended and take_gil counts its own wait from its entry. The condvar
 * method sees no entry (a wait may start blocked on the GIL's mutex,
 * before the first cond wait): there the wait runs on from the release
 * to the next acquisition (README, What the numbers mean).
 */
static void switch_ended(__u32 tid, __u64 now)
{
	__u32 w = switch_tid;
	struct gil_thread *o;

	if (!w || w == tid)
		return;
	o = bpf_map_lookup_elem(&threads, &w);
	if (o && o->switch_wait && !o->switch_end)
		o->switch_end = now;
	switch_tid = 0;
}

static void close_switch_wait(struct gil_thread *t, __u32 tid, __u64 now)
{
	/* the acquirer's probe may run on another CPU after ours took now:
	 * its time is then later than ours, and ours is the end */
	__u64 end = t->switch_end && t->switch_end < now ? t->switch_end : now;

	if (!t->switch_wait)
		return;
	if (t->wait_start && !t->acquired && end > t->wait_start) {
		emit(GIL_EV_WAIT, tid, t->wait_start, 0, end);
		t->wait_start = 0;
	}
	t->switch_wait = 0;
	t->switch_end = 0;
	if (switch_tid == tid)
		switch_tid = 0;
}

static void on_acquired(__u64 now)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct gil_thread *t = thread_get(tid);

	if (gil_precise)
		switch_ended(tid, now);
	if (!t)
		return;
	close_switch_wait(t, tid, now);
	missed_release(t);
	t->acquired = now;
	t->released = 0;
	gil_synced = 1;
}

/*
 * A release closes the thread's cycle. A signal on gil->cond from a
 * thread that is not holding the GIL is not a release:
 *  - glibc's pthread_cond_timedwait, timing out just as it consumed a
 *    wake-up, sends a replacement pthread_cond_signal(cond) itself
 *    (__condvar_cancel_waiting, nptl/pthread_cond_wait.c): the waiter
 *    in take_gil "signals" the GIL's cond;
 *  - a free-threaded build's take_gil signals cond when the GIL was
 *    disabled meanwhile, without taking it (3.13+).
 * Only the thread that held the GIL when we attached may release
 * without having been seen taking it, and only before any other
 * acquisition or release was seen.
 */
static void on_released(__u64 now)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct gil_thread *t = thread_get(tid);

	if (!t)
		return;
	if (t->acquired) {
		emit(GIL_EV_CYCLE, tid, t->wait_start, t->acquired, now);
	} else if (!t->wait_start && !gil_synced) {
		emit(GIL_EV_CYCLE, tid, 0, 0, now);	/* held at attach */
	} else {
		__sync_fetch_and_add(&unmatched, 1);
		return;
	}
	gil_synced = 1;
	t->wait_start = 0;
	t->acquired = 0;
	t->released = now;
}

static __u64 nvcsw(void)
{
	return bpf_get_current_task_btf()->nvcsw;
}

/*
 * precise: take_gil(tstate) entry/return, drop_gil(...) entry. A free
 * GIL is taken at once: our own probes' time is not a wait. But the
 * GIL read free at entry may be taken by another thread first, or its
 * mutex held by a preempted waiter: a take_gil that blocked (the
 * thread made a voluntary switch inside it) waited from its entry.
 */
SEC("uprobe")
int BPF_KPROBE(take_gil_enter)
{
	struct gil_thread *t;
	__u32 locked = 0;

	if (!ours())
		return 0;
	t = thread_get((__u32)bpf_get_current_pid_tgid());
	if (!t)
		return 0;
	t->enter = bpf_ktime_get_ns();
	close_switch_wait(t, (__u32)bpf_get_current_pid_tgid(), t->enter);
	missed_release(t);
	if (t->wait_start)
		return 0;
	bpf_probe_read_user(&locked, sizeof(locked),
			    (void *)(gil_addr + GIL_OFF_LOCKED));
	if (locked)
		t->wait_start = t->enter;
	else
		t->nvcsw = nvcsw();
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(take_gil_exit)
{
	struct gil_thread *t;

	if (!ours())
		return 0;
	t = bpf_map_lookup_elem(&threads,
				&(__u32){ (__u32)bpf_get_current_pid_tgid() });
	if (t && !t->wait_start && t->enter && t->nvcsw != nvcsw())
		t->wait_start = t->enter;
	if (t)
		t->enter = 0;
	on_acquired(bpf_ktime_get_ns());
	return 0;
}

/*
 * drop_gil runs only in a holder: a thread that enters it with a wait
 * open was not seen taking the GIL (a missed return probe). Its wait
 * ended at that unseen acquisition, not at the next one: drop it rather
 * than count the hold between as waiting.
 */
SEC("uprobe")
int BPF_KPROBE(drop_gil_enter)
{
	struct gil_thread *t;
	__u32 tid;

	if (!ours())
		return 0;
	tid = (__u32)bpf_get_current_pid_tgid();
	t = bpf_map_lookup_elem(&threads, &tid);
	if (t && !t->acquired && t->wait_start && gil_synced) {
		__sync_fetch_and_add(&unmatched, 1);
		t->wait_start = 0;
		t->switch_wait = 0;
	}
	on_released(bpf_ktime_get_ns());
	return 0;
}

/* stripped builds: glibc condition variables of the GIL */
SEC("uprobe")
int BPF_KPROBE(cond_signal, void *cond)
{
	__u64 c = (__u64)cond;

	if (!ours())
		return 0;
	if (c == gil_addr + GIL_OFF_SWITCH_COND)
		on_acquired(bpf_ktime_get_ns());
	else if (c == gil_addr + GIL_OFF_COND)
		on_released(bpf_ktime_get_ns());
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(cond_timedwait, void *cond)
{
	struct gil_thread *t;

	if (!ours() || (__u64)cond != gil_addr + GIL_OFF_COND)
		return 0;
	t = thread_get((__u32)bpf_get_current_pid_tgid());
	if (t)
		begin_wait(t, 0);
	return 0;
}

/*
 * A thread releasing the GIL with a drop request pending waits in
 * drop_gil on switch_cond until another thread has taken it: it has
 * waited since its release (drop_gil may block on the GIL's mutex
 * before it gets here) until that acquisition (precise: switch_ended)
 * or, seen by the condvars, until it has the GIL again.
 */
SEC("uprobe")
int BPF_KPROBE(cond_wait, void *cond)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct gil_thread *t;

	if (!ours() || (__u64)cond != gil_addr + GIL_OFF_SWITCH_COND)
		return 0;
	t = thread_get(tid);
	if (!t)
		return 0;
	begin_wait(t, t->released);
	if (gil_precise) {
		t->switch_wait = 1;
		t->switch_end = 0;
		switch_tid = tid;
	}
	return 0;
}

/*
 * futex mode: blocked waits on the GIL's futex words: take_gil's mutex
 * and cond, and, after a forced drop, drop_gil's switch_cond (the thread
 * waits there until another has taken the GIL, then in take_gil: the
 * same wait as the precise modes count) and switch_mutex. A condvar's
 * words sit where either glibc layout has them (common/pp_pystate.h).
 */
static int cond_word(__u64 a, __u64 c)
{
	return a == c + COND_OFF_SIGNALS0 || a == c + COND_OFF_SIGNALS1 ||
	       a == c + COND_OFF_SIGNALS0_2_41 ||
	       a == c + COND_OFF_SIGNALS1_2_41;
}

static int gil_word(__u64 a)
{
	return cond_word(a, gil_addr + GIL_OFF_COND) ||
	       cond_word(a, gil_addr + GIL_OFF_SWITCH_COND) ||
	       a == gil_addr + GIL_OFF_MUTEX ||
	       a == gil_addr + GIL_OFF_SWITCH_MUTEX;
}

/*
 * Called from sys.bpf.c's sched_switch (a tail call, ebpf/sys.h) when
 * the target's thread switches out or one of its threads in: a thread
 * blocking on a GIL word starts a wait, its switch back in ends it
 * (offcpu.bpf.h). Goes on to the lock probes' program after it.
 */
SEC("raw_tp")
int BPF_PROG(gil_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	struct sys_switch_ctx *sw = pp_switched();
	__u64 now = bpf_ktime_get_ns(), uaddr;
	struct gil_thread *t;
	__u32 tid;

	if (!sw)
		return 0;
	uaddr = sw->uaddr;	/* the current thread, the target's */
	if (uaddr && gil_word(uaddr)) {
		t = thread_get((__u32)bpf_get_current_pid_tgid());
		if (t) {
			t->futex_start = now;
			t->futex_uaddr = uaddr;
		}
	}
	if (sw->next_tid) {
		tid = sw->next_tid;
		t = bpf_map_lookup_elem(&threads, &tid);
		if (t && t->futex_start) {
			emit(GIL_EV_WAIT, tid, t->futex_start, 0, now);
			t->futex_start = 0;
		}
	}
	bpf_tail_call(ctx, &sys_progs, SYS_LOCK_SWITCH);
	return 0;
}

/* a thread's creation or rename, with its name as it is now */
static void emit_named(__u32 kind, __u32 tid, const char *comm)
{
	struct gil_thread_event *e;

	e = bpf_ringbuf_reserve(&gil_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return;
	}
	e->e.kind = kind;
	e->e.tid = tid;
	e->e.wait_start = 0;
	e->e.acquired = 0;
	e->e.released = bpf_ktime_get_ns();
	if (bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), comm) < 0)
		e->comm[0] = 0;
	bpf_ringbuf_submit(e, pp_rb_wake(&gil_events));
}

/* thread lifetimes */
SEC("raw_tp/sched_process_fork")
int BPF_PROG(gil_thread_new, struct task_struct *parent,
	     struct task_struct *child)
{
	/* threads only: a forked child process is another tgid */
	if (ours() && BPF_CORE_READ(child, tgid) == targ_tgid)
		emit_named(GIL_EV_THREAD_NEW, BPF_CORE_READ(child, pid),
			   child->comm);
	return 0;
}

/* prctl(PR_SET_NAME), a write to /proc/.../comm (pthread_setname_np;
 * threading names its threads so on 3.14+): rare on any machine */
SEC("raw_tp/task_rename")
int BPF_PROG(gil_thread_rename, struct task_struct *task, const char *comm)
{
	if (BPF_CORE_READ(task, tgid) == targ_tgid)
		emit_named(GIL_EV_THREAD_NAME, BPF_CORE_READ(task, pid), comm);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(gil_thread_exit, struct task_struct *p)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	struct gil_thread *t;

	if (!ours())
		return 0;
	/* what the thread leaves open ends with it: the holder at exit()
	 * (the main thread, os._exit), a daemon thread blocked in take_gil */
	t = bpf_map_lookup_elem(&threads, &tid);
	if (t && t->acquired)
		emit(GIL_EV_CYCLE, tid, t->wait_start, t->acquired, now);
	else if (t && t->wait_start)
		emit(GIL_EV_WAIT, tid, t->wait_start, 0, now);
	else if (t && t->futex_start)
		emit(GIL_EV_WAIT, tid, t->futex_start, 0, now);
	emit(GIL_EV_THREAD_EXIT, tid, 0, 0, now);
	bpf_map_delete_elem(&threads, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

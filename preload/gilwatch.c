// SPDX-License-Identifier: MIT
/*
 * GIL waits and holds, in-process, from the GIL's own condition
 * variables (struct _gil_runtime_state, Include/internal/pycore_gil.h;
 * take_gil/drop_gil in Python/ceval_gil.h, 3.12+ ceval_gil.c):
 *  - take_gil waits in pthread_cond_timedwait(&gil->cond) while the GIL
 *    is locked, and signals switch_cond once it holds it;
 *  - drop_gil signals cond on every release and, when it was asked to
 *    drop (a waiter timed out), waits on switch_cond until another
 *    thread has taken the GIL: from then on the thread waits for it.
 * The same rules as the eBPF side (ebpf/gil.bpf.c, cond mode), so the
 * collector sums both alike: a signal on cond from a thread that is not
 * holding the GIL is no release (3.13t's take_gil signals cond when the
 * GIL was disabled meanwhile; glibc's own replacement signal from a
 * timed-out wait is an internal call and never reaches us). Each
 * thread's first sighting and its exit are sent as THREAD records: they
 * bound its lifetime, and what it leaves open ends at its exit.
 */
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "pp_pystate.h"
#include "shim.h"

struct gil_thread {
	uint64_t wait_start;	/* 0: not waiting */
	uint64_t acquired;	/* 0: not holding (or not seen taking it) */
	uint64_t released;	/* the last release, until the next wait */
	int seen;
};

static uintptr_t gil_cond, gil_switch;
static pthread_key_t exit_key;
static __thread struct gil_thread me;

static void emit_gil(int state, uint64_t a, uint64_t b)
{
	struct pp_rec_gil *r;

	if (b < a)
		return;
	r = pp_emit_reserve(sizeof(*r));
	if (!r)
		return;
	r->ts_start = a;
	r->ts_end = b;
	pp_ring_commit(r, PP_REC_GIL, state | PP_SRC_SHIM, pp_tid(),
		       sizeof(*r));
}

/* The OS name for now; a Python name (pystalls.c) replaces it. */
static void first_sight(uint64_t now)
{
	char comm[17] = "";

	me.seen = 1;
	prctl(PR_GET_NAME, comm);
	pp_emit_thread(pp_tid(), 0, now, comm, strlen(comm));
	pthread_setspecific(exit_key, &me);
}

/* the cycle ends: the wait (if seen) and the hold */
static void released(uint64_t now)
{
	if (me.wait_start && me.wait_start <= me.acquired)
		emit_gil(PP_GIL_WAIT, me.wait_start, me.acquired);
	emit_gil(PP_GIL_HOLD, me.acquired, now);
	me.wait_start = 0;
	me.acquired = 0;
	me.released = now;
}

/* what the thread has open ends now (its exit, the process's) */
static void close_open(uint64_t now)
{
	if (me.acquired)
		released(now);
	else if (me.wait_start)
		emit_gil(PP_GIL_WAIT, me.wait_start, now);
	me.wait_start = me.acquired = 0;
}

/* pthread key destructor: a daemon thread made to exit in take_gil
 * (PyThread_exit_thread, 3.9-3.13) is still waiting */
static void thread_exit(void *arg)
{
	uint64_t now;

	if (!pp_shim.active)
		return;
	now = pp_now_ns();
	close_open(now);
	pp_emit_thread(pp_tid(), PP_THREAD_EXIT, now, "", 0);
}

/* holding the GIL already: a release was not seen, so the hold has no
 * true end; drop it rather than stretch it over another's hold */
static void missed_release(void)
{
	me.acquired = 0;
	me.wait_start = 0;
}

void pp_gilwatch_cond_signal(const void *cond)
{
	uintptr_t c = (uintptr_t)cond;
	uint64_t now;

	if ((c != gil_switch && c != gil_cond) || !pp_shim.active)
		return;
	now = pp_now_ns();
	if (unlikely(!me.seen))
		first_sight(now);
	if (c == gil_switch) {
		if (me.acquired)
			missed_release();
		me.acquired = now;
	} else if (me.acquired) {
		released(now);
	}
}

void pp_gilwatch_cond_wait(const void *cond, int timed)
{
	uintptr_t c = (uintptr_t)cond;
	uint64_t now;

	if (c != (timed ? gil_cond : gil_switch) || !pp_shim.active)
		return;
	now = pp_now_ns();
	if (unlikely(!me.seen))
		first_sight(now);
	if (me.acquired)
		missed_release();
	/* after a forced drop the thread has waited since its release
	 * (drop_gil may block on the GIL's mutex before switch_cond) */
	if (!me.wait_start)
		me.wait_start = !timed && me.released ? me.released : now;
	me.released = 0;
}

/*
 * Start watching the GIL at gil. The caller holds it (install(), main
 * thread): that hold begins now.
 */
int pp_gilwatch_start(uintptr_t gil)
{
	uint64_t t_start;

	if (pthread_key_create(&exit_key, thread_exit))
		return -1;
	t_start = pp_now_ns();
	gil_cond = gil + PP_GIL_OFF_COND;
	gil_switch = gil + PP_GIL_OFF_SWITCH_COND;
	first_sight(t_start);
	me.acquired = t_start;
	return 0;
}

/* At exit the calling thread (normally the main one) still holds the
 * GIL, or waits for it: close that interval as eBPF does at detach. */
__attribute__((destructor)) static void gilwatch_fini(void)
{
	if (!gil_cond || !pp_shim.active || getpid() != pp_shim.pid)
		return;
	close_open(pp_now_ns());
}

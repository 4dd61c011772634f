// SPDX-License-Identifier: MIT
/*
 * Lock contention, in-process: a semaphore wait that had to block
 * (stallwrap.c tried sem_trywait first). threading.Lock/RLock and the
 * locks under Condition, Event, Queue and join are semaphores in
 * 3.9-3.13 (PyThread_acquire_lock_timed, Python/thread_pthread.h: a
 * non-blocking try with the GIL held, then sem_clockwait/sem_wait with
 * it released). What parks on a PyMutex or PyEvent instead (3.13's
 * thread handles; 3.14's threading.Lock) waits on the thread's own
 * semaphore (Python/parking_lot.c): seen too, but lock_addr is then
 * that semaphore, not the lock. The GIL is a condition variable: never
 * seen here. The stack says where: it is read after the wait, from
 * this thread's own frames, which do not change while it blocks.
 */
#include "shim.h"

void pp_lockwatch_sem_waited(const void *sem, uint64_t t0)
{
	uint64_t t1 = pp_now_ns();
	struct pp_rec_lock *r;
	uint32_t stack;

	if (!pp_shim.active || pp_in_hook)
		return;		/* not recording, or one of our own waits */
	pp_in_hook++;
	stack = pp_stack_current();
	r = pp_emit_reserve(sizeof(*r));
	if (r) {
		r->lock_addr = (uintptr_t)sem;
		r->ts_start = t0;
		r->ts_end = t1;
		r->tid = pp_tid();
		r->pad = 0;
		pp_ring_commit(r, PP_REC_LOCK,
			       (stack ? PP_LOCK_PY : PP_LOCK_FUTEX) | PP_SRC_SHIM,
			       stack, sizeof(*r));
	}
	pp_in_hook--;
}

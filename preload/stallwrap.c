// SPDX-License-Identifier: MIT
/*
 * libc condition variables and semaphores, interposed by LD_PRELOAD for
 * the in-process stall fallback (no eBPF). CPython's GIL is a mutex and
 * two condition variables (Python/ceval_gil.h, 3.12+ ceval_gil.c), and
 * threading.Lock blocks in sem_clockwait/sem_wait on a semaphore
 * (Python/thread_pthread.h; what parks on a PyMutex waits on the
 * thread's own semaphore, Python/parking_lot.c), all through the PLT.
 *
 * With the fallback off each wrapper costs a load and a predictable
 * branch before calling libc. The condition variables are looked up by
 * their default version, pthread_cond_*@@GLIBC_2.3.2: glibc before 2.36
 * answers dlsym(RTLD_NEXT) with the oldest version, the 2.2.5 compat
 * condvar (seen on Debian 11), which would run CPython's GIL on another
 * implementation and bypass the eBPF probes. sem_* have one version per
 * glibc on x86-64. Being unversioned here, the wrappers also take calls
 * bound to any version. This file needs nothing else from the shim.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>

#include "shim.h"

#define EXPORT __attribute__((visibility("default")))

const struct pp_stall_hooks *pp_stall_hooks;

/*
 * Each next_* pointer starts at a stub that looks the libc function up
 * and replaces itself, so the hot path has no "resolved yet?" test.
 */
#if defined(__x86_64__) && defined(__GLIBC__)
#define COND_VERSION "GLIBC_2.3.2"
#endif

static void *next_sym(const char *name)
{
	void *f = NULL;

#ifdef COND_VERSION
	if (!strncmp(name, "pthread_cond_", 13))
		f = dlvsym(RTLD_NEXT, name, COND_VERSION);
#endif
	return f ? f : dlsym(RTLD_NEXT, name);
}

#define NEXT(name, ret, params, args)                                   \
	static ret first_##name params;                                 \
	static ret (*next_##name) params = first_##name;                \
	static ret first_##name params                                  \
	{                                                               \
		void *f = next_sym(#name);                              \
		if (!f)                                                 \
			return ENOSYS;                                  \
		__atomic_store_n((void **)&next_##name, f,              \
				 __ATOMIC_RELAXED);                     \
		return next_##name args;                                \
	}

NEXT(pthread_cond_signal, int, (pthread_cond_t *c), (c))
NEXT(pthread_cond_wait, int, (pthread_cond_t *c, pthread_mutex_t *m), (c, m))
NEXT(pthread_cond_timedwait, int,
     (pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t),
     (c, m, t))
NEXT(sem_wait, int, (sem_t *s), (s))
NEXT(sem_timedwait, int, (sem_t *s, const struct timespec *t), (s, t))
NEXT(sem_clockwait, int, (sem_t *s, clockid_t k, const struct timespec *t),
     (s, k, t))
#undef NEXT

static inline const struct pp_stall_hooks *hooks(void)
{
	return __atomic_load_n(&pp_stall_hooks, __ATOMIC_ACQUIRE);
}

EXPORT int pthread_cond_signal(pthread_cond_t *c)
{
	const struct pp_stall_hooks *h = hooks();

	if (unlikely(h)) {
		int err = errno;

		h->cond_signal(c);
		errno = err;
	}
	return next_pthread_cond_signal(c);
}

EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	const struct pp_stall_hooks *h = hooks();

	if (unlikely(h)) {
		int err = errno;

		h->cond_wait(c, 0);
		errno = err;
	}
	return next_pthread_cond_wait(c, m);
}

EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
				  const struct timespec *t)
{
	const struct pp_stall_hooks *h = hooks();

	if (unlikely(h)) {
		int err = errno;

		h->cond_wait(c, 1);
		errno = err;
	}
	return next_pthread_cond_timedwait(c, m, t);
}

/*
 * A semaphore that can be taken at once was not contended: try that
 * first (sem_*wait would do the same before sleeping), and time only
 * the waits that had to block.
 */
static void sem_done(const struct pp_stall_hooks *h, sem_t *s, uint64_t t0)
{
	int err = errno;

	h->sem_waited(s, t0);
	errno = err;
}

EXPORT int sem_wait(sem_t *s)
{
	const struct pp_stall_hooks *h = hooks();
	uint64_t t0;
	int rc;

	if (likely(!h))
		return next_sem_wait(s);
	if (sem_trywait(s) == 0)
		return 0;
	t0 = pp_now_ns();
	rc = next_sem_wait(s);
	sem_done(h, s, t0);
	return rc;
}

EXPORT int sem_timedwait(sem_t *s, const struct timespec *t)
{
	const struct pp_stall_hooks *h = hooks();
	uint64_t t0;
	int rc;

	if (likely(!h))
		return next_sem_timedwait(s, t);
	if (sem_trywait(s) == 0)
		return 0;
	t0 = pp_now_ns();
	rc = next_sem_timedwait(s, t);
	sem_done(h, s, t0);
	return rc;
}

EXPORT int sem_clockwait(sem_t *s, clockid_t k, const struct timespec *t)
{
	const struct pp_stall_hooks *h = hooks();
	uint64_t t0;
	int rc;

	if (likely(!h))
		return next_sem_clockwait(s, k, t);
	if (sem_trywait(s) == 0)
		return 0;
	t0 = pp_now_ns();
	rc = next_sem_clockwait(s, k, t);
	sem_done(h, s, t0);
	return rc;
}

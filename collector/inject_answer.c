// SPDX-License-Identifier: MIT
/*
 * The shim, once loaded, waits 2 s for pyprof's hello with the target's
 * GIL held (preload/attach.c, receive_ring). While pyprof is busy with
 * something else (attaching the probes takes seconds on a loaded
 * machine: the shim gave up, "cannot hand the ring to the shim: Broken
 * pipe"), a thread polls the connection and answers.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "inject.h"

struct pp_inject_answer {
	struct pp_inject *in;
	pthread_t th;
	int stop, rc;
	char err[256];
};

static void *answer(void *arg)
{
	struct pp_inject_answer *a = arg;

	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		a->rc = pp_inject_poll(a->in, a->err, sizeof(a->err));
		if (a->rc)
			break;
		usleep(2000);
	}
	return NULL;
}

struct pp_inject_answer *pp_inject_answer_begin(struct pp_inject *in)
{
	struct pp_inject_answer *a;

	if (!in)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->in = in;
	if (pthread_create(&a->th, NULL, answer, a)) {
		free(a);
		return NULL;
	}
	return a;
}

int pp_inject_answer_end(struct pp_inject_answer *a, char *err,
			 size_t errlen)
{
	int rc;

	if (!a)
		return 0;
	__atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
	pthread_join(a->th, NULL);
	rc = a->rc;
	if (rc < 0)
		snprintf(err, errlen, "%s", a->err);
	free(a);
	return rc;
}

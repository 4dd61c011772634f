// SPDX-License-Identifier: MIT
/* The ring: order, wrap-around, many producers, full ring in both modes. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pp_clock.h"
#include "pp_ring.h"
#include "pp_test.h"

#define PRODUCERS 4
#define PER_PRODUCER 200000

struct seen {
	uint64_t next[PRODUCERS + 1];	/* next sequence expected per producer */
	uint64_t count, bad;
};

static void check_one(struct seen *s, const struct pp_hdr *rec)
{
	const struct pp_rec_realloc *r = (const void *)rec;
	uint32_t p = rec->aux;

	/* body: old = producer, addr = sequence, size = ~sequence */
	if (rec->type != PP_REC_REALLOC || p > PRODUCERS ||
	    r->old != p || r->addr != s->next[p] || r->size != ~r->addr) {
		s->bad++;
		return;
	}
	s->next[p]++;
	s->count++;
}

static void check_rec(const void *recs, size_t len, void *ctx)
{
	const struct pp_hdr *rec;

	pp_rec_for_each(rec, recs, len)
		check_one(ctx, rec);
}

static void produce(struct pp_ring *r, uint32_t id, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++) {
		/* vary the length so records straddle the end of the area */
		uint32_t len = (i % 3) ? sizeof(struct pp_rec_realloc) : 48;
		struct pp_rec_realloc *rec = pp_ring_reserve(r, len);

		if (!rec)
			continue;
		rec->old = id;
		rec->addr = i;
		rec->size = ~i;
		pp_ring_commit(rec, PP_REC_REALLOC, 0, id, len);
	}
}

struct thr {
	struct pp_ring *r;
	uint32_t id;
};

static void *producer(void *arg)
{
	struct thr *t = arg;

	produce(t->r, t->id, PER_PRODUCER);
	return NULL;
}

static void test_threads(void)
{
	struct pp_ring r;
	pthread_t th[PRODUCERS];
	struct thr args[PRODUCERS];
	struct seen s = { 0 };
	int fd, i, live = PRODUCERS;

	fd = pp_ring_create(&r, 1 << 16, PP_RING_BLOCK);	/* small: many laps */
	CHECK(fd >= 0, "ring create", "fd %d", fd);
	for (i = 0; i < PRODUCERS; i++) {
		args[i] = (struct thr){ &r, i + 1 };
		pthread_create(&th[i], NULL, producer, &args[i]);
	}
	while (s.count < (uint64_t)PRODUCERS * PER_PRODUCER && live) {
		if (!pp_ring_drain(&r, 1 << 20, check_rec, &s))
			usleep(100);
		if (s.bad)
			break;
	}
	for (i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	while (pp_ring_drain(&r, 1 << 20, check_rec, &s))
		;
	CHECK(s.bad == 0, "ring threads: every record intact and in order",
	      "%lu bad records", (unsigned long)s.bad);
	CHECK(s.count == (uint64_t)PRODUCERS * PER_PRODUCER,
	      "ring threads: nothing lost across laps", "got %lu of %lu",
	      (unsigned long)s.count, (unsigned long)PRODUCERS * PER_PRODUCER);
	CHECK(r.hdr->dropped == 0, "ring threads: no drops when blocking",
	      "%lu dropped", (unsigned long)r.hdr->dropped);
	CHECK(r.hdr->waits > 0, "ring threads: producers waited on a full ring",
	      "no waits: the test did not fill the ring");
	pp_ring_unmap(&r);
	close(fd);
}

/* Producers in other processes map the same memfd (as the shim does). */
static void test_processes(void)
{
	struct pp_ring r;
	struct seen s = { 0 };
	pid_t pids[2];
	int fd, i, status, ok = 1;

	fd = pp_ring_create(&r, 1 << 16, PP_RING_BLOCK);
	for (i = 0; i < 2; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct pp_ring c;

			if (pp_ring_map(&c, fd) < 0)
				_exit(2);
			produce(&c, i + 1, PER_PRODUCER);
			_exit(0);
		}
	}
	while (s.count < 2ull * PER_PRODUCER && !s.bad)
		if (!pp_ring_drain(&r, 1 << 20, check_rec, &s))
			usleep(100);
	for (i = 0; i < 2; i++) {
		waitpid(pids[i], &status, 0);
		ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	CHECK(ok, "ring processes: producers mapped the memfd", "child failed");
	CHECK(s.bad == 0 && s.count == 2ull * PER_PRODUCER,
	      "ring processes: all records, in order per producer",
	      "count %lu bad %lu", (unsigned long)s.count,
	      (unsigned long)s.bad);
	pp_ring_unmap(&r);
	close(fd);
}

static void test_full(void)
{
	struct pp_ring r;
	struct seen s = { 0 };
	uint64_t cap = 1 << 12, n = cap / sizeof(struct pp_rec_realloc) * 3;
	int fd;

	/* drop mode: a full ring drops and counts, never blocks */
	fd = pp_ring_create(&r, cap, PP_RING_DROP);
	produce(&r, 1, n);
	while (pp_ring_drain(&r, 1 << 20, check_rec, &s))
		;
	CHECK(s.count + r.hdr->dropped == n && r.hdr->dropped > 0,
	      "ring full (drop mode): every record delivered or counted",
	      "delivered %lu dropped %lu of %lu", (unsigned long)s.count,
	      (unsigned long)r.hdr->dropped, (unsigned long)n);
	pp_ring_unmap(&r);
	close(fd);

	/* block mode with the collector gone: drop instead of hanging */
	fd = pp_ring_create(&r, cap, PP_RING_BLOCK);
	r.hdr->collector_alive = 0;
	produce(&r, 1, n);
	CHECK(r.hdr->dropped > 0 && r.hdr->dropped < n,
	      "ring full (collector gone): producer drops, does not hang",
	      "dropped %lu", (unsigned long)r.hdr->dropped);
	pp_ring_unmap(&r);
	close(fd);
}

static double secs(void)
{
	return pp_now_ns() / 1e9;
}

/* fill the ring until the first reservation that does not succeed */
static double fill(struct pp_ring *r, uint64_t *got)
{
	double t0 = secs();

	for (*got = 0; *got < 1000000; (*got)++) {
		struct pp_rec_free *rec = pp_ring_reserve(r, sizeof(*rec));

		if (!rec)
			break;
		rec->addr = *got;
		pp_ring_commit(rec, PP_REC_FREE, 0, 1, sizeof(*rec));
	}
	return secs() - t0;
}

static void count_recs(const void *recs, size_t len, void *ctx)
{
	const struct pp_hdr *rec;

	pp_rec_for_each(rec, recs, len)
		(*(uint64_t *)ctx)++;
}

/*
 * A collector that does not drain (stopped): one bounded wait for the
 * episode, then every record drops at once, and recording resumes as
 * soon as it drains again.
 */
static void test_stalled(void)
{
	struct pp_ring r;
	uint64_t got, drained = 0, i, before;
	double t, t2;
	int fd = pp_ring_create(&r, 1 << 12, PP_RING_BLOCK);

	t = fill(&r, &got);
	CHECK(got == (1 << 12) / 16 && t >= PP_RING_STALL_NS / 1e9 * 0.9 &&
	      t < PP_RING_STALL_NS / 1e9 * 3 && r.stalled && !r.lost,
	      "ring stalled: a full ring waits once, for the bounded time",
	      "%lu records, waited %.2f s, stalled %d lost %d",
	      (unsigned long)got, t, r.stalled, r.lost);
	t2 = secs();
	before = r.hdr->dropped;
	for (i = 0; i < 100000; i++)
		if (pp_ring_reserve(&r, 16) || !pp_ring_dropping(&r))
			break;
	t2 = secs() - t2;
	CHECK(i == 100000 && t2 < 0.5 &&
	      r.hdr->dropped - before == 2 * i,
	      "ring stalled: later records drop at once, each counted",
	      "%lu of 100000 dropped in %.3f s, counter +%lu", (unsigned long)i,
	      t2, (unsigned long)(r.hdr->dropped - before));
	pp_ring_drain(&r, 1 << 20, count_recs, &drained);
	CHECK(!pp_ring_dropping(&r) && pp_ring_reserve(&r, 16) && !r.stalled,
	      "ring stalled: recording resumes once the collector drains",
	      "stalled %d", r.stalled);
	pp_ring_unmap(&r);
	close(fd);
}

struct slow {
	struct pp_ring *r;
	uint64_t n;
};

static void *slow_producer(void *arg)
{
	struct slow *sl = arg;

	produce(sl->r, 1, sl->n);
	return NULL;
}

/* A slow collector (a drain every 0.3 s) is waited for: nothing lost. */
static void test_slow(void)
{
	struct pp_ring r;
	struct seen s = { 0 };
	struct slow sl = { &r, 4 * (1 << 12) / sizeof(struct pp_rec_realloc) };
	pthread_t th;
	int fd = pp_ring_create(&r, 1 << 12, PP_RING_BLOCK);

	pthread_create(&th, NULL, slow_producer, &sl);
	while (s.count < sl.n && !s.bad) {
		usleep(300000);
		while (pp_ring_drain(&r, 1 << 20, check_rec, &s) > 0)
			;
	}
	pthread_join(th, NULL);
	CHECK(s.count == sl.n && !s.bad && !r.hdr->dropped && !r.stalled,
	      "ring slow collector: waited for, nothing dropped",
	      "%lu of %lu, %lu dropped, bad %lu", (unsigned long)s.count,
	      (unsigned long)sl.n, (unsigned long)r.hdr->dropped,
	      (unsigned long)s.bad);
	pp_ring_unmap(&r);
	close(fd);
}

/*
 * A collector that is gone for good (exited and reaped, a zombie, or
 * its pid reused): found at once on a full ring, no bounded wait, and
 * r->lost says so for the shim to stop.
 */
static void test_lost(void)
{
	static const char *const what[] = { "reaped", "zombie", "reused pid" };
	int k;

	for (k = 0; k < 3; k++) {
		struct pp_ring r;
		uint64_t got;
		char name[96];
		double t;
		int fd = pp_ring_create(&r, 1 << 12, PP_RING_BLOCK);
		pid_t pid = fork();

		if (pid == 0) {
			if (k == 2)
				pause();	/* alive, but not the collector */
			_exit(0);
		}
		if (k == 0)
			waitpid(pid, NULL, 0);
		else if (k == 1)
			usleep(100000);	/* exits, not reaped */
		r.hdr->collector_pid = pid;
		t = fill(&r, &got);
		snprintf(name, sizeof(name), "ring lost (collector %s): "
			 "found without the stall wait", what[k]);
		CHECK(r.lost && t < PP_RING_STALL_NS / 1e9 / 2, name,
		      "lost %d after %.2f s", r.lost, t);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		pp_ring_unmap(&r);
		close(fd);
	}
}

/* A stray write into the ring stops the consumer there, cleanly. */
static void test_scribbled(void)
{
	struct pp_ring r;
	struct seen s = { 0 };
	struct pp_rec_realloc *rec;
	long n;
	int fd = pp_ring_create(&r, 1 << 12, PP_RING_DROP);

	produce(&r, 1, 3);
	rec = pp_ring_reserve(&r, sizeof(*rec));
	memset(rec, 0x5a, sizeof(*rec));	/* garbage, header included */
	produce(&r, 1, 2);
	n = pp_ring_drain(&r, 1 << 20, check_rec, &s);
	CHECK(n == -EPROTO && s.count == 3 && !s.bad,
	      "ring: garbage record stops the drain after the good ones",
	      "drain %ld, %lu records", n, (unsigned long)s.count);
	pp_ring_unmap(&r);
	close(fd);
}

static void test_bad_header(void)
{
	struct pp_ring r;
	int fd = memfd_create("bad", 0);

	ftruncate(fd, 1 << 16);
	CHECK(pp_ring_map(&r, fd) < 0, "ring map refuses a ring without magic",
	      "mapped garbage");
	close(fd);
}

int main(void)
{
	test_threads();
	test_processes();
	test_full();
	test_stalled();
	test_slow();
	test_lost();
	test_scribbled();
	test_bad_header();
	TEST_EXIT();
}

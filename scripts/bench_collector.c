/* SPDX-License-Identifier: MIT */
/*
 * The collector's hot path alone, replayed: the producer records of a
 * trace (pyprof record -o T, with every allocation) are put back into
 * a ring as the shim puts them, 1 MiB at a time, and drained through
 * what `pyprof record` runs (collector/drain.c: checked, compacted and
 * copied in one pass; LZ4 and the write once per chunk) into OUT.
 * Only the drain is timed, in this thread's CPU time; the filling is
 * the producers' work.
 *
 * Usage: bench_collector TRACE OUT [ROUNDS]
 * Prints "events N bytes B ns/event X" (median of ROUNDS replays) and
 * OUT's size per million events. Under callgrind (ROUNDS 1) it gives
 * the instructions per event of each part (scripts/bench.sh's pyprof
 * runs under valgrind too slowly to keep up with a native target).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "drain.h"

#define FILL (1u << 20)

static double cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void no_look(void *ctx, const struct pp_hdr *rec)
{
}

/* as pyprof record's drain */
static long drain(struct pp_ring *r, struct pp_trace_writer *w)
{
	int e;
	long n = pp_drain_to_trace(r, w, 4u << 20, 0, no_look, NULL, &e);

	if (n < 0 || e) {
		fprintf(stderr, "bench_collector: drain failed\n");
		exit(1);
	}
	return n;
}

/* one replay of recs[0..len) (n records); CPU ns of the drains */
static double replay(const char *recs, size_t len, const char *out)
{
	struct pp_ring ring;
	struct pp_trace_writer *w;
	char err[256];
	size_t off = 0;
	double t = 0, t0;
	int fd;

	fd = pp_ring_create(&ring, 16u << 20, PP_RING_BLOCK);
	w = pp_trace_create(out, err, sizeof(err));
	if (fd < 0 || !w) {
		fprintf(stderr, "bench_collector: %s\n", fd < 0 ? "ring" : err);
		exit(1);
	}
	while (off < len) {
		size_t filled = 0;

		while (off < len && filled < FILL) {
			const struct pp_hdr *h = (const void *)(recs + off);
			void *p = pp_ring_reserve(&ring, h->len);

			memcpy((char *)p + 8, h + 1, h->len - 8);
			pp_ring_commit(p, h->type, h->flags, h->aux, h->len);
			off += h->len;
			filled += h->len;
		}
		t0 = cpu_ns();
		while (drain(&ring, w) > 0)
			;
		t += cpu_ns() - t0;
	}
	t0 = cpu_ns();
	if (pp_trace_close(w) < 0)
		exit(1);
	t += cpu_ns() - t0;
	pp_ring_unmap(&ring);
	return t;
}

int main(int argc, char **argv)
{
	struct pp_trace_reader *r;
	const struct pp_hdr *rec;
	char err[256], *recs = NULL;
	size_t len = 0, cap = 0, n = 0;
	int rounds = argc > 3 ? atoi(argv[3]) : 5, i, k;
	double t[64];
	struct stat st;

	if (argc < 3 || rounds < 1 || rounds > 64) {
		fprintf(stderr, "usage: bench_collector TRACE OUT [ROUNDS]\n");
		return 2;
	}
	r = pp_trace_open(argv[1], err, sizeof(err));
	if (!r) {
		fprintf(stderr, "bench_collector: %s: %s\n", argv[1], err);
		return 1;
	}
	while ((k = pp_trace_next(r, &rec)) == 1) {
		if (rec->type >= PP_REC_TICK)
			continue;	/* the collector's own */
		if (len + rec->len > cap) {
			cap = cap ? 2 * cap : 1u << 24;
			recs = realloc(recs, cap);
			if (!recs)
				return 1;
		}
		memcpy(recs + len, rec, rec->len);
		len += rec->len;
		n++;
	}
	if (k < 0 || !n) {
		fprintf(stderr, "bench_collector: %s: %s\n", argv[1],
			k < 0 ? pp_trace_error(r) : "no producer records");
		return 1;
	}
	pp_trace_close_reader(r);
	for (i = 0; i < rounds; i++)
		t[i] = replay(recs, len, argv[2]);
	qsort(t, rounds, sizeof(t[0]), cmp);
	if (stat(argv[2], &st) < 0)
		return 1;
	printf("events %zu bytes %zu ns/event %.2f trace B/M events %.0f\n",
	       n, len, t[rounds / 2] / n, st.st_size * 1e6 / n);
	free(recs);
	return 0;
}

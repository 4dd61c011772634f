// SPDX-License-Identifier: MIT
/*
 * Seeds for fuzz_trace from a real trace: its first N records (those
 * the reader accepts), written as NAME.trace (by the real writer, a
 * chunk every K records) and as NAME.recs (the bare record stream,
 * which fuzz_trace wraps in chunks itself). scripts/fuzz.sh --seeds
 * makes tests/fuzz/corpus/ with it.
 * Usage: mkseeds TRACE OUTDIR NAME [N [K]]
 */
#include <stdio.h>
#include <stdlib.h>

#include "trace.h"

int main(int argc, char **argv)
{
	struct pp_trace_reader *r;
	struct pp_trace_writer *w;
	const struct pp_hdr *rec;
	char err[512], path[4096];
	long n, k, i = 0;
	FILE *recs;

	if (argc < 4) {
		fprintf(stderr, "usage: mkseeds TRACE OUTDIR NAME [N [K]]\n");
		return 2;
	}
	n = argc > 4 ? atol(argv[4]) : 400;
	k = argc > 5 ? atol(argv[5]) : 100;
	r = pp_trace_open(argv[1], err, sizeof(err));
	if (!r) {
		fprintf(stderr, "mkseeds: %s: %s\n", argv[1], err);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s.trace", argv[2], argv[3]);
	w = pp_trace_create(path, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/%s.recs", argv[2], argv[3]);
	recs = fopen(path, "w");
	if (!w || !recs) {
		fprintf(stderr, "mkseeds: cannot write %s: %s\n", path, err);
		return 1;
	}
	while (i < n && pp_trace_next(r, &rec) > 0) {
		if (pp_trace_append(w, rec))
			continue;
		fwrite(rec, 1, rec->len, recs);
		if (++i % k == 0)
			pp_trace_flush(w);
	}
	pp_trace_close_reader(r);
	if (pp_trace_close(w) || fclose(recs)) {
		fprintf(stderr, "mkseeds: writing seeds failed\n");
		return 1;
	}
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * The writer's compact records (ALLOC_D, FREE_D: docs/trace-format.md
 * "Compact records") on a heap-like stream: addresses near each other,
 * far jumps, differences at the edges of 32 bits, sizes at 4 GiB, FREEs
 * with an aux, padded ALLOCs, given one by one and in runs, with flushes
 * anywhere. What a reader gets back must be the stream, record for
 * record: whole, from a chunk it seeks to, cut off at any chunk (an
 * abrupt stop), and across --max-size segments. Each chunk must hold
 * exactly the compact form the format gives. Traces of ABI 3 (the fuzz
 * seeds made before; run from the source tree) still read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pp_test.h"
#include "trace.h"

#define NREC 600000
#define STREAM_MAX (NREC * 40ull)

static char dir[64], path[128];
static uint64_t *stream;	/* the records, back to back */
static uint64_t stream_len;	/* bytes */
static uint32_t *off8;		/* record i at stream + off8[i] (u64s) */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const struct pp_hdr *rec_at(uint64_t i)
{
	return (const void *)(stream + off8[i]);
}

static void put(const void *rec)
{
	const struct pp_hdr *h = rec;
	static uint64_t n;

	off8[n++] = stream_len / 8;
	memcpy((char *)stream + stream_len, rec, h->len);
	stream_len += h->len;
}

/* The stream: mostly a pymalloc-like heap (near addresses), some of
 * glibc's and of mappings far away, the edge cases now and then. */
static void make_stream(void)
{
	enum { LIVE = 4096 };
	static uint64_t live[LIVE];
	uint64_t prev = 0, heap = 0x7f3a12340000ull, libc = 0x5612a0000000ull;

	stream = calloc(STREAM_MAX / 8, 8);
	off8 = calloc(NREC, sizeof(*off8));
	for (uint64_t i = 0; i < NREC; i++) {
		uint64_t h = rnd(), addr, size = 16 + h % 512;
		unsigned kind = h >> 56;

		if (i % 5000 == 4999) {
			struct pp_rec_tick t = { { sizeof(t), PP_REC_TICK, 0, 0 },
						 i + 1, h, 0 };

			put(&t);
			continue;
		}
		if (i % 977 == 0) {
			struct pp_rec_realloc r = {
				{ sizeof(r), PP_REC_REALLOC, 2, 7 }, prev,
				prev + 64, i };

			put(&r);
			continue;
		}
		if (kind < 110) {	/* a free of a live block */
			struct pp_rec_free f = {
				{ sizeof(f), PP_REC_FREE, h & 3,
				  i % 1013 == 0 ? 5 : 0 },
				live[h % LIVE] };

			put(&f);
			prev = f.addr;
			continue;
		}
		switch (i % 211) {
		case 1: addr = prev + INT32_MAX; break;
		case 2: addr = prev + INT32_MAX + 1ull; break;
		case 3: addr = prev - (1ull << 31); break;
		case 4: addr = prev - (1ull << 31) - 1; break;
		case 5: addr = h; break;			/* anywhere */
		case 6: addr = 0x1000; size = UINT32_MAX; break;
		case 7: size = 1ull << 32; addr = libc; break;
		default:
			addr = kind < 200 ? heap + (h >> 8) % (1u << 24) * 16 :
					    libc + (h >> 8) % (1u << 20) * 16;
		}
		if (i % 499 == 0) {	/* longer than an ALLOC: kept whole */
			uint64_t b[4] = { 0 };
			struct pp_rec_alloc *a = (void *)b;

			*a = (struct pp_rec_alloc){
				{ sizeof(b), PP_REC_ALLOC, 1, i % 97 },
				addr, size };
			put(b);
		} else {
			struct pp_rec_alloc a = {
				{ sizeof(a), PP_REC_ALLOC, h & 3, i % 97 },
				addr, size };

			put(&a);
		}
		live[(h >> 12) % LIVE] = addr;
		prev = addr;
	}
}

/* A checkpoint that is just its two brackets (the test's --max-size). */
static void obs(void *ctx, const struct pp_hdr *rec) { (void)ctx; (void)rec; }
static int ready(void *ctx) { (void)ctx; return 1; }
static void nofree(void *ctx) { (void)ctx; }

static int ckpt_write(void *ctx, struct pp_trace_writer *w, uint32_t seq)
{
	struct pp_rec_ckpt c = { { sizeof(c), PP_REC_CKPT, PP_CKPT_BEGIN, seq },
				 1, 0, 0 };
	int e = pp_trace_append(w, &c.h);

	(void)ctx;
	c.h.flags = PP_CKPT_END;
	return e ? e : pp_trace_append(w, &c.h);
}

static const struct pp_trace_cap_ops cap_ops = { obs, ready, ckpt_write,
						 nofree };

/* Writes the stream: runs of producer records and single ones, flushes
 * at random (often when flush_often). 0 or -errno. */
static int write_stream(uint64_t cap, bool flush_often)
{
	char err[256];
	struct pp_trace_writer *w = pp_trace_create(path, err, sizeof(err));
	uint64_t i = 0;
	int e = 0;

	if (!w) {
		printf("# create: %s\n", err);
		return -EIO;
	}
	if (cap)
		pp_trace_set_cap(w, cap, &cap_ops, NULL);
	while (i < NREC && !e) {
		uint64_t h = rnd(), j = i, k = 1 + h % 700;

		if (h & 1 || rec_at(i)->type >= PP_REC_TICK) {
			e = pp_trace_append(w, rec_at(i));
			i++;
		} else {
			while (j < NREC && j - i < k &&
			       rec_at(j)->type < PP_REC_TICK)
				j++;
			e = pp_trace_append_run(w, rec_at(i),
						(char *)rec_at(j - 1) +
						rec_at(j - 1)->len -
						(char *)rec_at(i));
			i = j;
		}
		if (!e && h % (flush_often ? 40 : 400) == 7)
			e = pp_trace_flush(w);
	}
	if (e) {
		pp_trace_close(w);
		return e;
	}
	return pp_trace_close(w);
}

/* Reads on from r, comparing with the stream from record i on (CKPT
 * brackets passed over). Records matched; *rc the last result, -2 on a
 * record that differs. */
static uint64_t compare(struct pp_trace_reader *r, uint64_t i, int *rc)
{
	const struct pp_hdr *rec;
	uint64_t n = 0;
	int k;

	while ((k = pp_trace_next(r, &rec)) == 1) {
		if (rec->type == PP_REC_CKPT)
			continue;
		if (i + n >= NREC || rec->len != rec_at(i + n)->len ||
		    memcmp(rec, rec_at(i + n), rec->len)) {
			printf("# record %llu differs (type %u len %u)\n",
			       (unsigned long long)(i + n), rec->type, rec->len);
			k = -2;
			break;
		}
		n++;
	}
	*rc = k;
	return n;
}

static struct pp_trace_reader *open_raw(const char *p)
{
	char err[256];
	struct pp_trace_reader *r = pp_trace_open(p, err, sizeof(err));

	if (!r)
		printf("# open %s: %s\n", p, err);
	else
		pp_trace_set_check(r, 0);	/* framing: ids are noise */
	return r;
}

/* Bytes records [i, i + n) take in a chunk by the format's rule: an
 * ALLOC or FREE within 2 GiB of the chunk's previous address (0 at its
 * start) is 16 or 8 bytes, unless longer than usual, a FREE with an aux
 * or an ALLOC of 4 GiB or more. */
static uint64_t chunk_bytes(uint64_t i, uint64_t n)
{
	uint64_t prev = 0, sum = 0;

	for (uint64_t k = i; k < i + n; k++) {
		const struct pp_hdr *h = rec_at(k);
		const struct pp_rec_alloc *a = (const void *)h;
		uint64_t d = a->addr - prev;
		bool near = d + (1ull << 31) < (1ull << 32);

		sum += h->len;
		if (h->type == PP_REC_ALLOC) {
			if (near && h->len == 24 && a->size < (1ull << 32))
				sum -= 8;
			prev = a->addr;
		} else if (h->type == PP_REC_FREE) {
			if (near && h->len == 16 && !h->aux)
				sum -= 8;
			prev = a->addr;
		}
	}
	return sum;
}

static void test_whole_and_seek(void)
{
	const struct pp_trace_chunk_info *ci;
	struct pp_trace_reader *r;
	uint64_t got, raw = 0, want = 0, first = 0;
	size_t nc = 0;
	int rc, bad = 0;

	CHECK(write_stream(0, false) == 0, "compact: write", "failed");
	r = open_raw(path);
	if (!r)
		return;
	got = compare(r, 0, &rc);
	CHECK(rc == 0 && got == NREC && !pp_trace_truncated(r),
	      "compact: every record reads back as written",
	      "rc %d, %llu of %u: %s", rc, (unsigned long long)got, NREC,
	      pp_trace_error(r));
	pp_trace_index(r, &ci, &nc);
	for (size_t k = 0; k < nc; k++) {
		raw += ci[k].raw_len;
		want += chunk_bytes(first, ci[k].nrec);
		first += ci[k].nrec;
	}
	first = 0;
	CHECK(nc > 4 && raw == want && raw < stream_len,
	      "compact: each chunk holds the compact form of its records",
	      "%zu chunks, %llu raw bytes, %llu expected, %llu uncompacted",
	      nc, (unsigned long long)raw, (unsigned long long)want,
	      (unsigned long long)stream_len);
	/* each chunk decodes on its own: seek to every one */
	for (size_t k = 0; k < nc; k++) {
		uint64_t n;

		pp_trace_seek_chunk(r, k);
		n = compare(r, first, &rc);
		if (rc != 0 || n != NREC - first)
			bad++;
		first += ci[k].nrec;
	}
	CHECK(bad == 0, "compact: a seek to any chunk reads the rest exactly",
	      "%d of %zu chunks wrong", bad, nc);
	pp_trace_close_reader(r);
}

/* The first n bytes of the trace at path, as the file p. */
static int copy_prefix(const char *p, uint64_t n)
{
	static char buf[1 << 16];
	int in = open(path, O_RDONLY), out;
	int ok = in >= 0;

	unlink(p);
	out = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
	ok = ok && out >= 0;
	while (ok && n) {
		ssize_t k = read(in, buf, n < sizeof(buf) ? n : sizeof(buf));

		ok = k > 0 && write(out, buf, k) == k;
		n -= ok ? k : 0;
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ok ? 0 : -1;
}

/* An abrupt stop: the file cut at, inside the header of and inside the
 * payload of every chunk reads as the chunks before the cut. */
static void test_cut(void)
{
	const struct pp_trace_chunk_info *ci;
	struct pp_trace_reader *r = open_raw(path);
	struct pp_trace_chunk_info *cc;
	uint64_t before = 0;
	size_t nc = 0;
	int bad = 0, cuts = 0;
	char cut[160];

	if (!r || pp_trace_index(r, &ci, &nc) || nc < 2) {
		CHECK(0, "compact: cut", "no index");
		pp_trace_close_reader(r);
		return;
	}
	cc = malloc(nc * sizeof(*cc));
	memcpy(cc, ci, nc * sizeof(*cc));
	pp_trace_close_reader(r);
	snprintf(cut, sizeof(cut), "%s/cut.trace", dir);
	for (size_t k = 0; k < nc; k++) {
		uint64_t at[3] = { cc[k].offset, cc[k].offset + 20,
				   cc[k].offset + 40 + (cc[k].raw_len ? 1000 : 0) };

		for (int j = 0; j < 3; j++) {
			uint64_t n;
			int rc;

			if (copy_prefix(cut, at[j])) {
				bad++;
				continue;
			}
			r = open_raw(cut);
			n = r ? compare(r, 0, &rc) : 0;
			if (!r || rc != 0 || n != before ||
			    pp_trace_truncated(r) != (j > 0))
				bad++;
			cuts++;
			pp_trace_close_reader(r);
		}
		before += cc[k].nrec;
	}
	CHECK(bad == 0, "compact: a trace cut anywhere reads its whole chunks "
	      "exactly", "%d of %d cuts wrong", bad, cuts);
	unlink(cut);
	free(cc);
}

/* --max-size: the oldest segment kept (its checkpoint) and every newer
 * one read as the end of the stream. */
static void test_segments(void)
{
	struct pp_trace_reader *r;
	const struct pp_hdr *rec;
	uint64_t i, n;
	int rc, segs = 0;
	char name[200];

	CHECK(write_stream(2u << 20, true) == 0, "compact: write segments",
	      "failed");
	for (int k = 1; k < 1000; k++) {
		snprintf(name, sizeof(name), "%s.%d", path, k);
		segs += !access(name, F_OK);
	}
	r = open_raw(path);
	if (!r)
		return;
	/* the first record after the oldest checkpoint: where it starts */
	while ((rc = pp_trace_next(r, &rec)) == 1 && rec->type == PP_REC_CKPT)
		;
	for (i = 0; rc == 1 && i < NREC; i++)
		if (rec->len == rec_at(i)->len &&
		    !memcmp(rec, rec_at(i), rec->len))
			break;
	n = i < NREC ? 1 + compare(r, i + 1, &rc) : 0;
	CHECK(segs >= 2 && i > 0 && rc == 0 && i + n == NREC,
	      "compact: segments read back as the stream's end",
	      "%d older segments, from record %llu, %llu read, rc %d", segs,
	      (unsigned long long)i, (unsigned long long)n, rc);
	pp_trace_close_reader(r);
	for (int k = 1; k < 1000; k++) {
		snprintf(name, sizeof(name), "%s.%d", path, k);
		unlink(name);
	}
}

/* Traces of ABI 3 (no compact records: the fuzz seeds made before
 * them) still read, every record checked, to their end. */
static void test_old_traces(void)
{
	static const char *const seeds[] = { "tests/fuzz/corpus/full.trace",
					      "tests/fuzz/corpus/sampled.trace" };

	for (int i = 0; i < 2; i++) {
		struct pp_trace_file_hdr fh = { .abi = 0 };
		struct pp_trace_reader *r;
		const struct pp_hdr *rec;
		char err[256] = "", label[128];
		FILE *f = fopen(seeds[i], "rb");
		long n = 0, bad = 0;
		int rc = -1;

		if (f && fread(&fh, sizeof(fh), 1, f) != 1)
			fh.abi = 0;
		if (f)
			fclose(f);
		r = pp_trace_open(seeds[i], err, sizeof(err));
		while (r && (rc = pp_trace_next(r, &rec)) == 1) {
			n++;
			bad += rec->type == PP_REC_ALLOC_D ||
			       rec->type == PP_REC_FREE_D;
		}
		snprintf(label, sizeof(label), "compact: an ABI 3 trace reads "
			 "(%s)", seeds[i]);
		CHECK(fh.abi == 3 && r && rc == 0 && n > 100 && !bad &&
		      !pp_trace_invalid(r) && !pp_trace_truncated(r), label,
		      "abi %u, rc %d, %ld records: %s %s", fh.abi, rc, n, err,
		      r ? pp_trace_error(r) : "");
		pp_trace_close_reader(r);
	}
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/pp_test_compact.XXXXXX");
	if (!mkdtemp(dir)) {
		printf("FAIL setup: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/t.trace", dir);
	make_stream();
	test_whole_and_seek();
	test_cut();
	test_segments();
	test_old_traces();
	unlink(path);
	rmdir(dir);
	free(stream);
	free(off8);
	TEST_EXIT();
}

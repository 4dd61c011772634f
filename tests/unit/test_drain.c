// SPDX-License-Identifier: MIT
/*
 * pyprof record's drain (collector/drain.c): records put into a small
 * ring as the shim puts them (wrapping often) and drained straight into
 * a trace, with drain limits that records straddle. What a reader gets
 * back must be what was put, record for record; the records of the
 * types looked at reach the callback, and only those. A reserved but
 * uncommitted record holds the drain there until it is committed; a
 * record no producer writes ends it with -EPROTO after the records
 * before it, which are in the trace.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drain.h"
#include "pp_test.h"

#define NREC 200000
#define RING (64u << 10)
#define LOOK ((1u << PP_REC_FUNC) | (1u << PP_REC_MARK))

static char dir[64], path[128];
static uint64_t *stream;	/* the records, back to back */
static size_t stream_len, nrec;
static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void put(const void *rec)
{
	const struct pp_hdr *h = rec;

	memcpy((char *)stream + stream_len, rec, h->len);
	stream_len += h->len;
	nrec++;
}

/* heap records near and far, with the odd FUNC, MARK, STACK, REALLOC
 * and a padded ALLOC; lengths from 8 to 72 bytes */
static void make_stream(void)
{
	uint64_t prev = 0x7f0000000000ull;

	stream = calloc(NREC, 80);
	for (uint64_t i = 0; i < NREC; i++) {
		uint64_t h = rnd(), addr = prev + (int64_t)(h % 4096) - 2048;
		unsigned k = h >> 56;

		if (k < 100) {
			struct pp_rec_alloc a = {
				{ sizeof(a), PP_REC_ALLOC, h & 3, 1 + i % 50 },
				i % 301 ? addr : h, 16 + (h >> 20) % 512 };

			put(&a);
			prev = a.addr;
		} else if (k < 200) {
			struct pp_rec_free f = {
				{ sizeof(f), PP_REC_FREE, h & 3, !(i % 401) },
				addr };

			put(&f);
			prev = addr;
		} else if (k < 215) {
			uint64_t b[9] = { 0 };
			struct pp_rec_func *fn = (void *)b;

			*fn = (struct pp_rec_func){
				{ 16 + 8 * (h % 8), PP_REC_FUNC, 0, i },
				(uint32_t)i, 4, 4 };
			memcpy(fn->data, "f.pyname", 8);
			put(b);
		} else if (k < 225) {
			struct pp_rec_mark m = { { sizeof(m), PP_REC_MARK, 0,
						   PP_MARK_DETACH }, i };

			put(&m);
		} else if (k < 240) {
			uint64_t b[5] = { 0 };
			struct pp_rec_stack *s = (void *)b;

			*s = (struct pp_rec_stack){
				.h = { sizeof(b), PP_REC_STACK, 0, i },
				.nframes = 3, .tid = 7 };
			put(b);
		} else if (k < 250) {
			struct pp_rec_realloc r = {
				{ sizeof(r), PP_REC_REALLOC, 1, 2 }, prev,
				prev + 64, i };

			put(&r);
		} else {
			uint64_t b[4] = { 0 };
			struct pp_rec_alloc *a = (void *)b;

			*a = (struct pp_rec_alloc){
				{ sizeof(b), PP_REC_ALLOC, 2, 9 }, addr, 40 };
			put(b);
			prev = addr;
		}
	}
}

/* as the shim: body first, then the header (one release store) */
static void *produce(struct pp_ring *r, const struct pp_hdr *h, int commit)
{
	char *p = pp_ring_reserve(r, h->len);

	if (!p)
		return NULL;
	memcpy(p + 8, h + 1, h->len - 8);
	if (commit)
		pp_ring_commit(p, h->type, h->flags, h->aux, h->len);
	return p;
}

static uint64_t space(const struct pp_ring *r)
{
	return r->mask + 1 - (r->hdr->prod_pos - r->hdr->cons_pos);
}

struct look {
	struct pp_trace_writer *w;
	uint64_t n, bad;
};

/* what the session does with them: into the trace one by one */
static void looked(void *ctx, const struct pp_hdr *rec)
{
	struct look *l = ctx;

	l->n++;
	if (!((LOOK >> rec->type) & 1))
		l->bad++;
	if (pp_trace_append(l->w, rec))
		l->bad++;
}

static struct pp_trace_writer *create(void)
{
	char err[256];
	struct pp_trace_writer *w = pp_trace_create(path, err, sizeof(err));

	if (!w)
		printf("# create: %s\n", err);
	return w;
}

/* Reads the trace: records equal to stream[0..len)? Their number. */
static uint64_t compare(size_t len, int *same)
{
	struct pp_trace_reader *r;
	const struct pp_hdr *rec;
	char err[256];
	size_t off = 0;
	uint64_t n = 0;

	*same = 0;
	r = pp_trace_open(path, err, sizeof(err));
	if (!r) {
		printf("# open: %s\n", err);
		return 0;
	}
	pp_trace_set_check(r, 0);	/* ids are noise here */
	while (pp_trace_next(r, &rec) == 1) {
		const struct pp_hdr *want = (const void *)((char *)stream + off);

		if (off >= len || rec->len != want->len ||
		    memcmp(rec, want, rec->len)) {
			printf("# record %llu differs (type %u len %u)\n",
			       (unsigned long long)n, rec->type, rec->len);
			pp_trace_close_reader(r);
			return n;
		}
		off += rec->len;
		n++;
	}
	*same = off == len && !pp_trace_truncated(r);
	pp_trace_close_reader(r);
	return n;
}

static void test_stream(void)
{
	struct pp_ring ring;
	struct look l = { 0 };
	size_t off = 0;
	uint64_t looks = 0, straddled = 0, n;
	long got = 0;
	int fd = pp_ring_create(&ring, RING, PP_RING_BLOCK), e = 0, same;

	l.w = create();
	if (fd < 0 || !l.w) {
		CHECK(0, "drain: ring and trace", "cannot create");
		return;
	}
	while (off < stream_len) {
		/* fill a random part of the free space, then drain with a
		 * random limit (records straddle it) */
		uint64_t fill = rnd() % RING;

		while (off < stream_len) {
			const struct pp_hdr *h = (const void *)((char *)stream +
								off);

			if (h->len > space(&ring) || fill < h->len)
				break;
			fill -= h->len;
			produce(&ring, h, 1);
			looks += (LOOK >> h->type) & 1;
			off += h->len;
		}
		do {
			size_t max = 8 + rnd() % 3000;

			got = pp_drain_to_trace(&ring, l.w, max, LOOK, looked,
						&l, &e);
			straddled += got > (long)max;
		} while (got > 0 && !e);
		if (got < 0 || e)
			break;
	}
	close(fd);
	pp_ring_unmap(&ring);
	CHECK(got == 0 && !e && pp_trace_close(l.w) == 0,
	      "drain: every drain ends well", "last %ld, err %d", got, e);
	n = compare(stream_len, &same);
	CHECK(same, "drain: the trace reads back every record as it was put",
	      "%llu of %zu records", (unsigned long long)n, nrec);
	CHECK(l.n == looks && !l.bad,
	      "drain: FUNC and MARK records reach the callback, only they",
	      "%llu of %llu, %llu wrong", (unsigned long long)l.n,
	      (unsigned long long)looks, (unsigned long long)l.bad);
	CHECK(straddled > 100, "drain: records straddled the drain's limit",
	      "%llu times", (unsigned long long)straddled);
}

/* n records of the stream from its start, committed (or the last one
 * reserved only); the bytes they take */
static size_t put_first(struct pp_ring *r, size_t n, char **last, int commit)
{
	size_t off = 0;

	for (size_t i = 0; i < n; i++) {
		const struct pp_hdr *h = (const void *)((char *)stream + off);

		*last = produce(r, h, commit || i + 1 < n);
		off += h->len;
	}
	return off;
}

static void test_uncommitted(void)
{
	struct pp_ring ring;
	struct look l = { 0 };
	const struct pp_hdr *h;
	char *last;
	size_t len, before;
	long a, b, c;
	int fd = pp_ring_create(&ring, RING, PP_RING_BLOCK), e, same;

	l.w = create();
	if (fd < 0 || !l.w) {
		CHECK(0, "drain: ring and trace", "cannot create");
		return;
	}
	/* 200 records, the 100th reserved but not committed yet */
	before = put_first(&ring, 99, &last, 1);
	h = (const void *)((char *)stream + before);
	last = produce(&ring, h, 0);
	len = before + h->len;
	for (size_t off = len, i = 0; i < 100; i++) {
		const struct pp_hdr *x = (const void *)((char *)stream + off);

		produce(&ring, x, 1);
		off += x->len;
	}
	a = pp_drain_to_trace(&ring, l.w, 1u << 20, LOOK, looked, &l, &e);
	b = pp_drain_to_trace(&ring, l.w, 1u << 20, LOOK, looked, &l, &e);
	pp_ring_commit(last, h->type, h->flags, h->aux, h->len);
	c = pp_drain_to_trace(&ring, l.w, 1u << 20, LOOK, looked, &l, &e);
	for (size_t off = len, i = 0; i < 100; i++) {
		const struct pp_hdr *x = (const void *)((char *)stream + off);

		len += x->len;
		off += x->len;
	}
	CHECK(a == (long)before && b == 0 && c == (long)(len - before),
	      "drain: an uncommitted record holds the drain until committed",
	      "drained %ld, %ld, %ld; want %zu, 0, %zu", a, b, c, before,
	      len - before);
	pp_trace_close(l.w);
	close(fd);
	pp_ring_unmap(&ring);
	compare(len, &same);
	CHECK(same, "drain: the held records follow in order", "differs");
}

static void test_bad(void)
{
	static const struct { uint16_t len; uint8_t type; const char *what; }
		bad[] = {
		{ 24, PP_REC_TICK, "a collector's type" },
		{ 24, 40, "an unknown type" },
		{ 24, PP_REC_ALLOC_D, "a compact type" },
		{ 20, PP_REC_ALLOC, "a length not a multiple of 8" },
		{ 4, PP_REC_FREE, "a length below a header" },
		{ 65528, PP_REC_ALLOC, "a length past what was reserved" },
	};

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct pp_ring ring;
		struct look l = { 0 };
		char *p, name[128], *last;
		size_t before;
		long got;
		int fd = pp_ring_create(&ring, RING, PP_RING_BLOCK), e, same;

		l.w = create();
		if (fd < 0 || !l.w) {
			CHECK(0, "drain: ring and trace", "cannot create");
			return;
		}
		before = put_first(&ring, 50, &last, 1);
		p = pp_ring_reserve(&ring, 24);
		memset(p + 8, 0x5a, 16);
		pp_ring_commit(p, bad[k].type, 0, 0, bad[k].len);
		got = pp_drain_to_trace(&ring, l.w, 1u << 20, LOOK, looked, &l,
					&e);
		pp_trace_close(l.w);
		close(fd);
		pp_ring_unmap(&ring);
		compare(before, &same);
		snprintf(name, sizeof(name), "drain: %s ends it with EPROTO, "
			 "the records before it written", bad[k].what);
		CHECK(got == -EPROTO && same, name, "drained %ld, same %d",
		      got, same);
	}
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/pp-drain-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/t.pp", dir);
	make_stream();
	test_stream();
	test_uncommitted();
	test_bad();
	unlink(path);
	rmdir(dir);
	free(stream);
	TEST_EXIT();
}

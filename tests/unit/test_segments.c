// SPDX-License-Identifier: MIT
/*
 * --max-size (collector/ckpt.c, the segments of collector/trace.c), on a
 * synthetic stream: churn, a leak, frees of blocks older than any
 * checkpoint, reallocs, mappings. A reader of the capped trace must end
 * with the same live state as a model fed the whole stream (every stack's
 * live bytes, the heap's live bytes and count, mappings), the files must
 * stay within the cap plus one chunk, a segment missing in the middle
 * only moves the start later, the chunk index seeks across segments, and
 * a new recording at the path removes the old segments.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "model.h"
#include "pp_test.h"
#include "trace.h"

#define CAP (4u << 20)
#define CHUNK ((1u << 20) + (1u << 16))
#define NSTACKS 16
#define T0 1000000000000ull
#define STEPS 1000000

static char dir[64], path[96];
static struct pp_trace_writer *w;
static struct pp_model ref;
static uint64_t now = T0, rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void emit(const struct pp_hdr *rec)
{
	if (pp_trace_append(w, rec))
		printf("# append type %u failed\n", rec->type);
	pp_model_feed(&ref, rec);
}

static void meta(void)
{
	union {
		struct pp_rec_meta r;
		char b[64];
	} u = { 0 };

	memcpy(u.r.data, "argv\tsyn.py\n", 12);
	u.r.h = (struct pp_hdr){ PP_REC_ALIGN(sizeof(u.r) + 12), PP_REC_META,
				 0, 77 };
	u.r.ts = now;
	emit(&u.r.h);
}

static void tick(void)
{
	struct pp_rec_tick t = { { sizeof(t), PP_REC_TICK, 0, 0 }, now,
				 64 << 20, 0 };

	emit(&t.h);
}

static void defs(void)
{
	union {
		struct pp_rec_func f;
		struct pp_rec_stack s;
		char b[128];
	} u;
	struct pp_rec_mark run = { { sizeof(run), PP_REC_MARK, 0, PP_MARK_RUN },
				   now };
	char name[32];

	for (uint32_t i = 1; i <= NSTACKS; i++) {
		size_t n = snprintf(name, sizeof(name), "f%u", i);

		memset(&u, 0, sizeof(u));
		u.f.file_len = 6;
		u.f.name_len = n;
		memcpy(u.f.data, "syn.py", 6);
		memcpy(u.f.data + 6, name, n);
		u.f.h = (struct pp_hdr){ PP_REC_ALIGN(sizeof(u.f) + 6 + n),
					 PP_REC_FUNC, 0, i };
		emit(&u.f.h);
		memset(&u, 0, sizeof(u));
		u.s.nframes = 1;
		u.s.frames[0] = (struct pp_frame){ i, 10 * i };
		u.s.h = (struct pp_hdr){ sizeof(u.s) + 8, PP_REC_STACK, 0, i };
		emit(&u.s.h);
	}
	emit(&run.h);
}

static void alloc(uint8_t type, uint64_t addr, uint64_t size, uint32_t st,
		  uint8_t dom)
{
	struct pp_rec_alloc a = { { sizeof(a), type, dom, st }, addr, size };

	emit(&a.h);
}

static void release(uint64_t addr)
{
	struct pp_rec_free f = { { sizeof(f), PP_REC_FREE, 0, 0 }, addr };

	emit(&f.h);
}

/* the stream: every block lives for a while; stack 1 leaks */
static void stream(void)
{
	enum { RING = 1024 };
	static uint64_t ring[RING];
	uint64_t addr;

	meta();
	tick();
	defs();
	/* an old block freed long after (any checkpoint must carry it) */
	alloc(PP_REC_ALLOC, 0x7000, 5000, 2, PP_DOM_LIBC);
	alloc(PP_REC_MMAP, 0x7f0000000000, 1 << 20, 3, PP_DOM_MMAP);
	alloc(PP_REC_MMAP, 0x7e0000000000, 4 << 20, 0, PP_DOM_ARENA);
	for (uint32_t i = 0; i < STEPS; i++) {
		uint32_t k = i % RING;

		if (ring[k])
			release(ring[k]);
		addr = (next_rand() & 0xffffffff0ull) | 0x100000000ull;
		alloc(PP_REC_ALLOC, addr, 16 + next_rand() % 512,
		      2 + next_rand() % (NSTACKS - 1), PP_DOM_PYOBJ);
		ring[k] = addr;
		if (i % 500 == 0)	/* the leak */
			alloc(PP_REC_ALLOC, 0x200000000000ull + i * 64ull, 64,
			      1, PP_DOM_PYMEM);
		if (i % 997 == 0) {	/* a realloc moving a block */
			struct pp_rec_realloc r = {
				{ sizeof(r), PP_REC_REALLOC, PP_DOM_LIBC, 4 },
				ring[k], ring[k] ^ 0x8, 999 };

			emit(&r.h);
			ring[k] ^= 0x8;
		}
		if (i % 2000 == 0) {
			now += 5000000;
			tick();
		}
		if (i == STEPS - 100)
			release(0x7000);
	}
	alloc(PP_REC_MUNMAP, 0x7f0000000000, 1 << 19, 0, PP_DOM_MMAP);
	now += 5000000;
	tick();
}

static uint64_t files(int *n)
{
	char name[512];
	uint64_t sum = 0;
	struct dirent *d;
	struct stat st;
	DIR *dp = opendir(dir);

	*n = 0;
	while (dp && (d = readdir(dp))) {
		if (strncmp(d->d_name, "t.pp", 4))
			continue;
		snprintf(name, sizeof(name), "%s/%s", dir, d->d_name);
		if (!stat(name, &st)) {
			sum += st.st_size;
			(*n)++;
		}
	}
	if (dp)
		closedir(dp);
	return sum;
}

static int read_model(struct pp_model *m, int *rc)
{
	char err[256];
	const struct pp_hdr *rec;
	struct pp_trace_reader *r = pp_trace_open(path, err, sizeof(err));

	pp_model_init(m);
	if (!r) {
		printf("# %s\n", err);
		return -1;
	}
	while ((*rc = pp_trace_next(r, &rec)) > 0)
		pp_model_feed(m, rec);
	if (*rc || pp_trace_invalid(r))
		printf("# rc %d: %s\n", *rc, pp_trace_error(r));
	pp_model_finish(m);
	pp_trace_close_reader(r);
	return 0;
}

/* every stack's live bytes, the heap's and the mappings: the same */
static int same_live(const struct pp_model *a, const struct pp_model *b)
{
	int bad = 0;

	for (uint32_t i = 0; i <= NSTACKS; i++) {
		const struct pp_stack *x = pp_model_stack(a, i);
		const struct pp_stack *y = pp_model_stack(b, i);

		if (x && y && x->end_live_bytes != y->end_live_bytes && bad++ < 3)
			printf("# stack %u: %.0f vs %.0f\n", i,
			       x->end_live_bytes, y->end_live_bytes);
	}
	if (a->end_live_bytes != b->end_live_bytes ||
	    a->end_live_count != b->end_live_count ||
	    a->arena_bytes != b->arena_bytes || a->maps.count != b->maps.count) {
		printf("# heap %.0f/%.0f vs %.0f/%.0f, arena %.0f vs %.0f\n",
		       a->end_live_bytes, a->end_live_count, b->end_live_bytes,
		       b->end_live_count, a->arena_bytes, b->arena_bytes);
		bad++;
	}
	return !bad;
}

int main(void)
{
	char err[256], name[160];
	struct pp_model m;
	int n, rc = 0, oldest = 0;
	uint64_t size;

	snprintf(dir, sizeof(dir), "/tmp/pp_test_segments.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/t.pp", dir);
	pp_model_init(&ref);
	w = pp_trace_create(path, err, sizeof(err));
	CHECK(w, "segments: create", "%s", err);
	if (!w)
		return 1;
	pp_ckpt_cap(w, CAP);
	stream();
	CHECK(pp_trace_close(w) == 0, "segments: close", "failed");
	pp_model_finish(&ref);

	size = files(&n);
	CHECK(n >= 4 && size <= CAP + CHUNK, "segments: within the cap",
	      "%d files, %llu bytes (cap %u + one chunk)", n,
	      (unsigned long long)size, CAP);
	read_model(&m, &rc);
	CHECK(rc == 0 && m.t_kept > T0 && same_live(&ref, &m),
	      "segments: the live state read from the capped trace is exact",
	      "rc %d, t_kept %llu", rc, (unsigned long long)m.t_kept);
	CHECK(ref.end_live_bytes > 0 && m.alloc_count < ref.alloc_count,
	      "segments: sums cover the part kept", "alloc %.0f of %.0f",
	      m.alloc_count, ref.alloc_count);
	pp_model_free(&m);

	/* the chunk index runs over every segment and seeks into them */
	{
		struct pp_trace_reader *r = pp_trace_open(path, err, sizeof(err));
		const struct pp_trace_chunk_info *ci;
		const struct pp_hdr *rec;
		size_t nc = 0, last = 0;
		uint64_t recs = 0;

		CHECK(r && pp_trace_index(r, &ci, &nc) == 0 && nc > 2 &&
		      ci[nc - 1].seg > 0, "segments: index spans segments",
		      "%zu chunks", nc);
		if (r && nc > 2) {
			last = nc - 1;
			pp_trace_set_check(r, 0);	/* nothing read before */
			pp_trace_seek_chunk(r, last);
			while (pp_trace_next(r, &rec) > 0)
				recs++;
			CHECK(recs == ci[last].nrec, "segments: seek to the last "
			      "chunk reads it", "%llu records of %u",
			      (unsigned long long)recs, ci[last].nrec);
			pp_trace_rewind(r);
		}
		pp_trace_close_reader(r);
	}

	/* a segment missing in the middle: the reader starts above it */
	for (int k = 1; k < 100000 && !oldest; k++) {
		snprintf(name, sizeof(name), "%s.%d", path, k);
		if (!access(name, F_OK))
			oldest = k;
	}
	snprintf(name, sizeof(name), "%s.%d", path, oldest + 1);
	CHECK(oldest && unlink(name) == 0, "segments: remove one in the middle",
	      "%s: %s", name, strerror(errno));
	read_model(&m, &rc);
	CHECK(rc == 0 && same_live(&ref, &m), "segments: a gap moves the start "
	      "later, the live state stays exact", "rc %d", rc);
	pp_model_free(&m);

	/* hostile segment headers: a FIFO where an older segment would be
	 * (not waited on), data_off past the end or inside a chunk of a
	 * segment read after another: an end or one error, no crash */
	{
		uint64_t offs[] = { 1ull << 40, PP_TRACE_HDR_LEN + 8 };
		int fd;

		snprintf(name, sizeof(name), "%s.%d", path, oldest + 1);
		CHECK(mkfifo(name, 0600) == 0, "segments: a FIFO in a segment's "
		      "place", "%s", strerror(errno));
		read_model(&m, &rc);
		CHECK(rc == 0 && same_live(&ref, &m), "segments: the FIFO is "
		      "passed over", "rc %d", rc);
		pp_model_free(&m);
		unlink(name);
		snprintf(name, sizeof(name), "%s.%d", path, oldest + 3);
		for (int i = 0; i < 2; i++) {
			fd = open(name, O_WRONLY);
			if (fd < 0 || pwrite(fd, &offs[i], 8, 48) != 8)
				printf("# %s: %s\n", name, strerror(errno));
			if (fd >= 0)
				close(fd);
			read_model(&m, &rc);
			CHECK(rc == 0 || rc == -1, i ? "segments: data_off inside "
			      "a chunk: an end or an error" : "segments: data_off "
			      "past the end: an end or an error", "rc %d", rc);
			pp_model_free(&m);
		}
	}

	/* a new recording at the path takes the old segments away */
	w = pp_trace_create(path, err, sizeof(err));
	CHECK(w && pp_trace_close(w) == 0, "segments: create again", "%s", err);
	files(&n);
	CHECK(n == 1, "segments: a new recording removes the old segments",
	      "%d files left", n);

	unlink(path);
	if (n > 1) {	/* what a failure left */
		for (int k = 1; k < 100000; k++) {
			snprintf(name, sizeof(name), "%s.%d", path, k);
			unlink(name);
		}
	}
	rmdir(dir);
	pp_model_free(&ref);
	TEST_EXIT();
}

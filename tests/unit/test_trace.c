// SPDX-License-Identifier: MIT
/*
 * Trace file writer/reader: round trip across chunks, truncation at
 * every byte, damaged headers/payloads/records, and a byte-flip loop
 * (the reader must report corruption or return the original records,
 * never anything else, never crash).
 *
 * `test_trace --bench` only measures append+flush throughput.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>
#include <lz4.h>

#include "pp_clock.h"
#include "pp_test.h"
#include "trace.h"

static char dir[64];
static char path[128];

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Record number i of the test stream, into buf (8-aligned, 64 KiB). */
static const struct pp_hdr *gen(uint64_t i, uint64_t *buf)
{
	uint64_t h = mix(i);
	struct pp_hdr *hdr = (void *)buf;
	size_t len;

	switch (h % 8) {
	case 0: case 1: case 2: {
		struct pp_rec_alloc *a = (void *)buf;

		*a = (struct pp_rec_alloc){
			.h = { sizeof(*a), PP_REC_ALLOC, h >> 8 & 3, i % 97 },
			.addr = h, .size = i % 1000,
		};
		return hdr;
	}
	case 3: case 4: {
		struct pp_rec_free *f = (void *)buf;

		*f = (struct pp_rec_free){
			.h = { sizeof(*f), PP_REC_FREE, 1, 0 }, .addr = h,
		};
		return hdr;
	}
	case 5: {
		struct pp_rec_realloc *r = (void *)buf;

		*r = (struct pp_rec_realloc){
			.h = { sizeof(*r), PP_REC_REALLOC, 2, 7 },
			.old = h, .addr = ~h, .size = i,
		};
		return hdr;
	}
	case 6: {
		struct pp_rec_func *f = (void *)buf;
		/* now and then one near the largest record there can be */
		uint16_t big = i % 99991 == 6 ? 30000 : 0;

		f->firstlineno = i;
		f->file_len = big + h % 23;
		f->name_len = big + (h >> 8) % 41;
		len = sizeof(*f) + f->file_len + f->name_len;
		memset(f->data, 'a' + i % 26, f->file_len + f->name_len);
		memset((char *)buf + len, 0, PP_REC_ALIGN(len) - len);
		f->h = (struct pp_hdr){ PP_REC_ALIGN(len), PP_REC_FUNC, 0, i };
		return hdr;
	}
	default:
		if (i % 64 == 7) {
			struct pp_rec_tick *t = (void *)buf;

			*t = (struct pp_rec_tick){
				.h = { sizeof(*t), PP_REC_TICK, 0, 0 },
				.ts = i + 1, .rss_bytes = h,
			};
		} else {
			struct pp_rec_stack *s = (void *)buf;

			s->nframes = h % 6;
			s->tid = i;
			for (uint32_t k = 0; k < s->nframes; k++)
				s->frames[k] = (struct pp_frame){ i + k, k };
			len = sizeof(*s) + s->nframes * sizeof(s->frames[0]);
			s->h = (struct pp_hdr){ len, PP_REC_STACK, 0, i };
		}
		return hdr;
	}
}

/* gen()'s stream is framing only (ids and times are noise): unchecked */
static struct pp_trace_reader *open_raw(const char *p, char *err, size_t n)
{
	struct pp_trace_reader *r = pp_trace_open(p, err, n);

	if (r)
		pp_trace_set_check(r, 0);
	return r;
}

/* Writes records [0, n), flushing every flush_every records (0 = never). */
static int write_trace(const char *p, uint64_t n, uint64_t flush_every,
		       uint64_t *bytes)
{
	static uint64_t buf[8192];
	char err[256];
	struct pp_trace_writer *w = pp_trace_create(p, err, sizeof(err));

	if (!w) {
		printf("# create %s: %s\n", p, err);
		return -1;
	}
	for (uint64_t i = 0; i < n; i++) {
		if (pp_trace_append(w, gen(i, buf)))
			return -1;
		if (flush_every && (i + 1) % flush_every == 0 &&
		    pp_trace_flush(w))
			return -1;
	}
	if (bytes) {
		if (pp_trace_flush(w))
			return -1;
		*bytes = pp_trace_bytes_written(w);
	}
	return pp_trace_close(w);
}

/*
 * Reads a trace and compares it with the generated stream. Returns the
 * records that matched; *rc gets the last pp_trace_next() result, or
 * -2 if a record differs from the original.
 */
static uint64_t read_trace(struct pp_trace_reader *r, int *rc)
{
	static uint64_t buf[8192];
	const struct pp_hdr *rec;
	uint64_t i = 0;
	int k;

	while ((k = pp_trace_next(r, &rec)) == 1) {
		const struct pp_hdr *want = gen(i, buf);

		if (rec->len != want->len || memcmp(rec, want, want->len)) {
			k = -2;
			break;
		}
		i++;
	}
	*rc = k;
	return i;
}

static int write_file(const char *p, const void *data, size_t n)
{
	int fd, ok;

	/* a fresh inode: ext4 flushes a file truncated over, which is slow */
	unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);

	if (fd < 0)
		return -1;
	ok = write(fd, data, n) == (ssize_t)n;
	close(fd);
	return ok ? 0 : -1;
}

static char *read_whole(const char *p, size_t *n)
{
	struct stat st;
	char *d;
	int fd = open(p, O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		return NULL;
	d = malloc(st.st_size + 1);
	*n = read(fd, d, st.st_size);
	close(fd);
	return d;
}

static void test_roundtrip(void)
{
	const uint64_t n = 3000000;
	const struct pp_trace_chunk_info *ci;
	struct pp_trace_reader *r;
	uint64_t bytes = 0, got, sum = 0, t0, last_ts = 0;
	size_t nc = 0;
	struct stat st;
	char err[256];
	bool ts_ok = true;
	int rc;

	t0 = pp_now_ns();
	rc = write_trace(path, n, 0, &bytes);
	t0 = pp_now_ns() - t0;
	CHECK(rc == 0, "roundtrip_write", "write_trace %d", rc);
	CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == bytes,
	      "roundtrip_bytes_written", "file %lld, counted %llu",
	      (long long)st.st_size, (unsigned long long)bytes);
	printf("# %llu records written in %.0f ms\n", (unsigned long long)n,
	       t0 / 1e6);

	r = open_raw(path, err, sizeof(err));
	CHECK(r, "roundtrip_open", "%s", err);
	if (!r)
		return;
	got = read_trace(r, &rc);
	CHECK(rc == 0 && got == n && !pp_trace_truncated(r), "roundtrip_read",
	      "rc %d, %llu of %llu records, truncated %d: %s", rc,
	      (unsigned long long)got, (unsigned long long)n,
	      pp_trace_truncated(r), pp_trace_error(r));

	rc = pp_trace_index(r, &ci, &nc);
	for (size_t i = 0; i < nc; i++) {
		sum += ci[i].nrec;
		if (ci[i].raw_len > PP_TRACE_CHUNK_RAW ||
		    !ci[i].ts_first || ci[i].ts_first > ci[i].ts_last ||
		    ci[i].ts_first <= last_ts)
			ts_ok = false;
		last_ts = ci[i].ts_last;
	}
	CHECK(rc == 0 && nc > 20 && sum == n, "roundtrip_index",
	      "rc %d, %zu chunks, %llu records", rc, nc,
	      (unsigned long long)sum);
	CHECK(ts_ok, "roundtrip_chunk_ts", "chunk timestamps out of order");

	/* seek to chunk 5: the next record is the first one it holds */
	if (nc > 5) {
		static uint64_t buf[8192];
		const struct pp_hdr *rec = NULL;
		uint64_t first = 0;

		for (size_t i = 0; i < 5; i++)
			first += ci[i].nrec;
		rc = pp_trace_seek_chunk(r, 5);
		rc = rc ? rc : pp_trace_next(r, &rec);
		CHECK(rc == 1 && !memcmp(rec, gen(first, buf), rec->len),
		      "seek_chunk", "rc %d", rc);
	}
	CHECK(pp_trace_seek_chunk(r, nc) == -1, "seek_chunk_range",
	      "seek past the index succeeded");
	pp_trace_rewind(r);
	got = read_trace(r, &rc);
	CHECK(rc == 0 && got == n, "rewind", "rc %d, %llu records", rc,
	      (unsigned long long)got);
	pp_trace_close_reader(r);
}

/* Flushing makes records readable at once; a reader can follow. */
static void test_follow(void)
{
	static uint64_t buf[8192];
	struct pp_trace_writer *w;
	struct pp_trace_reader *r;
	const struct pp_hdr *rec;
	char err[256];
	uint64_t got = 0;
	int rc, k = 0;

	w = pp_trace_create(path, err, sizeof(err));
	r = w ? open_raw(path, err, sizeof(err)) : NULL;
	CHECK(w && r, "follow_open", "%s", err);
	if (!r)
		return;
	rc = pp_trace_next(r, &rec);
	CHECK(rc == 0 && !pp_trace_truncated(r), "follow_empty",
	      "rc %d", rc);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 1000; i++, k++)
			pp_trace_append(w, gen(k, buf));
		pp_trace_flush(w);
		while ((rc = pp_trace_next(r, &rec)) == 1 &&
		       !memcmp(rec, gen(got, buf), rec->len))
			got++;
	}
	CHECK(rc == 0 && got == 3000, "follow_growing",
	      "rc %d, %llu records", rc, (unsigned long long)got);
	CHECK(pp_trace_close(w) == 0, "writer_close", "close failed");
	pp_trace_close_reader(r);
}

static void test_append_invalid(void)
{
	struct pp_hdr bad[4] = {
		{ 12, PP_REC_FREE, 0, 0 },
		{ 0, PP_REC_FREE, 0, 0 },
		{ 16, 0, 0, 0 },
		{ 16, PP_REC_MAX, 0, 0 },
	};
	struct pp_trace_writer *w;
	char err[256];
	int n = 0;

	w = pp_trace_create(path, err, sizeof(err));
	if (!w)
		return;
	for (int i = 0; i < 4; i++)
		n += pp_trace_append(w, &bad[i]) == -EINVAL;
	CHECK(n == 4, "append_rejects_invalid", "%d of 4 rejected", n);
	pp_trace_close(w);

	w = pp_trace_create("/nonexistent/dir/x.trace", err, sizeof(err));
	CHECK(!w && strstr(err, "cannot create: No such file"),
	      "create_bad_path", "%s", err);
}

static void expect_open_error(const char *name, const char *p,
			      const char *want)
{
	char err[256] = "";
	struct pp_trace_reader *r = open_raw(p, err, sizeof(err));

	CHECK(!r && strstr(err, want), name, "got \"%s\", want \"%s\"",
	      r ? "(opened)" : err, want);
	pp_trace_close_reader(r);
}

static void test_open_errors(void)
{
	struct pp_trace_file_hdr fh = {
		.magic = "PYPROFTR", .version = 1, .hdr_len = 32, .abi = PP_ABI_VERSION,
		.flags = PP_TRACE_F_LZ4,
	};
	struct pp_trace_file_hdr h;

	expect_open_error("open_nonexistent", "/nonexistent.trace",
			  "cannot open: No such file or directory");
	expect_open_error("open_directory", dir,
			  "cannot open: Is a directory");
	write_file(path, "", 0);
	expect_open_error("open_empty", path, "not a pyprof trace");
	write_file(path, "hello world, this is some text file\n", 36);
	expect_open_error("open_wrong_magic", path, "not a pyprof trace");
	write_file(path, "PYP", 3);
	expect_open_error("open_truncated_magic", path,
			  "truncated trace header");
	write_file(path, &fh, 20);
	expect_open_error("open_truncated_header", path,
			  "truncated trace header (20 of 32 bytes)");
	h = fh;
	h.version = 2;
	write_file(path, &h, sizeof(h));
	expect_open_error("open_future_version", path,
			  "unsupported trace format version 2 (this pyprof reads 1)");
	h = fh;
	h.abi = 99;
	write_file(path, &h, sizeof(h));
	expect_open_error("open_other_abi", path, "ABI version 99");
	h = fh;
	h.abi = 2;	/* before checkpoints: still read */
	write_file(path, &h, sizeof(h));
	{
		char err[256];
		struct pp_trace_reader *r = pp_trace_open(path, err, sizeof(err));
		const struct pp_hdr *rec;

		CHECK(r && pp_trace_next(r, &rec) == 0 && !pp_trace_truncated(r),
		      "open_abi_2_reads", "%s", r ? pp_trace_error(r) : err);
		pp_trace_close_reader(r);
	}
	h = fh;
	h.hdr_len = 8;
	write_file(path, &h, sizeof(h));
	expect_open_error("open_bad_hdr_len", path, "corrupt trace header");
	h = fh;
	h.flags = 0;	/* no codec we know */
	write_file(path, &h, sizeof(h));
	expect_open_error("open_unknown_codec", path, "unsupported trace flags");
}

/* Cut a 3-chunk trace at every length: never an error, only the
 * records of the complete chunks, truncated unless cut between chunks. */
static void test_truncation(void)
{
	const struct pp_trace_chunk_info *ci;
	struct pp_trace_reader *r;
	uint64_t bound[4], nrec[4] = { 0 };
	size_t size, nc = 0, bad = 0;
	char err[256], *data;
	int rc;

	if (write_trace(path, 300, 100, NULL))
		return;
	data = read_whole(path, &size);
	r = open_raw(path, err, sizeof(err));
	if (!r || pp_trace_index(r, &ci, &nc) || nc != 3) {
		CHECK(0, "truncate_setup", "%zu chunks: %s", nc, err);
		return;
	}
	for (int i = 0; i < 3; i++) {
		bound[i] = ci[i].offset;
		nrec[i + 1] = nrec[i] + ci[i].nrec;
	}
	bound[3] = size;
	pp_trace_close_reader(r);

	for (size_t len = PP_TRACE_HDR_LEN; len <= size; len++) {
		uint64_t want = 0, got;
		bool cut = true;

		for (int i = 0; i < 4; i++) {
			if (len >= bound[i])
				want = nrec[i];
			if (len == bound[i])
				cut = false;
		}
		write_file(path, data, len);
		r = open_raw(path, err, sizeof(err));
		if (!r) {
			if (bad++ < 3)
				printf("# at %zu: %s\n", len, err);
			continue;
		}
		got = read_trace(r, &rc);
		if (rc != 0 || got != want || pp_trace_truncated(r) != cut) {
			if (bad++ < 3)
				printf("# at %zu: rc %d, %llu of %llu, truncated %d: %s\n",
				       len, rc, (unsigned long long)got,
				       (unsigned long long)want,
				       pp_trace_truncated(r), pp_trace_error(r));
		}
		pp_trace_close_reader(r);
	}
	CHECK(bad == 0, "truncate_every_byte", "%zu lengths wrong of %zu",
	      bad, size);

	/* the interesting points by name, for a readable failure */
	struct { const char *name; uint64_t at; bool cut; uint64_t want; } pt[] = {
		{ "truncate_after_file_header", bound[0], false, 0 },
		{ "truncate_in_chunk_header", bound[1] + 20, true, nrec[1] },
		{ "truncate_in_payload", bound[2] + 60, true, nrec[2] },
		{ "truncate_last_byte", size - 1, true, nrec[2] },
	};
	for (size_t i = 0; i < sizeof(pt) / sizeof(pt[0]); i++) {
		uint64_t got = 0;

		write_file(path, data, pt[i].at);
		r = open_raw(path, err, sizeof(err));
		if (r)
			got = read_trace(r, &rc);
		CHECK(r && rc == 0 && got == pt[i].want &&
		      pp_trace_truncated(r) == pt[i].cut, pt[i].name,
		      "rc %d, %llu records", r ? rc : -9,
		      (unsigned long long)got);
		pp_trace_close_reader(r);
	}
	free(data);
}

/* Expect records of chunk 0, then -1 with an error containing want. */
static void expect_corrupt(const char *name, uint64_t want_recs,
			   const char *want)
{
	struct pp_trace_reader *r;
	const struct pp_hdr *rec;
	char err[256];
	uint64_t got;
	int rc;

	r = open_raw(path, err, sizeof(err));
	if (!r) {
		CHECK(0, name, "open: %s", err);
		return;
	}
	got = read_trace(r, &rc);
	CHECK(rc == -1 && got == want_recs && strstr(pp_trace_error(r), want) &&
	      !strncmp(pp_trace_error(r), "corrupt trace: chunk ", 21) &&
	      pp_trace_next(r, &rec) == -1, name,
	      "rc %d, %llu records, error \"%s\", want \"%s\"", rc,
	      (unsigned long long)got, pp_trace_error(r), want);
	printf("# %s: %s\n", name, pp_trace_error(r));
	pp_trace_close_reader(r);
}

static void test_damage(void)
{
	size_t size, c1;
	char *data, want[80];

	if (write_trace(path, 300, 100, NULL))
		return;
	data = read_whole(path, &size);
	c1 = PP_TRACE_HDR_LEN + sizeof(struct pp_trace_chunk_hdr) +
	     ((struct pp_trace_chunk_hdr *)(data + PP_TRACE_HDR_LEN))->comp_len;

	data[c1 + 50] ^= 0x10;
	write_file(path, data, size);
	snprintf(want, sizeof(want), "chunk 1 at offset %zu: payload CRC mismatch",
		 c1);
	expect_corrupt("flip_payload", 100, want);
	data[c1 + 50] ^= 0x10;

	data[c1 + 5] ^= 0x01;	/* comp_len */
	write_file(path, data, size);
	expect_corrupt("flip_chunk_header", 100, "chunk header CRC mismatch");
	data[c1 + 5] ^= 0x01;

	data[c1] = 'X';
	write_file(path, data, size);
	expect_corrupt("chunk_magic", 100, "bad chunk magic");
	free(data);
}

/* the file header's ABI for write_chunk() */
static uint32_t chunk_abi = PP_ABI_VERSION;

/* Writes a file header and one chunk of raw bytes, as a buggy or
 * hostile writer might; lengths and CRCs are made consistent. */
static void write_chunk(const void *raw, uint32_t raw_len, uint32_t nrec,
			uint32_t claim_raw, uint64_t comp_flip)
{
	struct pp_trace_file_hdr fh = {
		.magic = "PYPROFTR", .version = 1, .hdr_len = 32,
		.abi = chunk_abi, .flags = PP_TRACE_F_LZ4,
	};
	size_t cap = LZ4_compressBound(raw_len);
	char *out = malloc(sizeof(fh) + sizeof(struct pp_trace_chunk_hdr) + cap);
	struct pp_trace_chunk_hdr *ch = (void *)(out + sizeof(fh));
	size_t n = LZ4_compress_default(raw, (char *)(ch + 1), raw_len, cap);

	memcpy(out, &fh, sizeof(fh));
	if (comp_flip)	/* damage the LZ4 input behind a good CRC */
		((char *)(ch + 1))[comp_flip % n] ^= 1 << (comp_flip >> 32) % 8;
	*ch = (struct pp_trace_chunk_hdr){
		.magic = "PPCK", .comp_len = n, .raw_len = claim_raw,
		.nrec = nrec,
	};
	ch->data_crc = crc32(0, (void *)(ch + 1), n);
	ch->hdr_crc = crc32(0, (void *)ch, offsetof(struct pp_trace_chunk_hdr,
						    hdr_crc));
	write_file(path, out, sizeof(fh) + sizeof(*ch) + n);
	free(out);
}

static void write_raw_chunk(const void *raw, uint32_t raw_len, uint32_t nrec,
			    uint32_t claim_raw)
{
	write_chunk(raw, raw_len, nrec, claim_raw, 0);
}

static void test_bad_records(void)
{
	struct pp_rec_free recs[4];
	struct pp_hdr *h1 = &recs[1].h;

	for (int i = 0; i < 4; i++)
		recs[i] = (struct pp_rec_free){
			.h = { sizeof(recs[0]), PP_REC_FREE, 0, 0 }, .addr = i,
		};
	write_raw_chunk(recs, sizeof(recs), 4, sizeof(recs));
	{
		char err[256];
		struct pp_trace_reader *r = open_raw(path, err, sizeof(err));
		const struct pp_hdr *rec;
		int n = 0;

		while (r && pp_trace_next(r, &rec) == 1)
			n++;
		CHECK(n == 4, "raw_chunk_valid", "%d records", n);
		pp_trace_close_reader(r);
	}

	h1->len = 12;
	write_raw_chunk(recs, sizeof(recs), 4, sizeof(recs));
	expect_corrupt("record_len_unaligned", 0, "record 1 at byte 16: bad length 12");
	h1->len = 0;
	write_raw_chunk(recs, sizeof(recs), 4, sizeof(recs));
	expect_corrupt("record_len_zero", 0, "bad length 0");
	h1->len = 56;
	write_raw_chunk(recs, sizeof(recs), 4, sizeof(recs));
	expect_corrupt("record_len_overrun", 0, "bad length 56");
	h1->len = 16;
	h1->type = 0;
	write_raw_chunk(recs, sizeof(recs), 4, sizeof(recs));
	expect_corrupt("record_type_zero", 0, "bad type 0");
	h1->type = 200;
	write_raw_chunk(recs, sizeof(recs), 4, sizeof(recs));
	expect_corrupt("record_type_unknown", 0, "bad type 200");
	h1->type = PP_REC_FREE;
	write_raw_chunk(recs, sizeof(recs), 3, sizeof(recs));
	expect_corrupt("record_count", 0, "4 records, header says 3");
	write_raw_chunk(recs, sizeof(recs), 4, sizeof(recs) + 8);
	expect_corrupt("raw_len_mismatch", 0, "decompress");
	write_raw_chunk(recs, sizeof(recs), 4, 128u << 20);
	expect_corrupt("raw_len_huge", 0, "raw length");
	write_raw_chunk(recs, sizeof(recs), 40, sizeof(recs));
	expect_corrupt("nrec_impossible", 0, "40 records cannot fill 64 bytes");
}

/*
 * Compact records made by hand (docs/trace-format.md): each difference
 * applies to the chunk's previous ALLOC/FREE address, from 0; a wrong
 * length is corruption, and so are they in a trace of ABI 3.
 */
static void test_compact_records(void)
{
	uint64_t raw[8] = { 0 };
	struct pp_rec_alloc_d *a0 = (void *)&raw[0], *a1 = (void *)&raw[5];
	struct pp_rec_free *f = (void *)&raw[2];
	struct pp_hdr *fd = (void *)&raw[4], *fd2 = (void *)&raw[7];
	const struct pp_rec_alloc want0 = { { 24, PP_REC_ALLOC, 2, 7 },
					    0x10000, 48 };
	const struct pp_rec_free want1 = { { 16, PP_REC_FREE, 0, 0 },
					   0x7f0000001000ull };
	const struct pp_rec_free want2 = { { 16, PP_REC_FREE, 3, 0 },
					   0x7f0000001040ull };
	const struct pp_rec_alloc want3 = { { 24, PP_REC_ALLOC, 1, 9 },
					    0x7eff80001040ull, 0xffffffffu };
	const struct pp_rec_free want4 = { { 16, PP_REC_FREE, 1, 0 },
					   0x7f0000000000ull };
	const void *want[5] = { &want0, &want1, &want2, &want3, &want4 };
	const struct pp_hdr *rec;
	struct pp_trace_reader *r;
	char err[256];
	int n = 0, same = 0;

	*a0 = (struct pp_rec_alloc_d){ { 16, PP_REC_ALLOC_D, 2, 7 }, 0x10000,
				       48 };
	*f = want1;
	*fd = (struct pp_hdr){ 8, PP_REC_FREE_D, 3, 0x40 };
	*a1 = (struct pp_rec_alloc_d){ { 16, PP_REC_ALLOC_D, 1, 9 },
				       INT32_MIN, 0xffffffffu };
	*fd2 = (struct pp_hdr){ 8, PP_REC_FREE_D, 1, 0x7fffefc0 };
	write_raw_chunk(raw, sizeof(raw), 5, sizeof(raw));
	r = open_raw(path, err, sizeof(err));
	while (r && pp_trace_next(r, &rec) == 1) {
		if (n < 5)
			same += rec->len == ((const struct pp_hdr *)want[n])->len &&
				!memcmp(rec, want[n], rec->len);
		n++;
	}
	CHECK(n == 5 && same == 5, "compact_records_decode",
	      "%d records, %d as expected: %s", n, same,
	      r ? pp_trace_error(r) : err);
	pp_trace_close_reader(r);

	a0->h.len = 24;
	write_raw_chunk(raw, sizeof(raw), 4, sizeof(raw));
	expect_corrupt("compact_alloc_len", 0, "record 0 at byte 0: bad length 24");
	a0->h.len = 16;
	fd->len = 16;
	write_raw_chunk(raw, sizeof(raw), 4, sizeof(raw));
	expect_corrupt("compact_free_len", 0, "record 2 at byte 32: bad length 16");
	fd->len = 8;
	chunk_abi = 3;
	write_raw_chunk(raw, sizeof(raw), 5, sizeof(raw));
	expect_corrupt("compact_in_abi3", 0, "record 0 at byte 0: bad type 38");
	chunk_abi = PP_ABI_VERSION;
}

/* Random byte flips (and cuts): -1 or exactly the original records. */
static void test_fuzz(void)
{
	const int rounds = 4000;
	size_t size;
	char *data, *copy, err[256];
	int bad = 0, corrupt = 0;

	if (write_trace(path, 2000, 400, NULL))
		return;
	data = read_whole(path, &size);
	copy = malloc(size);
	for (int it = 0; it < rounds; it++) {
		uint64_t h = mix(it + 12345);
		size_t len = size;
		struct pp_trace_reader *r;
		int rc;

		memcpy(copy, data, size);
		for (int k = 0; k <= (int)(h % 4); k++) {
			h = mix(h);
			copy[h % size] ^= 1 << (h >> 32) % 8;
		}
		if (it % 5 == 0)
			len = mix(h) % (size + 1);
		write_file(path, copy, len);
		r = open_raw(path, err, sizeof(err));
		if (!r)
			continue;
		read_trace(r, &rc);
		if (rc == -2)
			bad++;
		corrupt += rc == -1;
		pp_trace_close_reader(r);
	}
	CHECK(bad == 0, "fuzz_flips", "%d of %d rounds returned altered records",
	      bad, rounds);
	printf("# fuzz: %d rounds, %d reported corrupt\n", rounds, corrupt);
	free(copy);
	free(data);
}

/*
 * Damage behind valid CRCs, which byte flips in a file never reach:
 * flipped bytes in the records or in the LZ4 block, then a chunk with
 * consistent lengths and CRCs. The reader must reject or return records
 * that lie within the chunk (the sanitizer build checks the bounds).
 */
static void test_fuzz_records(void)
{
	static uint64_t raw[4096], buf[8192];
	const int rounds = 3000;
	uint32_t len = 0, nrec = 0;
	int bad = 0, corrupt = 0;

	for (uint64_t i = 0; len < sizeof(raw) - 2048; i++) {
		const struct pp_hdr *h = gen(i % 99991 == 6 ? i + 1 : i, buf);

		memcpy((char *)raw + len, h, h->len);
		len += h->len;
		nrec++;
	}
	for (int it = 0; it < rounds; it++) {
		static uint64_t copy[4096];
		uint64_t h = mix(it + 777), total = 0;
		struct pp_trace_reader *r;
		const struct pp_hdr *rec;
		char err[256];
		int rc;

		memcpy(copy, raw, len);
		if (it % 2)
			for (int k = 0; k <= (int)(h % 3); k++) {
				h = mix(h);
				((char *)copy)[h % len] ^= 1 << (h >> 32) % 8;
			}
		write_chunk(copy, len, nrec, len, it % 2 ? 0 : mix(h) | 1);
		r = open_raw(path, err, sizeof(err));
		if (!r) {
			bad++;
			continue;
		}
		while ((rc = pp_trace_next(r, &rec)) == 1) {
			total += rec->len;
			if (rec->len < 8 || rec->len % 8 || !rec->type ||
			    rec->type >= PP_REC_MAX)
				break;
		}
		/* a compact record comes back at most twice its size */
		if (rc == 1 || total > 2 * len)
			bad++;
		corrupt += rc == -1;
		pp_trace_close_reader(r);
	}
	CHECK(bad == 0, "fuzz_records", "%d of %d rounds returned bad records",
	      bad, rounds);
	printf("# fuzz_records: %d rounds, %d reported corrupt\n", rounds,
	       corrupt);
}

/* Append+flush throughput over the varied test stream (random addresses:
 * harder to compress than a real heap's), generated beforehand. */
static int bench(void)
{
	const uint64_t n = 4000000;
	static uint64_t buf[8192];
	struct pp_trace_writer *w;
	uint64_t t0, raw = 0, file;
	char err[256], *recs, *p;

	for (uint64_t i = 0; i < n; i++)
		raw += gen(i, buf)->len;
	recs = malloc(raw);
	if (!recs)
		return 1;
	for (uint64_t i = 0, off = 0; i < n; i++) {
		const struct pp_hdr *h = gen(i, buf);

		memcpy(recs + off, h, h->len);
		off += h->len;
	}
	w = pp_trace_create(path, err, sizeof(err));
	if (!w)
		return 1;
	t0 = pp_now_ns();
	for (p = recs; p < recs + raw; p += ((struct pp_hdr *)p)->len)
		pp_trace_append(w, (const struct pp_hdr *)p);
	pp_trace_flush(w);
	file = pp_trace_bytes_written(w);
	t0 = pp_now_ns() - t0;
	pp_trace_close(w);
	printf("append+flush: %llu records, %.1f MB raw -> %.1f MB file in %.3f s: %.0f MB/s, %.1f Mrec/s\n",
	       (unsigned long long)n, raw / 1e6, file / 1e6, t0 / 1e9,
	       raw / 1e6 / (t0 / 1e9), n / 1e6 / (t0 / 1e9));
	free(recs);
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/pp_test_trace.XXXXXX");
	if (!mkdtemp(dir)) {
		printf("FAIL setup: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/t.trace", dir);
	if (argc > 1 && !strcmp(argv[1], "--bench")) {
		rc = bench();
		unlink(path);
		rmdir(dir);
		return rc;
	}
	test_roundtrip();
	test_follow();
	test_append_invalid();
	test_open_errors();
	test_truncation();
	test_damage();
	test_bad_records();
	test_compact_records();
	test_fuzz();
	test_fuzz_records();
	unlink(path);
	rmdir(dir);
	TEST_EXIT();
}

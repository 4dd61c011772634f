// SPDX-License-Identifier: MIT
/*
 * Trace file writer and reader; the format is in docs/trace-format.md.
 *
 * The writer sits on the collector's hot path, so appending a record is
 * a bounds check and a memcpy; compression, the CRC and the write happen
 * once per chunk. Chunks are written with one write() each, so a killed
 * collector leaves at worst a cut-off last chunk, which the reader
 * treats as the end of the trace rather than as damage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <zlib.h>
#include <lz4.h>

#include "alloc.h"
#include "fmt.h"
#include "pp_clock.h"
#include "reccheck.h"
#include "trace.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "trace files are little-endian and written in host order"
#endif

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

/*
 * Chunks are compressed at record rate on the collector's core, so the
 * writer uses LZ4: about 3.5x fewer instructions per byte than zstd -1
 * here, for files about twice as large.
 */
/* Header bytes the reader accepts: room for future fields, not a DoS. */
#define HDR_LEN_MAX	4096u
#define HDR_CRC_SPAN	offsetof(struct pp_trace_chunk_hdr, hdr_crc)
/* a match length byte adds 255 bytes of output at most */
#define LZ4_MAX_RATIO	256u

static uint32_t crc(const void *p, size_t n)
{
	return crc32(0, p, n);
}

/* Writer */

struct seg_kept {
	uint32_t seq;
	uint64_t bytes;
};

struct pp_trace_writer {
	int fd;
	int err;		/* -errno of the last failed write, or 0 */
	uint64_t lost;		/* records of chunks that failed to write */
	uint32_t nrec;		/* records in buf */
	size_t used;		/* bytes in buf */
	uint64_t ts_first, ts_last;
	uint64_t prev_addr;	/* the chunk's last ALLOC/FREE address */
	uint64_t bytes;		/* written to the current segment */
	char *buf;		/* PP_TRACE_CHUNK_RAW */
	char *out;		/* chunk header + compressed payload */
	size_t out_cap;
	char *path;
	uint64_t rec_id;
	uint32_t seq;		/* the current segment's */
	/* --max-size */
	uint64_t max_bytes, seg_bytes;	/* the cap; a segment's target */
	const struct pp_trace_cap_ops *ops;
	void *ctx;
	struct seg_kept *olds;	/* older segments kept, oldest first */
	size_t nolds, cap_olds;
	uint64_t olds_bytes;
	uint64_t ckpt_bytes;	/* the current segment's checkpoint */
	bool rotating, cap_off, warned_cap;
	/* free space on the trace's file system */
	uint64_t written;	/* every byte ever written */
	uint64_t space_t, rate_t, rate_bytes;
	double rate;		/* bytes/s over the last RATE_NS */
	bool warned_space;
	int reserve_fd;		/* room kept for the count of what is lost */
};

#define SPACE_EVERY_NS	1000000000ull
#define RATE_NS		10000000000ull
/* warn when the disk holds less than this much more recording */
#define SPACE_AHEAD_S	60
/* a segment, at least (a chunk is up to ~1 MiB compressed) */
#define SEG_MIN		(256u << 10)
#define CAP_SEGS	8

/*
 * Room on the trace's file system for the records that say what a
 * failed write lost (they follow it in small chunks, README "Trace
 * files"): a full disk may leave none, not even after the failed
 * chunk's part is cut off (nothing of it went out). An unnamed file
 * (O_TMPFILE) holds RESERVE bytes and is closed at the first failure;
 * the kernel frees it if pyprof dies. None where O_TMPFILE is not
 * supported: the count then reaches the file only if room is left.
 */
#define RESERVE (64u << 10)

static int reserve_room(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (posix_fallocate(fd, 0, RESERVE)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void release_room(struct pp_trace_writer *w)
{
	if (w->reserve_fd >= 0)
		close(w->reserve_fd);
	w->reserve_fd = -1;
}

/* The chunk's buffer is empty again (written, lost or abandoned). */
static void chunk_empty(struct pp_trace_writer *w)
{
	w->used = 0;
	w->nrec = 0;
	w->ts_first = w->ts_last = 0;
	w->prev_addr = 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t k = write(fd, c, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO;
		c += k;
		n -= k;
	}
	return 0;
}

static void seg_name(char *buf, size_t len, const char *path, uint32_t seq)
{
	snprintf(buf, len, "%s.%u", path, seq);
}

/* A pyprof trace's segment fields; 0 if it is none (or has none). */
static int read_seg_hdr(int fd, struct pp_trace_file_hdr *fh,
			struct pp_trace_seg_hdr *sh)
{
	char b[PP_TRACE_HDR_LEN];

	if (pread(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return 0;
	memcpy(fh, b, sizeof(*fh));
	memcpy(sh, b + sizeof(*fh), sizeof(*sh));
	return !memcmp(fh->magic, PP_TRACE_MAGIC, sizeof(fh->magic)) &&
	       fh->version == PP_TRACE_VERSION && fh->abi >= 3 &&
	       fh->hdr_len >= PP_TRACE_HDR_LEN && sh->rec_id && sh->seq;
}

static int seg_file_hdr(const char *name, struct pp_trace_seg_hdr *sh)
{
	struct pp_trace_file_hdr fh;
	int fd = open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK), ok;
	struct stat st;

	if (fd < 0)
		return 0;
	ok = !fstat(fd, &st) && S_ISREG(st.st_mode) &&
	     read_seg_hdr(fd, &fh, sh);
	close(fd);
	return ok;
}

/*
 * A new recording over an old capped one: its older segments (the same
 * recording id, numbered below the one at path) go too, and nothing
 * else: a file of that name that is not one of them stays.
 */
static void remove_old_segments(const char *path)
{
	struct pp_trace_seg_hdr head, sh;
	char name[PATH_MAX];
	uint32_t k, missing = 0;

	if (!seg_file_hdr(path, &head))
		return;
	/* from one past it (a rotation cut short leaves that one) down,
	 * over a gap or two (a segment the user deleted) */
	for (k = head.seq + 1; k >= 1 && missing < 64; k--) {
		seg_name(name, sizeof(name), path, k);
		if (seg_file_hdr(name, &sh) && sh.rec_id == head.rec_id &&
		    sh.seq == k) {
			unlink(name);
			missing = 0;
		} else if (k < head.seq) {
			missing++;
		}
	}
}

static uint64_t random_id(void)
{
	uint64_t v = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &v, sizeof(v)) != sizeof(v))
			v = 0;
		close(fd);
	}
	if (!v)
		v = pp_now_ns() ^ ((uint64_t)getpid() << 32);
	return v | 1;
}

/* A segment file: created (O_TRUNC) with its header; fd or -errno. */
static int seg_create(struct pp_trace_writer *w, const char *name,
		      uint32_t seq)
{
	struct {
		struct pp_trace_file_hdr f;
		struct pp_trace_seg_hdr s;
	} h = {
		.f = { .version = PP_TRACE_VERSION, .hdr_len = sizeof(h),
		       .abi = PP_ABI_VERSION, .flags = PP_TRACE_F_LZ4 },
		.s = { .rec_id = w->rec_id, .seq = seq,
		       .data_off = sizeof(h) },
	};
	int fd, e;

	_Static_assert(sizeof(h) == PP_TRACE_HDR_LEN, "header");
	memcpy(h.f.magic, PP_TRACE_MAGIC, sizeof(h.f.magic));
	fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	e = write_all(fd, &h, sizeof(h));
	if (e) {
		close(fd);
		unlink(name);
		return e;
	}
	return fd;
}

struct pp_trace_writer *pp_trace_create(const char *path, char *err,
					size_t errlen)
{
	struct pp_trace_writer *w;
	int e;

	w = pp_xcalloc(1, sizeof(*w));
	w->fd = -1;
	w->reserve_fd = -1;
	w->out_cap = sizeof(struct pp_trace_chunk_hdr) +
		     LZ4_compressBound(PP_TRACE_CHUNK_RAW);
	w->buf = pp_xmalloc(PP_TRACE_CHUNK_RAW);
	w->out = pp_xmalloc(w->out_cap);
	w->path = pp_xstrdup(path);
	w->rec_id = random_id();
	w->seq = 1;

	remove_old_segments(path);
	w->fd = seg_create(w, path, 1);
	if (w->fd < 0) {
		e = -w->fd;
		goto fail;
	}
	w->bytes = w->written = PP_TRACE_HDR_LEN;
	w->reserve_fd = reserve_room(path);
	return w;
fail:
	snprintf(err, errlen, "cannot create: %s", strerror(e));
	free(w->path);
	free(w->out);
	free(w->buf);
	free(w);
	return NULL;
}

void pp_trace_set_cap(struct pp_trace_writer *w, uint64_t max_bytes,
		      const struct pp_trace_cap_ops *ops, void *ctx)
{
	w->max_bytes = max_bytes;
	w->seg_bytes = max_bytes / CAP_SEGS > SEG_MIN ? max_bytes / CAP_SEGS :
							 SEG_MIN;
	w->ops = ops;
	w->ctx = ctx;
}

/* What the next segment will take: its target, or twice a checkpoint
 * when the live state is that large (else it would be all checkpoint). */
static uint64_t seg_limit(const struct pp_trace_writer *w)
{
	return w->seg_bytes > 2 * w->ckpt_bytes ? w->seg_bytes :
						  2 * w->ckpt_bytes;
}

/* Drop the oldest segments until the kept ones, the current one and
 * the next one fit the cap. */
static void drop_oldest(struct pp_trace_writer *w)
{
	char name[PATH_MAX];

	while (w->nolds &&
	       w->olds_bytes + w->bytes + seg_limit(w) > w->max_bytes) {
		seg_name(name, sizeof(name), w->path, w->olds[0].seq);
		unlink(name);
		w->olds_bytes -= w->olds[0].bytes;
		memmove(w->olds, w->olds + 1, --w->nolds * sizeof(*w->olds));
	}
	if (!w->warned_cap && w->bytes + seg_limit(w) > w->max_bytes) {
		char a[32], b[32];

		w->warned_cap = true;
		fprintf(stderr, "pyprof: %s: the live state takes %s per "
			"checkpoint: --max-size %s cannot hold two segments, "
			"the trace keeps only the newest one (about %s)\n",
			w->path, pp_fmt_bytes(w->ckpt_bytes, a, sizeof(a)),
			pp_fmt_bytes(w->max_bytes, b, sizeof(b)),
			pp_fmt_bytes(w->bytes + seg_limit(w), a, sizeof(a)));
	}
}

/* absent, or a segment of a recording (a stale one may be replaced) */
static bool replaceable(const char *name)
{
	struct pp_trace_seg_hdr sh;
	struct stat st;

	return (lstat(name, &st) && errno == ENOENT) ||
	       seg_file_hdr(name, &sh);
}

/*
 * Start the next segment: it is written under PATH.(SEQ+1) with its
 * checkpoint, then renamed over PATH, which the current segment leaves
 * for its own name PATH.SEQ (a second link, made first). PATH is a
 * readable trace at every moment; a kill leaves at worst a stray
 * PATH.(SEQ+1) that the next recording at PATH removes.
 */
static int rotate(struct pp_trace_writer *w)
{
	char cur[PATH_MAX], next[PATH_MAX];
	uint64_t old_bytes = w->bytes, lost = w->lost, data_off;
	int fd, old_fd = w->fd, e;

	seg_name(cur, sizeof(cur), w->path, w->seq);
	seg_name(next, sizeof(next), w->path, w->seq + 1);
	/* a file of either name that is no trace segment is not ours */
	if (!replaceable(cur) || !replaceable(next))
		return -EEXIST;
	drop_oldest(w);
	unlink(cur);
	if (link(w->path, cur) < 0)
		return -errno;
	fd = seg_create(w, next, w->seq + 1);
	if (fd < 0) {
		unlink(cur);
		return fd;
	}
	w->fd = fd;
	w->bytes = PP_TRACE_HDR_LEN;
	w->rotating = true;
	e = w->ops->write(w->ctx, w, w->seq + 1);
	if (!e)
		e = pp_trace_flush(w);
	w->rotating = false;
	data_off = w->bytes;
	if (!e && pwrite(fd, &data_off, sizeof(data_off),
			 sizeof(struct pp_trace_file_hdr) +
			 offsetof(struct pp_trace_seg_hdr, data_off)) !=
			 sizeof(data_off))
		e = -EIO;
	if (!e && rename(next, w->path) < 0)
		e = -errno;
	if (e) {
		/* back to the segment we had: the checkpoint is no loss */
		close(fd);
		unlink(next);
		unlink(cur);
		w->fd = old_fd;
		w->bytes = old_bytes;
		w->lost = lost;
		w->err = 0;
		chunk_empty(w);
		return e;
	}
	close(old_fd);
	w->olds = pp_grow(w->olds, &w->cap_olds, w->nolds + 1,
			  sizeof(*w->olds));
	w->olds[w->nolds++] = (struct seg_kept){ w->seq, old_bytes };
	w->olds_bytes += old_bytes;
	w->seq++;
	w->ckpt_bytes = w->bytes;
	return 0;
}

static void maybe_rotate(struct pp_trace_writer *w)
{
	int e;

	if (!w->ops || w->rotating || w->cap_off ||
	    w->bytes < seg_limit(w) || !w->ops->ready(w->ctx))
		return;
	e = rotate(w);
	if (e) {
		w->cap_off = true;
		fprintf(stderr, "pyprof: %s: cannot start a new trace segment "
			"(%s): the trace grows past --max-size from here\n",
			w->path, strerror(-e));
	}
}

/*
 * Warn once when the trace's file system has less room than the next
 * SPACE_AHEAD_S seconds of recording need at the rate of the last 1 to
 * 10 s (capped: than what the trace may still grow by).
 */
static void check_space(struct pp_trace_writer *w)
{
	uint64_t now = pp_now_ns(), avail;
	double need;
	struct statvfs sv;
	char a[32], b[32], dir[PATH_MAX], *slash;

	if (w->warned_space || now - w->space_t < SPACE_EVERY_NS)
		return;
	w->space_t = now;
	if (!w->rate_t) {
		w->rate_t = now;
		w->rate_bytes = w->written;
		return;
	}
	w->rate = (w->written - w->rate_bytes) * 1e9 / (now - w->rate_t);
	if (now - w->rate_t >= RATE_NS) {
		w->rate_t = now;
		w->rate_bytes = w->written;
	}
	if (w->rate <= 0 || fstatvfs(w->fd, &sv))
		return;
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	need = w->rate * SPACE_AHEAD_S;
	if (w->ops && !w->cap_off) {
		uint64_t kept = w->olds_bytes + w->bytes;
		double room = w->max_bytes + (double)PP_TRACE_CHUNK_RAW - kept;

		if (room < need)
			need = room > 0 ? room : 0;
	}
	if ((double)avail >= need)
		return;
	w->warned_space = true;
	snprintf(dir, sizeof(dir), "%s", w->path);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = 0;
	else
		snprintf(dir, sizeof(dir), ".");
	fprintf(stderr, "pyprof: only %s left on the file system of %s, less "
		"than the next %d s of recording need at %s/s: the disk will "
		"fill (--max-size bounds the trace)\n",
		pp_fmt_bytes(avail, a, sizeof(a)), dir, SPACE_AHEAD_S,
		pp_fmt_bytes(w->rate, b, sizeof(b)));
}

/*
 * Copies rec (whole, checked) to dst, as ALLOC_D or FREE_D when its
 * address is within 2 GiB of the previous one (docs/trace-format.md
 * "Compact records"): most of a Python program's records are, and LZ4
 * then has a third to a half fewer bytes to go over. Returns the bytes
 * written, at most rec->len. The reader follows *prev the same way.
 */
static inline size_t put_rec(uint64_t *prev, char *dst,
			     const struct pp_hdr *rec)
{
	size_t len = rec->len;

	if (rec->type == PP_REC_ALLOC && len >= sizeof(struct pp_rec_alloc)) {
		const struct pp_rec_alloc *a = (const void *)rec;
		uint64_t d = a->addr - *prev;

		*prev = a->addr;
		if (len == sizeof(*a) && d + 0x80000000ull <= UINT32_MAX &&
		    a->size <= UINT32_MAX) {
			struct pp_rec_alloc_d c = {
				.h = { sizeof(c), PP_REC_ALLOC_D, rec->flags,
				       rec->aux },
				.delta = (int32_t)d, .size = a->size,
			};

			memcpy(dst, &c, sizeof(c));
			return sizeof(c);
		}
	} else if (rec->type == PP_REC_FREE &&
		   len >= sizeof(struct pp_rec_free)) {
		const struct pp_rec_free *f = (const void *)rec;
		uint64_t d = f->addr - *prev;

		*prev = f->addr;
		if (len == sizeof(*f) && !rec->aux &&
		    d + 0x80000000ull <= UINT32_MAX) {
			struct pp_hdr c = { sizeof(c), PP_REC_FREE_D,
					    rec->flags, (uint32_t)d };

			memcpy(dst, &c, sizeof(c));
			return sizeof(c);
		}
	}
	memcpy(dst, rec, len);
	return len;
}

/* A record type only the writer makes (it stands for another). */
static bool compact_type(unsigned type)
{
	return type == PP_REC_ALLOC_D || type == PP_REC_FREE_D;
}

int pp_trace_flush(struct pp_trace_writer *w)
{
	struct pp_trace_chunk_hdr *ch = (void *)w->out;
	size_t n;
	int e, k;

	if (!w->used)
		return 0;
	k = LZ4_compress_default(w->buf, w->out + sizeof(*ch), w->used,
				 w->out_cap - sizeof(*ch));
	if (k <= 0) {
		e = -EIO;	/* cannot happen with a bound-sized out */
		goto lose;
	}
	n = k;

	memcpy(ch->magic, PP_CHUNK_MAGIC, sizeof(ch->magic));
	ch->comp_len = n;
	ch->raw_len = w->used;
	ch->nrec = w->nrec;
	ch->ts_first = w->ts_first;
	ch->ts_last = w->ts_last;
	ch->data_crc = crc(w->out + sizeof(*ch), n);
	ch->hdr_crc = crc(ch, HDR_CRC_SPAN);

	/* One write per chunk: a kill leaves a cut-off chunk, never a gap. */
	e = write_all(w->fd, w->out, sizeof(*ch) + n);
	if (e) {
		/*
		 * Undo what part of it went out (the file stays a trace of
		 * whole chunks, and a full disk gets that space back for
		 * the next chunk) and count its records as lost.
		 */
		if (ftruncate(w->fd, w->bytes) < 0 ||
		    lseek(w->fd, w->bytes, SEEK_SET) < 0)
			e = -errno;
		release_room(w);
		goto lose;
	}
	w->bytes += sizeof(*ch) + n;
	w->written += sizeof(*ch) + n;
	chunk_empty(w);
	check_space(w);
	maybe_rotate(w);
	return 0;
lose:
	w->err = e;
	w->lost += w->nrec;
	chunk_empty(w);
	return e;
}

int pp_trace_append(struct pp_trace_writer *w, const struct pp_hdr *rec)
{
	size_t len = rec->len;
	int e = 0;

	if (unlikely(len < sizeof(*rec) || (len & 7) || !rec->type ||
		     rec->type >= PP_REC_MAX || compact_type(rec->type)))
		return -EINVAL;
	if (unlikely(w->used + len > PP_TRACE_CHUNK_RAW)) {
		e = pp_trace_flush(w);	/* on failure, counted and emptied */
		/* what follows a lost chunk may name what it defined: only
		 * LOST records may still go into the file after it */
		if (e && rec->type != PP_REC_LOST) {
			w->lost++;
			return e;
		}
	}
	w->used += put_rec(&w->prev_addr, w->buf + w->used, rec);
	w->nrec++;
	if (w->ops && !w->rotating)
		w->ops->observe(w->ctx, rec);
	/* TICK, META, EXIT and CKPT carry a u64 ts right after the header. */
	if (unlikely(rec->type >= PP_REC_TICK && rec->type <= PP_REC_CKPT) &&
	    len >= 16) {
		uint64_t ts;

		memcpy(&ts, (const char *)rec + sizeof(*rec), sizeof(ts));
		if (!w->ts_first)
			w->ts_first = ts;
		w->ts_last = ts;
	}
	return e;
}

/* a record header's fields, from the word it is read as */
#define HDR_LEN(v)	((uint32_t)(v) & 0xffff)
#define HDR_TYPE(v)	((uint32_t)((v) >> 16) & 0xff)
/* ALLOC_D / FREE_D headers: the record's flags (and ALLOC's aux) kept */
#define HDR_KEEP_ALLOC	0xffffffffff000000ull
#define HDR_KEEP_FREE	0x00000000ff000000ull
#define HDR_MAKE(len, type)	((uint64_t)(type) << 16 | (len))

/*
 * The hot loop (the collector's every event goes through it): checks,
 * observes and copies records into the chunk, ALLOC and FREE as their
 * compact forms where they can be (put_rec's rule), in one pass over
 * recs, flushing at chunk boundaries. Each header is read once, with
 * an acquire load (recs may be a ring the producers are still writing:
 * a record is whole once its header is), and taken from that copy.
 * Stops at the first record of a type in look (bit 0: a zero header,
 * uncommitted in a ring), of type PP_REC_TICK or above, of a bad
 * length, or when a chunk fails to write (*err; its records are
 * counted lost). Returns the bytes taken.
 */
static inline size_t take_run(struct pp_trace_writer *w, char *recs,
			      size_t len, uint32_t look, bool zero, int *err)
{
	char *p = recs, *end = recs + len;
	char *dst = w->buf + w->used, *lim = w->buf + PP_TRACE_CHUNK_RAW;
	const struct pp_trace_cap_ops *ops = w->ops;
	uint64_t prev = w->prev_addr;
	uint32_t n = 0;

	*err = 0;
	look |= 1;
	while ((size_t)(end - p) >= sizeof(struct pp_hdr)) {
		uint64_t v = __atomic_load_n((const uint64_t *)p,
					     __ATOMIC_ACQUIRE);
		uint32_t rlen = HDR_LEN(v), type = HDR_TYPE(v);
		uint32_t key = (uint32_t)v & 0xffffff;	/* len and type */

		/* the common two first: their checks are one compare */
		if (likely(key == HDR_MAKE(24, PP_REC_ALLOC)) &&
		    (size_t)(end - p) >= 24 && (size_t)(lim - dst) >= 24) {
			const struct pp_rec_alloc *a = (const void *)p;
			uint64_t addr = a->addr, size = a->size;
			uint64_t d = addr - prev;

			if (unlikely(ops != NULL))
				ops->observe(w->ctx, &a->h);
			if (zero)
				memset(p, 0, sizeof(*a));
			n++;
			prev = addr;
			p += sizeof(*a);
			if (likely(!(((d + 0x80000000ull) | size) >> 32))) {
				uint64_t c[2] = {
					(v & HDR_KEEP_ALLOC) |
					HDR_MAKE(16, PP_REC_ALLOC_D),
					(uint32_t)d | size << 32,
				};

				memcpy(dst, c, sizeof(c));
				dst += sizeof(c);
				continue;
			}
			memcpy(dst, &v, 8);
			memcpy(dst + 8, &addr, 8);
			memcpy(dst + 16, &size, 8);
			dst += sizeof(*a);
			continue;
		}
		if (likely(key == HDR_MAKE(16, PP_REC_FREE)) &&
		    (size_t)(end - p) >= 16 && (size_t)(lim - dst) >= 16) {
			uint64_t addr = ((const struct pp_rec_free *)p)->addr;
			uint64_t d = addr - prev;

			if (unlikely(ops != NULL))
				ops->observe(w->ctx, (const struct pp_hdr *)p);
			if (zero)
				memset(p, 0, sizeof(struct pp_rec_free));
			n++;
			prev = addr;
			p += sizeof(struct pp_rec_free);
			if (likely(!(((d + 0x80000000ull) >> 32) | v >> 32))) {
				uint64_t c = (v & HDR_KEEP_FREE) |
					     HDR_MAKE(8, PP_REC_FREE_D) |
					     (uint64_t)(uint32_t)d << 32;

				memcpy(dst, &c, sizeof(c));
				dst += sizeof(c);
				continue;
			}
			memcpy(dst, &v, 8);
			memcpy(dst + 8, &addr, 8);
			dst += sizeof(struct pp_rec_free);
			continue;
		}
		/* any other record, or one of those at a chunk's end */
		if (unlikely(type >= PP_REC_TICK || ((look >> type) & 1) ||
			     (rlen & 7) ||
			     (size_t)rlen - 8 > (size_t)(end - p) - 8))
			break;
		if (unlikely(rlen > (size_t)(lim - dst))) {
			w->used = dst - w->buf;
			w->nrec += n;
			n = 0;
			w->prev_addr = prev;
			*err = pp_trace_flush(w);
			dst = w->buf + w->used;
			prev = w->prev_addr;
			if (*err)
				break;
			continue;
		}
		if (unlikely(ops != NULL))
			ops->observe(w->ctx, (const struct pp_hdr *)p);
		n++;
		/* (an ALLOC or FREE here is longer than its struct: the
		 * others took the path above, after a flush if need be) */
		if (type == PP_REC_ALLOC && rlen >= sizeof(struct pp_rec_alloc))
			prev = ((const struct pp_rec_alloc *)p)->addr;
		else if (type == PP_REC_FREE && rlen >= sizeof(struct pp_rec_free))
			prev = ((const struct pp_rec_free *)p)->addr;
		memcpy(dst, &v, 8);
		memcpy(dst + 8, p + 8, rlen - 8);
		if (zero)
			memset(p, 0, rlen);
		dst += rlen;
		p += rlen;
	}
	w->used = dst - w->buf;
	w->nrec += n;
	w->prev_addr = prev;
	return p - recs;
}

int pp_trace_append_run(struct pp_trace_writer *w, const void *recs,
			size_t len)
{
	const char *p = recs, *end = p + len;
	int e;

	p += take_run(w, (char *)recs, len, 0, false, &e);
	if (e) {
		/* the rest would name what the lost chunk defined */
		while (p < end && ((const struct pp_hdr *)p)->len >= 8) {
			p += ((const struct pp_hdr *)p)->len;
			w->lost++;
		}
		return e;
	}
	return p < end ? -EINVAL : 0;
}

size_t pp_trace_take(struct pp_trace_writer *w, void *recs, size_t len,
		     uint32_t look, int *err)
{
	return take_run(w, recs, len, look, true, err);
}

int pp_trace_close(struct pp_trace_writer *w)
{
	int e;

	if (!w)
		return 0;
	e = pp_trace_flush(w);
	if (close(w->fd) && !e)
		e = -errno;
	release_room(w);
	if (w->ops && w->ops->free)
		w->ops->free(w->ctx);
	free(w->olds);
	free(w->path);
	free(w->out);
	free(w->buf);
	free(w);
	return e;
}

uint64_t pp_trace_bytes_written(const struct pp_trace_writer *w)
{
	return w->olds_bytes + w->bytes;
}

uint64_t pp_trace_lost(const struct pp_trace_writer *w)
{
	return w->lost;
}

/* Reader */

/* a segment file of the trace (one, unless capped) */
struct rseg {
	int fd;
	uint32_t seq;
	uint64_t start;		/* its first chunk to read */
	ino_t ino;
	dev_t dev;
};

struct pp_trace_reader {
	int fd;			/* the current segment's */
	bool failed;		/* -1 returned; sticks until rewind/seek */
	bool truncated;
	bool loaded;		/* raw holds the chunk at off */
	bool check;		/* records go through pp_rec_check() */
	bool invalid;		/* stopped at an inconsistent record */
	struct rseg *segs;	/* oldest first; the last one is at path */
	size_t nsegs, cap_segs, cur;
	uint64_t size_before;	/* bytes of the segments before cur */
	char *path;
	uint64_t rec_id;	/* 0: not a segmented trace */
	uint64_t off;		/* current (or next) chunk */
	uint64_t chunk_no;	/* its number, from 0 */
	char *comp, *raw;
	size_t comp_cap, raw_cap;
	size_t raw_len, pos;	/* records of the loaded chunk, next one */
	uint32_t recno;		/* number of the next one in its chunk */
	uint64_t prev_addr;	/* the chunk's last ALLOC/FREE address */
	union {			/* a compact record, given back whole */
		struct pp_rec_alloc a;
		struct pp_rec_free f;
	} full;
	uint8_t type_max;	/* types below it are the trace's ABI's */
	uint64_t file_size;	/* at the last chunk load */
	struct pp_rec_state chk;
	uint32_t comp_len;
	struct pp_trace_chunk_info *idx;
	size_t nidx, idx_cap;
	uint64_t idx_end;	/* offset after the last indexed chunk */
	size_t idx_seg;		/* and its segment */
	pp_trace_filter_fn filter;	/* procs.h: one process, or merged */
	void *filter_ctx;
	char err[256];
};

static int corrupt(struct pp_trace_reader *r, uint64_t no, uint64_t off,
		   const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(r->err, sizeof(r->err),
		     "corrupt trace: chunk %llu at offset %llu: ",
		     (unsigned long long)no, (unsigned long long)off);
	va_start(ap, fmt);
	vsnprintf(r->err + n, sizeof(r->err) - n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Bytes read (short only at end of file), or -errno. */
static ssize_t pread_full(int fd, void *p, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, (char *)p + got, n - got, off + got);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		got += k;
	}
	return got;
}

/* Grow *buf to n bytes; n is bounded by PP_TRACE_CHUNK_MAX. */
static void reserve(char **buf, size_t *cap, size_t n)
{
	if (n <= *cap)
		return;
	*buf = pp_xrealloc(*buf, n);
	*cap = n;
}

static int check_chunk_hdr(struct pp_trace_reader *r,
			   const struct pp_trace_chunk_hdr *ch,
			   uint64_t no, uint64_t off)
{
	uint32_t c;

	if (memcmp(ch->magic, PP_CHUNK_MAGIC, sizeof(ch->magic)))
		return corrupt(r, no, off, "bad chunk magic");
	c = crc(ch, HDR_CRC_SPAN);
	if (c != ch->hdr_crc)
		return corrupt(r, no, off,
			       "chunk header CRC mismatch (stored %08x, computed %08x)",
			       ch->hdr_crc, c);
	if (!ch->comp_len || ch->comp_len > PP_TRACE_CHUNK_MAX)
		return corrupt(r, no, off, "compressed length %u out of range",
			       ch->comp_len);
	if (!ch->raw_len || ch->raw_len > PP_TRACE_CHUNK_MAX ||
	    ch->raw_len % 8)
		return corrupt(r, no, off, "raw length %u invalid", ch->raw_len);
	if (!ch->nrec || ch->nrec > ch->raw_len / sizeof(struct pp_hdr))
		return corrupt(r, no, off, "%u records cannot fill %u bytes",
			       ch->nrec, ch->raw_len);
	/* an LZ4 block expands 255-fold at most: allocate no more */
	if (ch->raw_len > (uint64_t)ch->comp_len * LZ4_MAX_RATIO)
		return corrupt(r, no, off,
			       "raw length %u cannot come from %u LZ4 bytes",
			       ch->raw_len, ch->comp_len);
	return 0;
}

/* Whether the chunk's payload lies wholly inside the file. */
static int payload_in(int fd, uint64_t off, uint32_t comp_len,
		      uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -1;
	*size = st.st_size;
	return off + sizeof(struct pp_trace_chunk_hdr) + comp_len <=
	       (uint64_t)st.st_size;
}

static int payload_present(struct pp_trace_reader *r, uint64_t off,
			   uint32_t comp_len)
{
	uint64_t size = 0;
	int k = payload_in(r->fd, off, comp_len, &size);

	/* ids are bounded by what all segments read so far hold */
	r->file_size = r->size_before + size;
	return k;
}

/* Walk the records once so a chunk is either all good or rejected. */
static int check_records(struct pp_trace_reader *r, uint32_t nrec)
{
	size_t pos = 0;
	uint32_t n = 0;

	while (pos < r->raw_len) {
		const struct pp_hdr *h = (const void *)(r->raw + pos);
		size_t left = r->raw_len - pos;

		if (h->len < sizeof(*h) || h->len % 8 || h->len > left ||
		    (h->type == PP_REC_ALLOC_D &&
		     h->len != sizeof(struct pp_rec_alloc_d)) ||
		    (h->type == PP_REC_FREE_D && h->len != sizeof(*h)))
			return corrupt(r, r->chunk_no, r->off,
				       "record %u at byte %zu: bad length %u",
				       n, pos, h->len);
		if (!h->type || h->type >= r->type_max)
			return corrupt(r, r->chunk_no, r->off,
				       "record %u at byte %zu: bad type %u",
				       n, pos, h->type);
		pos += h->len;
		n++;
	}
	if (n != nrec)
		return corrupt(r, r->chunk_no, r->off,
			       "%u records, header says %u", n, nrec);
	return 0;
}

/* 1 loaded, 0 end (truncated set if cut off), -1 corrupt. */
static int load_chunk(struct pp_trace_reader *r)
{
	struct pp_trace_chunk_hdr ch;
	uint64_t no = r->chunk_no, off = r->off;
	ssize_t n;
	size_t d;
	uint32_t c;
	int k;

	r->truncated = false;
	n = pread_full(r->fd, &ch, sizeof(ch), off);
	if (n < 0)
		return corrupt(r, no, off, "read: %s", strerror(-n));
	if (n == 0)
		return 0;
	if (n < (ssize_t)sizeof(ch)) {
		r->truncated = true;
		return 0;
	}
	if (check_chunk_hdr(r, &ch, no, off))
		return -1;
	/* Check the size before allocating for a payload that is not there. */
	k = payload_present(r, off, ch.comp_len);
	if (k < 0)
		return corrupt(r, no, off, "stat: %s", strerror(errno));
	if (!k) {
		r->truncated = true;
		return 0;
	}
	reserve(&r->comp, &r->comp_cap, ch.comp_len);
	reserve(&r->raw, &r->raw_cap, ch.raw_len);
	n = pread_full(r->fd, r->comp, ch.comp_len, off + sizeof(ch));
	if (n < 0)
		return corrupt(r, no, off, "read: %s", strerror(-n));
	if (n < ch.comp_len) {	/* shrank under us */
		r->truncated = true;
		return 0;
	}
	c = crc(r->comp, ch.comp_len);
	if (c != ch.data_crc)
		return corrupt(r, no, off,
			       "payload CRC mismatch (stored %08x, computed %08x)",
			       ch.data_crc, c);
	k = LZ4_decompress_safe(r->comp, r->raw, ch.comp_len, ch.raw_len);
	if (k < 0)
		return corrupt(r, no, off, "decompression failed: bad LZ4 data");
	d = k;
	if (d != ch.raw_len)
		return corrupt(r, no, off,
			       "decompressed to %zu bytes, header says %u",
			       d, ch.raw_len);
	r->raw_len = d;
	if (check_records(r, ch.nrec))
		return -1;
	r->pos = 0;
	r->recno = 0;
	r->prev_addr = 0;
	r->comp_len = ch.comp_len;
	r->loaded = true;
	return 1;
}

/*
 * The record at h as the writer was given it: a compact one is made
 * whole in r->full; the chunk's previous address follows every ALLOC
 * and FREE, as in the writer's put_rec().
 */
static inline const struct pp_hdr *expand(struct pp_trace_reader *r,
					  const struct pp_hdr *h)
{
	if (h->type == PP_REC_ALLOC_D) {
		const struct pp_rec_alloc_d *c = (const void *)h;

		r->prev_addr += (uint64_t)(int64_t)c->delta;
		r->full.a = (struct pp_rec_alloc){
			.h = { sizeof(r->full.a), PP_REC_ALLOC, h->flags,
			       h->aux },
			.addr = r->prev_addr, .size = c->size,
		};
		return &r->full.a.h;
	}
	if (h->type == PP_REC_FREE_D) {
		r->prev_addr += (uint64_t)(int64_t)(int32_t)h->aux;
		r->full.f = (struct pp_rec_free){
			.h = { sizeof(r->full.f), PP_REC_FREE, h->flags, 0 },
			.addr = r->prev_addr,
		};
		return &r->full.f.h;
	}
	if (h->type == PP_REC_ALLOC && h->len >= sizeof(struct pp_rec_alloc))
		r->prev_addr = ((const struct pp_rec_alloc *)h)->addr;
	else if (h->type == PP_REC_FREE &&
		 h->len >= sizeof(struct pp_rec_free))
		r->prev_addr = ((const struct pp_rec_free *)h)->addr;
	return h;
}

/* The readable prefix ends before this record: one message says why. */
static int stop_invalid(struct pp_trace_reader *r, const char *why)
{
	snprintf(r->err, sizeof(r->err),
		 "invalid record: chunk %llu at offset %llu, record %u (byte %zu): %s",
		 (unsigned long long)r->chunk_no, (unsigned long long)r->off,
		 r->recno, r->pos, why);
	r->invalid = true;
	return 0;
}

static int file_hdr(int fd, const struct stat *st, char *err, size_t errlen,
		    struct pp_trace_file_hdr *fh, struct pp_trace_seg_hdr *sh);

static void add_seg(struct pp_trace_reader *r, int fd, uint32_t seq,
		    uint64_t start)
{
	struct stat st = { 0 };

	fstat(fd, &st);
	r->segs = pp_grow(r->segs, &r->cap_segs, r->nsegs + 1,
			  sizeof(*r->segs));
	r->segs[r->nsegs++] = (struct rseg){ fd, seq, start, st.st_ino,
					     st.st_dev };
}

/* where a segment read after another begins: past its checkpoint */
static uint64_t cont_start(const struct pp_trace_file_hdr *fh,
			   const struct pp_trace_seg_hdr *sh)
{
	return sh->data_off > fh->hdr_len ? sh->data_off : fh->hdr_len;
}

/*
 * A recording still being written may have started a new segment at
 * path since (the one we read is then PATH.SEQ): follow it.
 */
static bool follow_head(struct pp_trace_reader *r)
{
	const struct rseg *last = &r->segs[r->nsegs - 1];
	struct pp_trace_file_hdr fh;
	struct pp_trace_seg_hdr sh;
	struct stat st;
	char err[256];
	int fd;

	if (!r->rec_id || stat(r->path, &st) ||
	    (st.st_ino == last->ino && st.st_dev == last->dev))
		return false;
	fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) || file_hdr(fd, &st, err, sizeof(err), &fh, &sh) ||
	    sh.rec_id != r->rec_id || sh.seq != last->seq + 1) {
		close(fd);
		return false;
	}
	add_seg(r, fd, sh.seq, cont_start(&fh, &sh));
	return true;
}

/* The current segment ended cleanly: on to the next, if any. */
static bool next_seg(struct pp_trace_reader *r)
{
	struct stat st;

	if (r->cur + 1 >= r->nsegs && !follow_head(r))
		return false;
	if (!fstat(r->fd, &st))
		r->size_before += st.st_size;
	r->cur++;
	r->fd = r->segs[r->cur].fd;
	r->off = r->segs[r->cur].start;
	return true;
}

int pp_trace_next(struct pp_trace_reader *r, const struct pp_hdr **rec)
{
	if (unlikely(r->failed))
		return -1;
	if (unlikely(r->invalid))
		return 0;
	for (;;) {
		int k;

		if (likely(r->pos < r->raw_len)) {
			const struct pp_hdr *raw = (const void *)(r->raw + r->pos);
			const struct pp_hdr *h = expand(r, raw);
			char why[160];

			if (r->check && unlikely(pp_rec_check(&r->chk, h,
							      r->file_size, why,
							      sizeof(why))))
				return stop_invalid(r, why);
			r->pos += raw->len;	/* checked in check_records() */
			r->recno++;
			*rec = h;
			if (r->filter && !r->filter(r->filter_ctx, h, rec))
				continue;
			return 1;
		}
		if (r->loaded) {
			r->off += sizeof(struct pp_trace_chunk_hdr) + r->comp_len;
			r->chunk_no++;
			r->loaded = false;
		}
		k = load_chunk(r);
		if (k < 0) {
			r->failed = true;
			r->raw_len = r->pos = 0;
		}
		if (k == 0 && !r->truncated && next_seg(r))
			continue;
		if (k <= 0)
			return k;
	}
}

const char *pp_trace_error(const struct pp_trace_reader *r)
{
	return r->err;
}

int pp_trace_truncated(const struct pp_trace_reader *r)
{
	return r->truncated;
}

const char *pp_trace_invalid(const struct pp_trace_reader *r)
{
	return r->invalid ? r->err : NULL;
}

void pp_trace_set_check(struct pp_trace_reader *r, int on)
{
	r->check = on;
}

void pp_trace_set_filter(struct pp_trace_reader *r, pp_trace_filter_fn fn,
			 void *ctx)
{
	r->filter = fn;
	r->filter_ctx = ctx;
}

static void goto_chunk(struct pp_trace_reader *r, size_t seg, uint64_t off,
		       uint64_t no)
{
	struct stat st;
	size_t i;

	if (r->filter)
		r->filter(r->filter_ctx, NULL, NULL);
	r->cur = seg;
	r->fd = r->segs[seg].fd;
	r->size_before = 0;
	for (i = 0; i < seg; i++)
		if (!fstat(r->segs[i].fd, &st))
			r->size_before += st.st_size;
	r->off = off;
	r->chunk_no = no;
	r->loaded = false;
	r->failed = false;
	r->invalid = false;
	r->truncated = false;
	r->raw_len = r->pos = 0;
	r->err[0] = '\0';
}

int pp_trace_rewind(struct pp_trace_reader *r)
{
	goto_chunk(r, 0, r->segs[0].start, 0);
	pp_rec_state_free(&r->chk);
	pp_rec_state_init(&r->chk);
	return 0;
}

int pp_trace_seek_chunk(struct pp_trace_reader *r, size_t i)
{
	if (i >= r->nidx)
		return -1;
	goto_chunk(r, r->idx[i].seg, r->idx[i].offset, i);
	return 0;
}

int pp_trace_index(struct pp_trace_reader *r,
		   const struct pp_trace_chunk_info **chunks, size_t *n)
{
	size_t seg = r->nidx ? r->idx_seg : 0;
	uint64_t off = r->nidx ? r->idx_end : r->segs[0].start, size;

	for (;;) {
		struct pp_trace_chunk_hdr ch;
		int fd = r->segs[seg].fd;
		ssize_t got = pread_full(fd, &ch, sizeof(ch), off);
		int k;

		if (got < 0)
			return corrupt(r, r->nidx, off, "read: %s",
				       strerror(-got));
		if (got == 0 && seg + 1 < r->nsegs) {
			seg++;
			off = r->segs[seg].start;
			continue;
		}
		if (got < (ssize_t)sizeof(ch))
			break;
		if (check_chunk_hdr(r, &ch, r->nidx, off))
			return -1;
		k = payload_in(fd, off, ch.comp_len, &size);
		if (k < 0)
			return corrupt(r, r->nidx, off, "stat: %s",
				       strerror(errno));
		if (!k)
			break;
		r->idx = pp_grow(r->idx, &r->idx_cap, r->nidx + 1,
				 sizeof(*r->idx));
		r->idx[r->nidx++] = (struct pp_trace_chunk_info){
			.offset = off,
			.ts_first = ch.ts_first,
			.ts_last = ch.ts_last,
			.nrec = ch.nrec,
			.raw_len = ch.raw_len,
			.seg = seg,
		};
		off += sizeof(ch) + ch.comp_len;
		r->idx_end = off;
		r->idx_seg = seg;
	}
	*chunks = r->idx;
	*n = r->nidx;
	return 0;
}

/*
 * The file header of fd: 0, or -1 with one message. sh is zeroed when
 * the file has no segment fields (older traces, ABI 2).
 */
static int file_hdr(int fd, const struct stat *st, char *err, size_t errlen,
		    struct pp_trace_file_hdr *fh, struct pp_trace_seg_hdr *sh)
{
	ssize_t n;

	memset(sh, 0, sizeof(*sh));
	if (S_ISDIR(st->st_mode)) {
		snprintf(err, errlen, "cannot open: %s", strerror(EISDIR));
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {	/* chunks are read with pread */
		snprintf(err, errlen, "cannot open: not a regular file");
		return -1;
	}
	n = pread_full(fd, fh, sizeof(*fh), 0);
	if (n < 0) {
		snprintf(err, errlen, "cannot read: %s", strerror(-n));
		return -1;
	}
	if (n == 0) {
		snprintf(err, errlen, "not a pyprof trace (empty file)");
		return -1;
	}
	if (memcmp(fh->magic, PP_TRACE_MAGIC,
		   n < (ssize_t)sizeof(fh->magic) ? n : sizeof(fh->magic))) {
		snprintf(err, errlen, "not a pyprof trace");
		return -1;
	}
	if (n < (ssize_t)sizeof(*fh)) {
		snprintf(err, errlen, "truncated trace header (%zd of %zu bytes)",
			 n, sizeof(*fh));
		return -1;
	}
	if (fh->version != PP_TRACE_VERSION) {
		snprintf(err, errlen,
			 "unsupported trace format version %u (this pyprof reads %u)",
			 fh->version, PP_TRACE_VERSION);
		return -1;
	}
	if (fh->hdr_len < sizeof(*fh) || fh->hdr_len > HDR_LEN_MAX) {
		snprintf(err, errlen, "corrupt trace header: length %u",
			 fh->hdr_len);
		return -1;
	}
	if (fh->abi < PP_TRACE_ABI_MIN || fh->abi > PP_ABI_VERSION) {
		snprintf(err, errlen,
			 "trace records are ABI version %u (this pyprof reads "
			 "%u to %u)", fh->abi, PP_TRACE_ABI_MIN, PP_ABI_VERSION);
		return -1;
	}
	if (fh->flags != PP_TRACE_F_LZ4) {
		snprintf(err, errlen, "unsupported trace flags %#x (this pyprof "
			 "reads %#x: LZ4 chunks)", fh->flags, PP_TRACE_F_LZ4);
		return -1;
	}
	if (fh->abi >= 3 && fh->hdr_len >= sizeof(*fh) + sizeof(*sh)) {
		n = pread_full(fd, sh, sizeof(*sh), sizeof(*fh));
		if (n != (ssize_t)sizeof(*sh)) {
			snprintf(err, errlen, "truncated trace header (%zd of "
				 "%u bytes)", n < 0 ? 0 : n + sizeof(*fh),
				 fh->hdr_len);
			return -1;
		}
		if (!sh->rec_id || !sh->seq)
			memset(sh, 0, sizeof(*sh));
	}
	return 0;
}

/*
 * The older segments of a capped recording, newest first below the one
 * at path: PATH.SEQ-1, PATH.SEQ-2, ... as long as each is there, of the
 * same recording. The oldest found is read first.
 */
static void find_older(struct pp_trace_reader *r, uint32_t seq)
{
	struct { int fd; uint32_t seq; uint64_t start, hdr_len; } *found;
	size_t n = 0, i;
	char name[PATH_MAX], err[256];
	uint32_t k;

	found = pp_xcalloc(PP_TRACE_SEGS_MAX, sizeof(*found));
	for (k = seq - 1; k >= 1 && n < PP_TRACE_SEGS_MAX; k--) {
		struct pp_trace_file_hdr fh;
		struct pp_trace_seg_hdr sh;
		struct stat st;
		int fd;

		seg_name(name, sizeof(name), r->path, k);
		fd = open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			break;
		if (fstat(fd, &st) || file_hdr(fd, &st, err, sizeof(err), &fh,
					       &sh) ||
		    sh.rec_id != r->rec_id || sh.seq != k) {
			close(fd);
			break;
		}
		found[n++] = (typeof(*found)){ fd, k, cont_start(&fh, &sh),
					       fh.hdr_len };
	}
	for (i = n; i-- > 0;)
		add_seg(r, found[i].fd, found[i].seq,
			i == n - 1 ? found[i].hdr_len : found[i].start);
	free(found);
}

struct pp_trace_reader *pp_trace_open(const char *path, char *err,
				      size_t errlen)
{
	struct pp_trace_file_hdr fh;
	struct pp_trace_seg_hdr sh;
	struct pp_trace_reader *r;
	struct stat st;
	int fd;

	/* non-blocking: a FIFO must not hang the open (it is refused below) */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st)) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (file_hdr(fd, &st, err, errlen, &fh, &sh)) {
		close(fd);
		return NULL;
	}

	r = pp_xcalloc(1, sizeof(*r));
	r->path = pp_xstrdup(path);
	r->rec_id = sh.rec_id;
	if (sh.seq > 1)
		find_older(r, sh.seq);
	/* read from the oldest segment kept: whole, checkpoint included */
	add_seg(r, fd, sh.seq, r->nsegs ? cont_start(&fh, &sh) : fh.hdr_len);
	r->fd = r->segs[0].fd;
	r->off = r->segs[0].start;
	r->check = true;
	/* the compact records came with ABI 4 */
	r->type_max = fh.abi >= 4 ? PP_REC_MAX : PP_REC_ALLOC_D;
	r->file_size = st.st_size;
	pp_rec_state_init(&r->chk);
	return r;
}

void pp_trace_close_reader(struct pp_trace_reader *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->nsegs; i++)
		close(r->segs[i].fd);
	pp_rec_state_free(&r->chk);
	free(r->segs);
	free(r->path);
	free(r->idx);
	free(r->comp);
	free(r->raw);
	free(r);
}

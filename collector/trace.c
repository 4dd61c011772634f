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
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>
#include <lz4.h>

#include "alloc.h"
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

struct pp_trace_writer {
	int fd;
	int err;		/* -errno of the last failed write, or 0 */
	uint64_t lost;		/* records of chunks that failed to write */
	uint32_t nrec;		/* records in buf */
	size_t used;		/* bytes in buf */
	uint64_t ts_first, ts_last;
	uint64_t bytes;		/* written to the file */
	char *buf;		/* PP_TRACE_CHUNK_RAW */
	char *out;		/* chunk header + compressed payload */
	size_t out_cap;
};

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

struct pp_trace_writer *pp_trace_create(const char *path, char *err,
					size_t errlen)
{
	struct pp_trace_file_hdr fh = {
		.version = PP_TRACE_VERSION,
		.hdr_len = sizeof(fh),
		.abi = PP_ABI_VERSION,
		.flags = PP_TRACE_F_LZ4,
	};
	struct pp_trace_writer *w;
	int e;

	w = pp_xcalloc(1, sizeof(*w));
	w->fd = -1;
	w->out_cap = sizeof(struct pp_trace_chunk_hdr) +
		     LZ4_compressBound(PP_TRACE_CHUNK_RAW);
	w->buf = pp_xmalloc(PP_TRACE_CHUNK_RAW);
	w->out = pp_xmalloc(w->out_cap);

	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		e = errno;
		goto fail;
	}
	memcpy(fh.magic, PP_TRACE_MAGIC, sizeof(fh.magic));
	e = -write_all(w->fd, &fh, sizeof(fh));
	if (e)
		goto fail;
	w->bytes = sizeof(fh);
	return w;
fail:
	snprintf(err, errlen, "cannot create: %s", strerror(e));
	if (w->fd >= 0)
		close(w->fd);
	free(w->out);
	free(w->buf);
	free(w);
	return NULL;
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
		goto lose;
	}
	w->bytes += sizeof(*ch) + n;
	e = 0;
	goto done;
lose:
	w->err = e;
	w->lost += w->nrec;
done:
	w->used = 0;
	w->nrec = 0;
	w->ts_first = w->ts_last = 0;
	return e;
}

int pp_trace_append(struct pp_trace_writer *w, const struct pp_hdr *rec)
{
	size_t len = rec->len;
	int e = 0;

	if (unlikely(len < sizeof(*rec) || (len & 7) || !rec->type ||
		     rec->type >= PP_REC_MAX))
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
	memcpy(w->buf + w->used, rec, len);
	w->used += len;
	w->nrec++;
	/* TICK, META and EXIT all carry a u64 ts right after the header. */
	if (unlikely(rec->type >= PP_REC_TICK) && len >= 16) {
		uint64_t ts;

		memcpy(&ts, (const char *)rec + sizeof(*rec), sizeof(ts));
		if (!w->ts_first)
			w->ts_first = ts;
		w->ts_last = ts;
	}
	return e;
}

int pp_trace_append_run(struct pp_trace_writer *w, const void *recs,
			size_t len)
{
	const char *p = recs, *end = p + len;

	while (p < end) {
		const char *q = p;
		uint32_t n = 0;
		int e;

		/* as many whole records as the chunk still holds */
		while (q < end && (size_t)(q - p) + ((const struct pp_hdr *)q)->len
		       <= PP_TRACE_CHUNK_RAW - w->used) {
			const struct pp_hdr *rec = (const void *)q;

			if (unlikely(rec->len < sizeof(*rec) || (rec->len & 7) ||
				     !rec->type || rec->type >= PP_REC_TICK))
				return -EINVAL;
			q += rec->len;
			n++;
		}
		memcpy(w->buf + w->used, p, q - p);
		w->used += q - p;
		w->nrec += n;
		p = q;
		if (p < end && (e = pp_trace_flush(w))) {
			/* the rest would name what the lost chunk defined */
			while (p < end &&
			       ((const struct pp_hdr *)p)->len >= 8) {
				p += ((const struct pp_hdr *)p)->len;
				w->lost++;
			}
			return e;
		}
	}
	return 0;
}

int pp_trace_append_counted(struct pp_trace_writer *w, const void *recs,
			    size_t len, uint32_t nrec)
{
	/* checked as the ring's drain checks them: a run that fits is one
	 * copy, without a second walk over its records */
	if (len > PP_TRACE_CHUNK_RAW - w->used)
		return pp_trace_append_run(w, recs, len);
	memcpy(w->buf + w->used, recs, len);
	w->used += len;
	w->nrec += nrec;
	return 0;
}

int pp_trace_close(struct pp_trace_writer *w)
{
	int e;

	if (!w)
		return 0;
	e = pp_trace_flush(w);
	if (close(w->fd) && !e)
		e = -errno;
	free(w->out);
	free(w->buf);
	free(w);
	return e;
}

uint64_t pp_trace_bytes_written(const struct pp_trace_writer *w)
{
	return w->bytes;
}

uint64_t pp_trace_lost(const struct pp_trace_writer *w)
{
	return w->lost;
}

/* Reader */

struct pp_trace_reader {
	int fd;
	bool failed;		/* -1 returned; sticks until rewind/seek */
	bool truncated;
	bool loaded;		/* raw holds the chunk at off */
	bool check;		/* records go through pp_rec_check() */
	bool invalid;		/* stopped at an inconsistent record */
	uint64_t first;		/* offset of the first chunk */
	uint64_t off;		/* current (or next) chunk */
	uint64_t chunk_no;	/* its number, from 0 */
	char *comp, *raw;
	size_t comp_cap, raw_cap;
	size_t raw_len, pos;	/* records of the loaded chunk, next one */
	uint32_t recno;		/* number of the next one in its chunk */
	uint64_t file_size;	/* at the last chunk load */
	struct pp_rec_state chk;
	uint32_t comp_len;
	struct pp_trace_chunk_info *idx;
	size_t nidx, idx_cap;
	uint64_t idx_end;	/* offset after the last indexed chunk */
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
static int payload_present(struct pp_trace_reader *r, uint64_t off,
			   uint32_t comp_len)
{
	struct stat st;

	if (fstat(r->fd, &st))
		return -1;
	r->file_size = st.st_size;
	return off + sizeof(struct pp_trace_chunk_hdr) + comp_len <=
	       (uint64_t)st.st_size;
}

/* Walk the records once so a chunk is either all good or rejected. */
static int check_records(struct pp_trace_reader *r, uint32_t nrec)
{
	size_t pos = 0;
	uint32_t n = 0;

	while (pos < r->raw_len) {
		const struct pp_hdr *h = (const void *)(r->raw + pos);
		size_t left = r->raw_len - pos;

		if (h->len < sizeof(*h) || h->len % 8 || h->len > left)
			return corrupt(r, r->chunk_no, r->off,
				       "record %u at byte %zu: bad length %u",
				       n, pos, h->len);
		if (!h->type || h->type >= PP_REC_MAX)
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
	r->comp_len = ch.comp_len;
	r->loaded = true;
	return 1;
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

int pp_trace_next(struct pp_trace_reader *r, const struct pp_hdr **rec)
{
	if (unlikely(r->failed))
		return -1;
	if (unlikely(r->invalid))
		return 0;
	for (;;) {
		int k;

		if (likely(r->pos < r->raw_len)) {
			const struct pp_hdr *h = (const void *)(r->raw + r->pos);
			char why[160];

			if (r->check && unlikely(pp_rec_check(&r->chk, h,
							      r->file_size, why,
							      sizeof(why))))
				return stop_invalid(r, why);
			r->pos += h->len;	/* checked in check_records() */
			r->recno++;
			*rec = h;
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

static void goto_chunk(struct pp_trace_reader *r, uint64_t off, uint64_t no)
{
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
	goto_chunk(r, r->first, 0);
	pp_rec_state_free(&r->chk);
	pp_rec_state_init(&r->chk);
	return 0;
}

int pp_trace_seek_chunk(struct pp_trace_reader *r, size_t i)
{
	if (i >= r->nidx)
		return -1;
	goto_chunk(r, r->idx[i].offset, i);
	return 0;
}

int pp_trace_index(struct pp_trace_reader *r,
		   const struct pp_trace_chunk_info **chunks, size_t *n)
{
	uint64_t off = r->nidx ? r->idx_end : r->first;

	for (;;) {
		struct pp_trace_chunk_hdr ch;
		ssize_t got = pread_full(r->fd, &ch, sizeof(ch), off);
		int k;

		if (got < 0)
			return corrupt(r, r->nidx, off, "read: %s",
				       strerror(-got));
		if (got < (ssize_t)sizeof(ch))
			break;
		if (check_chunk_hdr(r, &ch, r->nidx, off))
			return -1;
		k = payload_present(r, off, ch.comp_len);
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
		};
		off += sizeof(ch) + ch.comp_len;
		r->idx_end = off;
	}
	*chunks = r->idx;
	*n = r->nidx;
	return 0;
}

struct pp_trace_reader *pp_trace_open(const char *path, char *err,
				      size_t errlen)
{
	struct pp_trace_file_hdr fh;
	struct pp_trace_reader *r;
	struct stat st;
	ssize_t n;
	int fd;

	/* non-blocking: a FIFO must not hang the open (it is refused below) */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st)) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cannot open: %s", strerror(EISDIR));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {	/* chunks are read with pread */
		snprintf(err, errlen, "cannot open: not a regular file");
		goto fail;
	}
	n = pread_full(fd, &fh, sizeof(fh), 0);
	if (n < 0) {
		snprintf(err, errlen, "cannot read: %s", strerror(-n));
		goto fail;
	}
	if (n == 0) {
		snprintf(err, errlen, "not a pyprof trace (empty file)");
		goto fail;
	}
	if (memcmp(fh.magic, PP_TRACE_MAGIC,
		   n < (ssize_t)sizeof(fh.magic) ? n : sizeof(fh.magic))) {
		snprintf(err, errlen, "not a pyprof trace");
		goto fail;
	}
	if (n < (ssize_t)sizeof(fh)) {
		snprintf(err, errlen, "truncated trace header (%zd of %zu bytes)",
			 n, sizeof(fh));
		goto fail;
	}
	if (fh.version != PP_TRACE_VERSION) {
		snprintf(err, errlen,
			 "unsupported trace format version %u (this pyprof reads %u)",
			 fh.version, PP_TRACE_VERSION);
		goto fail;
	}
	if (fh.hdr_len < sizeof(fh) || fh.hdr_len > HDR_LEN_MAX) {
		snprintf(err, errlen, "corrupt trace header: length %u",
			 fh.hdr_len);
		goto fail;
	}
	if (fh.abi != PP_ABI_VERSION) {
		snprintf(err, errlen,
			 "trace records are ABI version %u (this pyprof reads %u)",
			 fh.abi, PP_ABI_VERSION);
		goto fail;
	}

	if (fh.flags != PP_TRACE_F_LZ4) {
		snprintf(err, errlen, "unsupported trace flags %#x (this pyprof "
			 "reads %#x: LZ4 chunks)", fh.flags, PP_TRACE_F_LZ4);
		goto fail;
	}

	r = pp_xcalloc(1, sizeof(*r));
	r->fd = fd;
	r->first = r->off = fh.hdr_len;
	r->check = true;
	r->file_size = st.st_size;
	pp_rec_state_init(&r->chk);
	return r;
fail:
	close(fd);
	return NULL;
}

void pp_trace_close_reader(struct pp_trace_reader *r)
{
	if (!r)
		return;
	close(r->fd);
	pp_rec_state_free(&r->chk);
	free(r->idx);
	free(r->comp);
	free(r->raw);
	free(r);
}

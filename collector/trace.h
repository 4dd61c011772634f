/* SPDX-License-Identifier: MIT */
/*
 * pyprof trace files: what `pyprof record -o FILE` writes and
 * `pyprof report/view FILE` read. A fixed file header, then chunks of
 * LZ4-compressed whole records (include/pp_wire.h). The layout is
 * described in docs/trace-format.md; the structs below are it.
 *
 * A writer or reader is used by one thread at a time.
 */
#ifndef PP_TRACE_H
#define PP_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "pp_wire.h"

#define PP_TRACE_MAGIC		"PYPROFTR"	/* 8 bytes, no NUL */
#define PP_TRACE_VERSION	1
/* Record ABIs this reader reads: 2 (no checkpoints) and PP_ABI_VERSION. */
#define PP_TRACE_ABI_MIN	2
#define PP_TRACE_F_LZ4		0x1	/* chunks are LZ4 blocks (required) */
#define PP_CHUNK_MAGIC		"PPCK"		/* 4 bytes, no NUL */
/* Raw bytes the writer gathers before it compresses a chunk. */
#define PP_TRACE_CHUNK_RAW	(1u << 20)
/* No chunk, compressed or raw, may be larger: bounds reader memory. */
#define PP_TRACE_CHUNK_MAX	(64u << 20)

/* All fields little-endian. */
struct pp_trace_file_hdr {
	char magic[8];		/* PP_TRACE_MAGIC */
	uint32_t version;	/* PP_TRACE_VERSION */
	uint32_t hdr_len;	/* bytes from file start to the first chunk */
	uint32_t abi;		/* PP_ABI_VERSION of the records */
	uint32_t flags;		/* PP_TRACE_F_*; unknown bits: refuse */
	uint64_t reserved;	/* 0 */
};
_Static_assert(sizeof(struct pp_trace_file_hdr) == 32, "pp_trace_file_hdr");

/*
 * From ABI 3 the header goes on (hdr_len 64; older readers skip it):
 * which segment of which recording the file is. With --max-size a
 * recording is a sequence of segment files: the newest at the path
 * given, older ones at "PATH.SEQ"; every segment after the first
 * starts with a checkpoint of the live state (pp_wire.h PP_REC_CKPT),
 * and data_off is where the records after the checkpoint begin.
 */
struct pp_trace_seg_hdr {
	uint64_t rec_id;	/* random, the same in every segment */
	uint32_t seq;		/* 1 for the first segment */
	uint32_t flags;		/* 0 */
	uint64_t data_off;	/* first chunk after the checkpoint */
	uint64_t reserved;	/* 0 */
};
_Static_assert(sizeof(struct pp_trace_seg_hdr) == 32, "pp_trace_seg_hdr");
#define PP_TRACE_HDR_LEN	64
/* Older segments a reader looks for, at most. */
#define PP_TRACE_SEGS_MAX	4096

struct pp_trace_chunk_hdr {
	char magic[4];		/* PP_CHUNK_MAGIC */
	uint32_t comp_len;	/* LZ4 block bytes that follow */
	uint32_t raw_len;	/* bytes of records once decompressed */
	uint32_t nrec;		/* records in raw_len */
	uint64_t ts_first;	/* first/last TICK/META/EXIT ts, 0 if none */
	uint64_t ts_last;
	uint32_t data_crc;	/* CRC-32 (zlib) of the comp_len bytes */
	uint32_t hdr_crc;	/* CRC-32 of the 36 bytes before this field */
};
_Static_assert(sizeof(struct pp_trace_chunk_hdr) == 40, "pp_trace_chunk_hdr");

/* Writer. Every int-returning call gives 0 or -errno. A chunk that
 * fails to write is cut off the file again and its records are counted
 * lost (pp_trace_lost); later chunks are tried as usual. */
struct pp_trace_writer;

/* Creates (O_TRUNC, 0644) and writes the file header. NULL + err. */
struct pp_trace_writer *pp_trace_create(const char *path, char *err,
					size_t errlen);
/* Copies rec (an ALLOC or FREE perhaps as its compact form, pp_wire.h
 * ALLOC_D/FREE_D); compresses and writes a chunk when the buffer is
 * full. -EINVAL for a record the reader would reject, or of a compact
 * type (only the writer makes those). */
int pp_trace_append(struct pp_trace_writer *w, const struct pp_hdr *rec);
/* Copies a run of producer records (types below PP_REC_TICK) in one
 * pass, as pp_trace_append would one by one, splitting it only at chunk
 * boundaries. -EINVAL for a bad record (those before it are taken). */
int pp_trace_append_run(struct pp_trace_writer *w, const void *recs,
			size_t len);
/*
 * The collector's hot path: takes records from recs (a ring's unread
 * bytes: each header is read once, with an acquire load) as
 * pp_trace_append_run does, zeroing each once it is copied (the ring's
 * "uncommitted" for its next lap, while the line is at hand), and
 * stops at the first that is uncommitted (a zero header), of a type
 * whose bit is set in look (types below 32 but ALLOC and FREE: the
 * caller looks at those itself), of type PP_REC_TICK or above, or of a
 * bad length; or when a chunk fails to write (*err = -errno; its
 * records are counted lost). Returns the bytes taken.
 */
size_t pp_trace_take(struct pp_trace_writer *w, void *recs, size_t len,
		     uint32_t look, int *err);
/* Writes the gathered records as one chunk now; nothing if none. */
int pp_trace_flush(struct pp_trace_writer *w);
/* Flushes, closes and frees (also on error). NULL is a no-op. */
int pp_trace_close(struct pp_trace_writer *w);
/* File bytes written so far (header + chunks), of every segment kept. */
uint64_t pp_trace_bytes_written(const struct pp_trace_writer *w);

/*
 * --max-size: keep the trace's segments within max_bytes (plus one
 * chunk), dropping the oldest. Each new segment starts with a
 * checkpoint: ops->write appends its records (pp_trace_append) and is
 * given no record of its own through ops->observe, which sees every
 * other record in order. ops->ready says whether one may be taken now.
 * The writer frees ctx with ops->free when it closes.
 */
struct pp_trace_cap_ops {
	void (*observe)(void *ctx, const struct pp_hdr *rec);
	int (*ready)(void *ctx);
	int (*write)(void *ctx, struct pp_trace_writer *w, uint32_t seq);
	void (*free)(void *ctx);
};
void pp_trace_set_cap(struct pp_trace_writer *w, uint64_t max_bytes,
		      const struct pp_trace_cap_ops *ops, void *ctx);
/* Records lost so far in chunks that could not be written. */
uint64_t pp_trace_lost(const struct pp_trace_writer *w);

/* Reader. */
struct pp_trace_reader;

/* NULL + one message in err if the file cannot be read as a trace.
 * The older segments of a capped recording (PATH.SEQ) are found and
 * read first, from the oldest one kept. */
struct pp_trace_reader *pp_trace_open(const char *path, char *err,
				      size_t errlen);
/*
 * 1: *rec is the next record, valid until the next call on r.
 * 0: end of the trace; pp_trace_truncated() tells whether the file
 *    ended inside a chunk, pp_trace_invalid() whether it ended at a
 *    record inconsistent with those before it (collector/reccheck.h).
 *    A later call retries from the first incomplete chunk, so a reader
 *    can follow a trace being written (an invalid record stays the end
 *    until a rewind or seek).
 * -1: corrupt; the message is in pp_trace_error() and every later
 *    call returns -1 until a rewind or seek.
 */
int pp_trace_next(struct pp_trace_reader *r, const struct pp_hdr **rec);
const char *pp_trace_error(const struct pp_trace_reader *r);
int pp_trace_truncated(const struct pp_trace_reader *r);
/* NULL, or why the readable prefix ended before the file did:
 * "invalid record: chunk N at offset X, record K (byte B): <what>". */
const char *pp_trace_invalid(const struct pp_trace_reader *r);
/* Records are checked (reccheck.h) unless turned off: tests of the
 * framing alone. A rewind starts the checks afresh; a seek keeps what
 * earlier chunks defined. */
void pp_trace_set_check(struct pp_trace_reader *r, int on);
/*
 * A filter sees each checked record and delivers it (1, *out: it or a
 * rewritten copy the filter owns until its next call) or drops it (0).
 * Told of a rewind or seek by a call with rec NULL. NULL: no filter.
 * (procs.h: one process of a --children trace, or all merged.)
 */
typedef int (*pp_trace_filter_fn)(void *ctx, const struct pp_hdr *rec,
				  const struct pp_hdr **out);
void pp_trace_set_filter(struct pp_trace_reader *r, pp_trace_filter_fn fn,
			 void *ctx);
/* Restarts from the first chunk. 0 */
int pp_trace_rewind(struct pp_trace_reader *r);
void pp_trace_close_reader(struct pp_trace_reader *r);

/* Chunk index, for seeking in the replay viewer. */
struct pp_trace_chunk_info {
	uint64_t offset;	/* of the chunk header in its segment file */
	uint64_t ts_first;	/* as in the chunk header: 0 = unknown */
	uint64_t ts_last;
	uint32_t nrec;
	uint32_t raw_len;
	uint32_t seg;		/* segment, from 0 (the oldest kept) */
};

/*
 * Reads every complete chunk header (not the payloads) and gives the
 * table, valid until the next pp_trace_index() or close. Calling it
 * again picks up chunks appended since. 0, or -1 with the error set.
 */
int pp_trace_index(struct pp_trace_reader *r,
		   const struct pp_trace_chunk_info **chunks, size_t *n);
/* Continue reading at chunk i of the index. 0, or -1 if out of range. */
int pp_trace_seek_chunk(struct pp_trace_reader *r, size_t i);

#endif

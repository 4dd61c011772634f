// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: bytes through what `pyprof report` does with a
 * trace (the reader, reccheck, the model, a window, every report and
 * export), built with ASan+UBSan (make fuzz). An input is either
 *
 *   a trace file ("PYPROFTR..."): the chunk CRCs are set right before
 *   reading, so mutations reach the LZ4 and record checks rather than
 *   dying at the CRC; or
 *   a stream of records: written as a valid file header and LZ4 chunks
 *   of a few KiB each (split at record boundaries), so mutations reach
 *   reccheck, the model and the reports.
 *
 * The bytes go to a memfd, read as /proc/self/fd/N: the reader's own
 * entry point, unchanged.
 */
#include <lz4.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "export.h"
#include "model.h"
#include "report.h"
#include "trace.h"
#include "window.h"

#define CHUNK_RAW 4096

static FILE *sink;

static void put(FILE *f, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, f) != n)
		abort();
}

/* A trace file: CRCs recomputed where the chunk framing can be followed. */
static void fix_file(unsigned char *d, size_t n)
{
	struct pp_trace_file_hdr fh;
	size_t off;

	if (n < sizeof(fh))
		return;
	memcpy(&fh, d, sizeof(fh));
	off = fh.hdr_len;
	while (off + sizeof(struct pp_trace_chunk_hdr) <= n) {
		struct pp_trace_chunk_hdr ch;
		size_t end;

		memcpy(&ch, d + off, sizeof(ch));
		end = off + sizeof(ch) + ch.comp_len;
		if (end < off || end > n)
			end = n;
		ch.data_crc = crc32(0, d + off + sizeof(ch),
				    end - off - sizeof(ch));
		ch.hdr_crc = crc32(0, (void *)&ch,
				   offsetof(struct pp_trace_chunk_hdr, hdr_crc));
		memcpy(d + off, &ch, sizeof(ch));
		off = end;
		if (!ch.comp_len)
			break;
	}
}

static void chunk(FILE *f, const unsigned char *raw, size_t len,
		  uint32_t nrec)
{
	struct pp_trace_chunk_hdr ch = { .magic = { 'P', 'P', 'C', 'K' } };
	int cap = LZ4_compressBound(len);
	char *comp = malloc(cap ? cap : 1);
	int k;

	k = LZ4_compress_default((const char *)raw, comp, len, cap);
	if (k <= 0)
		abort();
	ch.comp_len = k;
	ch.raw_len = len;
	ch.nrec = nrec;
	ch.data_crc = crc32(0, (void *)comp, k);
	ch.hdr_crc = crc32(0, (void *)&ch,
			   offsetof(struct pp_trace_chunk_hdr, hdr_crc));
	put(f, &ch, sizeof(ch));
	put(f, comp, k);
	free(comp);
}

/* A record stream: a file header, then chunks of whole records. */
static void write_records(FILE *f, const unsigned char *d, size_t n)
{
	struct pp_trace_file_hdr fh = { .magic = { 'P', 'Y', 'P', 'R', 'O',
						   'F', 'T', 'R' } };
	size_t start = 0, pos = 0;
	uint32_t nrec = 0;

	fh.version = PP_TRACE_VERSION;
	fh.hdr_len = sizeof(fh);
	fh.abi = PP_ABI_VERSION;
	fh.flags = PP_TRACE_F_LZ4;
	put(f, &fh, sizeof(fh));
	n &= ~(size_t)7;
	while (pos < n) {
		struct pp_hdr h;

		memcpy(&h, d + pos, sizeof(h));
		/* framing the reader rejects: one last chunk holds the rest */
		if (h.len < sizeof(h) || h.len % 8 || h.len > n - pos) {
			chunk(f, d + start, n - start, nrec + 1);
			return;
		}
		if (pos + h.len - start > CHUNK_RAW && pos > start) {
			chunk(f, d + start, pos - start, nrec);
			start = pos;
			nrec = 0;
		}
		pos += h.len;
		nrec++;
	}
	if (pos > start)
		chunk(f, d + start, pos - start, nrec);
}

/* What `pyprof report FILE [--from --to] --format F` does, every F. */
static void report(const char *path, double from, double to)
{
	struct pp_window w = { from, to };
	struct pp_stack_snap snap = { 0 };
	struct pp_trace_reader *r;
	struct pp_model m;
	struct pp_win win;
	char err[512];
	int rc, past_end, by;

	r = pp_trace_open(path, err, sizeof(err));
	if (!r)
		return;
	rc = pp_win_read(r, &m, &win, from, to, 1, &past_end);
	if (rc >= 0 && !past_end) {
		const struct pp_win *wp;

		/* the waits and chrome re-read the trace, on the run's model */
		for (by = PP_BY_GIL; by <= PP_BY_LOCKS; by++)
			pp_export_collapsed(&m, r, sink, by, NULL, NULL, &w);
		pp_export_chrome(&m, r, sink, &w);
		wp = from > 0 || isfinite(to) ? &win : NULL;
		if (wp)
			pp_win_apply(&win, &m);
		pp_report_json_win(&m, wp, sink);
		pp_report_text_win(&m, wp, sink);
		pp_stack_snap_take(&snap, &m, 1);
		for (by = PP_BY_LIVE; by <= PP_BY_ALLOC; by++)
			pp_export_collapsed(&m, r, sink, by, NULL, &snap, &w);
		pp_stack_snap_free(&snap);
		pp_export_pprof(&m, &win, sink);
		pp_export_html(&m, wp, sink);
	}
	pp_trace_close_reader(r);
	pp_win_free(&win);
	pp_model_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	unsigned char *copy;
	FILE *f;
	int fd;

	if (!sink)
		sink = fopen("/dev/null", "w");
	fd = memfd_create("fuzz_trace", MFD_CLOEXEC);
	if (fd < 0 || !sink || !(f = fdopen(dup(fd), "w")))
		abort();
	if (size >= 8 && !memcmp(data, PP_TRACE_MAGIC, 8)) {
		copy = malloc(size);
		memcpy(copy, data, size);
		fix_file(copy, size);
		put(f, copy, size);
		free(copy);
	} else {
		write_records(f, data, size);
	}
	if (fclose(f))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	report(path, 0, INFINITY);
	/* a window: its edges, the born-block tracking, pp_win_apply */
	report(path, 0.001, 0.05);
	close(fd);
	return 0;
}

// SPDX-License-Identifier: MIT
/* pyprof record's drain (drain.h): ring to trace in one pass. */
#include <errno.h>
#include <string.h>

#include "drain.h"

/*
 * The record at p (avail bytes left) where pp_trace_take stopped: to fn
 * if its type is in look, else (it straddles the limit) to the trace;
 * zeroed, as pp_trace_take zeroes what it takes.
 * Its length once taken, 0 if it is not committed yet, -1 if no
 * producer of ours writes it.
 */
static long one(struct pp_trace_writer *w, char *p, size_t avail,
		uint32_t look, pp_drain_fn fn, void *ctx, int *err)
{
	uint64_t v = __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
	struct pp_hdr hd;

	if (!v)
		return 0;
	memcpy(&hd, &v, sizeof(hd));
	/* type 0 wraps to 255: one compare for 1..PP_REC_TICK-1 */
	if (hd.len < sizeof(hd) || (hd.len & 7) || hd.len > avail ||
	    (uint8_t)(hd.type - 1) >= PP_REC_TICK - 1)
		return -1;
	if ((look >> hd.type) & 1) {
		fn(ctx, (const struct pp_hdr *)p);
		memset(p, 0, hd.len);
	} else if (pp_trace_take(w, p, hd.len, 0, err) != hd.len)
		return 0;	/* a chunk failed to write: *err */
	return hd.len;
}

long pp_drain_to_trace(struct pp_ring *r, struct pp_trace_writer *w,
		       size_t max, uint32_t look, pp_drain_fn fn, void *ctx,
		       int *err)
{
	char *base;
	size_t avail = pp_ring_peek(r, (void **)&base), off = 0;
	size_t lim = avail < max ? avail : max;
	long k = 0;

	*err = 0;
	while (off < lim) {
		off += pp_trace_take(w, base + off, lim - off, look, err);
		if (*err || off >= avail)
			break;
		/* in look, uncommitted, bad, or straddling lim */
		k = one(w, base + off, avail - off, look, fn, ctx, err);
		if (k <= 0)
			break;
		off += k;
	}
	pp_ring_release(r, off, off);	/* zeroed as taken */
	return k < 0 ? -EPROTO : (long)off;
}

/* SPDX-License-Identifier: MIT */
/*
 * pyprof record's drain: from the shim's ring straight into the trace.
 */
#ifndef PP_DRAIN_H
#define PP_DRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "pp_ring.h"
#include "trace.h"

/*
 * The committed records at the ring's read position go to w in one
 * pass (pp_trace_take: checked, compacted, copied), up to max bytes
 * and the record that straddles it; a record of a type whose bit is
 * set in look (not ALLOC or FREE) is given to fn instead, which writes
 * what it will. The bytes read are given back to the producers.
 * Returns them, or -EPROTO at a record no producer of ours writes
 * (those before it are taken); a chunk that fails to write stops the
 * drain with *err = -errno (the records after it stay in the ring).
 */
typedef void (*pp_drain_fn)(void *ctx, const struct pp_hdr *rec);
long pp_drain_to_trace(struct pp_ring *r, struct pp_trace_writer *w,
		       size_t max, uint32_t look, pp_drain_fn fn, void *ctx,
		       int *err);

#endif

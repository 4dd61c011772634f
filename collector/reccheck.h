/* SPDX-License-Identifier: MIT */
/*
 * Record consistency, checked by the trace reader before any consumer
 * (the model, the stalls, the replay) sees a record: each type's length,
 * ids defined before use and dense, times within a span of the start
 * (docs/trace-format.md, "Records"). Framing (lengths within the chunk,
 * known types) is the reader's own check; this is what a chunk with
 * valid CRCs can still get wrong.
 */
#ifndef PP_RECCHECK_H
#define PP_RECCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "pp_wire.h"

/* ids of one kind (FUNC, STACK) in one range (shim: < 2^31, eBPF: >= 2^31) */
struct pp_idset {
	uint64_t *bits;		/* bit i: id i defined */
	size_t nwords;
	uint64_t ndef;		/* distinct ids defined */
};

struct pp_rec_state {
	struct pp_idset ids[2][2];	/* [0 FUNC, 1 STACK][0 shim, 1 eBPF] */
	uint64_t t0;			/* first META/TICK/MARK ts, 0 = none yet */
	uint64_t t_tick;		/* last TICK ts */
};

/* An id may lie at most this far past the count of distinct ids of its
 * kind defined so far, plus file bytes / PP_ID_SLACK_DIV: the gaps a
 * failed definition leaves (its records were dropped). */
#define PP_ID_SLACK 4096u
#define PP_ID_SLACK_DIV 16u
/* No time may lie further from the first clock record (1 year). */
#define PP_SPAN_MAX_NS (365ull * 86400 * 1000000000)
/* A MARK from the shim may predate the first clock record by this much. */
#define PP_MARK_EARLY_NS 1000000000ull

void pp_rec_state_init(struct pp_rec_state *s);
void pp_rec_state_free(struct pp_rec_state *s);
/*
 * 0: rec is consistent with what came before it (and is now part of s).
 * -1: it is not; why says what, in a few words. file_size bounds ids.
 */
int pp_rec_check(struct pp_rec_state *s, const struct pp_hdr *rec,
		 uint64_t file_size, char *why, size_t whylen);

#endif

// SPDX-License-Identifier: MIT
/*
 * --sample BYTES: byte-based sampling. Each thread counts down an
 * exponentially distributed number of bytes (mean BYTES); the
 * allocation that crosses zero is recorded and a new gap drawn. Since
 * the exponential is memoryless, a block of n bytes is recorded with
 * probability 1 - exp(-n/BYTES) whatever came before it, which is
 * what makes the collector's estimate n / (1 - exp(-n/BYTES)) unbiased.
 *
 * Frees are recorded only for recorded blocks, which come from a
 * region of their own (region.c): the common free costs a compare.
 */
#include <math.h>
#include <unistd.h>

#include "shim.h"

__thread int64_t pp_sample_left;
static __thread uint64_t rng;

static int64_t next_gap(void)
{
	double u;

	if (!rng)
		rng = (pp_now_ns() ^ ((uint64_t)gettid() << 32)) | 1;
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	u = ((rng >> 11) + 0.5) / 9007199254740992.0;	/* (0, 1) */
	return (int64_t)(-log(u) * (double)pp_shim.sample_bytes) + 1;
}

/* The countdown (already lowered by n) crossed zero: take this one? */
int pp_sample_crossed(size_t n)
{
	if (unlikely(!rng)) {
		/* the thread's first gap starts now */
		pp_sample_left = next_gap() - (int64_t)n;
		if (pp_sample_left > 0)
			return 0;
	}
	pp_sample_left = next_gap();
	return 1;
}

int pp_sample_init(void)
{
	if (!pp_shim.sample_bytes)
		return 0;
	return pp_region_init();
}

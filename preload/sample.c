// SPDX-License-Identifier: MIT
/*
 * --sample BYTES: byte-based sampling. Each thread counts down an
 * exponentially distributed number of bytes (mean BYTES); the
 * allocation that crosses zero is recorded and a new gap drawn. Since
 * the exponential is memoryless, a block of n bytes is recorded with
 * probability 1 - exp(-n/BYTES) whatever came before it, which is
 * what makes the collector's estimate n / (1 - exp(-n/BYTES)) unbiased.
 *
 * Frees are recorded only for recorded blocks: a set of their
 * addresses, fronted by a small counting filter (a counter per 64-byte
 * granule, shim.h) that stays in cache so the common free (not
 * sampled) costs one byte load.
 */
#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

#define SET_BITS 20

static __thread uint64_t rng;
uint8_t pp_sample_filter[1u << PP_FILTER_BITS];
static uintptr_t *set;			/* open addressing; 1 = tombstone */
static int set_lock;

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

static void lock(void)
{
	while (__atomic_exchange_n(&set_lock, 1, __ATOMIC_ACQUIRE))
		__builtin_ia32_pause();
}

static void unlock(void)
{
	__atomic_store_n(&set_lock, 0, __ATOMIC_RELEASE);
}

void pp_sample_insert(const void *p)
{
	uint64_t h = pp_sample_hash(p) >> (64 - SET_BITS), i;
	uint64_t mask = (1u << SET_BITS) - 1;
	uint8_t *f = pp_sample_slot(p);

	lock();
	for (i = h; ; i++) {
		uintptr_t *s = &set[i & mask];

		if (*s <= 1) {
			*s = (uintptr_t)p;
			break;
		}
		if (i - h > mask)
			goto out;	/* full: the block goes untracked */
	}
	if (*f < 255)
		__atomic_fetch_add(f, 1, __ATOMIC_RELAXED);
out:
	unlock();
}

/* 1 if p was a recorded block (now forgotten). */
int pp_sample_remove(const void *p)
{
	uint64_t h = pp_sample_hash(p) >> (64 - SET_BITS), i;
	uint64_t mask = (1u << SET_BITS) - 1;
	uint8_t *f = pp_sample_slot(p);
	int found = 0;

	if (likely(!__atomic_load_n(f, __ATOMIC_RELAXED)))
		return 0;
	lock();
	for (i = h; i - h <= mask; i++) {
		uintptr_t *s = &set[i & mask];

		if (!*s)
			break;
		if (*s == (uintptr_t)p) {
			*s = 1;
			found = 1;
			if (*f < 255)
				(*f)--;
			break;
		}
	}
	unlock();
	return found;
}

/* 1 if p is a recorded block (it stays recorded). */
int pp_sample_contains(const void *p)
{
	uint64_t h = pp_sample_hash(p) >> (64 - SET_BITS), i;
	uint64_t mask = (1u << SET_BITS) - 1;
	int found = 0;

	lock();
	for (i = h; i - h <= mask; i++) {
		uintptr_t s = set[i & mask];

		if (!s)
			break;
		if (s == (uintptr_t)p) {
			found = 1;
			break;
		}
	}
	unlock();
	return found;
}

int pp_sample_init(void)
{
	if (!pp_shim.sample_bytes)
		return 0;
	set = mmap(NULL, sizeof(uintptr_t) << SET_BITS, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return set == MAP_FAILED ? -1 : 0;
}

// SPDX-License-Identifier: MIT
/*
 * --sample: the blocks that are recorded are served from a region of
 * address space the shim owns, so a free is known to be of a recorded
 * block by its address alone (pp_in_region: a subtract and a compare),
 * and the common free, of a block never recorded, costs nothing more.
 *
 * Every block stays freeable by glibc itself, forever: each one starts
 * on a page of its own and carries the header of a glibc mmapped chunk
 * (malloc/malloc.c: prev_size = offset of the chunk in its pages, size
 * = the rest | IS_MMAPPED). So once our hooks are gone (detached, or a
 * Python allocator domain given back), the program's free() reaching
 * glibc unmaps the block's pages, realloc() mremaps them and
 * malloc_usable_size() reads the same size we do; pymalloc hands a
 * foreign block to PyMem_RawFree. Before that, every path of ours that
 * frees or reallocates checks the region first: the free hooks of all
 * four domains and libc's free, free_sized and realloc, whether
 * recording is on or not (a forked child, a lost collector).
 *
 * Two halves: the PyMem hooks' blocks, then libc's. A layer below our
 * PyMem hooks that calls malloc (PYTHONMALLOC=debug's hooks: a header
 * before what they return) hands out pointers into libc's half that
 * are not block starts; when one reaches a PyMem hook, only the PyMem
 * half is ours there, so it goes on down to that layer, which frees
 * the real start through libc's free. libc's free takes both halves.
 *
 * The region is reserved PROT_NONE and made writable as it is used;
 * freed blocks are kept on lists by page count for reuse (large ones
 * given back to the kernel first). A block costs at least one page of
 * address space, one page resident while it lives: about
 * 4 KiB / BYTES of the live heap at --sample BYTES. pp_region_retire()
 * stops recognising the region, for a shim that unhooks for good while
 * blocks are live: those then go to glibc as above.
 */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

#define HDR 16			/* glibc's CHUNK_HDR_SZ */
#define IS_MMAPPED 2
#define EXACT_BINS 64		/* blocks of 1..64 pages: a list each */
#define NBINS (EXACT_BINS + 48)
#define COMMIT_STEP (4u << 20)
#define DONTNEED_PAGES 256	/* freed blocks this large go back first */

struct pp_region pp_region;

static struct {
	struct half {
		uintptr_t top, end;	/* bump pointer, end of writable part */
		void *bins[NBINS];	/* free blocks: next pointer at start */
	} h[2];			/* PyMem's, libc's */
	size_t page;
	int lock;
} rg;

static void lock(void)
{
	while (__atomic_exchange_n(&rg.lock, 1, __ATOMIC_ACQUIRE))
		__builtin_ia32_pause();
}

static void unlock(void)
{
	__atomic_store_n(&rg.lock, 0, __ATOMIC_RELEASE);
}

/* a fork happens with the lock free, so the child can use the region */
static void fork_prepare(void)
{
	lock();
}

/* pages of a block (rounded up to a power of two beyond EXACT_BINS) */
static size_t bin_of(size_t *pages)
{
	size_t p = *pages, b = EXACT_BINS;

	if (p <= EXACT_BINS)
		return p - 1;
	while (((size_t)EXACT_BINS << (b - EXACT_BINS + 1)) < p)
		b++;
	*pages = (size_t)EXACT_BINS << (b - EXACT_BINS + 1);
	return b;
}

void *pp_region_alloc(int libc, size_t n, size_t align)
{
	struct half *h = &rg.h[!!libc];
	uintptr_t base = 0, lim;
	size_t off, pages, b, total;
	uint64_t *chunk;

	if (align < HDR)
		align = HDR;
	if (!pp_region.len || (align & (align - 1)) || align > (1u << 20) ||
	    n > pp_region.half)
		return NULL;
	/* the user's pointer is off bytes into the block's pages */
	off = align > rg.page ? align : (HDR + align - 1) & ~(align - 1);
	pages = (off + n + rg.page - 1) / rg.page;
	b = bin_of(&pages);
	if (b >= NBINS)
		return NULL;
	total = pages * rg.page;
	lim = pp_region.lo + pp_region.half * (1 + !!libc);
	lock();
	if (h->bins[b]) {
		base = (uintptr_t)h->bins[b];
		h->bins[b] = *(void **)base;
	} else if (h->top + total <= lim) {
		if (h->top + total > h->end) {
			size_t grow = (h->top + total - h->end + COMMIT_STEP - 1) &
				      ~(size_t)(COMMIT_STEP - 1);

			if (h->end + grow > lim)
				grow = lim - h->end;
			if (mprotect((void *)h->end, grow,
				     PROT_READ | PROT_WRITE) == 0)
				h->end += grow;
		}
		if (h->top + total <= h->end) {
			base = h->top;
			h->top += total;
		}
	}
	unlock();
	if (!base)
		return NULL;
	off = ((base + HDR + align - 1) & ~(align - 1)) - base;
	chunk = (uint64_t *)(base + off - HDR);
	chunk[0] = off - HDR;				/* prev_size */
	chunk[1] = (total - (off - HDR)) | IS_MMAPPED;	/* size */
	return (void *)(base + off);
}

static void block_of(const void *p, uintptr_t *base, size_t *total)
{
	const uint64_t *chunk = (const uint64_t *)((uintptr_t)p - HDR);

	*base = (uintptr_t)chunk - chunk[0];
	*total = chunk[0] + (chunk[1] & ~(uint64_t)7);
}

size_t pp_region_usable(const void *p)
{
	uintptr_t base;
	size_t total;

	block_of(p, &base, &total);
	return base + total - (uintptr_t)p;
}

void pp_region_free(void *p)
{
	struct half *h;
	uintptr_t base;
	size_t total, pages, b;

	block_of(p, &base, &total);
	h = &rg.h[base - pp_region.lo >= pp_region.half];
	pages = total / rg.page;
	b = bin_of(&pages);
	if (pages >= DONTNEED_PAGES)
		madvise((void *)base, total, MADV_DONTNEED);
	lock();
	*(void **)base = h->bins[b];
	h->bins[b] = (void *)base;
	unlock();
}

int pp_region_init(void)
{
	static const unsigned bits[] = { 40, 36, 32, 28 };
	unsigned i;
	void *r;

	rg.page = (size_t)sysconf(_SC_PAGESIZE);
	for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		size_t len = (size_t)1 << bits[i];

		r = mmap(NULL, len, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (r == MAP_FAILED)
			continue;
		/* a huge page would make each one-page block 2 MiB resident */
		madvise(r, len, MADV_NOHUGEPAGE);
		rg.h[0].top = rg.h[0].end = (uintptr_t)r;
		rg.h[1].top = rg.h[1].end = (uintptr_t)r + len / 2;
		pp_region.lo = (uintptr_t)r;
		pp_region.half = len / 2;
		__atomic_store_n(&pp_region.len, len, __ATOMIC_RELEASE);
		pthread_atfork(fork_prepare, unlock, unlock);
		return 0;
	}
	return -1;
}

/* Live blocks go to glibc from now on; nothing else is given back. */
void pp_region_retire(void)
{
	__atomic_store_n(&pp_region.len, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&pp_region.half, 0, __ATOMIC_RELEASE);
}

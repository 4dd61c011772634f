// SPDX-License-Identifier: MIT
/*
 * Ring mapping and the producer side (see pp_ring.h). Linked
 * into the shim and into pyprof, so no allocation and no locks here.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pp_clock.h"
#include "pp_ring.h"

/* how long a blocked producer waits for a silent collector */
#define PP_RING_STALL_NS (5ull * 1000000000ull)

int pp_ring_map(struct pp_ring *r, int fd)
{
	struct pp_ring_hdr *h;
	uint64_t size;
	uint8_t *base;

	h = mmap(NULL, PP_RING_HDR_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED)
		return -errno;
	size = h->data_size;
	if (h->magic != PP_RING_MAGIC || h->abi != PP_ABI_VERSION ||
	    h->hdr_size != PP_RING_HDR_SIZE || size < 4096 ||
	    (size & (size - 1)) || size > (1ull << 32)) {
		munmap(h, PP_RING_HDR_SIZE);
		return -EPROTO;
	}
	munmap(h, PP_RING_HDR_SIZE);

	/* header, data, data again: one reservation, then fixed maps */
	base = mmap(NULL, PP_RING_HDR_SIZE + 2 * size, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	if (mmap(base, PP_RING_HDR_SIZE + size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
	    mmap(base + PP_RING_HDR_SIZE + size, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, PP_RING_HDR_SIZE) == MAP_FAILED) {
		int err = -errno;

		munmap(base, PP_RING_HDR_SIZE + 2 * size);
		return err;
	}
	r->hdr = (struct pp_ring_hdr *)base;
	r->data = base + PP_RING_HDR_SIZE;
	r->mask = size - 1;
	r->map_len = PP_RING_HDR_SIZE + 2 * size;
	return 0;
}

void pp_ring_unmap(struct pp_ring *r)
{
	if (r->hdr)
		munmap(r->hdr, r->map_len);
	r->hdr = NULL;
	r->data = NULL;
}

/* The collector is gone if it said so or its pid no longer exists. */
static int collector_gone(const struct pp_ring_hdr *h)
{
	if (!__atomic_load_n(&h->collector_alive, __ATOMIC_ACQUIRE))
		return 1;
	return kill(h->collector_pid, 0) < 0 && errno == ESRCH;
}

static void drop(struct pp_ring_hdr *h)
{
	__atomic_fetch_add(&h->dropped, 1, __ATOMIC_RELAXED);
}

/* Full ring in blocking mode: wait while the collector makes progress. */
static int wait_for_space(struct pp_ring_hdr *h, uint64_t *since)
{
	struct timespec nap = { 0, 50000 };

	if (h->mode != PP_RING_BLOCK || collector_gone(h))
		return -1;
	if (!*since) {
		*since = pp_now_ns();
		__atomic_fetch_add(&h->waits, 1, __ATOMIC_RELAXED);
	} else if (pp_now_ns() - *since > PP_RING_STALL_NS) {
		return -1;
	}
	nanosleep(&nap, NULL);
	return 0;
}

void *pp_ring_reserve_slow(struct pp_ring *r, uint32_t len)
{
	struct pp_ring_hdr *h = r->hdr;
	uint64_t pos, cons, since = 0, last_cons = 0;

	pos = __atomic_load_n(&h->prod_pos, __ATOMIC_RELAXED);
	for (;;) {
		cons = r->cons_cache;
		if (pos + len - cons > r->mask + 1) {
			cons = __atomic_load_n(&h->cons_pos, __ATOMIC_ACQUIRE);
			r->cons_cache = cons;
		}
		if (pos + len - cons > r->mask + 1) {
			/* the stall clock restarts whenever the collector moves */
			if (cons != last_cons) {
				last_cons = cons;
				since = 0;
			}
			if (wait_for_space(h, &since) < 0) {
				drop(h);
				return NULL;
			}
			pos = __atomic_load_n(&h->prod_pos, __ATOMIC_RELAXED);
			continue;
		}
		if (__atomic_compare_exchange_n(&h->prod_pos, &pos, pos + len,
						1, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			return r->data + (pos & r->mask);
	}
}

// SPDX-License-Identifier: MIT
/* The consumer side of the ring: create it, drain it in order. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pp_clock.h"
#include "pp_ring.h"

int pp_ring_create(struct pp_ring *r, uint64_t data_size, uint32_t mode)
{
	struct pp_ring_hdr *h;
	int fd, err;

	/* not close-on-exec: the target inherits it; the shim closes it */
	fd = memfd_create("pyprof-ring", 0);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, PP_RING_HDR_SIZE + data_size) < 0)
		goto fail;
	h = mmap(NULL, PP_RING_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	if (h == MAP_FAILED)
		goto fail;
	h->abi = PP_ABI_VERSION;
	h->hdr_size = PP_RING_HDR_SIZE;
	h->data_size = data_size;
	h->mode = mode;
	h->collector_pid = getpid();
	h->collector_alive = 1;
	h->collector_start = pp_ring_self_start();
	h->collector_pidns = pp_ring_self_pidns();
	h->max_frames = PP_MAX_FRAMES;
	h->start_ns = pp_now_ns();
	__atomic_store_n(&h->magic, PP_RING_MAGIC, __ATOMIC_RELEASE);
	munmap(h, PP_RING_HDR_SIZE);
	err = pp_ring_map(r, fd);
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

size_t pp_ring_peek(struct pp_ring *r, void **recs)
{
	struct pp_ring_hdr *h = r->hdr;
	uint64_t start = h->cons_pos;

	*recs = r->data + (start & r->mask);
	return __atomic_load_n(&h->prod_pos, __ATOMIC_ACQUIRE) - start;
}

void pp_ring_release(struct pp_ring *r, size_t n, size_t zeroed)
{
	struct pp_ring_hdr *h = r->hdr;
	uint64_t start = h->cons_pos;

	if (!n)
		return;
	/* zeroed, so the next lap reads "uncommitted" until written */
	if (zeroed < n)
		memset(r->data + ((start + zeroed) & r->mask), 0, n - zeroed);
	__atomic_store_n(&h->cons_pos, start + n, __ATOMIC_RELEASE);
}

long pp_ring_drain(struct pp_ring *r, size_t max, pp_ring_fn fn, void *ctx)
{
	struct pp_ring_hdr *h = r->hdr;
	uint64_t start = h->cons_pos;
	uint64_t prod = __atomic_load_n(&h->prod_pos, __ATOMIC_ACQUIRE);
	/* contiguous up to prod thanks to the double mapping; data and
	 * mask in locals, not reloaded after each acquire load */
	uint8_t *base = r->data + (start & r->mask);
	uint64_t lim = prod - start, off = 0;
	uint32_t types = 0;
	int bad = 0;

	while (off < lim && off < max) {
		uint64_t v = __atomic_load_n((uint64_t *)(base + off),
					     __ATOMIC_ACQUIRE);
		struct pp_hdr hd;

		if (!v)
			break;	/* reserved, not yet committed */
		memcpy(&hd, &v, sizeof(hd));
		/* type 0 wraps to 255: one compare for 1..PP_REC_TICK-1 */
		if (hd.len < sizeof(hd) || (hd.len & 7) || hd.len > lim - off ||
		    (uint8_t)(hd.type - 1) >= PP_REC_TICK - 1) {
			bad = 1;
			break;
		}
		types |= 1u << hd.type;
		off += hd.len;
	}
	if (off) {
		r->run_types = types;
		fn(base, off, ctx);
		/* zeroed, so the next lap reads "uncommitted" until written */
		memset(base, 0, off);
		__atomic_store_n(&h->cons_pos, start + off, __ATOMIC_RELEASE);
	}
	return bad ? -EPROTO : (long)off;
}

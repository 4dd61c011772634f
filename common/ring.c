// SPDX-License-Identifier: MIT
/*
 * Ring mapping and the producer side (see pp_ring.h). Linked
 * into the shim and into pyprof, so no allocation and no locks here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pp_clock.h"
#include "pp_ring.h"


int pp_ring_map(struct pp_ring *r, int fd)
{
	struct pp_ring_hdr *h;
	uint64_t size, ns;
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
	memset(r, 0, sizeof(*r));
	r->hdr = (struct pp_ring_hdr *)base;
	/* unknown on either side (no /proc): take the pid at its word */
	ns = pp_ring_self_pidns();
	r->same_pidns = !r->hdr->collector_pidns || !ns ||
			r->hdr->collector_pidns == ns;
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

/* how often a waiting (or stalled) producer asks whether it is gone */
#define CHECK_WAIT_NS (50ull * 1000000)
#define CHECK_STALLED_NS (1000ull * 1000000)

/*
 * /proc/PID/stat: state (field 3) and starttime (field 22), read with
 * no allocation. Returns 0, or -1 when it cannot be read.
 */
static int proc_stat(int pid, char *state, uint64_t *start)
{
	char path[32], buf[512], *p;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');	/* comm may hold spaces and parentheses */
	if (!p || p[1] != ' ')
		return -1;
	*state = p[2];
	for (field = 3, p += 2; field < 22 && *p; p++)
		if (*p == ' ')
			field++;
	if (field < 22)
		return -1;
	*start = strtoull(p, NULL, 10);
	return 0;
}

uint64_t pp_ring_self_start(void)
{
	char state;
	uint64_t start = 0;

	return proc_stat(getpid(), &state, &start) < 0 ? 0 : start;
}

uint64_t pp_ring_self_pidns(void)
{
	/* the link reads "pid:[INODE]", the inode stat() would give; no
	 * stat(): it is GLIBC_2.33, and the shim runs on 2.31 too */
	char buf[64];
	unsigned long long ino;
	ssize_t n = readlink("/proc/self/ns/pid", buf, sizeof(buf) - 1);

	if (n <= 0)
		return 0;
	buf[n] = 0;
	return sscanf(buf, "pid:[%llu]", &ino) == 1 ? ino : 0;
}

/*
 * Gone for good: it said so, or (when its pid means it here) the pid
 * is gone, a zombie, or another process. A stopped or busy collector
 * is not gone. Called at most every CHECK_*_NS.
 */
int pp_ring_collector_gone(const struct pp_ring *r)
{
	const struct pp_ring_hdr *h = r->hdr;
	int saved = errno, gone = 0;	/* inside the target's malloc */
	uint64_t start;
	char state;

	if (!__atomic_load_n(&h->collector_alive, __ATOMIC_ACQUIRE))
		return 1;
	if (!r->same_pidns)
		return 0;
	if (kill(h->collector_pid, 0) < 0 && errno == ESRCH)
		gone = 1;
	else if (proc_stat(h->collector_pid, &state, &start) == 0)
		gone = state == 'Z' || state == 'X' ||
		       (h->collector_start && start != h->collector_start);
	/* no /proc: the pid test is all there is */
	errno = saved;
	return gone;
}

static void drop(struct pp_ring_hdr *h)
{
	__atomic_fetch_add(&h->dropped, 1, __ATOMIC_RELAXED);
}

static void set_lost(struct pp_ring *r)
{
	__atomic_store_n(&r->lost, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&r->stalled, 1, __ATOMIC_RELEASE);
}

/*
 * Full ring in blocking mode, the collector at cons: wait while it
 * makes progress. The stall clock is the waiting thread's own (since,
 * last: where it last saw the collector), restarted whenever the
 * collector moves; the first thread whose clock runs out ends the
 * episode's waiting for all. Returns 0 to try again, -1 to drop (now
 * stalled or lost).
 */
static int wait_for_space(struct pp_ring *r, uint64_t cons, uint64_t *since,
			  uint64_t *last)
{
	struct pp_ring_hdr *h = r->hdr;
	struct timespec nap = { 0, 50000 };
	uint64_t now = pp_now_ns();
	int saved;

	if (!*since || cons != *last) {
		if (!*since)
			__atomic_fetch_add(&h->waits, 1, __ATOMIC_RELAXED);
		*since = now;
		*last = cons;
	}
	if (now - __atomic_load_n(&r->checked_ns, __ATOMIC_RELAXED) >=
	    CHECK_WAIT_NS && now - *since >= CHECK_WAIT_NS) {
		__atomic_store_n(&r->checked_ns, now, __ATOMIC_RELAXED);
		if (pp_ring_collector_gone(r)) {
			set_lost(r);
			return -1;
		}
	}
	if (now - *since > PP_RING_STALL_NS) {
		/* this episode's wait is spent: drop until it moves */
		__atomic_store_n(&r->stall_cons, cons, __ATOMIC_RELAXED);
		__atomic_store_n(&r->stall_drops, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&r->stalled, 1, __ATOMIC_RELEASE);
		return -1;
	}
	saved = errno;
	nanosleep(&nap, NULL);	/* EINTR is fine: we look again */
	errno = saved;
	return 0;
}

/* Still stalled? Then count the drop; now and then ask if it is gone. */
int pp_ring_stall_drop(struct pp_ring *r)
{
	struct pp_ring_hdr *h = r->hdr;
	uint64_t now;

	if (__atomic_load_n(&r->lost, __ATOMIC_RELAXED)) {
		drop(h);
		return 1;
	}
	if (__atomic_load_n(&h->cons_pos, __ATOMIC_ACQUIRE) !=
	    __atomic_load_n(&r->stall_cons, __ATOMIC_RELAXED)) {
		/* it drained: recording resumes, a new episode may begin */
		__atomic_store_n(&r->stalled, 0, __ATOMIC_RELEASE);
		return 0;
	}
	drop(h);
	/* the clock (vDSO, no syscall) only every 4096 drops */
	if (__atomic_add_fetch(&r->stall_drops, 1, __ATOMIC_RELAXED) & 4095)
		return 1;
	now = pp_now_ns();
	if (now - __atomic_load_n(&r->checked_ns, __ATOMIC_RELAXED) >=
	    CHECK_STALLED_NS) {
		__atomic_store_n(&r->checked_ns, now, __ATOMIC_RELAXED);
		if (pp_ring_collector_gone(r))
			set_lost(r);
	}
	return 1;
}

void *pp_ring_reserve_slow(struct pp_ring *r, uint32_t len)
{
	struct pp_ring_hdr *h = r->hdr;
	uint64_t pos, cons, since = 0, last = 0;

	pos = __atomic_load_n(&h->prod_pos, __ATOMIC_RELAXED);
	for (;;) {
		cons = r->cons_cache;
		if (pos + len - cons > r->mask + 1) {
			cons = __atomic_load_n(&h->cons_pos, __ATOMIC_ACQUIRE);
			r->cons_cache = cons;
		}
		if (pos + len - cons > r->mask + 1) {
			if (h->mode != PP_RING_BLOCK) {
				drop(h);
				return NULL;
			}
			if (pp_ring_dropping(r))
				return NULL;	/* counted */
			if (wait_for_space(r, cons, &since, &last) < 0) {
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

/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory ring between the target's producers (any number of
 * threads) and the collector (one consumer).
 *
 * A memfd holds one header page followed by the data area. Both sides
 * map the data area twice, back to back, so a record that runs past
 * the end continues at the start without any wrap handling (the trick
 * of the kernel's BPF ring buffer).
 *
 * Producers reserve space with a CAS on prod_pos, write the body, then
 * publish the record by storing its header (release). The consumer
 * reads in order, stops at a zero header, zeroes what it consumed and
 * then advances cons_pos (release), which is what gives space back.
 */
#ifndef PP_RING_H
#define PP_RING_H

#include <stddef.h>
#include <stdint.h>

#include "pp_wire.h"

#define PP_RING_MAGIC 0x474e495246595050ull	/* "PPYFRING" */
#define PP_RING_HDR_SIZE 4096u

enum pp_ring_mode {
	PP_RING_BLOCK = 0,	/* full: wait for the collector (record, wrap) */
	PP_RING_DROP = 1,	/* full: drop and count (attach) */
};

/* settings the collector passes to the shim through the header */
#define PP_OPT_NATIVE 0x1	/* unwind native frames */
#define PP_OPT_WAIT_ATTACH 0x2	/* hold start-up until probes are attached */
#define PP_OPT_SHIM_STALLS 0x4	/* no eBPF: the shim measures GC/GIL/locks */
/* --children (wrap): a forked child drops the ring's mapping once its
 * inherited shim has stepped aside (collector/attach.c waits for it) */
#define PP_OPT_CHILDREN 0x8

struct pp_ring_hdr {
	uint64_t magic;
	uint32_t abi;
	uint32_t hdr_size;
	uint64_t data_size;		/* power of two */
	uint32_t mode;			/* enum pp_ring_mode */
	uint32_t opts;			/* PP_OPT_* */
	uint64_t sample_bytes;		/* mean bytes between samples, 0 = all */
	int32_t collector_pid;
	int32_t owner_pid;		/* producer process that claimed the ring */
	uint32_t collector_alive;	/* cleared when the collector leaves */
	uint32_t max_frames;
	uint64_t start_ns;		/* CLOCK_MONOTONIC when created */
	uint32_t attached;		/* collector: probes are in place (or not) */
	/* who the collector is, so a producer can tell it is gone for good
	 * (a reused pid has another start time; another pid namespace,
	 * e.g. a container, cannot tell: its collector is only "silent") */
	uint64_t collector_start;	/* /proc/PID/stat starttime (ticks) */
	uint64_t collector_pidns;	/* inode of /proc/self/ns/pid, 0 = ? */

	uint64_t prod_pos __attribute__((aligned(64)));
	uint64_t cons_pos __attribute__((aligned(64)));
	uint64_t dropped __attribute__((aligned(64)));	/* records lost */
	uint64_t waits;			/* times a producer waited for space */
};
_Static_assert(sizeof(struct pp_ring_hdr) <= PP_RING_HDR_SIZE, "ring hdr");

struct pp_ring {
	struct pp_ring_hdr *hdr;
	uint8_t *data;			/* data_size bytes, mapped twice */
	uint64_t mask;
	size_t map_len;
	uint64_t cons_cache;		/* producer's copy of hdr->cons_pos */
	/*
	 * Producer process's view of the collector (shared by its threads,
	 * races only cost an extra wait or drop). A silent collector gets
	 * one bounded wait per episode, then "stalled": records are dropped
	 * without waiting until cons_pos moves from stall_cons. "lost": it
	 * is gone for good, the shim stops recording.
	 */
	int stalled;
	int lost;
	int same_pidns;			/* the collector's pid means it here */
	uint32_t stall_drops;		/* drops since the last liveness check */
	uint64_t stall_cons;
	uint64_t checked_ns;		/* last "is it gone?" */
	/* consumer: bit t set when the run given to fn holds type t */
	uint32_t run_types;
};

/* Both sides. The producer's map also learns whether it shares the
 * collector's pid namespace. */
int pp_ring_map(struct pp_ring *r, int fd);
void pp_ring_unmap(struct pp_ring *r);

/* this process's starttime and pid namespace (for the header) */
uint64_t pp_ring_self_start(void);
uint64_t pp_ring_self_pidns(void);

/* Consumer (collector). Creates the memfd; returns the fd or -errno. */
int pp_ring_create(struct pp_ring *r, uint64_t data_size, uint32_t mode);

/*
 * Consumer: calls fn once with the committed records in order (at most
 * max bytes, contiguous thanks to the double mapping; walk them with
 * pp_rec_for_each). Returns the bytes consumed, or -EPROTO when the
 * ring holds something no producer of ours writes (the target's memory
 * is the target's: a stray write can reach the ring); the records
 * before it are delivered. fn may read r->run_types: which types the
 * run holds (so a consumer need not walk it to know).
 */
typedef void (*pp_ring_fn)(const void *recs, size_t len, void *ctx);
long pp_ring_drain(struct pp_ring *r, size_t max, pp_ring_fn fn, void *ctx);

/*
 * Consumer, for a caller that walks the records itself: *recs is the
 * first unread byte; returns how many bytes producers have reserved
 * from there, contiguous. Only those before the first zero header are
 * committed (read each header with an acquire load), and a record
 * may be larger than it says (the target's memory is the target's).
 * pp_ring_release(r, n, zeroed) then gives the first n bytes back,
 * zeroing them but for the first `zeroed` (the caller zeroed those
 * as it went: the next lap must read them as uncommitted).
 */
size_t pp_ring_peek(struct pp_ring *r, void **recs);
void pp_ring_release(struct pp_ring *r, size_t n, size_t zeroed);

#define pp_rec_for_each(rec, buf, len)                                   \
	for ((rec) = (const struct pp_hdr *)(buf);                       \
	     (const char *)(rec) < (const char *)(buf) + (len);          \
	     (rec) = (const struct pp_hdr *)((const char *)(rec) + (rec)->len))

/*
 * Producer: reserve len bytes (multiple of 8). Returns NULL when the
 * record must be dropped (ring full and not blocking, collector
 * stalled, or gone: then r->lost is set); the drop is counted in
 * hdr->dropped.
 *
 * In blocking mode a full ring waits while the collector drains. When
 * it does not move for PP_RING_STALL_NS (stopped, or busy elsewhere),
 * that one wait ends the episode's waiting: until it moves again every
 * record is dropped at once. A collector found gone (its pid no longer
 * exists, is a zombie or another process, or it said so) sets r->lost.
 *
 * The consumer's position is re-read (in the slow path) only when the
 * copy we have says the ring is full: reading it on every record would
 * pull its cache line from the other core each time. A stale copy is
 * only ever behind, so it is safe.
 */
void *pp_ring_reserve_slow(struct pp_ring *r, uint32_t len);

#define PP_RING_STALL_NS (1000000000ull)	/* one wait per episode */

/* Producer: the collector is gone for good (a system call or two). */
int pp_ring_collector_gone(const struct pp_ring *r);

/*
 * Producer, before the costly part of an event (the stack walk): 1 if
 * the ring is stalled and the event is dropped (counted) without it.
 * Recording resumes as soon as the collector has drained anything.
 */
int pp_ring_stall_drop(struct pp_ring *r);

static inline int pp_ring_dropping(struct pp_ring *r)
{
	if (__builtin_expect(!__atomic_load_n(&r->stalled, __ATOMIC_RELAXED), 1))
		return 0;
	return pp_ring_stall_drop(r);
}

static inline void *pp_ring_reserve(struct pp_ring *r, uint32_t len)
{
	struct pp_ring_hdr *h = r->hdr;
	uint64_t pos = __atomic_load_n(&h->prod_pos, __ATOMIC_RELAXED);

	while (pos + len - r->cons_cache <= r->mask + 1) {
		if (__atomic_compare_exchange_n(&h->prod_pos, &pos, pos + len,
						1, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			return r->data + (pos & r->mask);
	}
	return pp_ring_reserve_slow(r, len);
}

/* Producer: publish a reserved record. hdr->len must equal len. */
static inline void pp_ring_commit(void *rec, uint8_t type, uint8_t flags,
				  uint32_t aux, uint32_t len)
{
	struct pp_hdr h = { .len = (uint16_t)len, .type = type,
			    .flags = flags, .aux = aux };
	uint64_t v;

	__builtin_memcpy(&v, &h, sizeof(v));
	__atomic_store_n((uint64_t *)rec, v, __ATOMIC_RELEASE);
}

#endif

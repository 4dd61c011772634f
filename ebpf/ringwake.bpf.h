/* SPDX-License-Identifier: MIT */
/*
 * When a BPF program wakes the collector. A wake-up per event is an
 * interrupt per event (3% of a busy service's CPU); none at all lets a
 * burst (4096 pages touched in a few ms) overflow the ring between the
 * collector's own reads, every 10 ms. So: no wake-up until the ring is
 * a quarter full, then one per event until it is drained.
 */
#ifndef PP_RINGWAKE_BPF_H
#define PP_RINGWAKE_BPF_H

static __always_inline __u64 pp_rb_wake(void *rb)
{
	return bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA) >
	       bpf_ringbuf_query(rb, BPF_RB_RING_SIZE) / 4 ?
	       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

#endif

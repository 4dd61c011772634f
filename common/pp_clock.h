/* SPDX-License-Identifier: MIT */
/*
 * The one clock: CLOCK_MONOTONIC in ns, the time base of every record
 * (the eBPF side's bpf_ktime_get_ns is the same clock), for the shim,
 * the collector and the viewer alike.
 */
#ifndef PP_CLOCK_H
#define PP_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t pp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

#endif

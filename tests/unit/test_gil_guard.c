// SPDX-License-Identifier: MIT
/*
 * The GIL aggregation's guard (collector/stalls.c): per thread, holds and
 * waits must be disjoint and inside the thread's life. Well-formed input
 * sums exactly with no anomaly; an overlapping interval, one before the
 * thread's creation and one after its exit are each one anomaly, and the
 * sums still never exceed the lifetime.
 */
#include <math.h>
#include <string.h>

#include "pp_test.h"
#include "stalls.h"

#define MS 1000000ull
#define T0 (1000 * MS)

static void thread_rec(struct pp_stalls *s, uint32_t tid, int flags,
		       uint64_t ts)
{
	union {
		struct pp_rec_thread r;
		char b[sizeof(struct pp_rec_thread) + 8];
	} u;

	memset(&u, 0, sizeof(u));
	u.r.h.len = sizeof(u);
	u.r.h.type = PP_REC_THREAD;
	u.r.h.flags = flags;
	u.r.h.aux = tid;
	u.r.ts = ts;
	memcpy(u.r.name, "t", 1);
	pp_stalls_add(s, &u.r.h);
}

static void gil_rec(struct pp_stalls *s, uint32_t tid, int state,
		    uint64_t a, uint64_t b)
{
	struct pp_rec_gil r = { 0 };

	r.h.len = sizeof(r);
	r.h.type = PP_REC_GIL;
	r.h.flags = state;
	r.h.aux = tid;
	r.ts_start = a;
	r.ts_end = b;
	pp_stalls_add(s, &r.h);
}

static int one(struct pp_stalls *s, uint32_t tid, struct pp_gil_thread *o)
{
	struct pp_gil_thread th[8];
	int i, n = pp_stalls_gil_threads(s, th, 8);

	for (i = 0; i < n && i < 8; i++) {
		if (th[i].tid == tid) {
			*o = th[i];
			return 0;
		}
	}
	return -1;
}

static int near(double a, double b)
{
	return fabs(a - b) < 1e-9;
}

int main(void)
{
	struct pp_stalls *s = pp_stalls_init();
	struct pp_gil_thread t;

	/* two threads taking turns over 100 ms: 1 waits 0-10, holds 10-50;
	 * 2 waits 10-50, holds 50-100 */
	thread_rec(s, 1, 0, T0);
	thread_rec(s, 2, 0, T0);
	gil_rec(s, 1, PP_GIL_WAIT, T0, T0 + 10 * MS);
	gil_rec(s, 1, PP_GIL_HOLD, T0 + 10 * MS, T0 + 50 * MS);
	gil_rec(s, 2, PP_GIL_WAIT, T0 + 10 * MS, T0 + 50 * MS);
	gil_rec(s, 2, PP_GIL_HOLD, T0 + 50 * MS, T0 + 100 * MS);
	thread_rec(s, 1, PP_THREAD_EXIT, T0 + 60 * MS);
	thread_rec(s, 2, PP_THREAD_EXIT, T0 + 100 * MS);
	CHECK(pp_stalls_gil_anomalies(s) == 0, "guard: well-formed input, no anomaly",
	      "%llu", (unsigned long long)pp_stalls_gil_anomalies(s));
	CHECK(!one(s, 1, &t) && near(t.held_s, 0.040) && near(t.wait_s, 0.010) &&
		      near(t.lifetime_s, 0.060) && t.acquisitions == 1,
	      "guard: thread 1 sums exactly", "held %f wait %f life %f acq %llu",
	      t.held_s, t.wait_s, t.lifetime_s, (unsigned long long)t.acquisitions);

	/* thread 2 again: a hold that started before its last interval's
	 * end (an unseen acquisition stretched back) */
	gil_rec(s, 2, PP_GIL_HOLD, T0 + 20 * MS, T0 + 100 * MS);
	CHECK(pp_stalls_gil_anomalies(s) == 1, "guard: an overlapping hold is an anomaly",
	      "%llu", (unsigned long long)pp_stalls_gil_anomalies(s));
	CHECK(!one(s, 2, &t) && t.anomalies == 1 && near(t.held_s, 0.050) &&
		      t.held_s + t.wait_s <= t.lifetime_s + 1e-9,
	      "guard: the overlap is counted once", "held %f wait %f life %f",
	      t.held_s, t.wait_s, t.lifetime_s);
	pp_stalls_free(s);

	/* a hold from before the thread was created, one past its exit */
	s = pp_stalls_init();
	thread_rec(s, 3, 0, T0 + 50 * MS);
	gil_rec(s, 3, PP_GIL_HOLD, T0, T0 + 60 * MS);
	gil_rec(s, 3, PP_GIL_HOLD, T0 + 70 * MS, T0 + 90 * MS);
	thread_rec(s, 3, PP_THREAD_EXIT, T0 + 80 * MS);
	CHECK(!one(s, 3, &t) && t.anomalies == 2 &&
		      t.held_s + t.wait_s <= t.lifetime_s + 1e-9,
	      "guard: intervals outside the life are anomalies, sums fit",
	      "anomalies %llu held %f life %f",
	      (unsigned long long)t.anomalies, t.held_s, t.lifetime_s);

	/* the shim's exit comes before the kernel's: the later one counts */
	pp_stalls_free(s);
	s = pp_stalls_init();
	thread_rec(s, 4, 0, T0);
	gil_rec(s, 4, PP_GIL_HOLD, T0, T0 + 30 * MS);
	thread_rec(s, 4, PP_THREAD_EXIT, T0 + 40 * MS);
	thread_rec(s, 4, PP_THREAD_EXIT, T0 + 35 * MS);
	CHECK(!one(s, 4, &t) && t.anomalies == 0 && near(t.lifetime_s, 0.040),
	      "guard: a thread's life ends at its last exit record",
	      "anomalies %llu life %f", (unsigned long long)t.anomalies,
	      t.lifetime_s);
	pp_stalls_free(s);
	TEST_EXIT();
}

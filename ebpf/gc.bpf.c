// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Cycle-GC collections of one CPython process: USDT python:gc__start/
 * gc__done where the build has them (--with-dtrace), else uprobe and
 * uretprobe on the collector (3.9 collect, 3.10-3.13 gc_collect_main,
 * Modules/gcmodule.c, Python/gc.c). The generation and the counts come
 * from the interpreter's own generation_stats: the generation whose
 * `collections` moved, and its collected/uncollectable deltas. That
 * works for 3.13's automatic collections too, whose generation
 * argument is -1.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include "gc.h"
#include "ringwake.bpf.h"

const volatile __u32 targ_tgid;
__u64 lost;	/* events the ring had no room for */
const volatile __u64 runtime_addr;	/* &_PyRuntime */
const volatile __u32 interp_head_off;	/* _PyRuntime.interpreters.head */
const volatile __u32 gc_stats_off;	/* interp->gc.generation_stats */

struct gc_pending {
	__u64 ts_start;
	__s32 generation;
	__u32 have_stats;
	__u64 p_collected;
	__u64 p_uncollectable;
	struct gc_gen_stats stats[GC_NGEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct gc_pending);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} gc_events SEC(".maps");

static int read_stats(struct gc_gen_stats *st)
{
	__u64 interp = 0;

	if (!gc_stats_off)
		return -1;
	if (bpf_probe_read_user(&interp, sizeof(interp),
				(void *)(runtime_addr + interp_head_off)) ||
	    !interp)
		return -1;
	return bpf_probe_read_user(st, sizeof(struct gc_gen_stats) * GC_NGEN,
				   (void *)(interp + gc_stats_off));
}

static int begin(__s32 gen, __u64 pc, __u64 pu)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct gc_pending p = {};

	if ((bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	p.generation = gen;
	p.p_collected = pc;
	p.p_uncollectable = pu;
	p.have_stats = read_stats(p.stats) == 0;
	p.ts_start = bpf_ktime_get_ns();
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
	return 0;
}

static int end(__s64 total)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct gc_gen_stats st[GC_NGEN];
	struct gc_pending *p;
	struct gc_event *e;
	int i;

	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	e = bpf_ringbuf_reserve(&gc_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		goto out;
	}
	e->tid = tid;
	e->generation = p->generation;
	e->ts_start = p->ts_start;
	e->ts_end = now;
	e->collected = total;
	e->uncollectable = 0;
	e->flags = 0;
	e->pad = 0;
	if (p->have_stats && read_stats(st) == 0) {
		for (i = 0; i < GC_NGEN; i++) {
			if (st[i].collections == p->stats[i].collections)
				continue;
			e->generation = i;
			e->collected = st[i].collected - p->stats[i].collected;
			e->uncollectable = st[i].uncollectable -
					   p->stats[i].uncollectable;
			e->flags = GC_EV_STATS;
			break;
		}
	}
	if (!(e->flags & GC_EV_STATS) && p->p_collected && p->p_uncollectable) {
		__s64 c = 0, u = 0;

		if (!bpf_probe_read_user(&c, sizeof(c), (void *)p->p_collected) &&
		    !bpf_probe_read_user(&u, sizeof(u),
					 (void *)p->p_uncollectable)) {
			e->collected = c;
			e->uncollectable = u;
			e->flags = GC_EV_PTRS;
		}
	}
	bpf_ringbuf_submit(e, pp_rb_wake(&gc_events));
out:
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

SEC("usdt")
int BPF_USDT(gc_start, int generation)
{
	return begin(generation, 0, 0);
}

SEC("usdt")
int BPF_USDT(gc_done, long collected)
{
	if ((bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	return end(collected);
}

/* collect()/gc_collect_main(tstate, generation, n_collected*,
 * n_uncollectable*, nofail) up to 3.12; (tstate, generation, reason)
 * in 3.13, where the pointer arguments are not pointers. */
const volatile __u32 collector_has_ptrs;

SEC("uprobe")
int BPF_KPROBE(gc_enter, void *tstate, int generation, void *pc, void *pu)
{
	if (!collector_has_ptrs)
		pc = pu = 0;
	return begin(generation, (__u64)pc, (__u64)pu);
}

SEC("uretprobe")
int BPF_KRETPROBE(gc_exit, long ret)
{
	if ((bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	return end(ret);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

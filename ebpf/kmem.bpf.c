// SPDX-License-Identifier: GPL-2.0 OR MIT
/* mmap/munmap/brk of one process as the kernel sees them (syscall
 * entry/exit, through sys.bpf.c): successful calls only. With with_stack
 * (attached, no shim) an mmap or a brk that grows the heap carries the
 * caller's Python stack, read here, so growth is charged to a line
 * without anything in the target. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "kmem.h"
#include "ringwake.bpf.h"
#include "pystack.bpf.h"
#include "sys.bpf.h"

const volatile __u32 targ_tgid;
const volatile __u32 with_stack;
/* first-touch page faults too (with_stack): one in fault_every, each
 * standing for fault_every pages */
const volatile __u32 with_faults;
const volatile __u32 fault_every = 1;
__u64 faults_skipped;	/* the VMA could not be looked at (mmap lock busy) */
__u64 lost;	/* events the ring had no room for */

struct kmem_args {
	__u64 addr;
	__u64 len;
	__u64 flags;
	__u64 prot;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct kmem_args);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cur_brk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kmem_event);
} scratch SEC(".maps");

/* with_faults: writable mappings made since attach, start -> end. A
 * first touch inside one is charged with it already: skipped here, at
 * no cost of a stack (the collector checks again: VMAs merge) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} fresh SEC(".maps");

/* with_faults: each thread's last writable mapping, [start, end): a
 * thread touches what it just mapped (CPython's 16 KiB frame chunk of a
 * new thread, a big block), and that VMA may have merged with a
 * neighbour, so that fresh no longer finds it by its start: checked
 * first, before the VMA is even looked up */
struct fresh_range {
	__u64 start;
	__u64 end;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct fresh_range);
} last_fresh SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} kmem_events SEC(".maps");

/* the head and the frames read, no more: a burst of first touches
 * (4096 pages in a few ms) fits the ring, and less is copied */
static long send(struct kmem_event *e)
{
	__u64 n = e->nframes;

	if (n > PY_MAX_FRAMES)
		n = PY_MAX_FRAMES;
	return bpf_ringbuf_output(&kmem_events, e, KMEM_EVENT_HEAD +
				  n * sizeof(struct py_rawframe),
				  pp_rb_wake(&kmem_events));
}

static int save(__u64 addr, __u64 len, __u64 flags, __u64 prot)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kmem_args a = { .addr = addr, .len = len, .flags = flags,
			       .prot = prot };

	bpf_map_update_elem(&inflight, &tid, &a, BPF_ANY);
	return 0;
}

#define KMEM_MADVISE 100	/* in here only: becomes KMEM_DISCARD */

static int done(__u32 op, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), zero = 0;
	struct kmem_args *a;
	struct kmem_event *e;
	__u64 *old;

	a = bpf_map_lookup_elem(&inflight, &tid);
	if (!a)
		return 0;
	if (ret < 0 && ret > -4096)
		goto out;
	if (op == KMEM_BRK) {
		/* brk(0) queries; the result is the break either way */
		old = bpf_map_lookup_elem(&cur_brk, &zero);
		if (!old) {
			bpf_map_update_elem(&cur_brk, &zero, &ret, BPF_ANY);
			goto out;
		}
		if (*old == (__u64)ret)
			goto out;
	}
	if (op == KMEM_MADVISE) {
		/* pages given back: those a first touch charged go free */
		if (a->flags != 4 && a->flags != 8 && a->flags != 9)
			goto out;
		op = KMEM_DISCARD;
	}
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		goto out;
	e->op = op;
	e->tid = tid;
	e->ts = bpf_ktime_get_ns();
	e->flags = a->flags;
	e->prot = a->prot;
	if (op == KMEM_MMAP) {
		e->addr = ret;
		e->size = a->len;
		if (with_faults && (a->prot & 2)) {
			struct fresh_range r = { ret, ret + a->len };

			bpf_map_update_elem(&fresh, &e->addr, &r.end, BPF_ANY);
			bpf_map_update_elem(&last_fresh, &tid, &r, BPF_ANY);
		}
	} else if (op == KMEM_MUNMAP || op == KMEM_DISCARD) {
		e->addr = a->addr;
		e->size = a->len;
		if (op == KMEM_MUNMAP && with_faults) {
			struct fresh_range *r;

			bpf_map_delete_elem(&fresh, &e->addr);
			r = bpf_map_lookup_elem(&last_fresh, &tid);
			if (r && r->start < a->addr + a->len && a->addr < r->end)
				bpf_map_delete_elem(&last_fresh, &tid);
		}
	} else {
		old = bpf_map_lookup_elem(&cur_brk, &zero);
		e->addr = old ? *old : 0;
		e->size = (__u64)ret - e->addr;
		bpf_map_update_elem(&cur_brk, &zero, &ret, BPF_ANY);
	}
	e->nframes = 0;
	/* the line that grew the address space: an mmap, or a brk up */
	if (with_stack && (op == KMEM_MMAP ||
			   (op == KMEM_BRK && (__s64)e->size > 0)))
		e->nframes = py_stack(e->frames);
	if (send(e))
		__sync_fetch_and_add(&lost, 1);
out:
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

/* Called from sys.bpf.c (tail calls, ebpf/sys.h) on the target's
 * mmap, munmap, brk and (with_faults) madvise only; raw tracepoints
 * need no tracefs, and unlike tp_btf ones no kernel BTF to load
 * (collector/bpf.c: start-up) */
SEC("raw_tp")
int BPF_PROG(kmem_enter, struct pt_regs *regs, long nr)
{
	if (nr == SYS_NR_mmap)
		return save(BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si),
			    BPF_CORE_READ(regs, r10), BPF_CORE_READ(regs, dx));
	if (nr == SYS_NR_munmap)
		return save(BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si),
			    0, 0);
	if (nr == SYS_NR_brk)
		return save(BPF_CORE_READ(regs, di), 0, 0, 0);
	if (nr == SYS_NR_madvise && with_faults)
		return save(BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si),
			    BPF_CORE_READ(regs, dx), 0);
	return 0;
}

SEC("raw_tp")
int BPF_PROG(kmem_exit, struct pt_regs *regs, long ret)
{
	long nr = BPF_CORE_READ(regs, orig_ax);

	if (nr == SYS_NR_mmap)
		return done(KMEM_MMAP, ret);
	if (nr == SYS_NR_munmap)
		return done(KMEM_MUNMAP, ret);
	if (nr == SYS_NR_brk)
		return done(KMEM_BRK, ret);
	if (nr == SYS_NR_madvise && with_faults)
		return done(KMEM_MADVISE, ret);
	return 0;
}

struct fault_ctx {
	int anon;
	__u64 start;
};

/* private anonymous memory that is not the main thread's stack */
static long vma_anon(struct task_struct *task, struct vm_area_struct *vma,
		     struct fault_ctx *c)
{
	c->anon = !vma->vm_file &&
		  !(vma->vm_flags & (0x8 /* VM_SHARED */ |
				     0x100 /* VM_GROWSDOWN */));
	c->start = vma->vm_start;
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fault_count SEC(".maps");

/*
 * A user write to a page not yet present (arch/x86/mm/fault.c: error
 * code bits PROT 0, WRITE 1, USER 2): the page is being made, and the
 * running line is what made it. Memory mapped before attach (the old
 * heap, pymalloc's arenas, glibc's thread arenas opened up by mprotect)
 * grows this way without an mmap or brk to see.
 */
SEC("tp_btf/page_fault_user")
int BPF_PROG(kmem_fault, unsigned long address, struct pt_regs *regs,
	     unsigned long error_code)
{
	struct fault_ctx c = { 0 };
	struct fresh_range *r;
	__u32 zero = 0, *n, tid;
	struct kmem_event *e;
	__u64 *end, id;

	/* cheapest first: most faults of the machine are not a user
	 * write to a missing page (a test of an argument, no call) */
	if (!with_faults || (error_code & 7) != 6)
		return 0;
	id = bpf_get_current_pid_tgid();
	if ((id >> 32) != targ_tgid)
		return 0;
	tid = (__u32)id;
	r = bpf_map_lookup_elem(&last_fresh, &tid);
	if (r && address >= r->start && address < r->end)
		return 0;
	if (fault_every > 1) {
		n = bpf_map_lookup_elem(&fault_count, &zero);
		if (!n || ++*n < fault_every)
			return 0;
		*n = 0;
	}
	if (bpf_find_vma(bpf_get_current_task_btf(), address, vma_anon, &c,
			 0)) {
		__sync_fetch_and_add(&faults_skipped, 1);
		return 0;
	}
	if (!c.anon)
		return 0;
	end = bpf_map_lookup_elem(&fresh, &c.start);
	if (end && address < *end)
		return 0;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->op = KMEM_FAULT;
	e->tid = (__u32)id;
	e->ts = bpf_ktime_get_ns();
	e->addr = address & ~4095ull;
	e->size = 4096ull * fault_every;
	e->flags = 0;
	e->prot = 0;
	e->nframes = py_stack(e->frames);
	if (send(e))
		__sync_fetch_and_add(&lost, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

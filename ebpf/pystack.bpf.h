/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Python stack of the current thread, read from BPF with the offsets in
 * struct py_walk_cfg (filled from common/pp_pylayout.h).
 *
 * The thread state is found by walking interp->threads and matching
 * tstate->thread_id, which is the thread's pthread_t; on x86-64 glibc
 * pthread_self() is the TCB address, i.e. the fs base the kernel keeps
 * in task->thread.fsbase. That works for every version (3.9/3.10 have no
 * native_thread_id) and for threads that do not hold the GIL, which is
 * exactly when a thread waits on a lock. A tid -> tstate cache saves the
 * walk; each use re-checks thread_id so a reused tstate is noticed.
 */
#ifndef PP_PYSTACK_BPF_H
#define PP_PYSTACK_BPF_H

#include "pystack.h"

#define PY_MAX_THREADS 256

const volatile struct py_walk_cfg py;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} tstates SEC(".maps");

static __always_inline __u64 rd_ptr(__u64 addr)
{
	__u64 v = 0;

	bpf_probe_read_user(&v, sizeof(v), (void *)addr);
	return v;
}

/* bpf_loop callbacks keep the verifier's work per iteration, not per
 * path through every unrolled iteration */
struct tstate_find {
	__u64 ts;
	__u64 fsbase;
};

static long tstate_step(__u32 i, void *arg)
{
	struct tstate_find *c = arg;

	if (!c->ts)
		return 1;
	if (rd_ptr(c->ts + py.tstate_thread_id) == c->fsbase)
		return 1;
	c->ts = rd_ptr(c->ts + py.tstate_next);
	return 0;
}

static __u64 py_tstate(void)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct tstate_find c;
	__u64 *cached, interp;

	c.fsbase = BPF_CORE_READ(task, thread.fsbase);
	cached = bpf_map_lookup_elem(&tstates, &tid);
	if (cached && *cached &&
	    rd_ptr(*cached + py.tstate_thread_id) == c.fsbase)
		return *cached;
	interp = rd_ptr(py.runtime + py.interp_head);
	if (!interp)
		return 0;
	c.ts = rd_ptr(interp + py.tstate_head);
	bpf_loop(PY_MAX_THREADS, tstate_step, &c, 0);
	if (c.ts)
		bpf_map_update_elem(&tstates, &tid, &c.ts, BPF_ANY);
	return c.ts;
}

/* frame_window: the PY_WIN bytes from lo (room past them for a frame's
 * fields, as the verifier sees them) */
struct py_win {
	__u8 b[PY_WIN + PY_FRAME_READ];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_win);
} py_wins SEC(".maps");

struct stack_walk {
	__u64 f;
	__u32 n;
	__u64 lo;		/* of the window; 0: none read */
	struct py_win *win;
	struct py_rawframe *out;
};

/*
 * frame_window: the frame at cur (frame_span bytes) in the window, read
 * now if it is not there: the PY_WIN bytes that end with it, since its
 * callers are below it (CPython's _PyThreadState_PushFrame puts each
 * frame above its caller in the thread's data stack chunk; generators'
 * frames and 3.12+ entry frames elsewhere each cost a read). NULL if
 * those bytes cannot be read (a chunk's first frames, less than PY_WIN
 * above its start): the caller reads the frame alone. Copied to fr, so
 * that the verifier goes on with one state whichever way it came.
 */
static __always_inline int win_frame(struct stack_walk *w, __u64 cur,
				     __u8 *fr)
{
	struct py_win *win = w->win;
	__u64 off;

	if (!win)
		return 0;
	off = cur - w->lo;
	if (!w->lo || cur < w->lo || off > PY_WIN - py.frame_span) {
		w->lo = 0;
		if (bpf_probe_read_user(win->b, PY_WIN,
					(void *)(cur + py.frame_span - PY_WIN)))
			return 0;
		w->lo = cur + py.frame_span - PY_WIN;
		off = PY_WIN - py.frame_span;
	}
	if (off > PY_WIN)
		return 0;
	return !bpf_probe_read_kernel(fr, PY_FRAME_READ, win->b + off);
}

/* a field of the frame as read in one piece (offsets are rodata:
 * constants to the verifier) */
static __always_inline __u64 fr_u64(const __u8 *fr, __u32 off)
{
	__u64 v;

	if (off > PY_FRAME_READ - 8)
		return 0;
	__builtin_memcpy(&v, fr + off, 8);
	return v;
}

/*
 * One frame. Its fields read at once when they fit in frame_span, all
 * of them inside the frame's own memory (a helper call per frame
 * instead of one per field: a 40-deep Flask stack took 160 calls); a
 * frame that cannot be read ends the walk, as its zero f_back would.
 * frame_span is rodata: the verifier sees one of the two ways only.
 */
static long frame_step(__u32 i, void *arg)
{
	struct stack_walk *w = arg;
	__u64 cur = w->f, code, instr;
	__u32 n = w->n;
	__u8 fr[PY_FRAME_READ];
	__u8 owner = 0;
	__s32 lasti = -1;

	if (!cur || n >= PY_MAX_FRAMES)
		return 1;
	if (py.frame_span) {
		if (!(py.frame_window && win_frame(w, cur, fr)) &&
		    (py.frame_span > PY_FRAME_READ ||
		     bpf_probe_read_user(fr, py.frame_span, (void *)cur)))
			return 1;
		w->f = fr_u64(fr, py.frame_back);
		if (py.frame_owner < PY_FRAME_READ)
			owner = fr[py.frame_owner];
		code = fr_u64(fr, py.frame_code);
		instr = fr_u64(fr, py.frame_instr);
		if (py.instr_is_int)
			instr = (__u64)(__s64)(__s32)instr;
	} else {
		w->f = rd_ptr(cur + py.frame_back);
		if (py.frame_owner != PY_OFF_NONE)
			bpf_probe_read_user(&owner, 1,
					    (void *)(cur + py.frame_owner));
		code = rd_ptr(cur + py.frame_code);
		if (py.instr_is_int) {
			bpf_probe_read_user(&lasti, sizeof(lasti),
					    (void *)(cur + py.frame_instr));
			instr = (__u64)(__s64)lasti;
		} else {
			instr = rd_ptr(cur + py.frame_instr);
		}
	}
	if (py.frame_owner != PY_OFF_NONE && owner >= py.owner_cstack)
		return 0;
	if (py.code_tagged)
		code &= ~(__u64)3;
	if (!code)
		return 0;
	w->out[n].code = code;
	w->out[n].instr = instr;
	w->n = n + 1;
	return 0;
}

/* Fill out[PY_MAX_FRAMES] innermost first; returns the frame count. */
static __u32 py_stack(struct py_rawframe *out)
{
	struct stack_walk w = { .out = out };
	__u32 zero = 0;
	__u64 ts = py_tstate();

	if (!ts)
		return 0;
	if (py.frame_window)
		w.win = bpf_map_lookup_elem(&py_wins, &zero);
	w.f = rd_ptr(ts + py.tstate_frame);
	if (w.f && py.cframe_frame != PY_OFF_NONE)
		w.f = rd_ptr(w.f + py.cframe_frame);
	bpf_loop(PY_MAX_FRAMES * 2, frame_step, &w, 0);
	return w.n;
}

#endif

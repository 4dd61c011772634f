/* SPDX-License-Identifier: MIT */
/* What the BPF Python-stack walker needs to know about the target:
 * a plain copy of the fields of struct pp_pylayout (common/
 * pp_pylayout.h) it reads, plus where _PyRuntime is. */
#ifndef PP_EBPF_PYSTACK_H
#define PP_EBPF_PYSTACK_H

#define PY_OFF_NONE 0xffffffffu
#define PY_MAX_FRAMES 48

struct py_walk_cfg {
	__u64 runtime;		/* &_PyRuntime in the target */
	__u32 interp_head;	/* _PyRuntime.interpreters.head */
	__u32 tstate_head;	/* interp->threads.head */
	__u32 tstate_next;
	__u32 tstate_thread_id;	/* pthread_t == the thread's fs base */
	__u32 tstate_frame;
	__u32 cframe_frame;
	__u32 frame_code;
	__u32 frame_back;
	__u32 frame_instr;
	__u32 instr_is_int;	/* 3.9/3.10: int f_lasti, else a pointer */
	__u32 frame_owner;
	__u32 owner_cstack;
	__u32 code_tagged;
	__u32 frame_span;	/* bytes that hold the fields above, one read
				 * per frame; 0: a read per field */
	__u32 frame_window;	/* 3.11+: frames sit one above the other in
				 * the thread's data stack: read PY_WIN bytes
				 * below a frame at once, its callers with it */
};

#define PY_FRAME_READ 128	/* the most frame_span may be */
#define PY_WIN 4096		/* frame_window: bytes read at once */

/* One frame as read: resolved to file/line/function in user space. */
struct py_rawframe {
	__u64 code;
	__u64 instr;		/* f_lasti, or the instruction pointer */
};

#endif

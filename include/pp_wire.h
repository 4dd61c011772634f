/* SPDX-License-Identifier: MIT */
/*
 * pyprof wire format: the records the producers (preload shim, eBPF
 * programs) write into rings and the collector writes into trace files.
 * One format end to end, so a trace is the event stream plus the
 * collector's own records (ticks, metadata).
 *
 * Every record starts with an 8-byte header and is padded to 8 bytes.
 * In a ring the header is written last (one release store): a zero
 * header means "reserved, not yet committed".
 */
#ifndef PP_WIRE_H
#define PP_WIRE_H

#include <stdint.h>

/* 2: PP_REC_RETAG; 3: PP_REC_CKPT, PP_REC_LIVE, PP_REC_PID;
 * 4: PP_REC_ALLOC_D, PP_REC_FREE_D (trace files only);
 * 5: STACK under a parent (PP_STACK_PARENT) */
#define PP_ABI_VERSION 5

enum pp_rec_type {
	PP_REC_NONE = 0,
	/* shim: heap */
	PP_REC_ALLOC = 1,	/* pp_rec_alloc */
	PP_REC_FREE = 2,	/* pp_rec_free */
	PP_REC_REALLOC = 3,	/* pp_rec_realloc */
	PP_REC_MMAP = 4,	/* pp_rec_alloc, domain PP_DOM_MMAP */
	PP_REC_MUNMAP = 5,	/* pp_rec_alloc, stack 0 */
	/* shim: definitions, each emitted once before first use */
	PP_REC_FUNC = 6,	/* pp_rec_func */
	PP_REC_STACK = 7,	/* pp_rec_stack */
	PP_REC_THREAD = 8,	/* pp_rec_thread */
	PP_REC_PROC = 9,	/* pp_rec_proc */
	PP_REC_MARK = 10,	/* pp_rec_mark */
	PP_REC_LOST = 11,	/* pp_rec_lost */
	/* shim fallback and eBPF: stalls */
	PP_REC_GC = 12,		/* pp_rec_gc */
	PP_REC_GIL = 13,	/* pp_rec_gil */
	PP_REC_LOCK = 14,	/* pp_rec_lock */
	PP_REC_KMEM = 15,	/* pp_rec_kmem: mmap/munmap/brk seen by the kernel */
	PP_REC_RETAG = 16,	/* pp_rec_free: a live block re-created elsewhere */
	/* collector only (trace files) */
	PP_REC_TICK = 32,	/* pp_rec_tick */
	PP_REC_META = 33,	/* pp_rec_meta */
	PP_REC_EXIT = 34,	/* pp_rec_exit */
	PP_REC_CKPT = 35,	/* pp_rec_ckpt: a checkpoint begins or ends */
	PP_REC_LIVE = 36,	/* pp_rec_live: live blocks of a checkpoint */
	PP_REC_PID = 37,	/* pp_rec_pid: whose records follow */
	/* trace chunks only: how the writer stores the common ALLOC and
	 * FREE; a reader gives them back as those (see below) */
	PP_REC_ALLOC_D = 38,	/* pp_rec_alloc_d */
	PP_REC_FREE_D = 39,	/* pp_hdr alone */
	PP_REC_MAX
};

/* Allocation domains, in pp_hdr.flags of ALLOC/FREE/REALLOC/MMAP. */
enum pp_domain {
	PP_DOM_LIBC = 0,	/* malloc family */
	PP_DOM_PYRAW = 1,	/* PyMem_RawMalloc */
	PP_DOM_PYMEM = 2,	/* PyMem_Malloc */
	PP_DOM_PYOBJ = 3,	/* PyObject_Malloc */
	PP_DOM_MMAP = 4,	/* anonymous mmap by the program */
	PP_DOM_ARENA = 5,	/* mmap made inside an allocator: its own reserve */
	PP_DOM_MAX
};

struct pp_hdr {
	uint16_t len;		/* whole record, bytes, multiple of 8; 0 = uncommitted */
	uint8_t type;		/* enum pp_rec_type */
	uint8_t flags;		/* per type */
	uint32_t aux;		/* per type: stack id, func id, tid... */
};
_Static_assert(sizeof(struct pp_hdr) == 8, "pp_hdr");

#define PP_REC_ALIGN(n) (((n) + 7u) & ~7u)
#define PP_REC_MAXLEN 65528u

/* ALLOC/MMAP: aux = stack id (0 = no stack), flags = domain.
 * MUNMAP: addr/size of the range, flags = domain. */
struct pp_rec_alloc {
	struct pp_hdr h;
	uint64_t addr;
	uint64_t size;
};
_Static_assert(sizeof(struct pp_rec_alloc) == 24, "pp_rec_alloc");

/* FREE: flags = domain. Written before the block is released, so a
 * new block at the same address is always ordered after it. */
struct pp_rec_free {
	struct pp_hdr h;
	uint64_t addr;
};
_Static_assert(sizeof(struct pp_rec_free) == 16, "pp_rec_free");

/* RETAG: aux = stack id, flags = domain. A live block was handed out
 * again without an allocator call (an object re-created from one of
 * CPython's freelists): it now belongs to stack, with its size and
 * weight, and counts as an allocation there. A 24-byte RETAG is laid
 * out as pp_rec_alloc: its size (the object's) makes a block unknown to
 * the reader (made before the hooks) an allocation at stack; a 16-byte
 * one's unknown block is ignored. */

/*
 * ALLOC_D and FREE_D (trace chunks only, docs/trace-format.md "Compact
 * records"): an ALLOC or FREE whose address lies within 2 GiB of the
 * chunk's previous ALLOC/FREE address (0 at the chunk's start), as a
 * signed difference. Header flags and aux as in the record they stand
 * for, but FREE_D's aux is the difference (a FREE's aux is 0); an
 * ALLOC_D's size is below 4 GiB. A third and a half smaller than the
 * records they stand for, so LZ4 has that much less to do.
 */
struct pp_rec_alloc_d {
	struct pp_hdr h;
	int32_t delta;		/* addr - the previous address */
	uint32_t size;
};
_Static_assert(sizeof(struct pp_rec_alloc_d) == 16, "pp_rec_alloc_d");

/* REALLOC: aux = stack id, flags = domain; old = 0 acts as malloc,
 * addr = 0 (failed) leaves old live. */
struct pp_rec_realloc {
	struct pp_hdr h;
	uint64_t old;
	uint64_t addr;
	uint64_t size;
};
_Static_assert(sizeof(struct pp_rec_realloc) == 32, "pp_rec_realloc");

/* FUNC: aux = func id (ids start at 1), flags = PP_FUNC_*.
 * Followed by file[file_len] and name[name_len], no NULs. */
#define PP_FUNC_NATIVE 0x1
struct pp_rec_func {
	struct pp_hdr h;
	uint32_t firstlineno;
	uint16_t file_len;
	uint16_t name_len;
	char data[];
};

/* STACK: aux = stack id (ids start at 1), innermost frame first.
 * For a native frame, line is 0 and func is a PP_FUNC_NATIVE func. */
struct pp_frame {
	uint32_t func;
	uint32_t line;
};
struct pp_rec_stack {
	struct pp_hdr h;
	uint32_t nframes;
	union {
		uint32_t tid;	/* thread that first made it (informative) */
		uint32_t parent; /* PP_STACK_PARENT: the outer frames' stack */
	};
	struct pp_frame frames[];
};
#define PP_MAX_FRAMES 128
/*
 * STACK flags: the stack is frames[] (its innermost frames) followed by
 * the frames of stack `parent`, defined before it (ABI 5). An import's
 * stacks share a deep importlib prefix and differ in a frame or two:
 * each is then defined by what is new. A reader keeps at most
 * PP_MAX_FRAMES frames of such a stack, the innermost.
 */
#define PP_STACK_PARENT 0x1
/* FUNC and STACK ids: the shim's count up from 1, the eBPF side's
 * (collector/bpf.c) from here, so the two never meet in one trace. */
#define PP_BPF_ID_BASE 0x80000000u

/* THREAD: aux = OS tid; the name (Python's Thread.name or comm). A
 * later THREAD of a tid (not EXIT) renames it (eBPF: the thread set its
 * comm); its start stays the first one's. */
#define PP_THREAD_EXIT 0x1	/* flags: the thread exited at ts */
#define PP_THREAD_PYNAME 0x2	/* flags: threading.Thread.name, keep it */
struct pp_rec_thread {
	struct pp_hdr h;
	uint64_t ts;
	char name[];
};

/* PROC: the producer process; aux = pid. Followed by the version
 * string (e.g. "3.11.2") of pyver_len bytes. */
struct pp_rec_proc {
	struct pp_hdr h;
	uint32_t ppid;
	uint16_t pyver_len;
	uint16_t flags;
	uint64_t ts;
	char data[];
};

/* MARK: aux = enum pp_mark, ts = CLOCK_MONOTONIC ns. */
enum pp_mark {
	PP_MARK_PY_READY = 1,	/* Python allocator hooks installed */
	PP_MARK_FINALIZE = 2,	/* interpreter begins to finalize (atexit) */
	PP_MARK_DETACH = 3,	/* producer stops recording */
	PP_MARK_RUN = 4,	/* collector: the program is let run its own
				 * code (probes attached; the leak windows
				 * start here) */
};
struct pp_rec_mark {
	struct pp_hdr h;
	uint64_t ts;
};

/* LOST (collector): records lost at one place, flags = enum
 * pp_lost_src; count = that source's total so far (a later LOST of the
 * same source replaces it). Emitted when a total changes. */
enum pp_lost_src {
	PP_LOST_SHIM_RING = 0,	/* the shim's ring was full (or no collector) */
	PP_LOST_BPF_GIL = 1,	/* an eBPF ring buffer was full: gil.bpf.c */
	PP_LOST_BPF_GC = 2,	/* gc.bpf.c */
	PP_LOST_BPF_LOCKS = 3,	/* locks.bpf.c */
	PP_LOST_BPF_KMEM = 4,	/* kmem.bpf.c */
	PP_LOST_TRACE_WRITE = 5, /* a trace chunk that could not be written */
	PP_LOST_NSRC
};
struct pp_rec_lost {
	struct pp_hdr h;
	uint64_t count;
};

/* GC: one collection; flags = generation (PP_GC_GEN_UNKNOWN when not
 * known), aux = tid;
 * h.flags bit 7 set when the source is the in-process fallback. */
#define PP_SRC_SHIM 0x80
#define PP_GC_GEN_UNKNOWN 0x7f
struct pp_rec_gc {
	struct pp_hdr h;
	uint64_t ts_start;
	uint64_t ts_end;
	uint64_t collected;
	uint64_t uncollectable;
};

/* GIL: one interval of a thread; flags = enum pp_gil_state
 * (| PP_SRC_SHIM), aux = tid. */
enum pp_gil_state {
	PP_GIL_WAIT = 1,	/* waiting to take the GIL */
	PP_GIL_HOLD = 2,	/* holding it */
};
struct pp_rec_gil {
	struct pp_hdr h;
	uint64_t ts_start;
	uint64_t ts_end;
};

/* LOCK: one contended wait; aux = stack id, flags = enum pp_lock_kind. */
enum pp_lock_kind {
	PP_LOCK_PY = 1,		/* threading.Lock / RLock / Condition */
	PP_LOCK_PTHREAD = 2,	/* pthread mutex */
	PP_LOCK_FUTEX = 3,	/* other futex */
};
struct pp_rec_lock {
	struct pp_hdr h;
	uint64_t lock_addr;
	uint64_t ts_start;
	uint64_t ts_end;
	uint32_t tid;
	uint32_t pad;
};

/* KMEM: address-space changes seen by the kernel; flags = enum. */
enum pp_kmem_op { PP_KMEM_MMAP = 1, PP_KMEM_MUNMAP = 2, PP_KMEM_BRK = 3 };
struct pp_rec_kmem {
	struct pp_hdr h;
	uint64_t ts;
	uint64_t addr;
	uint64_t size;
};

/* TICK (collector): time and process-wide samples, every 100 ms.
 * flags PP_TICK_CLOCK: a time stamp only (after a ring drain, every
 * 5 ms while records flow), so the records before it are placed in
 * time finer than 100 ms; rss_bytes and dropped repeat the last sample. */
#define PP_TICK_CLOCK 0x1
struct pp_rec_tick {
	struct pp_hdr h;
	uint64_t ts;		/* CLOCK_MONOTONIC ns */
	uint64_t rss_bytes;	/* RssAnon + RssFile (the ring's shmem excluded) */
	uint64_t dropped;	/* producers' drop counter so far */
};

/* META (collector, first record of a trace): key=value lines
 * ("argv=...\0" style: each entry "key\tvalue\n"). aux = target pid.
 * Keys: argv (tab-separated), version; attach (attached by pid: what was
 * put into the target, "ebpf" = nothing, "shim" = the shim was loaded:
 * allocations since attach) when pyprof did not start it.
 * Attached without the shim, MMAP/MUNMAP come from eBPF (kmem). */
struct pp_rec_meta {
	struct pp_hdr h;
	uint64_t ts;		/* CLOCK_MONOTONIC ns at start */
	uint64_t realtime_ns;	/* wall clock at start */
	uint64_t sample_bytes;	/* --sample mean, 0 = every allocation */
	char data[];
};

/* EXIT (collector): how the target ended. aux = pid,
 * flags: 0 exited (status = code), 1 killed (status = signal). */
struct pp_rec_exit {
	struct pp_hdr h;
	uint64_t ts;
	int32_t status;
	uint32_t pad;
};

/*
 * CKPT (collector, --max-size): the live state, at the start of a trace
 * segment whose earlier records were dropped (docs/trace-format.md,
 * "Segments and checkpoints"). flags PP_CKPT_BEGIN, then the state as
 * ordinary records (PROC, MARK, THREAD, FUNC, STACK, LIVE, LOST, TICK),
 * then flags PP_CKPT_END; aux = the segment's number. A reader that
 * starts there has what one reading from the start would have had at
 * ts, except the sums of what came before (allocations, GC, GIL).
 */
#define PP_CKPT_BEGIN 0
#define PP_CKPT_END 1
struct pp_rec_ckpt {
	struct pp_hdr h;
	uint64_t ts;		/* the state's time: what came before is dropped */
	uint64_t tick_dropped;	/* the shim's drop counter at the last tick */
	int64_t brk_bytes;	/* kernel heap growth outside mappings (brk) */
};

/* LIVE (in a checkpoint): aux = entries that follow. kind: a block of
 * that domain (PP_DOM_MMAP: also a mapping), a PP_DOM_ARENA mapping of
 * an allocator, or PP_LIVE_KMAP an anonymous mapping the kernel saw;
 * stack is 0 but for blocks. */
#define PP_LIVE_KMAP 0x10
struct pp_live_ent {
	uint64_t addr;
	uint64_t size;
	uint32_t stack;
	uint8_t kind;
	uint8_t pad[3];
};
_Static_assert(sizeof(struct pp_live_ent) == 24, "pp_live_ent");
struct pp_rec_live {
	struct pp_hdr h;
	struct pp_live_ent ent[];
};
#define PP_LIVE_MAX ((PP_REC_MAXLEN - sizeof(struct pp_rec_live)) / \
		     sizeof(struct pp_live_ent))

/*
 * PID (collector, a trace of several processes: --children): the
 * records after it, up to the next PID record, are process aux's. Ids,
 * addresses and ticks are each process's own; tids are the kernel's.
 * flags PP_PID_NEW: the first record of this process (ppid its parent);
 * a process's own META and PROC follow it. Records before the first PID
 * record are META's process (aux): a trace without PID records is one
 * process's, as before.
 */
#define PP_PID_NEW 0x1
struct pp_rec_pid {
	struct pp_hdr h;
	uint64_t ts;
	uint32_t ppid;
	uint32_t pad;
};

#endif

/* SPDX-License-Identifier: MIT */
/*
 * CPython memory layouts pyprof reads, per minor version. Plain
 * uint32_t offsets so the shim (in-process) and the eBPF programs
 * (out of process) share one description.
 *
 * 3.9-3.12: fixed tables (common/pylayout.c), computed against each
 * version's Include/internal headers. 3.13+: read from the target's
 * _Py_DebugOffsets at the start of _PyRuntime (Include/internal/
 * pycore_runtime.h; 3.14 pycore_debug_offsets.h), checked against its
 * cookie and version. GIL builds on x86-64 only: free-threaded builds
 * are refused.
 */
#ifndef PP_PYLAYOUT_H
#define PP_PYLAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define PP_OFF_NONE 0xffffffffu

/* The CPython versions pyprof reads (3.PP_PY_MINOR_MIN to
 * 3.PP_PY_MINOR_MAX): the one range every version check uses. */
#define PP_PY_MINOR_MIN 9
#define PP_PY_MINOR_MAX 15
#define PP_PY_OLDEST "3.9"
#define PP_PY_NEWEST "3.15"
#define PP_PY_RANGE PP_PY_OLDEST " to " PP_PY_NEWEST

/* How a frame says where it is in its code. */
enum pp_instr_kind {
	PP_INSTR_LASTI_BYTES = 1,	/* 3.9: int f_lasti, byte offset */
	PP_INSTR_LASTI_UNITS = 2,	/* 3.10: int f_lasti, code units */
	PP_INSTR_PREV_PTR = 3,		/* 3.11, 3.12: _Py_CODEUNIT *prev_instr */
	PP_INSTR_PTR = 4,		/* 3.13+: _Py_CODEUNIT *instr_ptr */
};

/* Line table formats (see Objects/lnotab_notes.txt, locations.md). */
enum pp_lt_kind {
	PP_LT_LNOTAB = 1,		/* 3.9 co_lnotab */
	PP_LT_LINETABLE310 = 2,		/* 3.10 co_linetable */
	PP_LT_LOCATIONS = 3,		/* 3.11+ co_linetable */
};

struct pp_pylayout {
	uint32_t major, minor;

	/* _PyRuntime and the thread list (for readers outside the process) */
	uint32_t runtime_interp_head;	/* interpreters.head */
	uint32_t interp_tstate_head;	/* threads.head */
	uint32_t tstate_next;
	uint32_t tstate_thread_id;	/* pthread_t */
	uint32_t tstate_native_id;	/* OS tid, PP_OFF_NONE before 3.11 */
	/* 3.13+ (from _Py_DebugOffsets; 0 for the fixed tables) */
	uint32_t interp_gc;		/* PyInterpreterState.gc */
	uint32_t interp_gil_ptr;	/* PyInterpreterState.ceval.gil */

	/* thread state -> innermost frame */
	uint32_t tstate_frame;		/* frame, cframe (3.11/3.12) or current_frame */
	uint32_t cframe_frame;		/* cframe->current_frame, PP_OFF_NONE if direct */

	/* frame (PyFrameObject <= 3.10, _PyInterpreterFrame 3.11+) */
	uint32_t frame_code;
	uint32_t frame_back;
	uint32_t frame_instr;
	uint32_t instr_kind;		/* enum pp_instr_kind */
	uint32_t frame_owner;		/* char owner, PP_OFF_NONE before 3.12 */
	uint32_t owner_cstack;		/* skip frames whose owner is >= this: 3.12/3.13
					 * FRAME_OWNED_BY_CSTACK (3); 3.14 also
					 * FRAME_OWNED_BY_INTERPRETER (3, CSTACK 4) */
	uint32_t code_tagged;		/* 3.14: f_executable is a tagged _PyStackRef
					 * (clear the low 2 bits) */

	/* code object */
	uint32_t code_filename;
	uint32_t code_name;
	uint32_t code_qualname;		/* PP_OFF_NONE before 3.11 */
	uint32_t code_firstlineno;
	uint32_t code_linetable;	/* bytes: co_lnotab (3.9) / co_linetable */
	uint32_t code_start;		/* co_code_adaptive, 3.11+ */
	uint32_t lt_kind;		/* enum pp_lt_kind */

	/* bytes object */
	uint32_t bytes_size;		/* ob_size */
	uint32_t bytes_data;		/* ob_sval */

	/* str: PyASCIIObject.state, and where the characters start */
	uint32_t str_length;
	uint32_t str_state;
	uint32_t str_ascii_data;	/* compact ASCII */
	uint32_t str_compact_data;	/* compact non-ASCII */

	/* type object, to check a frame's code really is a code object */
	uint32_t ob_type;
};

/* A frame as read from the interpreter: resolved later, once per stack. */
struct pp_rawframe {
	const void *code;
	int32_t offset;			/* byte offset into the code, -1 unknown */
	uint32_t pad;
};

/*
 * Fill l for the interpreter whose version string is ver ("3.11.2 ...")
 * and whose _PyRuntime is at runtime (needed for 3.13+). Returns 0, or
 * -1 with a reason in why for an unsupported version or bad cookie.
 */
int pp_pylayout_init(struct pp_pylayout *l, const char *ver,
		     const void *runtime, const char **why);

/*
 * Walk the frames of tstate (in this process), innermost first, into
 * out[max]. code_type is &PyCode_Type (frames whose code is not a code
 * object are skipped). Returns the number of frames.
 */
int pp_py_walk(const struct pp_pylayout *l, const void *tstate,
	       const void *code_type, struct pp_rawframe *out, int max);

/*
 * The walker pp_py_walk picks for l, for a caller that walks often
 * (the shim, per event): called with a non-NULL tstate and out and
 * max > 0. NULL when l's frames cannot be walked (3.13+ without
 * code_type).
 */
typedef int (*pp_py_walk_fn)(const struct pp_pylayout *l, const void *tstate,
			     const void *code_type, struct pp_rawframe *out,
			     int max);
pp_py_walk_fn pp_py_walker(const struct pp_pylayout *l, const void *code_type);

/*
 * The shim's quick key of a chain of at most max frames (see pyframe.c):
 * returns the frames kept and sets *key, or -1 (longer: walk it). Equal
 * keys are equal stacks as long as no code object has died in between.
 */
typedef int (*pp_py_key_walk_fn)(const struct pp_pylayout *l,
				 const void *tstate, const void *code_type,
				 uint64_t *key, int max);
pp_py_key_walk_fn pp_py_key_walker(const struct pp_pylayout *l,
				   const void *code_type);
/* the FRAME_SHAPES version (preload/pywalk.h) pp_py_walker picks for l:
 * 39, 310, 311, ...; 0 = none */
int pp_py_shape(const struct pp_pylayout *l, const void *code_type);

/*
 * A walk that starts from the previous one: m holds the last walk's
 * links (every frame of the chain, those that give no frame too),
 * outermost first, with the words read from each and what they gave.
 * The walk follows the whole chain, then compares its links with m's
 * from the outer end: a link at the same address whose code, position
 * (and owner) words are the same gives what it gave; the rest are read
 * as pp_py_walk does. Nothing is assumed of a frame that is not
 * compared (no field of a frame tells one call from the next).
 */
#define PP_MEMO_LINKS 160

enum { PP_LINK_FRAME = 0, PP_LINK_SKIP, PP_LINK_RECHECK };

struct pp_walklink {
	const void *frame;
	uintptr_t code;			/* the words as read */
	uintptr_t instr;
	uint8_t owner;
	uint8_t kind;			/* PP_LINK_*: RECHECK never matches */
	uint16_t kept;			/* frames given by links 0..this one */
	uint32_t pad;
	struct pp_rawframe raw;		/* PP_LINK_FRAME: the frame */
};

struct pp_walkmemo {
	uint32_t nlinks;		/* 0: nothing to start from */
	uint32_t nkept;			/* frames given (may exceed any max) */
	struct pp_walklink link[PP_MEMO_LINKS];
};

/*
 * Walk tstate's chain into m. Returns how many outer links matched m's
 * (their link[] entries and kept counts are as they were; the others
 * are rewritten), or -1 with m emptied when the chain has more than
 * PP_MEMO_LINKS links. tstate non-NULL; code_type as for pp_py_walk.
 */
typedef int (*pp_py_memo_walk_fn)(const struct pp_pylayout *l,
				  const void *tstate, const void *code_type,
				  struct pp_walkmemo *m);
pp_py_memo_walk_fn pp_py_memo_walker(const struct pp_pylayout *l,
				     const void *code_type);

/* Line of byte offset off in code (in this process); co_firstlineno if
 * the table has no entry for it. */
int pp_code_line(const struct pp_pylayout *l, const void *code, int off);

/* Pure decoder over a copied table: the unit tests use it directly.
 * Returns the line, or -1 when off has no line. */
int pp_lt_addr2line(uint32_t kind, const uint8_t *tab, size_t len,
		    int firstlineno, int off);

/*
 * A whole table decoded: offsets from the previous run's end up to (not
 * including) end have line (-1: none); the last run ends at UINT32_MAX.
 * pp_lt_runs writes up to cap runs (out may be NULL) and returns how
 * many the table has; pp_lt_runs_line answers as pp_lt_addr2line does.
 */
struct pp_lt_run {
	uint32_t end;
	int32_t line;
};

size_t pp_lt_runs(uint32_t kind, const uint8_t *tab, size_t len,
		  int firstlineno, struct pp_lt_run *out, size_t cap);
int pp_lt_runs_line(const struct pp_lt_run *runs, size_t n, int off);

/* Copy str (a Python str in this process) as UTF-8 into buf[cap],
 * truncating; returns the length written (no NUL counted); "?" when it
 * is no str this decoder follows. */
size_t pp_py_str(const struct pp_pylayout *l, const void *str,
		 char *buf, size_t cap);

/* The same through mem (pp_mem.h), str an address there: lone
 * surrogates become U+FFFD, a character is never split, buf is always
 * NUL-terminated. Returns the length written, or -1 when it cannot be
 * read or is no compact str. */
struct pp_mem;
int pp_py_str_read(const struct pp_mem *mem, const struct pp_pylayout *l,
		   uint64_t str, char *buf, size_t cap);

#endif

// SPDX-License-Identifier: MIT
/*
 * Per-version CPython layouts (x86-64, GIL builds).
 *
 * 3.9-3.12 are fixed tables. Every number was printed by an offsetof()
 * probe compiled with -DPy_BUILD_CORE against that version's installed
 * Include/ and Include/internal headers (3.9.18, 3.10.13, 3.11.7 and
 * Debian's 3.11.2, 3.12.1); the header each field comes from is named
 * next to it. Layouts are ABI-stable within a minor version.
 *
 * 3.13+ describe themselves: _PyRuntime starts with _Py_DebugOffsets
 * (3.13 Include/internal/pycore_runtime.h, 3.14 Include/internal/
 * pycore_debug_offsets.h), which we read after checking its cookie and
 * version. The struct grows in every minor, so each has its own mirror
 * of the prefix we read (3.15: checked against Debian's 3.15.2).
 */
#include <stdio.h>
#include <string.h>

#include "pp_pylayout.h"
#include "pp_pystate.h"

#define NONE PP_OFF_NONE

/*
 * Fields common to 3.9-3.12 from Include/object.h (ob_type),
 * Include/cpython/bytesobject.h (PyBytesObject: ob_size, ob_sval) and
 * Include/cpython/unicodeobject.h (PyASCIIObject: length, state; the
 * data follows PyASCIIObject or PyCompactUnicodeObject).
 */
#define COMMON_OBJECTS				\
	.bytes_size = 16, .bytes_data = 32,	\
	.str_length = 16, .str_state = 32,	\
	.ob_type = 8

static const struct pp_pylayout fixed[] = {
	{
		.major = 3, .minor = 9,
		/* internal/pycore_runtime.h, internal/pycore_interp.h
		 * (tstate_head), cpython/pystate.h */
		.runtime_interp_head = 32, .interp_tstate_head = 8,
		.tstate_next = 8, .tstate_thread_id = 176,
		.tstate_native_id = NONE,
		.tstate_frame = 24, .cframe_frame = NONE,
		/* cpython/frameobject.h: f_back, f_code, int f_lasti */
		.frame_code = 32, .frame_back = 24, .frame_instr = 104,
		.instr_kind = PP_INSTR_LASTI_BYTES,
		.frame_owner = NONE, .owner_cstack = NONE,
		/* cpython/code.h */
		.code_filename = 104, .code_name = 112, .code_qualname = NONE,
		.code_firstlineno = 40, .code_linetable = 120, /* co_lnotab */
		.code_start = NONE, .lt_kind = PP_LT_LNOTAB,
		COMMON_OBJECTS,
		.str_ascii_data = 48, .str_compact_data = 72,
	},
	{
		.major = 3, .minor = 10,
		.runtime_interp_head = 32, .interp_tstate_head = 8,
		.tstate_next = 8, .tstate_thread_id = 176,
		.tstate_native_id = NONE,
		.tstate_frame = 24, .cframe_frame = NONE,
		/* cpython/frameobject.h: f_lasti counts code units now */
		.frame_code = 32, .frame_back = 24, .frame_instr = 96,
		.instr_kind = PP_INSTR_LASTI_UNITS,
		.frame_owner = NONE, .owner_cstack = NONE,
		.code_filename = 104, .code_name = 112, .code_qualname = NONE,
		.code_firstlineno = 40, .code_linetable = 120,
		.code_start = NONE, .lt_kind = PP_LT_LINETABLE310,
		COMMON_OBJECTS,
		.str_ascii_data = 48, .str_compact_data = 72,
	},
	{
		.major = 3, .minor = 11,
		/* internal/pycore_interp.h: threads.head */
		.runtime_interp_head = 40, .interp_tstate_head = 16,
		.tstate_next = 8, .tstate_thread_id = 152,
		.tstate_native_id = 160,
		/* cpython/pystate.h: tstate->cframe->current_frame */
		.tstate_frame = 56, .cframe_frame = 8,
		/* internal/pycore_frame.h: _PyInterpreterFrame */
		.frame_code = 32, .frame_back = 48, .frame_instr = 56,
		.instr_kind = PP_INSTR_PREV_PTR,
		.frame_owner = NONE, .owner_cstack = NONE,
		/* cpython/code.h: co_code_adaptive is the bytecode */
		.code_filename = 112, .code_name = 120, .code_qualname = 128,
		.code_firstlineno = 72, .code_linetable = 136,
		.code_start = 184, .lt_kind = PP_LT_LOCATIONS,
		COMMON_OBJECTS,
		.str_ascii_data = 48, .str_compact_data = 72,
	},
	{
		.major = 3, .minor = 12,
		.runtime_interp_head = 40, .interp_tstate_head = 72,
		.tstate_next = 8, .tstate_thread_id = 136,
		.tstate_native_id = 144,
		.tstate_frame = 56, .cframe_frame = 0,
		/* internal/pycore_frame.h: f_code first; the C-stack entry
		 * frame has a real code object (the interpreter trampoline),
		 * so it is told apart by owner == FRAME_OWNED_BY_CSTACK. */
		.frame_code = 0, .frame_back = 8, .frame_instr = 56,
		.instr_kind = PP_INSTR_PREV_PTR,
		.frame_owner = 70, .owner_cstack = 3,
		.code_filename = 112, .code_name = 120, .code_qualname = 128,
		.code_firstlineno = 68, .code_linetable = 136,
		.code_start = 192, .lt_kind = PP_LT_LOCATIONS,
		COMMON_OBJECTS,
		/* wstr fields are gone from PyASCIIObject */
		.str_ascii_data = 40, .str_compact_data = 56,
	},
};

/* The parts of _Py_DebugOffsets we read, field for field (uint64_t). */
struct dbg_head {
	char cookie[8];
	uint64_t version;		/* PY_VERSION_HEX */
	uint64_t free_threaded;
	uint64_t rt_size, rt_finalizing, rt_interpreters_head;
};

struct dbg_tstate {
	uint64_t size, prev, next, interp, current_frame, thread_id,
		native_thread_id, datastack_chunk, status;
};

struct dbg_code {
	uint64_t size, filename, name, qualname, linetable, firstlineno,
		argcount, localsplusnames, localspluskinds, co_code_adaptive;
};

struct dbg_tail {			/* pyobject .. unicode_object */
	uint64_t ob_size_, ob_type;
	uint64_t type_[4], tuple_[3], list_[3];
};

struct dbg_objs {
	uint64_t dict_[3], float_[2], long_[3];
	uint64_t bytes_size_, bytes_ob_size, bytes_ob_sval;
	uint64_t uni_size, uni_state, uni_length, uni_ascii_size;
};

/* 3.13: Include/internal/pycore_runtime.h */
struct dbg313 {
	struct dbg_head h;
	struct {
		uint64_t size, id, next, threads_head, gc, imports_modules,
			sysdict, builtins, ceval_gil, gil_state, gil_enabled,
			gil_locked, gil_holder;
	} interp;
	struct dbg_tstate ts;
	struct {
		uint64_t size, previous, executable, instr_ptr, localsplus,
			owner;
	} frame;
	struct dbg_code code;
	struct dbg_tail t;
	struct dbg_objs o;
};

/* the interpreter and frame blocks of 3.14 and 3.15 */
struct dbg_interp314 {
	uint64_t size, id, next, threads_head, threads_main, gc,
		imports_modules, sysdict, builtins, ceval_gil, gil_state,
		gil_enabled, gil_locked, gil_holder, code_object_generation,
		tlbc_generation;
};

struct dbg_frame314 {
	uint64_t size, previous, executable, instr_ptr, localsplus, owner,
		stackpointer, tlbc_index;
};

/* 3.14: Include/internal/pycore_debug_offsets.h (checked against
 * Debian's 3.14 headers): threads_main, code_object_generation,
 * tlbc_generation, stackpointer, tlbc_index, co_tlbc and a set_object
 * block were added. */
struct dbg314 {
	struct dbg_head h;
	struct dbg_interp314 interp;
	struct dbg_tstate ts;
	struct dbg_frame314 frame;
	struct dbg_code code;
	uint64_t co_tlbc;
	struct dbg_tail t;
	uint64_t set_[4];
	struct dbg_objs o;
};

/* 3.15: the 3.14 layout with a longer thread state (base_frame,
 * last_profiled_frame and more; thread_id follows them) and a type
 * object block of 8 fields. Checked against Debian's 3.15.2
 * (.PyRuntime of /usr/bin/python3.15, and thread_id/native_thread_id
 * found in a live thread state at the offsets it gives). */
struct dbg315 {
	struct dbg_head h;
	struct dbg_interp314 interp;
	struct {
		uint64_t size, prev, next, interp, current_frame, base_frame,
			last_profiled_frame, rest0, thread_id,
			native_thread_id, datastack_chunk, status, rest[5];
	} ts;
	struct dbg_frame314 frame;
	struct dbg_code code;
	uint64_t co_tlbc;
	struct {
		uint64_t ob_size_, ob_type;
		uint64_t type_[8], tuple_[3], list_[3];
	} t;
	uint64_t set_[4];
	struct dbg_objs o;
};

_Static_assert(sizeof(struct dbg313) == 71 * 8, "3.13 _Py_DebugOffsets prefix");
_Static_assert(offsetof(struct dbg314, o.uni_ascii_size) == 80 * 8,
	       "3.14 _Py_DebugOffsets prefix");
_Static_assert(offsetof(struct dbg315, o.uni_ascii_size) == 92 * 8,
	       "3.15 _Py_DebugOffsets prefix");

/* An offset read from the target must be inside its struct. */
static int dbg_off(uint64_t off, uint64_t size, uint32_t *out)
{
	if (size > (1u << 20) || off >= size)
		return -1;
	*out = (uint32_t)off;
	return 0;
}

#define DBG_FILL(l, d, bad)						\
	do {								\
		bad |= dbg_off((d)->h.rt_interpreters_head,		\
			       (d)->h.rt_size, &(l)->runtime_interp_head); \
		bad |= dbg_off((d)->interp.threads_head,		\
			       (d)->interp.size, &(l)->interp_tstate_head); \
		bad |= dbg_off((d)->ts.next, (d)->ts.size, &(l)->tstate_next); \
		bad |= dbg_off((d)->ts.thread_id, (d)->ts.size,		\
			       &(l)->tstate_thread_id);			\
		bad |= dbg_off((d)->ts.native_thread_id, (d)->ts.size,	\
			       &(l)->tstate_native_id);			\
		bad |= dbg_off((d)->ts.current_frame, (d)->ts.size,	\
			       &(l)->tstate_frame);			\
		bad |= dbg_off((d)->frame.executable, (d)->frame.size,	\
			       &(l)->frame_code);			\
		bad |= dbg_off((d)->frame.previous, (d)->frame.size,	\
			       &(l)->frame_back);			\
		bad |= dbg_off((d)->frame.instr_ptr, (d)->frame.size,	\
			       &(l)->frame_instr);			\
		bad |= dbg_off((d)->frame.owner, (d)->frame.size,	\
			       &(l)->frame_owner);			\
		bad |= dbg_off((d)->code.filename, (d)->code.size,	\
			       &(l)->code_filename);			\
		bad |= dbg_off((d)->code.name, (d)->code.size, &(l)->code_name); \
		bad |= dbg_off((d)->code.qualname, (d)->code.size,	\
			       &(l)->code_qualname);			\
		bad |= dbg_off((d)->code.firstlineno, (d)->code.size,	\
			       &(l)->code_firstlineno);			\
		bad |= dbg_off((d)->code.linetable, (d)->code.size,	\
			       &(l)->code_linetable);			\
		/* co_code_adaptive is the trailing array: == size */	\
		bad |= dbg_off((d)->code.co_code_adaptive,		\
			       (d)->code.size + 1, &(l)->code_start);	\
		bad |= dbg_off((d)->t.ob_type, (d)->t.ob_size_, &(l)->ob_type); \
		bad |= dbg_off((d)->o.bytes_ob_size, (d)->o.bytes_size_, \
			       &(l)->bytes_size);			\
		bad |= dbg_off((d)->o.bytes_ob_sval, (d)->o.bytes_size_, \
			       &(l)->bytes_data);			\
		bad |= dbg_off((d)->o.uni_state, (d)->o.uni_ascii_size,	\
			       &(l)->str_state);			\
		bad |= dbg_off((d)->o.uni_length, (d)->o.uni_ascii_size, \
			       &(l)->str_length);			\
		bad |= dbg_off((d)->o.uni_ascii_size, (d)->o.uni_size,	\
			       &(l)->str_ascii_data);			\
		bad |= dbg_off((d)->interp.gc, (d)->interp.size,	\
			       &(l)->interp_gc);			\
		bad |= dbg_off((d)->interp.ceval_gil, (d)->interp.size, \
			       &(l)->interp_gil_ptr);			\
		/* the GIL's layout we rely on (pp_pystate.h): the	\
		 * interpreter's own _gil says where locked and		\
		 * last_holder are */					\
		gil_bad |= (d)->interp.gil_locked - (d)->interp.gil_state != \
				   PP_GIL_OFF_LOCKED ||			\
			   (d)->interp.gil_holder - (d)->interp.gil_state != \
				   PP_GIL_OFF_HOLDER;			\
	} while (0)

static int from_debug_offsets(struct pp_pylayout *l, const void *runtime,
			      const char **why)
{
	const struct dbg_head *h = runtime;
	unsigned int maj, min;
	int bad = 0, gil_bad = 0;

	if (!h) {
		*why = "3.13+ needs _PyRuntime to read _Py_DebugOffsets";
		return -1;
	}
	if (memcmp(h->cookie, "xdebugpy", 8) != 0) {
		*why = "_PyRuntime does not start with the \"xdebugpy\" cookie";
		return -1;
	}
	maj = (h->version >> 24) & 0xff;
	min = (h->version >> 16) & 0xff;
	if (maj != l->major || min != l->minor) {
		*why = "_Py_DebugOffsets version differs from the version string";
		return -1;
	}
	if (h->free_threaded) {
		/* different object header and str state, and 3.14 runs
		 * thread-local copies of the bytecode (co_tlbc) */
		*why = "free-threaded CPython builds are not supported";
		return -1;
	}
	l->cframe_frame = PP_OFF_NONE;
	l->instr_kind = PP_INSTR_PTR;
	l->lt_kind = PP_LT_LOCATIONS;
	/* Owner values at and above this one are not Python frames:
	 * 3.13 FRAME_OWNED_BY_CSTACK (internal/pycore_frame.h); 3.14
	 * FRAME_OWNED_BY_INTERPRETER, then CSTACK = 4
	 * (internal/pycore_interpframe_structs.h). */
	l->owner_cstack = 3;
	if (min == 13) {
		const struct dbg313 *d = runtime;

		DBG_FILL(l, d, bad);
		l->code_tagged = 0;
	} else if (min == 14) {
		const struct dbg314 *d = runtime;

		DBG_FILL(l, d, bad);
		/* f_executable is a _PyStackRef; GIL builds tag bit 0
		 * (internal/pycore_stackref.h, Py_TAG_BITS) */
		l->code_tagged = 1;
	} else if (min == 15) {
		const struct dbg315 *d = runtime;

		DBG_FILL(l, d, bad);
		l->code_tagged = 1;
	} else {
		*why = "_Py_DebugOffsets layout of this version is not known";
		return -1;
	}
	if (bad) {
		*why = "_Py_DebugOffsets holds offsets outside their structs";
		return -1;
	}
	if (gil_bad) {
		*why = "the GIL's layout differs from the one pyprof knows";
		return -1;
	}
	/* PyCompactUnicodeObject = PyASCIIObject + utf8_length + utf8
	 * (Include/cpython/unicodeobject.h); not in the debug offsets */
	l->str_compact_data = l->str_ascii_data + 16;
	return 0;
}

int pp_pylayout_init(struct pp_pylayout *l, const char *ver,
		     const void *runtime, const char **why)
{
	static const char *dummy;
	unsigned int maj, min;
	size_t i;

	if (!why)
		why = &dummy;
	*why = NULL;
	if (!l || !ver || sscanf(ver, "%u.%u", &maj, &min) != 2) {
		*why = "cannot parse the Python version";
		return -1;
	}
	if (maj != 3 || min < PP_PY_MINOR_MIN) {
		*why = "Python older than " PP_PY_OLDEST " is not supported";
		return -1;
	}
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (fixed[i].minor == min) {
			*l = fixed[i];
			return 0;
		}
	}
	memset(l, 0, sizeof(*l));
	l->major = maj;
	l->minor = min;
	if (min > PP_PY_MINOR_MAX) {
		*why = "Python newer than " PP_PY_NEWEST " is not supported yet";
		return -1;
	}
	return from_debug_offsets(l, runtime, why);
}

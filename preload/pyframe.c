// SPDX-License-Identifier: MIT
/*
 * Walk the Python frames of a thread state of this process. Runs on
 * every recorded allocation, so it only loads and compares: no calls,
 * no allocation, no locks. Whatever can be NULL (no frame yet, a frame
 * being torn down, 3.13's None executable) is checked, and the chain is
 * cut after a fixed number of links in case it is being rewritten under
 * us by a thread that does not hold the GIL.
 */
#include <stdint.h>

#include "pp_pylayout.h"

/* links followed per walk, counting skipped frames */
#define WALK_LINKS 4096

#define LOAD(type, base, off) (*(const type *)((const char *)(base) + (off)))

int pp_py_walk(const struct pp_pylayout *l, const void *tstate,
	       const void *code_type, struct pp_rawframe *out, int max)
{
	/*
	 * The offsets in locals: every LOAD goes through a char pointer,
	 * which may alias *l, so the compiler would re-read l per frame.
	 */
	const uint32_t back = l ? l->frame_back : 0;
	const uint32_t fcode = l ? l->frame_code : 0;
	const uint32_t owner = l ? l->frame_owner : 0;
	const uint32_t cstack = l ? l->owner_cstack : 0;
	const uint32_t obtype = l ? l->ob_type : 0;
	const uint32_t instr = l ? l->frame_instr : 0;
	const uint32_t start = l ? l->code_start : 0;
	const uint32_t kind = l ? l->instr_kind : 0;
	const uintptr_t untag = l && l->code_tagged ? ~(uintptr_t)3 : ~(uintptr_t)0;
	const void *f;
	uintptr_t code, p;
	int n = 0, links = 0;
	intptr_t d;
	int lasti;

	if (!l || !tstate || !out || max <= 0 || !kind)
		return 0;
	f = LOAD(const void *, tstate, l->tstate_frame);
	/* 3.11/3.12: tstate->cframe->current_frame (cpython/pystate.h) */
	if (f && l->cframe_frame != PP_OFF_NONE)
		f = LOAD(const void *, f, l->cframe_frame);

	for (; f && n < max && links < WALK_LINKS;
	     f = LOAD(const void *, f, back), links++) {
		/* 3.12+: the C-stack entry frame (and 3.14's interpreter
		 * base frame) are not Python code */
		if (owner != PP_OFF_NONE && LOAD(uint8_t, f, owner) >= cstack)
			continue;
		code = LOAD(uintptr_t, f, fcode) & untag;	/* 3.14 tags */
		if (!code)
			continue;
		/* 3.13+ f_executable can be None or another callable */
		if (code_type && LOAD(const void *, code, obtype) != code_type)
			continue;
		out[n].code = (const void *)code;
		/* byte offset of the current instruction into co_code, the
		 * value PyCode_Addr2Line() takes; -1 before it starts */
		if (kind >= PP_INSTR_PREV_PTR) {
			/* 3.11+ _PyInterpreterFrame_LASTI: prev_instr is one
			 * unit before the code until the first one runs */
			p = LOAD(uintptr_t, f, instr);
			d = (intptr_t)(p - (code + start));
			out[n].offset = !p || d < 0 || d > INT32_MAX ? -1 :
								      (int32_t)d;
		} else {
			/* 3.9 f_lasti in bytes, 3.10 in code units */
			lasti = LOAD(int, f, instr);
			if (lasti < 0 || lasti > (INT32_MAX >> 1))
				out[n].offset = -1;
			else
				out[n].offset = kind == PP_INSTR_LASTI_UNITS ?
							lasti * 2 : lasti;
		}
		out[n].pad = 0;
		n++;
	}
	return n;
}

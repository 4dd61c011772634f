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

/* Byte offset of the frame's current instruction into co_code, the
 * value PyCode_Addr2Line() takes; -1 when the frame has not started. */
static int32_t frame_offset(const struct pp_pylayout *l, const void *f,
			    uintptr_t code)
{
	intptr_t d;
	int lasti;
	uintptr_t p;

	switch (l->instr_kind) {
	case PP_INSTR_LASTI_BYTES:	/* 3.9 Objects/frameobject.c */
		lasti = LOAD(int, f, l->frame_instr);
		return lasti < 0 ? -1 : lasti;
	case PP_INSTR_LASTI_UNITS:	/* 3.10: f_lasti * sizeof(_Py_CODEUNIT) */
		lasti = LOAD(int, f, l->frame_instr);
		return lasti < 0 || lasti > (INT32_MAX >> 1) ? -1 : lasti * 2;
	case PP_INSTR_PREV_PTR:		/* 3.11/3.12 _PyInterpreterFrame_LASTI */
	case PP_INSTR_PTR:		/* 3.13+ same, over instr_ptr */
		p = LOAD(uintptr_t, f, l->frame_instr);
		d = (intptr_t)(p - (code + l->code_start));
		/* prev_instr points one unit before the code until the
		 * first instruction runs: negative, i.e. unknown */
		return !p || d < 0 || d > INT32_MAX ? -1 : (int32_t)d;
	}
	return -1;
}

int pp_py_walk(const struct pp_pylayout *l, const void *tstate,
	       const void *code_type, struct pp_rawframe *out, int max)
{
	const void *f;
	uintptr_t code;
	int n = 0, links = 0;

	if (!l || !tstate || !out || max <= 0 || !l->instr_kind)
		return 0;
	f = LOAD(const void *, tstate, l->tstate_frame);
	/* 3.11/3.12: tstate->cframe->current_frame (cpython/pystate.h) */
	if (f && l->cframe_frame != PP_OFF_NONE)
		f = LOAD(const void *, f, l->cframe_frame);

	for (; f && n < max && links < WALK_LINKS;
	     f = LOAD(const void *, f, l->frame_back), links++) {
		/* 3.12+: the C-stack entry frame (and 3.14's interpreter
		 * base frame) are not Python code */
		if (l->frame_owner != PP_OFF_NONE &&
		    LOAD(uint8_t, f, l->frame_owner) >= l->owner_cstack)
			continue;
		code = LOAD(uintptr_t, f, l->frame_code);
		if (l->code_tagged)	/* 3.14 _PyStackRef tag bits */
			code &= ~(uintptr_t)3;
		if (!code)
			continue;
		/* 3.13+ f_executable can be None or another callable */
		if (code_type && LOAD(const void *, code, l->ob_type) != code_type)
			continue;
		out[n].code = (const void *)code;
		out[n].offset = frame_offset(l, f, code);
		out[n].pad = 0;
		n++;
	}
	return n;
}

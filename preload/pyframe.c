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

/*
 * One walker per frame shape, so the loop holds no tests of the shape:
 * CFRAME (3.11/3.12 tstate->cframe->current_frame), INTLASTI (3.9/3.10
 * int f_lasti; UNITS: 3.10 counts code units), OWNER (3.12+ C-stack
 * frames to skip), TYPECHECK (3.13+ f_executable may not be code),
 * TAGGED (3.14 _PyStackRef). The offsets stay in registers.
 */
#define DEFINE_WALK(name, CFRAME, INTLASTI, UNITS, OWNER, TYPECHECK, TAGGED) \
static int name(const struct pp_pylayout *l, const void *tstate,	\
		const void *code_type, struct pp_rawframe *out, int max) \
{									\
	const uint32_t back = l->frame_back, fcode = l->frame_code;	\
	const uint32_t owner = l->frame_owner, cstack = l->owner_cstack; \
	const uint32_t obtype = l->ob_type, instr = l->frame_instr;	\
	const uint32_t start = l->code_start;				\
	const void *f = LOAD(const void *, tstate, l->tstate_frame);	\
	int n = 0, links = 0;						\
	uintptr_t code, p;						\
	intptr_t d;							\
	int lasti;							\
									\
	if (CFRAME && f)						\
		f = LOAD(const void *, f, l->cframe_frame);		\
	for (; f && n < max && links < WALK_LINKS;			\
	     f = LOAD(const void *, f, back), links++) {		\
		if (OWNER && LOAD(uint8_t, f, owner) >= cstack)		\
			continue;					\
		code = LOAD(uintptr_t, f, fcode);			\
		if (TAGGED)						\
			code &= ~(uintptr_t)3;				\
		if (!code || (TYPECHECK &&				\
			      LOAD(const void *, code, obtype) != code_type)) \
			continue;					\
		out[n].code = (const void *)code;			\
		out[n].pad = 0;						\
		if (INTLASTI) {						\
			lasti = LOAD(int, f, instr);			\
			out[n].offset = lasti < 0 || lasti > (INT32_MAX >> 1) ? \
				-1 : (UNITS ? lasti * 2 : lasti);	\
		} else {						\
			/* prev_instr is one unit before the code until \
			 * the first instruction runs: unknown */	\
			p = LOAD(uintptr_t, f, instr);			\
			d = (intptr_t)(p - (code + start));		\
			out[n].offset = !p || d < 0 || d > INT32_MAX ?	\
				-1 : (int32_t)d;			\
		}							\
		n++;							\
	}								\
	return n;							\
}

/* 3.9 Objects/frameobject.c, 3.10 (f_lasti in code units) */
DEFINE_WALK(walk_39, 0, 1, 0, 0, 0, 0)
DEFINE_WALK(walk_310, 0, 1, 1, 0, 0, 0)
/* 3.11 internal/pycore_frame.h: _PyInterpreterFrame_LASTI */
DEFINE_WALK(walk_311, 1, 0, 0, 0, 0, 0)
/* 3.12: C-stack entry frames (owner) */
DEFINE_WALK(walk_312, 1, 0, 0, 1, 0, 0)
/* 3.13: tstate->current_frame, f_executable may be None */
DEFINE_WALK(walk_313, 0, 0, 0, 1, 1, 0)
/* 3.14: f_executable is a tagged _PyStackRef */
DEFINE_WALK(walk_314, 0, 0, 0, 1, 1, 1)

/*
 * The same shapes, walking against the previous walk (pp_walkmemo):
 * first the links alone (one load each), then, from the outer end, the
 * links whose address and words are unchanged, then the rest read in
 * full. A link whose executable was not a code object is read again
 * every time: a code object may have been born at that address since,
 * and only code objects' deaths empty the memo (pp_code_deaths).
 */
#define DEFINE_MEMO_WALK(name, CFRAME, INTLASTI, UNITS, OWNER, TYPECHECK, TAGGED) \
static int name(const struct pp_pylayout *l, const void *tstate,	\
		const void *code_type, struct pp_walkmemo *m)		\
{									\
	const uint32_t back = l->frame_back, fcode = l->frame_code;	\
	const uint32_t owner = l->frame_owner, cstack = l->owner_cstack; \
	const uint32_t obtype = l->ob_type, instr = l->frame_instr;	\
	const uint32_t start = l->code_start;				\
	const void *f = LOAD(const void *, tstate, l->tstate_frame);	\
	const void *fa[PP_MEMO_LINKS];					\
	struct pp_walklink *k;						\
	int nl = 0, j, same, kept;					\
	uintptr_t code, p;						\
	intptr_t d;							\
	int lasti;							\
									\
	if (CFRAME && f)						\
		f = LOAD(const void *, f, l->cframe_frame);		\
	for (; f; f = LOAD(const void *, f, back)) {			\
		if (nl == PP_MEMO_LINKS) {				\
			m->nlinks = m->nkept = 0;			\
			return -1;					\
		}							\
		fa[nl++] = f;						\
	}								\
	for (j = 0, k = m->link; j < nl && j < (int)m->nlinks; j++, k++) { \
		f = fa[nl - 1 - j];					\
		if (f != k->frame || k->kind == PP_LINK_RECHECK ||	\
		    LOAD(uintptr_t, f, fcode) != k->code ||		\
		    (INTLASTI ? (uintptr_t)(uint32_t)LOAD(int, f, instr) : \
				LOAD(uintptr_t, f, instr)) != k->instr || \
		    (OWNER && LOAD(uint8_t, f, owner) != k->owner))	\
			break;						\
	}								\
	same = j;							\
	kept = same ? m->link[same - 1].kept : 0;			\
	for (; j < nl; j++, k++) {					\
		f = fa[nl - 1 - j];					\
		k->frame = f;						\
		k->code = code = LOAD(uintptr_t, f, fcode);		\
		if (INTLASTI) {						\
			lasti = LOAD(int, f, instr);			\
			k->instr = (uint32_t)lasti;			\
		} else {						\
			k->instr = p = LOAD(uintptr_t, f, instr);	\
		}							\
		k->owner = OWNER ? LOAD(uint8_t, f, owner) : 0;		\
		k->kind = PP_LINK_FRAME;				\
		if (TAGGED)						\
			code &= ~(uintptr_t)3;				\
		if ((OWNER && k->owner >= cstack) || !code)		\
			k->kind = PP_LINK_SKIP;				\
		else if (TYPECHECK &&					\
			 LOAD(const void *, code, obtype) != code_type)	\
			k->kind = PP_LINK_RECHECK;			\
		if (k->kind == PP_LINK_FRAME) {				\
			kept++;						\
			k->raw.code = (const void *)code;		\
			k->raw.pad = 0;					\
			if (INTLASTI) {					\
				k->raw.offset = lasti < 0 ||		\
					lasti > (INT32_MAX >> 1) ? -1 :	\
					(UNITS ? lasti * 2 : lasti);	\
			} else {					\
				d = (intptr_t)(p - (code + start));	\
				k->raw.offset = !p || d < 0 ||		\
					d > INT32_MAX ? -1 : (int32_t)d; \
			}						\
		}							\
		k->kept = kept > UINT16_MAX ? UINT16_MAX : kept;	\
	}								\
	m->nlinks = nl;							\
	m->nkept = kept;						\
	return same;							\
}

DEFINE_MEMO_WALK(memo_39, 0, 1, 0, 0, 0, 0)
DEFINE_MEMO_WALK(memo_310, 0, 1, 1, 0, 0, 0)
DEFINE_MEMO_WALK(memo_311, 1, 0, 0, 0, 0, 0)
DEFINE_MEMO_WALK(memo_312, 1, 0, 0, 1, 0, 0)
DEFINE_MEMO_WALK(memo_313, 0, 0, 0, 1, 1, 0)
DEFINE_MEMO_WALK(memo_314, 0, 0, 0, 1, 1, 1)

pp_py_memo_walk_fn pp_py_memo_walker(const struct pp_pylayout *l,
				     const void *code_type)
{
	pp_py_walk_fn w = pp_py_walker(l, code_type);

	if (w == walk_39)
		return memo_39;
	if (w == walk_310)
		return memo_310;
	if (w == walk_311)
		return memo_311;
	if (w == walk_312)
		return memo_312;
	if (w == walk_313)
		return memo_313;
	if (w == walk_314)
		return memo_314;
	return NULL;
}

pp_py_walk_fn pp_py_walker(const struct pp_pylayout *l, const void *code_type)
{
	int cframe, owner;

	if (!l || !l->instr_kind)
		return NULL;
	cframe = l->cframe_frame != PP_OFF_NONE;
	owner = l->frame_owner != PP_OFF_NONE;
	switch (l->instr_kind) {
	case PP_INSTR_LASTI_BYTES:
		return walk_39;
	case PP_INSTR_LASTI_UNITS:
		return walk_310;
	case PP_INSTR_PREV_PTR:
		return owner ? walk_312 : walk_311;
	case PP_INSTR_PTR:
		if (cframe || !code_type)
			break;
		return l->code_tagged ? walk_314 : walk_313;
	}
	return NULL;
}

int pp_py_walk(const struct pp_pylayout *l, const void *tstate,
	       const void *code_type, struct pp_rawframe *out, int max)
{
	pp_py_walk_fn walk = pp_py_walker(l, code_type);

	if (!walk || !tstate || !out || max <= 0)
		return 0;
	return walk(l, tstate, code_type, out, max);
}

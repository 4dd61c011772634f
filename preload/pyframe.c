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
#include "pywalk.h"

/* 3.9/3.10: an int f_lasti (UNITS: in code units, 3.10); -1 before the
 * first instruction runs */
static inline int32_t off_lasti(int lasti, int units)
{
	return lasti < 0 || lasti > (INT32_MAX >> 1) ? -1 :
	       (units ? lasti * 2 : lasti);
}

/* 3.11+: prev_instr (instr_ptr) is one unit before the code until the
 * first instruction runs: unknown */
static inline int32_t off_instr(uintptr_t p, uintptr_t code, uint32_t start)
{
	intptr_t d = (intptr_t)(p - (code + start));

	return !p || d < 0 || d > INT32_MAX ? -1 : (int32_t)d;
}

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
	WALK_OFFSETS							\
	int n = 0, links = 0;						\
	uintptr_t code;							\
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
		out[n].offset = INTLASTI ?				\
			off_lasti(LOAD(int, f, instr), UNITS) :		\
			off_instr(LOAD(uintptr_t, f, instr), code, start); \
		n++;							\
	}								\
	return n;							\
}

#define WALK_OF(v, ...) DEFINE_WALK(walk_##v, __VA_ARGS__)
FRAME_SHAPES(WALK_OF)

/*
 * The same shapes, walking against the previous walk (pp_walkmemo):
 * one pass over the links comparing each with the memo's (address and
 * words), which finds the outer links that are unchanged when the chain
 * is as deep as before (else a second pass from the outer end does),
 * then the rest read in full. A link whose executable was not a code
 * object is read again every time: a code object may have been born at
 * that address since, and only code objects' deaths empty the memo
 * (pp_code_deaths).
 */

/*
 * frame f is memo link k as it was. 3.11/3.12: prev_instr points into
 * the frame's own code object (its co_code_adaptive, or the unit
 * before it), and no code object has died since the memo was made
 * (else it is empty): the same instruction pointer is the same code,
 * whose word need not be compared. Not so for 3.9/3.10's int f_lasti,
 * nor for 3.13+, whose executable may be no code object.
 */
#define SAME_LINK(f, k, INTLASTI, OWNER, TYPECHECK)			\
	((f) == (k)->frame &&						\
	 (!TYPECHECK || (k)->kind != PP_LINK_RECHECK) &&		\
	 ((!INTLASTI && !TYPECHECK) ||					\
	  LOAD(uintptr_t, f, fcode) == (k)->code) &&			\
	 (INTLASTI ? (uintptr_t)(uint32_t)LOAD(int, f, instr) :		\
		     LOAD(uintptr_t, f, instr)) == (k)->instr &&	\
	 (!OWNER || LOAD(uint8_t, f, owner) == (k)->owner))

#define DEFINE_MEMO_WALK(name, CFRAME, INTLASTI, UNITS, OWNER, TYPECHECK, TAGGED) \
static int name(const struct pp_pylayout *l, const void *tstate,	\
		const void *code_type, struct pp_walkmemo *m)		\
{									\
	WALK_OFFSETS							\
	const void *fa[PP_MEMO_LINKS];					\
	struct pp_walklink *k;						\
	int nl = 0, j, same, kept, miss = -1;				\
	uintptr_t code, p = 0;						\
	int lasti = 0;							\
									\
	if (CFRAME && f)						\
		f = LOAD(const void *, f, l->cframe_frame);		\
	/* one pass from the inner end, each link compared with the	\
	 * memo's at the same depth from its inner end: right when the	\
	 * chain is as deep as before (the common case), and then the	\
	 * outermost mismatch tells the unchanged outer links */	\
	k = m->link + m->nlinks;	/* nlinks <= PP_MEMO_LINKS */	\
	for (; f && k != m->link; f = LOAD(const void *, f, back)) {	\
		k--;							\
		if (!SAME_LINK(f, k, INTLASTI, OWNER, TYPECHECK))	\
			miss = nl;					\
		fa[nl++] = f;						\
	}								\
	for (; f; f = LOAD(const void *, f, back)) {			\
		if (nl == PP_MEMO_LINKS) {				\
			m->nlinks = m->nkept = 0;			\
			return -1;					\
		}							\
		fa[nl++] = f;						\
	}								\
	if (nl == (int)m->nlinks) {					\
		j = nl - 1 - miss;					\
		k = m->link + j;					\
	} else {	/* deeper or shallower: from the outer end */	\
		for (j = 0, k = m->link; j < nl && j < (int)m->nlinks;	\
		     j++, k++)						\
			if (!SAME_LINK(fa[nl - 1 - j], k, INTLASTI, OWNER,	\
				       TYPECHECK))			\
				break;					\
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
			k->raw.offset = INTLASTI ?			\
				off_lasti(lasti, UNITS) :		\
				off_instr(p, code, start);		\
		}							\
		k->kept = kept > UINT16_MAX ? UINT16_MAX : kept;	\
	}								\
	m->nlinks = nl;							\
	m->nkept = kept;						\
	return same;							\
}

#define KEY_OF(v, ...) DEFINE_KEY_WALK(key_##v, __VA_ARGS__)
FRAME_SHAPES(KEY_OF)

#define MEMO_OF(v, ...) DEFINE_MEMO_WALK(memo_##v, __VA_ARGS__)
FRAME_SHAPES(MEMO_OF)

/* The key or memo walker of the shape pp_py_walker picks for l, or its
 * FRAME_SHAPES version (0: none) */
#define KEY_FOR(v, ...)  if (w == walk_##v) return key_##v;
#define SHAPE_FOR(v, ...) if (w == walk_##v) return v;
#define MEMO_FOR(v, ...) if (w == walk_##v) return memo_##v;
#define DEFINE_PICK(name, type, pick)					\
type name(const struct pp_pylayout *l, const void *code_type)		\
{									\
	pp_py_walk_fn w = pp_py_walker(l, code_type);			\
									\
	FRAME_SHAPES(pick)						\
	return 0;							\
}
DEFINE_PICK(pp_py_key_walker, pp_py_key_walk_fn, KEY_FOR)
DEFINE_PICK(pp_py_memo_walker, pp_py_memo_walk_fn, MEMO_FOR)
DEFINE_PICK(pp_py_shape, int, SHAPE_FOR)
#undef DEFINE_PICK
#undef SHAPE_FOR
#undef MEMO_FOR
#undef KEY_FOR

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

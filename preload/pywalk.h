/* SPDX-License-Identifier: MIT */
/*
 * What pyframe.c's walkers share with stacks.c, which builds the quick
 * key's walk into its own per-shape capture (no call on the hot path):
 * the frame shapes by version and the quick key's walk.
 */
#ifndef PP_PYWALK_H
#define PP_PYWALK_H

#include <stdint.h>

#include "pp_pylayout.h"

/* links followed per walk, counting skipped frames */
#define WALK_LINKS 4096

#define LOAD(type, base, off) (*(const type *)((const char *)(base) + (off)))

/* the layout's offsets in locals (registers), and the innermost frame */
#define WALK_OFFSETS							\
	const uint32_t back = l->frame_back, fcode = l->frame_code;	\
	const uint32_t owner = l->frame_owner, cstack = l->owner_cstack; \
	const uint32_t obtype = l->ob_type, instr = l->frame_instr;	\
	const uint32_t start = l->code_start;				\
	const void *f = LOAD(const void *, tstate, l->tstate_frame);

/*
 * The shapes by version, once for all the walkers (X: version, then the
 * DEFINE_WALK flags):
 * 3.9 Objects/frameobject.c, 3.10 (f_lasti in code units);
 * 3.11 internal/pycore_frame.h: _PyInterpreterFrame_LASTI;
 * 3.12: C-stack entry frames (owner);
 * 3.13: tstate->current_frame, f_executable may be None;
 * 3.14: f_executable is a tagged _PyStackRef.
 */
#define FRAME_SHAPES(X)			\
	X(39, 0, 1, 0, 0, 0, 0)		\
	X(310, 0, 1, 1, 0, 0, 0)	\
	X(311, 1, 0, 0, 0, 0, 0)	\
	X(312, 1, 0, 0, 1, 0, 0)	\
	X(313, 0, 0, 0, 1, 1, 0)	\
	X(314, 0, 0, 0, 1, 1, 1)

/*
 * The same shapes, for the shim's quick key of a short chain: a hash of
 * each kept frame's code and instruction word (the words its offset is
 * made from, so equal words give equal frames while the code objects
 * live), nothing stored, no offsets worked out, not folded (its high
 * bits are the mixed ones). -1: more than max frames (or a chain cut
 * short), the caller walks it in full.
 */
static inline uint64_t key_mix(uint64_t h, uint64_t v)
{
	return (h ^ v) * 0x9e3779b97f4a7c15ull;
}

#define DEFINE_KEY_WALK(name, CFRAME, INTLASTI, UNITS, OWNER, TYPECHECK, TAGGED) \
static __attribute__((always_inline)) inline int			\
name(const struct pp_pylayout *l, const void *tstate,			\
     const void *code_type, uint64_t *key, int max)			\
{									\
	WALK_OFFSETS							\
	uint64_t h = 0x6b6579ull;					\
	int n = 0, links = 0;						\
	uintptr_t code;							\
									\
	(void)start;							\
	if (CFRAME && f)						\
		f = LOAD(const void *, f, l->cframe_frame);		\
	for (; f; f = LOAD(const void *, f, back)) {			\
		if (++links > WALK_LINKS)				\
			return -1;					\
		if (OWNER && LOAD(uint8_t, f, owner) >= cstack)		\
			continue;					\
		code = LOAD(uintptr_t, f, fcode);			\
		if (TAGGED)						\
			code &= ~(uintptr_t)3;				\
		if (!code || (TYPECHECK &&				\
			      LOAD(const void *, code, obtype) != code_type)) \
			continue;					\
		if (++n > max)						\
			return -1;					\
		h = key_mix(h, code);					\
		h = key_mix(h, INTLASTI ?				\
			       (uint64_t)(uint32_t)LOAD(int, f, instr) : \
			       LOAD(uintptr_t, f, instr));		\
	}								\
	*key = h;							\
	return n;							\
}

#endif

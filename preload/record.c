// SPDX-License-Identifier: MIT
/*
 * The hot path: turn one allocation event into one ring record.
 * No allocation, no locks; the stack is interned (stacks.c) and only
 * its id travels with the event.
 */
#include <string.h>

#include "shim.h"

void pp_emit_alloc(uint8_t domain, const void *p, size_t n)
{
	struct pp_rec_alloc *r;
	uint32_t stack;

	if (domain != PP_DOM_ARENA && domain != PP_DOM_MMAP) {
		pp_emit_py_alloc(domain, p, n);	/* an ALLOC at its stack */
		return;
	}
	if (pp_emit_dropping())
		return;
	/* an arena has no stack: nobody's line (a stack is interned,
	 * maybe defined, before the record is reserved) */
	stack = domain == PP_DOM_MMAP ? pp_stack_current() : 0;
	r = pp_emit_reserve(sizeof(*r));
	if (!r)
		return;
	r->addr = (uintptr_t)p;
	r->size = n;
	pp_ring_commit(r, PP_REC_MMAP, domain, stack, sizeof(*r));
}

void pp_emit_free(uint8_t domain, const void *p)
{
	pp_emit_free_inline(domain, p);
}

/*
 * realloc: the record is reserved before the call and committed after,
 * so whoever gets the old address next is ordered after this event.
 * The header stays zero (uncommitted) until the end.
 */
void pp_record_realloc_begin(struct pp_realloc_tx *tx, uint8_t domain,
			     const void *old, size_t n)
{
	tx->r = NULL;
	tx->domain = domain;
	if (pp_shim.sample_bytes) {
		int was = old && pp_sample_remove(old);

		if (!pp_sample_take(n)) {
			if (was)
				pp_emit_free(domain, old);
			return;
		}
		if (!was)
			old = NULL;
	}
	if (pp_emit_dropping())
		return;
	tx->stack = pp_stack_current();
	tx->r = pp_emit_reserve(sizeof(*tx->r));
	if (!tx->r)
		return;
	tx->r->old = (uintptr_t)old;
	tx->r->size = n;
}

/* p = NULL: the call failed, the old block stays live. */
void pp_record_realloc_end(struct pp_realloc_tx *tx, const void *p)
{
	if (!tx->r)
		return;
	tx->r->addr = (uintptr_t)p;
	if (p && pp_shim.sample_bytes)
		pp_sample_insert(p);
	pp_ring_commit(tx->r, PP_REC_REALLOC, tx->domain, tx->stack,
		       sizeof(*tx->r));
}

void pp_record_munmap(const void *p, size_t n)
{
	struct pp_rec_alloc *r;

	r = pp_emit_reserve(sizeof(*r));
	if (!r)
		return;
	r->addr = (uintptr_t)p;
	r->size = n;
	pp_ring_commit(r, PP_REC_MUNMAP, PP_DOM_MMAP, 0, sizeof(*r));
}

// SPDX-License-Identifier: MIT
/* Per-stack snapshots for windowed exports (export.h). */
#include <stdlib.h>

#include "alloc.h"
#include "export.h"

static struct pp_stack_fig *copy(const struct pp_stack *st, size_t n, int end,
				 struct pp_stack_fig *sum0,
				 const struct pp_model *m)
{
	struct pp_stack_fig *f = pp_xcalloc(n ? n : 1, sizeof(*f));
	size_t i;

	for (i = 0; i < n; i++) {
		f[i].live = end ? st[i].end_live_bytes : st[i].live_bytes;
		f[i].alloc = st[i].alloc_bytes;
		if (st[i].frames && st[i].site == 0 && (st != m->stacks || i)) {
			sum0->live += f[i].live;
			sum0->alloc += f[i].alloc;
		}
	}
	return f;
}

void pp_stack_snap_take(struct pp_stack_snap *s, const struct pp_model *m,
			int end)
{
	struct pp_stack_fig site0 = { 0, 0 };

	s->nlo = m->nstacks;
	s->nhi = m->nstacks_hi;
	s->lo = copy(m->stacks, s->nlo, end, &site0, m);
	s->hi = copy(m->stacks_hi, s->nhi, end, &site0, m);
	if (s->nlo)
		s->lo[0] = (struct pp_stack_fig){ 0, 0 };	/* id 0: none */
	/* site 0 holds the stackless blocks and the stacks without a
	 * Python frame; what the stacks do not explain had no stack */
	s->nostack.live = s->nostack.alloc = 0;
	if (m->nsites) {
		const struct pp_site *z = &m->sites[0];

		s->nostack.live = (end ? z->end_live_bytes : z->live_bytes) -
				  site0.live;
		s->nostack.alloc = z->alloc_bytes - site0.alloc;
	}
}

void pp_stack_snap_free(struct pp_stack_snap *s)
{
	free(s->lo);
	free(s->hi);
	s->lo = s->hi = NULL;
}

// SPDX-License-Identifier: MIT
/*
 * A site's whole stack, innermost first, native frames included: the
 * heaviest (most live bytes) of the stacks that allocate at the site.
 */
#include <stdio.h>
#include <string.h>

#include "vw.h"

/* after the run, as the table: the state at its end (before finalization) */
static double stack_live(const struct pp_model *m, const struct pp_stack *st)
{
	return m->t_end_run ? st->end_live_bytes : st->live_bytes;
}

static const struct pp_stack *heaviest(const struct pp_model *m,
				       uint32_t site, size_t *nstacks)
{
	const struct pp_stack *best = NULL, *st;
	size_t i, k, n;

	*nstacks = 0;
	for (k = 0; k < 2; k++) {
		n = k ? m->nstacks_hi : m->nstacks;
		for (i = k ? 0 : 1; i < n; i++) {
			st = k ? &m->stacks_hi[i] : &m->stacks[i];
			if (!st->frames || st->site != site)
				continue;
			++*nstacks;
			if (!best || stack_live(m, st) > stack_live(m, best))
				best = st;
		}
	}
	return best;
}

int pp_draw_stack(struct pp_vw *v, struct pp_canvas *c, int y, int h)
{
	const struct pp_model *m = v->m;
	const struct pp_site *s = &m->sites[v->detail_site];
	const struct pp_stack *st;
	char lab[512], a[32], b[32], d[32];
	size_t n, i;
	int r = 0, x;

	if (h < 3)
		return 0;
	pp_vw_site_label(v, v->detail_site, lab, sizeof(lab), c->w);
	pp_canvas_fill(c, 0, y, c->w, ' ', VA_TITLE);
	pp_canvas_printf(c, 0, y + r++, VA_TITLE, " Stack of %s  (Esc closes)",
			 lab);
	st = heaviest(m, v->detail_site, &n);
	pp_canvas_printf(c, 1, y + r++, VA_NORMAL,
			 "live %s in %s blocks, allocated %s; %s",
			 pp_vw_bytes(m->t_end_run ? s->end_live_bytes :
				     s->live_bytes, a, sizeof(a)),
			 pp_vw_count(m->t_end_run ? s->end_live_count :
				     s->live_count, b, sizeof(b)),
			 pp_vw_bytes(s->alloc_bytes, d, sizeof(d)),
			 s->leak ? "judged LEAKING" : "not judged leaking");
	if (n > 1)
		pp_canvas_printf(c, 1, y + r++, VA_DIM,
				 "the heaviest of %zu stacks reaching this "
				 "site (%s live):", n,
				 pp_vw_bytes(stack_live(m, st), a, sizeof(a)));
	if (!st) {
		pp_canvas_put(c, 1, y + r, VA_DIM, "no stack recorded");
		return r + 1;
	}
	for (i = 0; i < st->nframes && r < h; i++, r++) {
		const struct pp_func *f = pp_model_func(m, st->frames[i].func);

		if (r == h - 1 && i + 1 < st->nframes) {
			pp_canvas_printf(c, 1, y + r, VA_DIM,
					 "... %u more frames",
					 st->nframes - (unsigned)i);
			r++;
			break;
		}
		x = pp_canvas_printf(c, 1, y + r, VA_DIM, "#%-3zu", i);
		if (!f) {
			pp_canvas_put(c, x + 1, y + r, VA_DIM, "?");
		} else if (f->native) {
			x = pp_canvas_put(c, x + 1, y + r, VA_DIM, "[native] ");
			x = pp_canvas_put(c, x, y + r, VA_NORMAL, f->name);
			pp_canvas_printf(c, x + 1, y + r, VA_DIM, "(%s)",
					 f->file);
		} else {
			x = pp_canvas_printf(c, x + 1, y + r,
					     i ? VA_NORMAL : VA_VALUE,
					     "%s:%u", f->file,
					     st->frames[i].line);
			pp_canvas_put(c, x + 1, y + r, VA_LABEL, f->name);
		}
	}
	return r;
}

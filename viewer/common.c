// SPDX-License-Identifier: MIT
/* The viewer's state: set up and torn down, and the clock it runs on. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pp_clock.h"
#include "vw.h"
#include "../collector/procs.h"

double pp_vw_now(void)
{
	return pp_now_ns() / 1e9;
}

void pp_vw_init(struct pp_vw *v, struct pp_model *m)
{
	memset(v, 0, sizeof(*v));
	v->m = v->base = m;
	v->proc = -1;
	v->view = VIEW_SITES;
	v->sort[VIEW_SITES] = SORT_LIVE;
	v->sort[VIEW_LEAKS] = SORT_GROWTH;
	v->r_speed = 1;
	v->cwd = getcwd(NULL, 0);
}

int pp_vw_next_proc(struct pp_vw *v)
{
	struct pp_procmux *x = v->base->procs;

	if (!x || x->nprocs < 2)
		return 0;
	v->proc = v->proc + 1 >= (long)x->nprocs ? -1 : v->proc + 1;
	v->m = pp_procmux_model(x, v->proc);
	pp_rates_reset(&v->rates);
	v->sel = v->top = 0;
	v->detail = 0;
	return ACT_REFRESH | ACT_SELECT | ACT_REDRAW;
}

void pp_vw_fini(struct pp_vw *v)
{
	pp_snap_free(&v->snap);
	pp_rates_free(&v->rates);
	free((char *)v->cwd);
	v->cwd = NULL;
}

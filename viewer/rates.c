// SPDX-License-Identifier: MIT
/*
 * Recent rates per site (live bytes growth, bytes allocated per second),
 * sampled a few times per second of model time and smoothed with a
 * time constant of a few seconds: what a site does now, where the
 * model's leak verdict says what it did over the whole run. One pass
 * over the sites per sample, nothing per event.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../collector/alloc.h"
#include "vw.h"

#define SAMPLE_S 0.25
#define TAU_S 3.0

void pp_rates_reset(struct pp_rates *r)
{
	pp_rates_free(r);
}

void pp_rates_free(struct pp_rates *r)
{
	free(r->live);
	free(r->alloc);
	free(r->live_rate);
	free(r->alloc_rate);
	memset(r, 0, sizeof(*r));
}

static int grow(struct pp_rates *r, size_t n)
{
	double **arr[] = { &r->live, &r->alloc, &r->live_rate, &r->alloc_rate };
	size_t i;

	for (i = 0; i < 4; i++)
		*arr[i] = pp_xrealloc(*arr[i], n * sizeof(double));
	return 0;
}

void pp_rates_sample(struct pp_rates *r, const struct pp_model *m)
{
	double t = pp_model_secs(m, m->t_now), dt = t - r->t, a;
	size_t i, old = r->n;

	/* after the program's own run (finalization frees everything): the
	 * rates stay as they were at its end */
	if (m->finalized || (r->n && dt < SAMPLE_S))
		return;
	if (m->nsites > r->n) {
		if (grow(r, m->nsites) < 0)
			return;
		/* a new site starts from nothing at the last sample */
		for (i = old; i < m->nsites; i++) {
			r->live[i] = r->alloc[i] = 0;
			r->live_rate[i] = r->alloc_rate[i] = 0;
		}
		r->n = m->nsites;
	}
	if (!old && r->t == 0) {
		/* first sample: a baseline, no rates yet */
		for (i = 0; i < r->n; i++) {
			r->live[i] = m->sites[i].live_bytes;
			r->alloc[i] = m->sites[i].alloc_bytes;
		}
		r->g_alloc = m->alloc_bytes;
		r->g_allocn = m->alloc_count;
		r->t = t;
		return;
	}
	if (dt <= 0)
		return;
	a = 1 - exp(-dt / TAU_S);
	for (i = 0; i < r->n; i++) {
		const struct pp_site *s = &m->sites[i];

		r->live_rate[i] += a * ((s->live_bytes - r->live[i]) / dt -
					r->live_rate[i]);
		r->alloc_rate[i] += a * ((s->alloc_bytes - r->alloc[i]) / dt -
					 r->alloc_rate[i]);
		r->live[i] = s->live_bytes;
		r->alloc[i] = s->alloc_bytes;
	}
	r->alloc_rate_g += a * ((m->alloc_bytes - r->g_alloc) / dt -
				r->alloc_rate_g);
	r->allocn_rate_g += a * ((m->alloc_count - r->g_allocn) / dt -
				 r->allocn_rate_g);
	r->g_alloc = m->alloc_bytes;
	r->g_allocn = m->alloc_count;
	r->t = t;
}

// SPDX-License-Identifier: MIT
/*
 * The viewer over a recorded trace: a model built up to a chosen moment
 * and the same screens as live, each as it was then. Going forward
 * feeds the records up to the new moment; going back builds the model
 * again from the first chunk (a model cannot be taken back, and a
 * rebuild reads the trace at hundreds of MB/s). Timed records (ticks
 * every 100 ms, marks, exit) say where the stream is in time.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../collector/alloc.h"
#include "viewer.h"
#include "../collector/procs.h"
#include "vw.h"
#include "../collector/trace.h"

#define PLAY_SNAP_S 0.25	/* snapshots while playing */
#define RATES_LEAD_S 6.0	/* rates are sampled over this much before */
#define BATCH_DELAY_S 2.0

struct replay {
	const char *path;
	struct pp_trace_reader *r;
	struct pp_model m;
	struct pp_vw v;
	struct pp_canvas c;
	uint64_t t0, t_last;		/* first and last timestamps, ns */
	union {
		struct pp_hdr h;
		char bytes[PP_REC_MAXLEN + 8];
	} pending;
	int have_pending, eof, finished, error;
	char err[256];
};

static int timed(const struct pp_hdr *h, uint64_t *ts)
{
	switch (h->type) {
	case PP_REC_TICK:
		*ts = ((const struct pp_rec_tick *)h)->ts;
		return 1;
	case PP_REC_META:
		*ts = ((const struct pp_rec_meta *)h)->ts;
		return 1;
	case PP_REC_EXIT:
		*ts = ((const struct pp_rec_exit *)h)->ts;
		return 1;
	case PP_REC_MARK:
		*ts = ((const struct pp_rec_mark *)h)->ts;
		return 1;
	default:
		return 0;
	}
}

/* the trace's time span, from the chunk headers alone */
static int span(struct replay *p)
{
	const struct pp_trace_chunk_info *ch;
	size_t n, i;

	if (pp_trace_index(p->r, &ch, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (ch[i].ts_first && (!p->t0 || ch[i].ts_first < p->t0))
			p->t0 = ch[i].ts_first;
		if (ch[i].ts_last > p->t_last)
			p->t_last = ch[i].ts_last;
	}
	p->v.r_end = p->t_last > p->t0 ? (p->t_last - p->t0) / 1e9 : 0;
	return 0;
}

static void rebuild(struct replay *p)
{
	struct pp_procmux *x = p->m.procs;

	pp_model_free(&p->m);
	pp_model_init(&p->m);
	if (x) {		/* --children: every process's model too */
		p->m.procs = x;
		pp_procmux_reset(x);
	}
	pp_rates_reset(&p->v.rates);
	pp_trace_rewind(p->r);
	p->have_pending = p->eof = p->finished = 0;
}

static double model_pos(const struct replay *p)
{
	return p->m.t_now > p->t0 ? (p->m.t_now - p->t0) / 1e9 : 0;
}

/* the model as it was at pos seconds into the trace */
static void go_to(struct replay *p, double pos)
{
	uint64_t target = p->t0 + (uint64_t)(pos * 1e9), ts;
	const struct pp_hdr *rec;
	int rc;

	if (p->finished && pos >= p->v.r_end)
		goto show;
	if (p->finished || (p->m.t0 && pos + 1e-6 < model_pos(p)))
		rebuild(p);
	if (p->v.rates.n && pos - p->v.rates.t > RATES_LEAD_S)
		pp_rates_reset(&p->v.rates);
	while (!p->eof) {
		if (p->have_pending) {
			rec = &p->pending.h;
		} else {
			rc = pp_trace_next(p->r, &rec);
			if (rc <= 0) {
				const char *why = rc < 0 ?
					pp_trace_error(p->r) :
					pp_trace_invalid(p->r);

				if (why) {
					p->error = 1;
					snprintf(p->err, sizeof(p->err), "%s",
						 why);
				}
				p->eof = 1;
				break;
			}
		}
		/* a checkpoint (--max-size) is one moment: taken whole */
		if (timed(rec, &ts) && ts > target && !p->m.ckpt_loading) {
			if (!p->have_pending) {
				memcpy(p->pending.bytes, rec, rec->len);
				p->have_pending = 1;
			}
			break;
		}
		p->have_pending = 0;
		if (p->m.procs)
			pp_procmux_feed(p->m.procs, rec);
		else
			pp_model_feed(&p->m, rec);
		if (rec->type == PP_REC_TICK &&
		    !(rec->flags & PP_TICK_CLOCK) &&
		    model_pos(p) + RATES_LEAD_S >= pos)
			pp_rates_sample(&p->v.rates, p->v.m);
	}
	if (p->eof && !p->finished && pos >= p->v.r_end) {
		pp_model_finish(&p->m);
		for (size_t i = 0; p->m.procs && i < p->m.procs->nprocs; i++)
			pp_model_finish(&p->m.procs->procs[i]->m);
		p->finished = 1;
	}
show:
	pp_model_judge(p->v.m);
	pp_vw_take(&p->v);
	pp_vw_select(&p->v);
}

static void draw(struct replay *p)
{
	pp_draw_frame(&p->v, &p->c);
}

static int interactive(struct replay *p)
{
	struct pp_vw *v = &p->v;
	double last = pp_vw_now(), now, next_snap = 0;
	int k, act, dirty = 1;

	if (pp_term_open(STDOUT_FILENO, 1) < 0) {
		fprintf(stderr, "pyprof: cannot open the terminal\n");
		return 1;
	}
	v->r_playing = 1;
	go_to(p, 0);
	while (!pp_term_signalled()) {
		now = pp_vw_now();
		if (v->r_playing) {
			v->r_pos += (now - last) * v->r_speed;
			if (v->r_pos >= v->r_end) {
				v->r_pos = v->r_end;
				v->r_playing = 0;
			}
			if (now >= next_snap || !v->r_playing) {
				go_to(p, v->r_pos);
				next_snap = now + PLAY_SNAP_S;
				dirty = 1;
			}
		}
		last = now;
		if (dirty) {
			draw(p);
			dirty = 0;
		}
		k = pp_term_key(v->r_playing ? 50 : 250);
		if (k < 0)
			continue;
		act = pp_vw_key(v, k);
		if (act & ACT_QUIT)
			break;
		if (act & ACT_RESIZE)
			pp_term_full_redraw();
		if (act & ACT_SEEK) {
			v->r_busy = 1;
			draw(p);
			go_to(p, v->r_pos);
			v->r_busy = 0;
			last = pp_vw_now();
		} else if (act & ACT_REFRESH) {
			go_to(p, v->r_pos);	/* P: another process */
		} else if (act & ACT_SELECT) {
			pp_vw_select(v);
		}
		dirty |= act != 0;
	}
	pp_term_close();
	if (pp_term_signalled()) {
		/* die of it, now that the terminal is back */
		signal(pp_term_signalled(), SIG_DFL);
		raise(pp_term_signalled());
	}
	return 0;
}

static int batch(struct replay *p, const struct pp_view_opts *vo)
{
	double d = vo->delay > 0 ? vo->delay : BATCH_DELAY_S, pos = 0;
	int n = 0;

	p->v.r_playing = 1;
	for (;;) {
		pos += d;
		if (pos > p->v.r_end)
			pos = p->v.r_end;
		p->v.r_pos = pos;
		go_to(p, pos);
		/* a capped trace's first moment is its checkpoint's */
		if (p->m.t_kept && pos < model_pos(p))
			p->v.r_pos = pos = model_pos(p);
		pp_batch_frame(&p->v, ++n, vo->frames);
		if ((vo->frames && n >= vo->frames) || pos >= p->v.r_end)
			break;
	}
	return 0;
}

int pp_view_replay(const char *path, const struct pp_view_opts *vo)
{
	struct replay *p = pp_xcalloc(1, sizeof(*p));
	struct pp_proc_id *ids = NULL;
	int rc;

	p->path = path;
	p->r = pp_trace_open(path, p->err, sizeof(p->err));
	if (!p->r) {
		fprintf(stderr, "pyprof: %s: %s\n", path, p->err);
		free(p);
		return 1;
	}
	pp_model_init(&p->m);
	pp_vw_init(&p->v, &p->m);
	p->v.replay = 1;
	if (pp_trace_procs(p->r, &ids) > 1) {	/* --children */
		p->m.procs = pp_xmalloc(sizeof(*p->m.procs));
		pp_procmux_init(p->m.procs, &p->m);
	}
	free(ids);
	if (span(p) < 0) {
		fprintf(stderr, "pyprof: %s: %s\n", path, pp_trace_error(p->r));
		rc = 1;
	} else if (vo->batch || !isatty(STDIN_FILENO) ||
		   !isatty(STDOUT_FILENO)) {
		rc = batch(p, vo);
	} else {
		rc = interactive(p);
	}
	if (!rc && p->error) {
		fprintf(stderr, "pyprof: %s: %s (shown up to there)\n", path,
			p->err);
	}
	pp_canvas_free(&p->c);
	pp_vw_fini(&p->v);
	if (p->m.procs) {
		pp_procmux_free(p->m.procs);
		free(p->m.procs);
	}
	pp_model_free(&p->m);
	pp_trace_close_reader(p->r);
	free(p);
	return rc;
}

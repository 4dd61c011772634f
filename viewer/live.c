// SPDX-License-Identifier: MIT
/*
 * The live viewer: hooked into the session's loop (its poll callback,
 * about every millisecond when idle). The loop is htop's: take a new
 * snapshot on a timer (twice a second), draw when something changed
 * (at most ~30 times a second, after keys), read keys, act. Each poll
 * costs a clock read unless one of those timers is due, so the target,
 * which waits on the ring when it is full, is never held up by drawing.
 *
 * While the screen is up, the command's output (stdout/stderr when they
 * are the terminal) goes to a hidden file instead of over the screen;
 * it is copied to the terminal when the screen closes and, after that,
 * as it comes.
 *
 * Quitting ('q') closes the screen only. pyprof keeps draining events
 * and waits for the command, then exits with its status: the command is
 * never killed by the viewer. ^C (SIGINT) reaches the command from the
 * terminal as usual and also closes the screen; SIGTERM/SIGHUP are
 * still forwarded to the command by the session.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../collector/alloc.h"
#include "../collector/procs.h"
#include "viewer.h"
#include "vw.h"

#define SNAP_S 0.5		/* a new snapshot (and a redraw) */
#define INPUT_S 0.02		/* keys are read this often */
#define DRAW_S 0.033		/* at most this often */
#define BATCH_DELAY_S 2.0	/* -d default */

struct capture {
	int fd[2];		/* per stdio fd (1, 2): hidden file, or -1 */
	int real[2];		/* the terminal, saved */
	off_t off[2];
};

struct live {
	struct pp_vw v;
	const struct pp_view_opts *vo;
	const struct pp_session_opts *so;
	struct pp_canvas c;
	struct capture cap;
	int interactive, started, closed, announced;
	int frames;
	int dirty, act;
	double next_input, next_snap, next_draw, next_frame;
};

/* ---- the command's output while the screen is up ----------------------- */

static void capture_start(struct capture *cap)
{
	int i, fd;

	for (i = 0; i < 2; i++) {
		cap->fd[i] = cap->real[i] = -1;
		cap->off[i] = 0;
		if (!isatty(i + 1))
			continue;
		fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0)
			continue;
		cap->real[i] = dup(i + 1);
		if (cap->real[i] < 0 || dup2(fd, i + 1) < 0) {
			close(fd);
			if (cap->real[i] >= 0)
				close(cap->real[i]);
			cap->real[i] = -1;
			continue;
		}
		cap->fd[i] = fd;
	}
}

/* copy what the command wrote since last time to the terminal */
static void capture_relay(struct capture *cap)
{
	char buf[16384];
	ssize_t n;
	int i;

	for (i = 0; i < 2; i++) {
		if (cap->fd[i] < 0)
			continue;
		while ((n = pread(cap->fd[i], buf, sizeof(buf),
				  cap->off[i])) > 0) {
			cap->off[i] += n;
			if (write(cap->real[i], buf, n) < 0)
				break;
		}
	}
}

/* pyprof's own stdio back on the terminal (the command keeps the file) */
static void capture_unredirect(struct capture *cap)
{
	int i;

	for (i = 0; i < 2; i++)
		if (cap->real[i] >= 0)
			dup2(cap->real[i], i + 1);
}

static void capture_end(struct capture *cap)
{
	int i;

	capture_unredirect(cap);
	capture_relay(cap);
	for (i = 0; i < 2; i++) {
		if (cap->fd[i] >= 0)
			close(cap->fd[i]);
		if (cap->real[i] >= 0)
			close(cap->real[i]);
		cap->fd[i] = cap->real[i] = -1;
	}
}

/* ---- the screen ----------------------------------------------------------- */

static int term_fd(const struct live *l)
{
	return l->cap.real[0] >= 0 ? l->cap.real[0] : STDOUT_FILENO;
}

static void refresh_snapshot(struct live *l)
{
	struct pp_model *m = l->v.m;

	if (!m->t_end_run)
		pp_model_judge(m);
	pp_rates_sample(&l->v.rates, m);
	pp_vw_take(&l->v);
	pp_vw_select(&l->v);
}

static void draw(struct live *l)
{
	pp_draw_frame(&l->v, &l->c);
}

/* act on what keys asked for; returns nonzero to quit */
static int apply(struct live *l, int act)
{
	if (act & ACT_QUIT)
		return 1;
	if (act & ACT_RESIZE)
		pp_term_full_redraw();
	if (act & ACT_REFRESH && !l->v.paused)
		refresh_snapshot(l);
	else if (act & ACT_SELECT)
		pp_vw_select(&l->v);
	if (act)
		l->dirty = 1;
	return 0;
}

static void close_screen(struct live *l)
{
	if (l->closed)
		return;
	l->closed = 1;
	pp_term_close();
	capture_unredirect(&l->cap);
	capture_relay(&l->cap);
}

static void announce(struct live *l)
{
	if (l->announced || !l->interactive || l->so->pid)
		return;	/* attached: quitting detaches, nothing runs on */
	l->announced = 1;
	fprintf(stderr, "pyprof: viewer closed; profiling goes on until %s "
		"(pid %d) ends, then pyprof exits with its status "
		"(^C interrupts it)\n", l->so->cmd[0], l->v.m->pid);
}

static int poll_interactive(struct live *l, struct pp_model *m)
{
	double now = pp_vw_now();
	int act = 0, k;

	if (!l->started) {
		l->started = 1;
		if (pp_term_open(term_fd(l), 1) < 0) {
			l->closed = 1;
			capture_end(&l->cap);
			fprintf(stderr, "pyprof: cannot open the terminal for "
				"the viewer; profiling without it\n");
			return 1;
		}
		refresh_snapshot(l);
		l->dirty = 1;
		l->next_snap = now + SNAP_S;
	}
	if (pp_term_signalled()) {
		close_screen(l);
		return 1;
	}
	if (now >= l->next_input) {
		l->next_input = now + INPUT_S;
		while ((k = pp_term_key(0)) >= 0)
			act |= pp_vw_key(&l->v, k);
		if (apply(l, act)) {
			close_screen(l);
			announce(l);
			return 1;
		}
	}
	if (now >= l->next_snap) {
		l->next_snap = now + SNAP_S;
		pp_rates_sample(&l->v.rates, l->v.m);
		if (!l->v.paused) {
			refresh_snapshot(l);
			l->dirty = 1;
		}
	}
	if (l->dirty && now >= l->next_draw) {
		draw(l);
		l->dirty = 0;
		l->next_draw = now + DRAW_S;
	}
	return 0;
}

static double delay(const struct live *l)
{
	return l->vo->delay > 0 ? l->vo->delay : BATCH_DELAY_S;
}

static int poll_batch(struct live *l, struct pp_model *m)
{
	double now = pp_vw_now();

	if (!l->started) {
		l->started = 1;
		l->next_frame = now + delay(l);
		l->next_snap = now;
	}
	if (now >= l->next_snap) {
		pp_rates_sample(&l->v.rates, l->v.m);
		l->next_snap = now + 0.25;
	}
	if (now < l->next_frame)
		return 0;
	l->next_frame += delay(l);
	if (l->next_frame < now)
		l->next_frame = now + delay(l);
	refresh_snapshot(l);
	pp_batch_frame(&l->v, ++l->frames, l->vo->frames);
	if (l->vo->frames && l->frames >= l->vo->frames)
		l->closed = 1;
	return l->closed;
}

static int poll(void *ctx, struct pp_model *m)
{
	struct live *l = ctx;

	if (l->closed) {
		capture_relay(&l->cap);
		return 1;
	}
	return l->interactive ? poll_interactive(l, m) : poll_batch(l, m);
}

/* the command ended with the screen up: show the end until 'q' */
static void final_screen(struct live *l)
{
	struct pp_model *m = l->v.m;
	int k, act;

	if (l->so->pid)
		snprintf(l->v.status, sizeof(l->v.status),
			 "detached from pid %d; q quits", m->pid);
	else if (m->killed_by)
		snprintf(l->v.status, sizeof(l->v.status),
			 "command killed by signal %d; q quits", m->killed_by);
	else
		snprintf(l->v.status, sizeof(l->v.status),
			 "command exited %d; q quits", m->exit_status);
	l->v.paused = 0;
	pp_rates_sample(&l->v.rates, m);
	refresh_snapshot(l);
	draw(l);
	while (!pp_term_signalled()) {
		k = pp_term_key(250);
		if (k < 0)
			continue;
		act = pp_vw_key(&l->v, k);
		if ((act & ACT_REFRESH) && l->v.m != m) {
			/* P: another process's model (finished too) */
			m = l->v.m;
			pp_rates_sample(&l->v.rates, m);
			refresh_snapshot(l);
		}
		if (act & ACT_REFRESH)
			act = (act & ~ACT_REFRESH) | ACT_SELECT;
		if (apply(l, act))
			break;
		draw(l);
	}
	close_screen(l);
}

int pp_view_live(const struct pp_session_opts *so, const struct pp_view_opts *vo)
{
	struct pp_session_opts o = *so;
	struct pp_model m;
	struct live *l;
	size_t i;
	int rc;

	l = pp_xcalloc(1, sizeof(*l));
	l->vo = vo;
	l->so = so;
	l->cap.fd[0] = l->cap.fd[1] = l->cap.real[0] = l->cap.real[1] = -1;
	l->interactive = !vo->batch && isatty(STDIN_FILENO) &&
			 isatty(STDOUT_FILENO);
	pp_model_init(&m);
	pp_vw_init(&l->v, &m);
	if (!l->interactive && !vo->batch) {
		/* no terminal and no -b: the report at the end, as before */
		l->closed = 1;
	} else {
		o.poll = poll;
		o.poll_ctx = l;
	}
	if (l->interactive)
		capture_start(&l->cap);

	rc = pp_session_run(&o, &m);

	pp_model_finish(&m);
	for (i = 0; m.procs && i < m.procs->nprocs; i++)
		pp_model_finish(&m.procs->procs[i]->m);
	if (l->interactive && l->started && !l->closed && m.py_supported == 1)
		final_screen(l);
	close_screen(l);
	capture_end(&l->cap);
	if (vo->batch && m.py_supported == 1 &&
	    (!vo->frames || l->frames < vo->frames)) {
		pp_rates_sample(&l->v.rates, &m);
		refresh_snapshot(l);
		pp_batch_frame(&l->v, ++l->frames, vo->frames);
	}
	else if (!vo->batch && m.py_supported == 1 && vo->at_end)
		vo->at_end(&m);
	pp_canvas_free(&l->c);
	pp_vw_fini(&l->v);
	if (m.procs) {
		pp_procmux_free(m.procs);
		free(m.procs);
	}
	pp_model_free(&m);
	free(l);
	return rc;
}

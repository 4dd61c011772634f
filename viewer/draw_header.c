// SPDX-License-Identifier: MIT
/*
 * The top of the screen: who the target is and how its heap, GC and
 * GIL are doing (three lines), and the graph of live heap and RSS over
 * the whole run, compressed to the width.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vw.h"
#include "stalls_view.h"
#include "../collector/fmt.h"
#include "../collector/procs.h"

static int field(struct pp_canvas *c, int x, int y, const char *label,
		 const char *value)
{
	if (label) {
		x = pp_canvas_put(c, x, y, VA_LABEL, label);
		x = pp_canvas_put(c, x, y, VA_LABEL, " ");
	}
	return pp_canvas_put(c, x, y, VA_VALUE, value);
}

static void fmt_uptime(double s, char *buf, size_t len)
{
	long t = (long)s;

	if (t >= 3600)
		snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60,
			 t % 60);
	else if (t >= 60)
		snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
	else
		snprintf(buf, len, "%.1fs", s);
}

static void line_target(struct pp_vw *v, struct pp_canvas *c, int y)
{
	const struct pp_model *m = v->m;
	char buf[128], cmd[512];
	size_t i;
	int x = 0;

	x = pp_canvas_put(c, x, y, VA_TAB_ON, "pyprof");
	snprintf(buf, sizeof(buf), "%d", m->pid);
	x = field(c, x + 1, y, "pid", buf);
	if (v->base->procs && v->base->procs->nprocs > 1) {
		/* --children: which of the processes (P switches) */
		if (v->proc < 0)
			snprintf(buf, sizeof(buf), "[all %zu procs, P]",
				 v->base->procs->nprocs);
		else
			snprintf(buf, sizeof(buf), "[proc %ld/%zu, P]",
				 v->proc + 1, v->base->procs->nprocs);
		x = pp_canvas_put(c, x + 1, y, VA_WARN, buf);
	}
	x = field(c, x + 2, y, "Python", m->pyver[0] ? m->pyver : "?");
	fmt_uptime(v->snap.t, buf, sizeof(buf));
	x = field(c, x + 2, y, v->replay ? "at" : "up", buf);
	if (v->replay) {
		snprintf(buf, sizeof(buf), "/%.1fs", v->r_end);
		x = pp_canvas_put(c, x, y, VA_DIM, buf);
	}
	snprintf(cmd, sizeof(cmd), "%s", m->argv ? m->argv : "");
	for (i = 0; cmd[i]; i++)
		if (cmd[i] == '\t')
			cmd[i] = ' ';
	pp_canvas_put(c, x + 2, y, VA_NORMAL, cmd);
}

/* Attached with eBPF only: the kernel's view since attach; sites hold
 * the mappings, heap growth and first-touched pages each line made. */
static void line_heap_attached(struct pp_vw *v, struct pp_canvas *c, int y)
{
	const struct pp_model *m = v->m;
	char a[32], buf[64];
	int x = 0;

	pp_fmt_bytes(m->kernel_bytes, a, sizeof(a));
	snprintf(buf, sizeof(buf), "%s%s", m->kernel_bytes >= 0 ? "+" : "", a);
	x = field(c, x, y, "Heap", buf);
	x = pp_canvas_put(c, x + 1, y, VA_LABEL, "since attach (kernel)");
	x = field(c, x + 2, y, "RSS", pp_fmt_bytes(v->snap.rss, a, sizeof(a)));
	pp_canvas_put(c, x + 2, y, VA_DIM, "sites: kernel view (mmap, brk, "
		      "new pages)");
}

static void line_heap(struct pp_vw *v, struct pp_canvas *c, int y)
{
	const struct pp_vw_snap *s = &v->snap;
	char a[32], b[32], buf[96];
	int x = 0;

	if (v->m->attach_mode && !strcmp(v->m->attach_mode, "ebpf")) {
		line_heap_attached(v, c, y);
		return;
	}
	if (v->m->attach_mode && !strcmp(v->m->attach_mode, "shim") &&
	    !v->m->shim_ready) {
		/* it loads when the target runs Python code where it can */
		x = field(c, x, y, "RSS", pp_fmt_bytes(s->rss, a, sizeof(a)));
		pp_canvas_put(c, x + 2, y, VA_WARN, "allocations: the shim has "
			      "not loaded (yet)");
		return;
	}
	x = field(c, x, y, "Heap", pp_fmt_bytes(s->live, a, sizeof(a)));
	if (!isnan(s->heap_per_min)) {
		pp_fmt_bytes(s->heap_per_min, a, sizeof(a));
		snprintf(buf, sizeof(buf), " (%s%s/min)",
			 s->heap_per_min >= 0 ? "+" : "", a);
		x = pp_canvas_put(c, x, y, s->heap_per_min > 0 ? VA_LEAK :
			VA_VALUE, buf);
	}
	x = field(c, x + 2, y, "RSS", pp_fmt_bytes(s->rss, a, sizeof(a)));
	pp_fmt_bytes(s->alloc_rate, a, sizeof(a));
	snprintf(buf, sizeof(buf), "%s/s, %s/s", a,
		 pp_vw_count(s->allocn_rate, b, sizeof(b)));
	field(c, x + 2, y, "Alloc", buf);
}

static void line_stalls(struct pp_vw *v, struct pp_canvas *c, int y)
{
	const struct pp_vw_snap *s = &v->snap;
	struct pp_vw_stalls g;
	char a[32], buf[96];
	int x = 0;

	pp_vw_stalls_get(v->m, &g);
	if (g.have_gc) {
		snprintf(buf, sizeof(buf), "%llu (last %.1f ms, max %.1f ms)",
			 (unsigned long long)g.gc_count, g.gc_last_ms,
			 g.gc_max_ms);
		x = field(c, x, y, "GC", buf);
	} else {
		x = field(c, x, y, "GC", "");
		x = pp_canvas_put(c, x, y, VA_DIM, "no data");
	}
	if (g.have_gil) {
		snprintf(buf, sizeof(buf), "%.1f%%", g.gil_wait * 100);
		x = field(c, x + 2, y, "GIL wait", buf);
	} else {
		x = field(c, x + 2, y, "GIL wait", "");
		x = pp_canvas_put(c, x, y, VA_DIM, "no data");
	}
	x = field(c, x + 2, y, "Events", pp_vw_count(s->events, a, sizeof(a)));
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)s->dropped);
	x = pp_canvas_put(c, x + 2, y, VA_LABEL, "Drops ");
	pp_canvas_put(c, x, y, s->dropped ? VA_WARN : VA_VALUE, buf);
	pp_vw_stalls_free(&g);
}

int pp_draw_header(struct pp_vw *v, struct pp_canvas *c, int y)
{
	line_target(v, c, y);
	line_heap(v, c, y + 1);
	line_stalls(v, c, y + 2);
	return 3;
}

/*
 * The graph: column i shows the largest live heap ('#') and RSS ('.')
 * among its share of the timeline (ticks are evenly spaced in time).
 */
int pp_draw_graph(struct pp_vw *v, struct pp_canvas *c, int y, int h)
{
	const struct pp_model *m = v->m;
	const int lw = 9;
	int gw = c->w - lw, ncols, i, r;
	size_t n = m->ntimeline, a, b, k;
	double scale = 0, heap, rss;
	char buf[32];

	if (h < 2 || gw < 10)
		return 0;
	for (k = 0; k < n; k++) {
		if (m->timeline[k].rss_bytes > scale)
			scale = m->timeline[k].rss_bytes;
		if (m->timeline[k].live_bytes > scale)
			scale = m->timeline[k].live_bytes;
	}
	pp_vw_bytes(scale, buf, sizeof(buf));
	pp_canvas_put(c, 0, y, VA_DIM, buf);
	pp_canvas_put(c, 0, y + 1, VA_HEAP, "# heap");
	if (h > 2)
		pp_canvas_put(c, 0, y + 2, VA_RSS, ". RSS");
	if (h > 3) {
		snprintf(buf, sizeof(buf), "0-%.0fs", v->snap.t);
		pp_canvas_put(c, 0, y + h - 1, VA_DIM, buf);
	}
	for (r = 0; r < h; r++)
		pp_canvas_put(c, lw - 1, y + r, VA_DIM, "|");
	if (!n || scale <= 0)
		return h;
	ncols = n < (size_t)gw ? (int)n : gw;
	for (i = 0; i < ncols; i++) {
		a = n * i / ncols;
		b = n * (i + 1) / ncols;
		heap = rss = 0;
		for (k = a; k < b; k++) {
			heap = fmax(heap, m->timeline[k].live_bytes);
			rss = fmax(rss, m->timeline[k].rss_bytes);
		}
		for (r = 0; r < h; r++) {
			int level = h - 1 - r;	/* 0 at the bottom */
			double lo = scale * level / h;

			if (heap > lo && (level == 0 || heap >= lo + scale / h / 2))
				pp_canvas_fill(c, lw + i, y + r, 1, '#', VA_HEAP);
			else if (rss > lo && (level == 0 || rss >= lo + scale / h / 2))
				pp_canvas_fill(c, lw + i, y + r, 1, '.', VA_RSS);
		}
	}
	return h;
}

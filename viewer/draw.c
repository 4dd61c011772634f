// SPDX-License-Identifier: MIT
/*
 * The whole screen: header, graph, view tabs, the current view, the
 * replay bar and the footer of keys. Plus the small formatting helpers
 * the views share.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vw.h"

const char *pp_vw_bytes(double b, char *buf, size_t len)
{
	static const char unit[] = "BKMGT";
	double a = fabs(b);
	int u = 0;

	while (a >= 1024 && u < 4) {
		a /= 1024;
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0fB", b);
	else
		snprintf(buf, len, a < 100 ? "%.1f%c" : "%.0f%c", b, unit[u]);
	return buf;
}

const char *pp_vw_count(double n, char *buf, size_t len)
{
	if (fabs(n) < 10000)
		snprintf(buf, len, "%.0f", n);
	else if (fabs(n) < 1e6)
		snprintf(buf, len, "%.1fk", n / 1e3);
	else if (fabs(n) < 1e9)
		snprintf(buf, len, "%.1fM", n / 1e6);
	else
		snprintf(buf, len, "%.1fG", n / 1e9);
	return buf;
}

const char *pp_vw_site_label(const struct pp_vw *v, uint32_t site, char *buf,
			     size_t len, int n)
{
	const struct pp_site *s = &v->m->sites[site];
	const struct pp_func *f = pp_model_func(v->m, s->func);
	const char *file, *base;
	size_t cl = v->cwd ? strlen(v->cwd) : 0;

	if (!f) {
		snprintf(buf, len, "<native>");
		return buf;
	}
	file = f->file;
	if (cl && !strncmp(file, v->cwd, cl) && file[cl] == '/')
		file += cl + 1;
	snprintf(buf, len, "%s:%u %s", file, s->line, f->name);
	if ((int)strlen(buf) > n && (base = strrchr(file, '/')))
		snprintf(buf, len, "%s:%u %s", base + 1, s->line, f->name);
	return buf;
}

void pp_draw_meter(struct pp_canvas *c, int x, int y, int w, double frac)
{
	int fill;

	if (w < 3)
		return;
	if (!(frac > 0))
		frac = 0;
	if (frac > 1)
		frac = 1;
	fill = (int)lround(frac * (w - 2));
	pp_canvas_put(c, x, y, VA_DIM, "[");
	pp_canvas_fill(c, x + 1, y, fill, '|', VA_BAR);
	pp_canvas_put(c, x + w - 1, y, VA_DIM, "]");
}

static const char *tab_names[VIEW_N] = {
	[VIEW_SITES] = "Sites", [VIEW_LEAKS] = "Leaks", [VIEW_GC] = "GC",
	[VIEW_THREADS] = "Threads&Locks",
};

static void draw_tabs(struct pp_vw *v, struct pp_canvas *c, int y)
{
	char buf[96];
	int i, x = 0;

	for (i = 0; i < VIEW_N; i++) {
		int on = i == (int)v->view;

		if (i == VIEW_LEAKS)
			snprintf(buf, sizeof(buf), " %d %s(%zu) ", i + 1,
				 tab_names[i], v->snap.nleaks);
		else
			snprintf(buf, sizeof(buf), " %d %s ", i + 1,
				 tab_names[i]);
		x = pp_canvas_put(c, x, y, on ? VA_TAB_ON : VA_TAB, buf);
	}
	x += 1;
	if (v->view == VIEW_SITES || v->view == VIEW_LEAKS) {
		snprintf(buf, sizeof(buf), "sort %s%s",
			 pp_vw_sort_name(v->sort[v->view]),
			 v->reverse[v->view] ? " (rev)" : "");
		x = pp_canvas_put(c, x, y, VA_DIM, buf) + 1;
		if (v->filter[0]) {
			snprintf(buf, sizeof(buf), "filter \"%s\"", v->filter);
			x = pp_canvas_put(c, x, y, VA_WARN, buf) + 1;
		}
	}
	if (v->paused && !v->replay)
		x = pp_canvas_put(c, x, y, VA_WARN, "PAUSED") + 1;
	if (v->status[0])
		pp_canvas_put(c, x, y, VA_WARN, v->status);
}

static void draw_replay(struct pp_vw *v, struct pp_canvas *c, int y)
{
	char buf[96];
	int x, w;

	snprintf(buf, sizeof(buf), "%s %6.1fs / %.1fs  %gx ",
		 v->r_busy ? "SEEKING" : v->r_playing ? "PLAYING" : "STOPPED",
		 v->r_pos, v->r_end, v->r_speed);
	x = pp_canvas_put(c, 0, y, v->r_playing ? VA_TAB_ON : VA_WARN, buf);
	w = c->w - x - 1;
	if (w > 10)
		pp_draw_meter(c, x + 1, y, w, v->r_end > 0 ?
			      v->r_pos / v->r_end : 0);
}

struct key_help {
	const char *key, *what;
};

static void draw_keys(struct pp_canvas *c, int y, const struct key_help *k)
{
	int x = 0;

	for (; k->key; k++) {
		x = pp_canvas_put(c, x, y, VA_KEY, k->key);
		x = pp_canvas_put(c, x + 1, y, VA_NORMAL, k->what) + 1;
	}
}

static void draw_footer(struct pp_vw *v, struct pp_canvas *c, int y)
{
	static const struct key_help live[] = {
		{ "h", "Help " }, { "Tab", "View " }, { "s", "Sort " },
		{ "/", "Filter " }, { "Enter", "Stack " },
		{ "Space", "Pause " }, { "q", "Quit " }, { 0 } };
	static const struct key_help replay[] = {
		{ "h", "Help " }, { "Tab", "View " }, { "s", "Sort " },
		{ "/", "Filter " }, { "Enter", "Stack " },
		{ "Space", "Play " }, { "<-/->", "Seek " }, { "-/+", "Speed " },
		{ "q", "Quit " }, { 0 } };

	if (v->filtering) {
		int x = pp_canvas_put(c, 0, y, VA_KEY, "Filter:");

		x = pp_canvas_put(c, x + 1, y, VA_VALUE, v->filter);
		pp_canvas_put(c, x, y, VA_SELECT, " ");
		pp_canvas_put(c, x + 2, y, VA_DIM,
			      "(file or function text; Enter keeps, Esc clears)");
		return;
	}
	draw_keys(c, y, v->replay ? replay : live);
}

void pp_draw_screen(struct pp_vw *v, struct pp_canvas *c)
{
	int y = 0, bottom = c->h - 1, gh;

	pp_canvas_clear(c);
	y += pp_draw_header(v, c, y);
	gh = c->h >= 34 ? 6 : c->h >= 24 ? 4 : c->h >= 16 ? 2 : 0;
	y += pp_draw_graph(v, c, y, gh);
	draw_tabs(v, c, y++);
	draw_footer(v, c, bottom);
	if (v->replay)
		draw_replay(v, c, --bottom);
	if (v->help) {
		pp_draw_help(v, c, y, bottom - y);
		return;
	}
	switch (v->view) {
	case VIEW_SITES:
	case VIEW_LEAKS:
		if (v->detail)
			pp_draw_stack(v, c, y, bottom - y);
		else
			pp_draw_table(v, c, y, bottom - y);
		break;
	case VIEW_GC:
		pp_draw_gc(v, c, y, bottom - y);
		break;
	case VIEW_THREADS:
		pp_draw_threads(v, c, y, bottom - y);
		break;
	default:
		break;
	}
}

int pp_draw_help(struct pp_vw *v, struct pp_canvas *c, int y, int h)
{
	static const struct key_help keys[] = {
		{ "1 2 3 4, Tab", "views: Sites, Leaks, GC, Threads & locks" },
		{ "Up Down PgUp PgDn", "move the selection" },
		{ "Home End (g G)", "first / last row" },
		{ "Enter", "the selected site's whole stack (Esc closes)" },
		{ "s S, F6", "next / previous sort column" },
		{ "I, r", "reverse the sort order" },
		{ "/, F4", "filter by file or function text (Esc clears)" },
		{ "Space, p", "pause the screen (live) / play, stop (replay)" },
		{ "Left Right", "replay: seek 1 s back / forward" },
		{ "[ ]", "replay: seek 10 s back / forward" },
		{ "{ }", "replay: to the start / the end" },
		{ "- +", "replay: half / double speed" },
		{ "P", "--children: next process (all merged, then each)" },
		{ "Ctrl-L", "draw the screen again" },
		{ "q, F10", "quit (a wrapped command keeps running;" },
		{ "", "pyprof waits for it, ^C interrupts it)" },
		{ 0 } };
	static const char *legend[] = {
		"Sites: LIVE bytes and COUNT of blocks alive, GROWTH/s of live",
		"bytes and ALLOC/s over the last seconds, LEAK: judged leaking.",
		"Leaks: sites whose lowest live bytes rise through the run, by",
		"GROWTH/s; KEPT = share of what they allocated that stayed.",
		NULL };
	int i, r = 0;

	pp_canvas_put(c, 0, y + r++, VA_TITLE, " Help: any key returns");
	pp_canvas_paint(c, y, VA_TITLE);
	for (i = 0; keys[i].key && r < h; i++, r++) {
		pp_canvas_put(c, 1, y + r, VA_KEY, keys[i].key);
		pp_canvas_put(c, 20, y + r, VA_NORMAL, keys[i].what);
	}
	for (i = 0, r++; legend[i] && r < h; i++, r++)
		pp_canvas_put(c, 1, y + r, VA_DIM, legend[i]);
	return r;
}

void pp_draw_frame(struct pp_vw *v, struct pp_canvas *c)
{
	int w, h;

	pp_term_size(&w, &h);
	if (pp_canvas_size(c, w, h) < 0)
		return;
	pp_draw_screen(v, c);
	pp_term_show(c);
}

// SPDX-License-Identifier: MIT
/*
 * Batch frames: the same rendering as the screen, as plain text for
 * pipes and logs. A frame is the header, the heap graph and every view
 * in turn (the tables cut to their first rows), within 80 columns
 * unless PYPROF_COLUMNS says otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include "vw.h"

#define BATCH_ROWS 10

static int columns(void)
{
	const char *s = getenv("PYPROF_COLUMNS");
	int n = s ? atoi(s) : 0;

	return n >= 40 && n <= 1000 ? n : 80;
}

static void emit(const struct pp_canvas *c, int rows)
{
	char u[8];
	int y, x, end, n;

	for (y = 0; y < rows && y < c->h; y++) {
		const uint32_t *ch = c->ch + (size_t)y * c->w;

		for (end = c->w; end > 0 && ch[end - 1] == ' '; end--)
			;
		for (x = 0; x < end; x++) {
			n = pp_canvas_cell_utf8(ch[x], u, 0);
			fwrite(u, 1, n, stdout);
		}
		putchar('\n');
	}
}

static void section(struct pp_vw *v, struct pp_canvas *c, enum pp_vw_view view)
{
	int rows = 0;

	pp_canvas_clear(c);
	v->view = view;
	v->sel = v->top = 0;
	switch (view) {
	case VIEW_SITES:
	case VIEW_LEAKS:
		pp_vw_select(v);
		pp_canvas_printf(c, 0, 0, VA_NORMAL, "%s (%zu)",
				 view == VIEW_SITES ? "Sites" : "Leaks",
				 v->snap.nrows);
		rows = 1 + pp_draw_table(v, c, 1, BATCH_ROWS + 1);
		break;
	case VIEW_GC:
		pp_canvas_put(c, 0, 0, VA_NORMAL, "GC");
		rows = 1 + pp_draw_gc(v, c, 1, 12);
		break;
	case VIEW_THREADS:
		pp_canvas_put(c, 0, 0, VA_NORMAL, "Threads & locks");
		rows = 1 + pp_draw_threads(v, c, 1, 20);
		break;
	default:
		break;
	}
	emit(c, rows);
}

void pp_batch_frame(struct pp_vw *v, int n, int of)
{
	struct pp_canvas c = { 0 };
	enum pp_vw_view keep = v->view;
	int w = columns(), rows, i;
	char head[64];

	if (pp_canvas_size(&c, w, 40) < 0)
		return;
	v->batch = 1;
	v->table_h = BATCH_ROWS;
	if (of)
		snprintf(head, sizeof(head), "=== pyprof frame %d/%d ", n, of);
	else
		snprintf(head, sizeof(head), "=== pyprof frame %d ", n);
	pp_canvas_put(&c, 0, 0, VA_NORMAL, head);
	for (i = 0; head[i]; i++)
		;
	pp_canvas_fill(&c, i, 0, w - i, '=', VA_NORMAL);
	rows = 1 + pp_draw_header(v, &c, 1);
	rows += pp_draw_graph(v, &c, rows, 4);
	emit(&c, rows);
	for (i = 0; i < VIEW_N; i++) {
		putchar('\n');
		section(v, &c, i);
	}
	putchar('\n');
	fflush(stdout);
	v->view = keep;
	pp_canvas_free(&c);
}

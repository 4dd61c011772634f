/* SPDX-License-Identifier: MIT */
/*
 * Viewer internals shared by its files. The layering, top to bottom:
 *   live.c / replay.c   drive a model and the loop
 *   input.c             keys -> actions -> flags
 *   snap.c, rates.c     a snapshot of the model (values copied, rows picked)
 *   draw_*.c            a snapshot -> a canvas of cells (no curses)
 *   term.c / batch.c    a canvas -> the terminal / text lines
 * Only term.c knows curses.
 */
#ifndef PP_VW_H
#define PP_VW_H

#include <stddef.h>
#include <stdint.h>

#include "../collector/model.h"

/* ---- canvas: cells with a logical attribute -------------------------- */

enum pp_vw_attr {
	VA_NORMAL,
	VA_LABEL,	/* header field names */
	VA_VALUE,	/* header figures */
	VA_TITLE,	/* table column titles */
	VA_SELECT,	/* the selected row */
	VA_LEAK,	/* leak marks, leaking rows' figures */
	VA_HEAP,	/* graph: live heap */
	VA_RSS,		/* graph: RSS above the heap */
	VA_TAB,		/* inactive view tab */
	VA_TAB_ON,	/* active view tab */
	VA_KEY,		/* footer key */
	VA_DIM,		/* secondary text */
	VA_WARN,	/* drops, "no data", errors */
	VA_BAR,		/* meter fill */
	VA_NATTR
};

/* a cell holds a code point; the right half of a double-width one
 * (CJK) holds PP_CELL_CONT */
#define PP_CELL_CONT 0xffffffffu

struct pp_canvas {
	int w, h;
	uint32_t *ch;
	uint8_t *at;
};

int pp_canvas_size(struct pp_canvas *c, int w, int h);
void pp_canvas_free(struct pp_canvas *c);
void pp_canvas_clear(struct pp_canvas *c);
/* UTF-8 text at (x, y), clipped; returns the x after it. A character
 * takes the columns a terminal gives it (wcwidth: 2 for CJK, 0 for a
 * combining mark, which is left out); an invalid sequence is U+FFFD,
 * a control character '?'. */
int pp_canvas_put(struct pp_canvas *c, int x, int y, int attr, const char *s);
/* the same in exactly w columns: padded, or cut with a '~' at the end */
int pp_canvas_put_w(struct pp_canvas *c, int x, int y, int attr,
		    const char *s, int w);
/* a cell's characters as UTF-8 into out (at least 5 bytes): their
 * length, 0 for the right half of a double-width character; ascii:
 * '?' for anything past ASCII ('??' for a double-width one) */
int pp_canvas_cell_utf8(uint32_t cp, char *out, int ascii);
int pp_canvas_printf(struct pp_canvas *c, int x, int y, int attr,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* n cells of ch from x */
void pp_canvas_fill(struct pp_canvas *c, int x, int y, int n, char ch, int attr);
/* the attribute of a whole row, text untouched */
void pp_canvas_paint(struct pp_canvas *c, int y, int attr);

/* ---- recent rates, sampled in model time ------------------------------ */

struct pp_rates {
	double t;			/* model seconds of the last sample */
	size_t n;			/* sites covered */
	double *live, *alloc;		/* per site at the last sample */
	double *live_rate, *alloc_rate;	/* per site, bytes/s, smoothed */
	double g_alloc, g_allocn;	/* whole heap at the last sample */
	double alloc_rate_g, allocn_rate_g;
};

void pp_rates_reset(struct pp_rates *r);
void pp_rates_free(struct pp_rates *r);
/* take a sample if enough model time passed since the last one */
void pp_rates_sample(struct pp_rates *r, const struct pp_model *m);

/* ---- snapshot ----------------------------------------------------------- */

enum pp_vw_view { VIEW_SITES, VIEW_LEAKS, VIEW_GC, VIEW_THREADS, VIEW_N };

enum pp_vw_sort { SORT_LIVE, SORT_GROWTH, SORT_COUNT, SORT_RATE, SORT_ALLOC,
		  SORT_SITE, SORT_N };

struct pp_vw_row {
	uint32_t site;
	uint8_t leak;
	double live, count, growth, rate, alloc;
	double judged_growth, retention;
};

struct pp_vw_snap {
	/* header */
	double t;			/* seconds since the start */
	double live, rss, peak, heap_per_min;	/* heap_per_min NAN: unknown */
	double alloc_rate, allocn_rate;
	uint64_t events, dropped;
	int exited, exit_status, killed_by;
	/* every site with allocations, values copied */
	struct pp_vw_row *all;
	size_t nall, cap_all;
	size_t nleaks;
	size_t nimported;		/* grew by importing: not leaks */
	/* the shown table: indexes into all, first nsorted in order */
	uint32_t *rows;
	size_t nrows, cap_rows, nsorted;
};

void pp_snap_free(struct pp_vw_snap *s);

/* ---- the viewer's state ------------------------------------------------- */

#define PP_VW_FILTER_MAX 64

struct pp_vw {
	struct pp_model *m;		/* shown: base, or one process's */
	struct pp_model *base;		/* with --children, all merged */
	long proc;			/* -1: base; else base->procs' index */
	struct pp_vw_snap snap;
	struct pp_rates rates;
	int batch, color;

	enum pp_vw_view view;
	enum pp_vw_sort sort[VIEW_N];	/* per table view */
	int reverse[VIEW_N];
	char filter[PP_VW_FILTER_MAX];
	int filtering;			/* the filter prompt is open */
	long sel, top;			/* table selection and first shown row */
	int table_h;			/* rows the last draw could show */
	int paused;
	int help;
	int detail;			/* the stack of the selected site is open */
	uint32_t detail_site;
	const char *cwd;		/* to shorten paths */
	char status[96];		/* e.g. "exited 0 - press q" */

	/* replay */
	int replay;
	double r_pos, r_end, r_speed;
	int r_playing, r_busy;
};

/* snap.c */
void pp_vw_take(struct pp_vw *v);	/* header + all rows from the model */
void pp_vw_select(struct pp_vw *v);	/* filter + sort + pick the shown rows */
/* make sure rows [0, upto) are in order */
void pp_vw_order(struct pp_vw *v, size_t upto);
const char *pp_vw_sort_name(enum pp_vw_sort s);

/* draw.c and draw_*.c: render into the canvas. Return rows used. */
void pp_draw_screen(struct pp_vw *v, struct pp_canvas *c);
/* the canvas sized to the terminal, the screen drawn and shown */
void pp_draw_frame(struct pp_vw *v, struct pp_canvas *c);
int pp_draw_header(struct pp_vw *v, struct pp_canvas *c, int y);
int pp_draw_graph(struct pp_vw *v, struct pp_canvas *c, int y, int h);
int pp_draw_table(struct pp_vw *v, struct pp_canvas *c, int y, int h);
int pp_draw_stack(struct pp_vw *v, struct pp_canvas *c, int y, int h);
int pp_draw_gc(struct pp_vw *v, struct pp_canvas *c, int y, int h);
int pp_draw_threads(struct pp_vw *v, struct pp_canvas *c, int y, int h);
int pp_draw_help(struct pp_vw *v, struct pp_canvas *c, int y, int h);
/* "file:line function", shortened to fit n columns */
const char *pp_vw_site_label(const struct pp_vw *v, uint32_t site, char *buf,
			     size_t len, int n);
/* a meter of w cells: frac of it filled */
void pp_draw_meter(struct pp_canvas *c, int x, int y, int w, double frac);
/* the short forms used in tables */
const char *pp_vw_bytes(double b, char *buf, size_t len);
const char *pp_vw_count(double n, char *buf, size_t len);

/* input.c */
enum {
	ACT_REDRAW = 1 << 0,	/* draw again (same snapshot) */
	ACT_SELECT = 1 << 1,	/* the shown rows changed: select again */
	ACT_QUIT = 1 << 2,
	ACT_SEEK = 1 << 3,	/* replay: r_pos changed */
	ACT_RESIZE = 1 << 4,
	ACT_REFRESH = 1 << 5,	/* take a new snapshot now */
};
/* key codes beyond bytes (term.c maps curses' to these) */
enum {
	KEY_V_UP = 0x1000, KEY_V_DOWN, KEY_V_LEFT, KEY_V_RIGHT, KEY_V_PGUP,
	KEY_V_PGDN, KEY_V_HOME, KEY_V_END, KEY_V_ENTER, KEY_V_BACKSPACE,
	KEY_V_BTAB, KEY_V_RESIZE, KEY_V_F1, KEY_V_F3, KEY_V_F4, KEY_V_F5,
	KEY_V_F6, KEY_V_F10, KEY_V_ESC,
};
int pp_vw_key(struct pp_vw *v, int key);

/* term.c: the terminal's one owner */
int pp_term_open(int out_fd, int color_ok);
int pp_term_is_open(void);
void pp_term_close(void);
int pp_term_color(void);
void pp_term_size(int *w, int *h);
/* next key, waiting at most ms (0: poll); -1 none */
int pp_term_key(int ms);
void pp_term_show(const struct pp_canvas *c);
void pp_term_full_redraw(void);
/* set by SIGINT/SIGTERM/SIGHUP while the screen is up */
int pp_term_signalled(void);

/* batch.c */
void pp_batch_frame(struct pp_vw *v, int n, int of);

/* common */
double pp_vw_now(void);		/* CLOCK_MONOTONIC seconds */
void pp_vw_init(struct pp_vw *v, struct pp_model *m);
void pp_vw_fini(struct pp_vw *v);
/* P: the next process of a --children session (all merged, then each);
 * ACT_* flags, 0 when there is one process only */
int pp_vw_next_proc(struct pp_vw *v);

#endif

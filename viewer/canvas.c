// SPDX-License-Identifier: MIT
/*
 * A canvas: a grid of cells, a character and a logical attribute each.
 * Drawing code writes here; the terminal or batch output reads it, so
 * the same rendering serves curses and text frames. Names and paths are
 * UTF-8 (Python identifiers and file names need not be ASCII): a
 * character takes the columns a terminal gives it, so columns stay
 * under each other.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../collector/alloc.h"
#include "../collector/utf8.h"
#include "vw.h"

int pp_canvas_size(struct pp_canvas *c, int w, int h)
{
	uint32_t *ch;
	uint8_t *at;

	if (w < 1)
		w = 1;
	if (h < 1)
		h = 1;
	if (w == c->w && h == c->h)
		return 0;
	ch = pp_xmalloc((size_t)w * h * sizeof(*ch));
	at = pp_xmalloc((size_t)w * h);
	free(c->ch);
	free(c->at);
	c->ch = ch;
	c->at = at;
	c->w = w;
	c->h = h;
	pp_canvas_clear(c);
	return 0;
}

void pp_canvas_free(struct pp_canvas *c)
{
	free(c->ch);
	free(c->at);
	memset(c, 0, sizeof(*c));
}

void pp_canvas_clear(struct pp_canvas *c)
{
	size_t i;

	for (i = 0; i < (size_t)c->w * c->h; i++)
		c->ch[i] = ' ';
	memset(c->at, VA_NORMAL, (size_t)c->w * c->h);
}

/* cell o is written: a double-width character it cut in half goes */
static void unsplit(struct pp_canvas *c, int x, int y)
{
	size_t o = (size_t)y * c->w + x;

	if (c->ch[o] == PP_CELL_CONT && x > 0)
		c->ch[o - 1] = ' ';
	else if (x + 1 < c->w && c->ch[o + 1] == PP_CELL_CONT)
		c->ch[o + 1] = ' ';
}

static void set_cell(struct pp_canvas *c, int x, int y, uint32_t cp,
		     int attr)
{
	size_t o = (size_t)y * c->w + x;

	unsplit(c, x, y);
	c->ch[o] = cp;
	c->at[o] = attr;
}

int pp_canvas_cell_utf8(uint32_t cp, char *out, int ascii)
{
	if (cp == PP_CELL_CONT)
		return 0;
	if (cp < 0x80 || ascii) {
		out[0] = cp < 0x80 ? cp : '?';
		if (cp >= 0x80 && pp_cp_cols(cp) == 2) {
			out[1] = '?';
			return 2;
		}
		return 1;
	}
	if (cp < 0x800) {
		out[0] = 0xc0 | cp >> 6;
		out[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = 0xe0 | cp >> 12;
		out[1] = 0x80 | (cp >> 6 & 0x3f);
		out[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	out[0] = 0xf0 | cp >> 18;
	out[1] = 0x80 | (cp >> 12 & 0x3f);
	out[2] = 0x80 | (cp >> 6 & 0x3f);
	out[3] = 0x80 | (cp & 0x3f);
	return 4;
}

/* s from x in at most lim columns (lim < 0: to the edge); the x after */
static int put(struct pp_canvas *c, int x, int y, int attr, const char *s,
	       int lim)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	int len, w, end = lim < 0 ? c->w : x + lim;
	uint32_t cp;

	if (y < 0 || y >= c->h)
		return x;
	if (end > c->w)
		end = c->w;
	for (; n; p += len, n -= len) {
		cp = pp_utf8_next(p, n, &len);
		w = pp_cp_cols(cp);
		if (w == 0)
			continue;	/* a combining mark */
		if (w < 0) {
			cp = '?';
			w = 1;
		}
		if (x + w > end)
			break;
		if (x >= 0) {
			set_cell(c, x, y, cp, attr);
			if (w == 2)
				set_cell(c, x + 1, y, PP_CELL_CONT, attr);
		}
		x += w;
	}
	return x;
}

int pp_canvas_put(struct pp_canvas *c, int x, int y, int attr, const char *s)
{
	return put(c, x, y, attr, s, -1);
}

int pp_canvas_put_w(struct pp_canvas *c, int x, int y, int attr,
		    const char *s, int w)
{
	int e;

	if (w <= 0)
		return x;
	if (pp_utf8_cols(s) <= w) {
		e = put(c, x, y, attr, s, w);
	} else {
		e = put(c, x, y, attr, s, w - 1);
		e = put(c, e, y, attr, "~", 1);
	}
	pp_canvas_fill(c, e, y, x + w - e, ' ', attr);
	return x + w;
}

int pp_canvas_printf(struct pp_canvas *c, int x, int y, int attr,
		     const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return pp_canvas_put(c, x, y, attr, buf);
}

void pp_canvas_fill(struct pp_canvas *c, int x, int y, int n, char ch, int attr)
{
	if (y < 0 || y >= c->h)
		return;
	for (; n > 0; n--, x++) {
		if (x < 0)
			continue;
		if (x >= c->w)
			break;
		set_cell(c, x, y, (unsigned char)ch, attr);
	}
}

void pp_canvas_paint(struct pp_canvas *c, int y, int attr)
{
	if (y >= 0 && y < c->h)
		memset(c->at + (size_t)y * c->w, attr, c->w);
}

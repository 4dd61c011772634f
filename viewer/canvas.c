// SPDX-License-Identifier: MIT
/*
 * A canvas: a grid of one-byte cells, each with a logical attribute.
 * Drawing code writes here; the terminal or batch output reads it, so
 * the same rendering serves curses and text frames. Bytes outside
 * printable ASCII become '?' to keep every cell one column wide.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../collector/alloc.h"
#include "vw.h"

int pp_canvas_size(struct pp_canvas *c, int w, int h)
{
	char *ch;
	uint8_t *at;

	if (w < 1)
		w = 1;
	if (h < 1)
		h = 1;
	if (w == c->w && h == c->h)
		return 0;
	ch = pp_xmalloc((size_t)w * h);
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
	memset(c->ch, ' ', (size_t)c->w * c->h);
	memset(c->at, VA_NORMAL, (size_t)c->w * c->h);
}

int pp_canvas_put(struct pp_canvas *c, int x, int y, int attr, const char *s)
{
	size_t o;

	if (y < 0 || y >= c->h)
		return x;
	for (; *s; s++, x++) {
		unsigned char b = *s;

		if (x < 0)
			continue;
		if (x >= c->w)
			break;
		o = (size_t)y * c->w + x;
		c->ch[o] = b >= 0x20 && b < 0x7f ? b : '?';
		c->at[o] = attr;
	}
	return x;
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
		c->ch[(size_t)y * c->w + x] = ch;
		c->at[(size_t)y * c->w + x] = attr;
	}
}

void pp_canvas_paint(struct pp_canvas *c, int y, int attr)
{
	if (y >= 0 && y < c->h)
		memset(c->at + (size_t)y * c->w, attr, c->w);
}

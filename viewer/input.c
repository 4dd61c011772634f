// SPDX-License-Identifier: MIT
/*
 * Keys to actions. Each key changes the viewer's state and says what
 * has to follow (ACT_* flags): draw, select rows again, seek, quit.
 * Nothing here draws or touches the model.
 */
#include <ctype.h>
#include <string.h>

#include "vw.h"

#define CTRL(c) ((c) & 0x1f)

static int move(struct pp_vw *v, long to)
{
	long n = v->snap.nrows;

	if (to >= n)
		to = n - 1;
	if (to < 0)
		to = 0;
	v->sel = to;
	return ACT_REDRAW;
}

static int set_view(struct pp_vw *v, int view)
{
	if (view < 0)
		view = VIEW_N - 1;
	v->view = view % VIEW_N;
	v->sel = v->top = 0;
	v->detail = 0;
	return ACT_SELECT | ACT_REDRAW;
}

static int next_sort(struct pp_vw *v, int dir)
{
	enum pp_vw_sort s = v->sort[v->view];

	do {
		s = (s + SORT_N + dir) % SORT_N;
	} while (s == SORT_ALLOC && v->view == VIEW_LEAKS);
	v->sort[v->view] = s;
	v->sel = v->top = 0;
	return ACT_SELECT | ACT_REDRAW;
}

static int filter_key(struct pp_vw *v, int key)
{
	size_t n = strlen(v->filter);

	switch (key) {
	case KEY_V_ENTER:
		v->filtering = 0;
		return ACT_REDRAW;
	case KEY_V_ESC:
		v->filtering = 0;
		v->filter[0] = 0;
		break;
	case KEY_V_BACKSPACE:
		/* a whole character: its UTF-8 continuation bytes too */
		while (n && (v->filter[n - 1] & 0xc0) == 0x80)
			n--;
		if (n)
			v->filter[n - 1] = 0;
		else
			v->filter[0] = 0;
		break;
	case CTRL('u'):
		v->filter[0] = 0;
		break;
	default:
		/* bytes past ASCII: a UTF-8 terminal's characters, byte
		 * by byte (names need not be ASCII) */
		if (key < 0x20 || key == 0x7f || key > 0xff ||
		    n + 1 >= sizeof(v->filter))
			return 0;
		v->filter[n] = key;
		v->filter[n + 1] = 0;
		break;
	}
	/* the table follows the text as it is typed */
	v->sel = v->top = 0;
	return ACT_SELECT | ACT_REDRAW;
}

static int seek(struct pp_vw *v, double to)
{
	if (!v->replay)
		return 0;
	if (to < 0)
		to = 0;
	if (to > v->r_end)
		to = v->r_end;
	v->r_pos = to;
	return ACT_SEEK | ACT_REDRAW;
}

static int speed(struct pp_vw *v, double f)
{
	double s = v->r_speed * f;

	if (!v->replay)
		return 0;
	if (s >= 1.0 / 16 && s <= 256)
		v->r_speed = s;
	return ACT_REDRAW;
}

static int table_view(const struct pp_vw *v)
{
	return v->view == VIEW_SITES || v->view == VIEW_LEAKS;
}

int pp_vw_key(struct pp_vw *v, int key)
{
	long page = v->table_h > 1 ? v->table_h - 1 : 1;

	if (key == KEY_V_RESIZE)
		return ACT_RESIZE | ACT_REDRAW;
	if (v->filtering)
		return filter_key(v, key);
	if (v->help) {
		v->help = 0;
		return key == 'q' || key == KEY_V_F10 ? ACT_QUIT : ACT_REDRAW;
	}
	switch (key) {
	case 'q':
	case 'Q':
	case KEY_V_F10:
		return ACT_QUIT;
	case 'h':
	case '?':
	case KEY_V_F1:
		v->help = 1;
		return ACT_REDRAW;
	case '\t':
		return set_view(v, v->view + 1);
	case KEY_V_BTAB:
		return set_view(v, (int)v->view - 1);
	case '1': case '2': case '3': case '4':
		return set_view(v, key - '1');
	case CTRL('l'):
		return ACT_RESIZE | ACT_REDRAW;
	case 'P':
		return pp_vw_next_proc(v);
	case ' ':
	case 'p':
		if (v->replay) {
			if (!v->r_playing && v->r_pos >= v->r_end)
				seek(v, 0);
			v->r_playing = !v->r_playing;
			return ACT_REDRAW | ACT_SEEK;
		}
		v->paused = !v->paused;
		return ACT_REFRESH | ACT_REDRAW;
	case KEY_V_LEFT:
		return seek(v, v->r_pos - 1);
	case KEY_V_RIGHT:
		return seek(v, v->r_pos + 1);
	case '[':
		return seek(v, v->r_pos - 10);
	case ']':
		return seek(v, v->r_pos + 10);
	case '{':
		return seek(v, 0);
	case '}':
		return seek(v, v->r_end);
	case '-':
		return speed(v, 0.5);
	case '+':
	case '=':
		return speed(v, 2);
	}
	if (!table_view(v))
		return 0;
	if (v->detail) {
		if (key == KEY_V_ESC || key == KEY_V_ENTER ||
		    key == KEY_V_BACKSPACE) {
			v->detail = 0;
			return ACT_REDRAW;
		}
		return 0;
	}
	switch (key) {
	case KEY_V_UP:
	case 'k':
		return move(v, v->sel - 1);
	case KEY_V_DOWN:
	case 'j':
		return move(v, v->sel + 1);
	case KEY_V_PGUP:
		return move(v, v->sel - page);
	case KEY_V_PGDN:
		return move(v, v->sel + page);
	case KEY_V_HOME:
	case 'g':
		return move(v, 0);
	case KEY_V_END:
	case 'G':
		pp_vw_order(v, v->snap.nrows);
		return move(v, (long)v->snap.nrows - 1);
	case 's':
	case KEY_V_F6:
		return next_sort(v, 1);
	case 'S':
		return next_sort(v, -1);
	case 'I':
	case 'r':
		v->reverse[v->view] = !v->reverse[v->view];
		v->sel = v->top = 0;
		return ACT_SELECT | ACT_REDRAW;
	case '/':
	case KEY_V_F3:
	case KEY_V_F4:
		v->filtering = 1;
		return ACT_REDRAW;
	case KEY_V_ESC:
		if (!v->filter[0])
			return 0;
		v->filter[0] = 0;
		return ACT_SELECT | ACT_REDRAW;
	case KEY_V_ENTER:
		if (!v->snap.nrows)
			return 0;
		pp_vw_order(v, v->sel + 1);
		v->detail_site = v->snap.all[v->snap.rows[v->sel]].site;
		v->detail = 1;
		return ACT_REDRAW;
	}
	return 0;
}

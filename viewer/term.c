// SPDX-License-Identifier: MIT
/*
 * The terminal's one owner: curses set up and torn down here, colors
 * (or monochrome attributes under NO_COLOR or a terminal without
 * colors), keys mapped to the viewer's codes, canvases shown, and the
 * terminal restored however the process ends: on return, exit(), the
 * quit signals (which only set a flag here) and crashes (which restore
 * with async-signal-safe calls, then die of the same signal).
 */
#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <termios.h>
#include <unistd.h>

#include "vw.h"

static SCREEN *scr;
static FILE *tty_out;
static int tty_fd = -1, open_now, colored;
static int utf8_tty;		/* its locale's characters are UTF-8 */
static struct termios saved_tio;
static int have_tio;
static char reset_seq[256];
static size_t reset_len;
static chtype attr_of[VA_NATTR];
static volatile sig_atomic_t signalled;

static const int quit_sigs[] = { SIGINT, SIGTERM, SIGHUP };
static const int fatal_sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
static struct sigaction old_quit[3], old_fatal[5];

static void on_fatal(int sig)
{
	static const char msg[] = "pyprof: crashed; terminal restored\n";

	if (open_now && tty_fd >= 0) {
		ssize_t rc = write(tty_fd, reset_seq, reset_len);

		if (have_tio)
			tcsetattr(tty_fd, TCSANOW, &saved_tio);
		rc = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)rc;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_quit(int sig)
{
	size_t i;

	signalled = sig;
	/* whoever handled it before (the session forwards TERM/HUP to the
	 * command) still does */
	for (i = 0; i < 3; i++) {
		if (quit_sigs[i] != sig)
			continue;
		if (!(old_quit[i].sa_flags & SA_SIGINFO) &&
		    old_quit[i].sa_handler != SIG_IGN &&
		    old_quit[i].sa_handler != SIG_DFL)
			old_quit[i].sa_handler(sig);
	}
}

int pp_term_signalled(void)
{
	return signalled;
}

/* what restores the terminal without curses (for the crash handler) */
static void add_cap(const char *name)
{
	char *s = tigetstr((char *)name);
	size_t n;

	if (!s || s == (char *)-1)
		return;
	n = strlen(s);
	if (reset_len + n < sizeof(reset_seq)) {
		memcpy(reset_seq + reset_len, s, n);
		reset_len += n;
	}
}

static void set_attrs(int color)
{
	static const struct { short fg, bg; } pairs[] = {
		[1] = { COLOR_CYAN, -1 },	/* label */
		[2] = { COLOR_BLACK, COLOR_GREEN },	/* title */
		[3] = { COLOR_BLACK, COLOR_CYAN },	/* select, key, tab */
		[4] = { COLOR_RED, -1 },	/* leak */
		[5] = { COLOR_GREEN, -1 },	/* heap, bars */
		[6] = { COLOR_BLUE, -1 },	/* rss */
		[7] = { COLOR_YELLOW, -1 },	/* warn */
		[8] = { COLOR_BLACK, COLOR_WHITE },	/* title, sorted */
	};
	short i;

	if (color) {
		start_color();
		use_default_colors();
		for (i = 1; i < (short)(sizeof(pairs) / sizeof(pairs[0])); i++)
			init_pair(i, pairs[i].fg, pairs[i].bg);
		attr_of[VA_NORMAL] = A_NORMAL;
		attr_of[VA_LABEL] = COLOR_PAIR(1);
		attr_of[VA_VALUE] = A_BOLD;
		attr_of[VA_TITLE] = COLOR_PAIR(2);
		attr_of[VA_SELECT] = COLOR_PAIR(3);
		attr_of[VA_LEAK] = COLOR_PAIR(4) | A_BOLD;
		attr_of[VA_HEAP] = COLOR_PAIR(5);
		attr_of[VA_RSS] = COLOR_PAIR(6) | A_BOLD;
		attr_of[VA_TAB] = A_NORMAL;
		attr_of[VA_TAB_ON] = COLOR_PAIR(3) | A_BOLD;
		attr_of[VA_KEY] = COLOR_PAIR(3);
		attr_of[VA_DIM] = A_DIM;
		attr_of[VA_WARN] = COLOR_PAIR(7) | A_BOLD;
		attr_of[VA_BAR] = COLOR_PAIR(5) | A_BOLD;
		return;
	}
	/* monochrome: every distinction still visible */
	attr_of[VA_NORMAL] = A_NORMAL;
	attr_of[VA_LABEL] = A_NORMAL;
	attr_of[VA_VALUE] = A_BOLD;
	attr_of[VA_TITLE] = A_REVERSE;
	attr_of[VA_SELECT] = A_REVERSE | A_BOLD;
	attr_of[VA_LEAK] = A_BOLD;
	attr_of[VA_HEAP] = A_BOLD;
	attr_of[VA_RSS] = A_NORMAL;
	attr_of[VA_TAB] = A_NORMAL;
	attr_of[VA_TAB_ON] = A_REVERSE | A_BOLD | A_UNDERLINE;
	attr_of[VA_KEY] = A_REVERSE;
	attr_of[VA_DIM] = A_NORMAL;
	attr_of[VA_WARN] = A_BOLD | A_UNDERLINE;
	attr_of[VA_BAR] = A_BOLD;
}

int pp_term_open(int out_fd, int color_ok)
{
	struct sigaction sa = { 0 };
	const char *nc = getenv("NO_COLOR");
	size_t i;
	int fd;

	if (open_now)
		return 0;
	setlocale(LC_CTYPE, "");
	/* a terminal that does not take UTF-8 gets '?' past ASCII */
	utf8_tty = !strcmp(nl_langinfo(CODESET), "UTF-8");
	fd = dup(out_fd);
	if (fd < 0 || !(tty_out = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	tty_fd = fd;
	have_tio = tcgetattr(fd, &saved_tio) == 0;
	/* the owners before curses (which puts its own exit(1) handlers
	 * on signals left at their default) */
	for (i = 0; i < 3; i++)
		sigaction(quit_sigs[i], NULL, &old_quit[i]);
	for (i = 0; i < 5; i++)
		sigaction(fatal_sigs[i], NULL, &old_fatal[i]);
	scr = newterm(NULL, tty_out, stdin);
	if (!scr) {
		fclose(tty_out);
		tty_out = NULL;
		tty_fd = -1;
		return -1;
	}
	open_now = 1;
	atexit(pp_term_close);
	reset_len = 0;
	add_cap("sgr0");
	add_cap("cnorm");
	add_cap("rmkx");
	add_cap("rmcup");
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	colored = color_ok && has_colors() && !(nc && *nc);
	set_attrs(colored);

	sa.sa_handler = on_quit;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 3; i++)
		sigaction(quit_sigs[i], &sa, NULL);
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND;
	for (i = 0; i < 5; i++)
		sigaction(fatal_sigs[i], &sa, NULL);
	return 0;
}

int pp_term_is_open(void)
{
	return open_now;
}

int pp_term_color(void)
{
	return colored;
}

void pp_term_close(void)
{
	size_t i;

	if (!open_now)
		return;
	open_now = 0;
	curs_set(1);
	endwin();
	delscreen(scr);
	scr = NULL;
	fflush(tty_out);
	fclose(tty_out);
	tty_out = NULL;
	tty_fd = -1;
	/* the quit signals go back to their owners (the session's ^C
	 * stays ignored: it is the command's) */
	for (i = 0; i < 3; i++)
		sigaction(quit_sigs[i], &old_quit[i], NULL);
	for (i = 0; i < 5; i++)
		sigaction(fatal_sigs[i], &old_fatal[i], NULL);
}

void pp_term_size(int *w, int *h)
{
	getmaxyx(stdscr, *h, *w);
}

int pp_term_key(int ms)
{
	int ch;

	wtimeout(stdscr, ms);
	ch = wgetch(stdscr);
	switch (ch) {
	case ERR:
		return -1;
	case KEY_UP:
		return KEY_V_UP;
	case KEY_DOWN:
		return KEY_V_DOWN;
	case KEY_LEFT:
		return KEY_V_LEFT;
	case KEY_RIGHT:
		return KEY_V_RIGHT;
	case KEY_PPAGE:
		return KEY_V_PGUP;
	case KEY_NPAGE:
		return KEY_V_PGDN;
	case KEY_HOME:
		return KEY_V_HOME;
	case KEY_END:
		return KEY_V_END;
	case KEY_ENTER:
	case '\r':
	case '\n':
		return KEY_V_ENTER;
	case KEY_BACKSPACE:
	case 127:
	case 8:
		return KEY_V_BACKSPACE;
	case KEY_BTAB:
		return KEY_V_BTAB;
	case KEY_RESIZE:
		return KEY_V_RESIZE;
	case 27:
		return KEY_V_ESC;
	case KEY_F(1):
		return KEY_V_F1;
	case KEY_F(3):
		return KEY_V_F3;
	case KEY_F(4):
		return KEY_V_F4;
	case KEY_F(5):
		return KEY_V_F5;
	case KEY_F(6):
		return KEY_V_F6;
	case KEY_F(10):
		return KEY_V_F10;
	default:
		return ch < 0x100 ? ch : -1;
	}
}

void pp_term_show(const struct pp_canvas *c)
{
	char buf[4096];
	int y, x, run, h, w, n, i;

	getmaxyx(stdscr, h, w);
	for (y = 0; y < c->h && y < h; y++) {
		const uint32_t *ch = c->ch + (size_t)y * c->w;
		const uint8_t *at = c->at + (size_t)y * c->w;

		for (x = 0; x < c->w && x < w; x += run) {
			for (run = 1; x + run < c->w && x + run < w &&
			     at[x + run] == at[x]; run++)
				;
			/* the last cell of the screen scrolls it: leave it */
			if (y == h - 1 && x + run == w)
				run--;
			/* a wide character is shown whole or not at all */
			if (run > 0 && x + run < c->w &&
			    ch[x + run] == PP_CELL_CONT)
				run--;
			if (run <= 0)
				break;
			for (i = 0, n = 0; i < run && n + 8 < (int)sizeof(buf); i++)
				n += pp_canvas_cell_utf8(ch[x + i], buf + n,
							 !utf8_tty);
			attrset(attr_of[at[x] < VA_NATTR ? at[x] : 0]);
			mvaddnstr(y, x, buf, n);
		}
	}
	attrset(A_NORMAL);
	wnoutrefresh(stdscr);
	doupdate();
}

void pp_term_full_redraw(void)
{
	clearok(curscr, TRUE);
}

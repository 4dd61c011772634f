/* SPDX-License-Identifier: MIT */
/*
 * The viewer: a top-style screen over the model, live (wrapping a
 * command) or over a recorded trace, interactive (curses) or batch
 * (text frames on stdout). The CLI's only way in.
 */
#ifndef PP_VIEWER_H
#define PP_VIEWER_H

#include "../collector/session.h"

struct pp_view_opts {
	int batch;		/* -b: text frames, no curses */
	int frames;		/* -n: stop after this many frames, 0 = no limit */
	double delay;		/* -d: seconds between frames, 0 = default */
	/* live, no terminal and no -b: given the finished model (the CLI
	 * prints the text report) */
	void (*at_end)(const struct pp_model *m);
};

/*
 * Run the session with the viewer attached. Returns the exit status of
 * the command (as pp_session_run). Quitting the viewer ('q') stops the
 * display only: pyprof keeps the target running and waits for it.
 */
int pp_view_live(const struct pp_session_opts *so, const struct pp_view_opts *vo);

/* The viewer over a trace file, moving through it in time. 0, or 1 */
int pp_view_replay(const char *path, const struct pp_view_opts *vo);

#endif

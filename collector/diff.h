/* SPDX-License-Identifier: MIT */
/*
 * pyprof diff: two traces, or two windows of traces (window.h), side A
 * and side B; sites matched by (file, function, line), stacks by their
 * folded text, ranked by the change in live bytes from A to B.
 */
#ifndef PP_DIFF_H
#define PP_DIFF_H

#include <stdio.h>

#include "model.h"
#include "window.h"

struct pp_diff_side {
	const char *name;	/* as given: FILE or FILE:FROM-TO */
	const char *path;
	const struct pp_model *m;	/* pp_win_apply'ed with w */
	const struct pp_win *w;
};

enum pp_diff_format { PP_DIFF_TEXT, PP_DIFF_JSON, PP_DIFF_COLLAPSED };

/*
 * Writes the diff. collapsed: "stack A B" lines (FlameGraph's
 * difffolded.pl output, which flamegraph.pl draws as a differential
 * flame graph), of live bytes or, with by_alloc, allocated bytes.
 */
void pp_diff_write(const struct pp_diff_side *a, const struct pp_diff_side *b,
		   enum pp_diff_format fmt, int by_alloc, FILE *out);

#endif

/* SPDX-License-Identifier: MIT */
/* The report's stall sections (stalls_report.c), over stalls.h. */
#ifndef PP_STALLS_REPORT_H
#define PP_STALLS_REPORT_H

#include <stdio.h>

#include "stalls.h"

/* The `"gc": {...}, "gil": {...}, "locks": [...]` members of the JSON
 * report (docs/cli-contract.md), no braces around them and no trailing
 * comma; "locks" holds contention only, other waits go to "waits". */
void pp_stalls_json(const struct pp_stalls *s, FILE *f, pp_frame_fn fn,
		    void *ctx);
/* The text report's GC, GIL and lock sections, 80 columns. */
void pp_stalls_text(const struct pp_stalls *s, FILE *f, pp_frame_fn fn,
		    void *ctx);

#endif

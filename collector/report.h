/* SPDX-License-Identifier: MIT */
/* Reports over a finished model: JSON (the contract in cli.md) and text. */
#ifndef PP_REPORT_H
#define PP_REPORT_H

#include <stdio.h>

#include "model.h"

#define PP_VERSION "0.1.0"
#define PP_REPORT_FORMAT 1

void pp_report_json(const struct pp_model *m, FILE *out);
void pp_report_text(const struct pp_model *m, FILE *out);
/* the same over a time window (window.h), the model pp_win_apply'ed */
struct pp_win;
void pp_report_json_win(const struct pp_model *m, const struct pp_win *w,
			FILE *out);
/* the JSON report with only the max_sites first "sites" (the HTML page:
 * every leak, the top sites) */
void pp_report_json_top(const struct pp_model *m, const struct pp_win *w,
			size_t max_sites, FILE *out);
void pp_report_text_win(const struct pp_model *m, const struct pp_win *w,
			FILE *out);
#include "utf8.h"	/* pp_json_str */

#endif

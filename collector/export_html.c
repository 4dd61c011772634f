// SPDX-License-Identifier: MIT
/*
 * The HTML report (export.h): one self-contained page. Its data is the
 * JSON report (the same leak verdicts, GC, GIL and lock summaries; of
 * the sites only the HTML_SITES the page shows) and
 * the folded live stacks of --format collapsed, or for a diff the diff's
 * JSON and its two-column folded stacks, carried in a JSON script block
 * and drawn by collector/html/report.js with d3-flame-graph and uPlot,
 * inlined from the build (scripts/html_assets.js). Nothing is loaded:
 * the page's Content-Security-Policy forbids it.
 *
 * Escaping: every string is JSON made valid UTF-8 by pp_json_str; inside
 * the <script> block '<', '>' and '&' become \u003c.. and '/' becomes
 * "\/" (all legal only inside JSON strings, so a byte filter is exact),
 * so no name can close the block or spell an address. The page puts
 * names into the document as text nodes, never as markup.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "collector/html_assets.h"	/* generated: build/collector/ */
#include "diff.h"
#include "export.h"
#include "report.h"
#include "utf8.h"
#include "window.h"

#define HTML_SITES 50	/* the top sites table */

struct buf {
	char *p;
	size_t n;
	FILE *f;
};

static FILE *buf_open(struct buf *b)
{
	b->p = NULL;
	b->n = 0;
	b->f = open_memstream(&b->p, &b->n);
	if (!b->f)
		abort();
	return b->f;
}

static void buf_close(struct buf *b)
{
	if (fclose(b->f))
		abort();
}

/* JSON text into a <script> block: see the top of the file */
static void put_json(FILE *out, const char *s, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		const char *rep;

		switch (s[i]) {
		case '<': rep = "\\u003c"; break;
		case '>': rep = "\\u003e"; break;
		case '&': rep = "\\u0026"; break;
		case '/': rep = "\\/"; break;
		default: continue;
		}
		fwrite(s + run, 1, i - run, out);
		fputs(rep, out);
		run = i + 1;
	}
	fwrite(s + run, 1, n - run, out);
}

/*
 * Folded lines "stack V" (report) or "stack A B" (diff) as JSON rows
 * ["stack", V] / ["stack", A, B]: the numbers are the line's last ncol
 * space-separated fields (a stack's frames hold spaces, never after
 * its last ')' or ']').
 */
static void folded_rows(FILE *out, char *text, int ncol)
{
	char *line = text, *nl;
	int first = 1;

	fputc('[', out);
	for (; line && *line; line = nl ? nl + 1 : NULL) {
		char *sp[2] = { NULL, NULL }, *end;
		int k;

		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		end = line + strlen(line);
		for (k = 0; k < ncol; k++) {
			while (end > line && end[-1] != ' ')
				end--;
			if (end == line)
				break;
			sp[k] = --end;
		}
		if (k < ncol)
			continue;
		for (k = 0; k < ncol; k++)
			*sp[k] = 0;
		fputs(first ? "\n[" : ",\n[", out);
		first = 0;
		pp_json_str(out, line);
		for (k = ncol - 1; k >= 0; k--)
			fprintf(out, ", %s", sp[k] + 1);
		fputc(']', out);
	}
	fputs("]", out);
}

static void page(FILE *out, const char *data, size_t n)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	      "<meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\""
	      "default-src 'none'; script-src 'unsafe-inline'; "
	      "style-src 'unsafe-inline'; img-src data:\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width\">\n"
	      "<meta name=\"generator\" content=\"pyprof " PP_VERSION "\">\n"
	      "<title>pyprof report</title>\n<style>\n", out);
	fputs(pp_html_lib_css, out);
	fputs(pp_html_page_css, out);
	fputs("</style>\n</head>\n<body>\n<div id=\"pp-app\"><noscript>"
	      "This report is drawn by JavaScript, which is off.</noscript>"
	      "</div>\n<script type=\"application/json\" id=\"pp-data\">",
	      out);
	put_json(out, data, n);
	fputs("</script>\n<script>\n", out);
	fputs(pp_html_lib_js, out);
	fputs("</script>\n<script>\n", out);
	fputs(pp_html_page_js, out);
	fputs("</script>\n</body>\n</html>\n", out);
}

int pp_export_html(const struct pp_model *m, const struct pp_win *w,
		   FILE *out)
{
	struct pp_stack_snap snap = { 0 };
	struct buf json, folded, data;

	uint32_t *idx;
	size_t nsites;

	/* every leak, but of the sites only those the page shows */
	pp_report_json_top(m, w, HTML_SITES, buf_open(&json));
	buf_close(&json);
	nsites = w ? pp_win_sorted_sites(m, w, &idx) :
		     pp_model_sorted_sites(m, &idx);
	free(idx);
	pp_stack_snap_take(&snap, m, 1);
	pp_export_collapsed(m, NULL, buf_open(&folded), PP_BY_LIVE, NULL,
			    &snap, NULL);
	buf_close(&folded);
	pp_stack_snap_free(&snap);

	buf_open(&data);
	fprintf(data.f, "{\"kind\": \"report\", \"sites_total\": %zu, "
		"\"report\": ", nsites);
	fwrite(json.p, 1, json.n, data.f);
	fputs(", \"flame\": {\"value\": \"live_bytes\", \"stacks\": ", data.f);
	folded_rows(data.f, folded.p, 1);
	fputs("}}\n", data.f);
	buf_close(&data);
	page(out, data.p, data.n);
	free(json.p);
	free(folded.p);
	free(data.p);
	return ferror(out) ? -1 : 0;
}

int pp_export_html_diff(const struct pp_diff_side *a,
			const struct pp_diff_side *b, int by_alloc, FILE *out)
{
	struct buf json, folded, data;

	pp_diff_write(a, b, PP_DIFF_JSON, by_alloc, buf_open(&json));
	buf_close(&json);
	pp_diff_write(a, b, PP_DIFF_COLLAPSED, by_alloc, buf_open(&folded));
	buf_close(&folded);

	buf_open(&data);
	fputs("{\"kind\": \"diff\", \"diff\": ", data.f);
	fwrite(json.p, 1, json.n, data.f);
	fprintf(data.f, ", \"flame\": {\"value\": \"%s\", \"stacks\": ",
		by_alloc ? "alloc_bytes" : "live_bytes");
	folded_rows(data.f, folded.p, 2);
	fputs("}}\n", data.f);
	buf_close(&data);
	page(out, data.p, data.n);
	free(json.p);
	free(folded.p);
	free(data.p);
	return ferror(out) ? -1 : 0;
}

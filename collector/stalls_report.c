// SPDX-License-Identifier: MIT
/*
 * The report's GC, GIL and lock parts, text and JSON, written from the
 * summaries the aggregation gives (stalls.h): stalls.c sums, this file
 * prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stalls.h"
#include "stalls_report.h"
#include "utf8.h"

static void json_lock(FILE *f, const struct pp_lock_summary *l)
{
	fprintf(f, "{\"kind\": ");
	pp_json_str(f, l->kind);
	fprintf(f, ", \"wait_s\": %.6f, \"max_wait_s\": %.6f, "
		   "\"contentions\": %llu, \"site\": {\"file\": ",
		l->wait_s, l->max_wait_s, (unsigned long long)l->contentions);
	pp_json_str(f, l->site.file);
	fprintf(f, ", \"line\": %d, \"function\": ", l->site.line);
	pp_json_str(f, l->site.function);
	fprintf(f, "}}");
}

void pp_stalls_json(const struct pp_stalls *s, FILE *f, pp_frame_fn fn,
		    void *ctx)
{
	struct pp_gil_thread *th;
	struct pp_lock_summary *lk;
	struct pp_gc_summary g;
	int i, n, first;

	fprintf(f, "\"gc\": {\"source\": \"%s\", \"generations\": [",
		pp_stalls_gc_source(s));
	for (i = 0; i < 3; i++) {
		pp_stalls_gc(s, i, &g);
		fprintf(f, "%s{\"generation\": %d, \"collections\": %llu, "
			   "\"pause_total_ms\": %.3f, \"pause_p50_ms\": %.3f, "
			   "\"pause_p99_ms\": %.3f, \"pause_max_ms\": %.3f, "
			   "\"collected\": %llu, \"uncollectable\": %llu}",
			i ? ", " : "", i, (unsigned long long)g.collections,
			g.pause_total_ms, g.pause_p50_ms, g.pause_p99_ms,
			g.pause_max_ms, (unsigned long long)g.collected,
			(unsigned long long)g.uncollectable);
	}
	fprintf(f, "]},\n");

	n = pp_stalls_gil_threads_all(s, &th);
	fprintf(f, "\"gil\": {\"source\": \"%s\", \"wait_fraction\": %.4f, "
		   "\"anomalies\": %llu, \"threads\": [",
		pp_stalls_gil_source(s),
		pp_stalls_gil_wait_fraction(s),
		(unsigned long long)pp_stalls_gil_anomalies(s));
	for (i = 0; i < n; i++) {
		fprintf(f, "%s{\"tid\": %u, \"name\": ", i ? ", " : "",
			th[i].tid);
		pp_json_str(f, th[i].name);
		fprintf(f, ", \"held_s\": %.6f, \"wait_s\": %.6f, "
			   "\"lifetime_s\": %.6f, \"wait_fraction\": %.4f, "
			   "\"acquisitions\": %llu, \"anomalies\": %llu}",
			th[i].held_s, th[i].wait_s, th[i].lifetime_s,
			th[i].wait_fraction,
			(unsigned long long)th[i].acquisitions,
			(unsigned long long)th[i].anomalies);
	}
	fprintf(f, "]},\n");
	free(th);

	n = pp_stalls_locks_all(s, fn, ctx, &lk);
	fprintf(f, "\"locks\": [");
	for (i = 0, first = 1; i < n; i++) {
		if (!lk[i].contention)
			continue;
		fprintf(f, "%s", first ? "" : ", ");
		json_lock(f, &lk[i]);
		first = 0;
	}
	fprintf(f, "],\n\"waits\": [");
	for (i = 0, first = 1; i < n; i++) {
		if (lk[i].contention)
			continue;
		fprintf(f, "%s", first ? "" : ", ");
		json_lock(f, &lk[i]);
		first = 0;
	}
	fprintf(f, "]");
	free(lk);
}

/* The end of a long path, cut at a directory: ".../demo/app.py". */
static const char *tail(const char *path, size_t max, const char **pre)
{
	size_t n = strlen(path);
	const char *p, *slash;

	*pre = "";
	if (n <= max)
		return path;
	p = path + n - max;
	while ((*p & 0xc0) == 0x80)	/* not inside a character */
		p++;
	slash = strchr(p, '/');
	*pre = ".../";
	return slash && slash[1] ? slash + 1 : p;
}

/* Up to 10 rows of lk[] whose contention is as asked; how many shown */
static int text_locks(FILE *f, const struct pp_lock_summary *lk, int n,
		      int contention)
{
	int i, shown;

	for (i = 0, shown = 0; i < n && shown < 10; i++) {
		const char *pre, *file;
		char fb[256], nb[256];

		if (lk[i].contention != contention)
			continue;
		file = tail(pp_text_str(lk[i].site.file, fb, sizeof(fb)), 24,
			    &pre);
		if (!*file)	/* a thread with no Python frame (a C thread) */
			fprintf(f, "  %8.3f %7llu  %-19.19s (no Python frame)\n",
				lk[i].wait_s,
				(unsigned long long)lk[i].contentions,
				lk[i].kind);
		else
			fprintf(f, "  %8.3f %7llu  %-19.19s %s%s:%d %s\n",
				lk[i].wait_s,
				(unsigned long long)lk[i].contentions,
				lk[i].kind, pre, file, lk[i].site.line,
				pp_text_str(lk[i].site.function, nb,
					    sizeof(nb)));
		shown++;
	}
	return shown;
}

/* thread names: a column as wide as the longest, up to 32 columns */
#define NAME_MAX_COLS 32

/* s in w columns (a terminal's: CJK takes two): padded, or cut at a
 * character with a '~' at the end */
static void put_name(FILE *f, const char *s, int w)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	int len, c, used = 0;

	if (pp_utf8_cols(s) <= w) {
		fprintf(f, "%s%*s", s, w - pp_utf8_cols(s), "");
		return;
	}
	for (; n; p += len, n -= len) {
		c = pp_cp_cols(pp_utf8_next(p, n, &len));
		c = c < 0 ? 1 : c;
		if (used + c > w - 1)
			break;
		fwrite(p, 1, len, f);
		used += c;
	}
	fprintf(f, "~%*s", w - 1 - used, "");
}

void pp_stalls_text(const struct pp_stalls *s, FILE *f, pp_frame_fn fn,
		    void *ctx)
{
	struct pp_gil_thread *th;
	struct pp_lock_summary *lk;
	struct pp_gc_summary g;
	int i, n, w, shown;

	fprintf(f, "GC pauses\n  gen  colls   total ms  p50 ms  p99 ms  "
		   "max ms   collected  uncollect\n");
	for (i = 0; i < 3; i++) {
		pp_stalls_gc(s, i, &g);
		fprintf(f, "  %3d %6llu %10.2f %7.2f %7.2f %7.2f %11llu %10llu\n",
			i, (unsigned long long)g.collections, g.pause_total_ms,
			g.pause_p50_ms, g.pause_p99_ms, g.pause_max_ms,
			(unsigned long long)g.collected,
			(unsigned long long)g.uncollectable);
	}

	n = pp_stalls_gil_threads_all(s, &th);
	for (i = 0, w = 4; i < n; i++) {
		int c = pp_utf8_cols(th[i].name ? th[i].name : "");

		w = c > w ? c : w;
	}
	w = w > NAME_MAX_COLS ? NAME_MAX_COLS : w;
	fprintf(f, "\nGIL: waiting %.1f%% of thread time\n"
		   "      TID  %-*s    HELD s    WAIT s  WAIT %%    ACQUIRED\n",
		100 * pp_stalls_gil_wait_fraction(s), w, "NAME");
	for (i = 0; i < n; i++) {
		char name[4 * NAME_MAX_COLS + 1];

		fprintf(f, "  %7u  ", th[i].tid);
		put_name(f, pp_text_str(th[i].name, name, sizeof(name)), w);
		fprintf(f, " %9.3f %9.3f %6.1f%% %11llu\n",
			th[i].held_s, th[i].wait_s, 100 * th[i].wait_fraction,
			(unsigned long long)th[i].acquisitions);
	}
	free(th);
	if (pp_stalls_gil_anomalies(s))
		fprintf(f, "  (%llu GIL intervals overlapped or fell outside "
			   "their thread's life: a bug)\n",
			(unsigned long long)pp_stalls_gil_anomalies(s));

	n = pp_stalls_locks_all(s, fn, ctx, &lk);
	fprintf(f, "\nContended locks\n    WAIT s   COUNT  KIND                "
		   "SITE\n");
	if (!text_locks(f, lk, n, 1))
		fprintf(f, "  (none)\n");
	/* blocked until notified (Condition, Event, Queue) or until a
	 * thread ended: time a thread waited, but no lock was fought over */
	shown = 0;
	for (i = 0; i < n; i++)
		shown += !lk[i].contention;
	if (shown) {
		fprintf(f, "\nWaits for a notification or a thread's end (not "
			   "contention)\n    WAIT s   COUNT  KIND                "
			   "SITE\n");
		text_locks(f, lk, n, 0);
	}
	free(lk);
}

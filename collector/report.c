// SPDX-License-Identifier: MIT
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "fmt.h"
#include "report.h"
#include "stalls.h"
#include "stalls_report.h"
#include "utf8.h"
#include "window.h"

#define MAX_TIMELINE 1000	/* points, evenly thinned */
#define TEXT_SITES 20

static void frame_json(FILE *out, const struct pp_model *m,
		       const struct pp_frame *fr)
{
	const struct pp_func *f = pp_model_func(m, fr->func);

	fputs("{\"file\": ", out);
	pp_json_str(out, f ? f->file : "?");
	fprintf(out, ", \"line\": %u, \"function\": ", fr->line);
	pp_json_str(out, f ? f->name : "?");
	if (f && f->native)
		fputs(", \"native\": true", out);
	fputc('}', out);
}

static void site_json(FILE *out, const struct pp_model *m, uint32_t idx,
		      const struct pp_win *w)
{
	const struct pp_site *s = &m->sites[idx];
	const struct pp_func *f = pp_model_func(m, s->func);
	const struct pp_stack *st = pp_model_stack(m, s->top_stack);
	uint32_t i;

	fputs("{\"file\": ", out);
	pp_json_str(out, f ? f->file : "<native>");
	fprintf(out, ", \"line\": %u, \"function\": ", s->line);
	pp_json_str(out, f ? f->name : "<no Python frame>");
	fprintf(out, ", \"live_bytes\": %.0f, \"live_count\": %.0f, "
		"\"alloc_bytes\": %.0f, \"alloc_count\": %.0f, "
		"\"growth_bytes_per_s\": %.1f, \"leak\": %s, "
		"\"retention\": %.3f, \"import_share\": %.3f, "
		"\"grew_by_import\": %s, ",
		s->end_live_bytes, s->end_live_count, s->alloc_bytes,
		s->alloc_count, s->growth_bytes_per_s,
		s->leak ? "true" : "false", s->retention,
		s->alloc_bytes > 0 ? s->import_bytes / s->alloc_bytes : 0.0,
		s->imported ? "true" : "false");
	if (w && idx < w->nsites)
		fprintf(out, "\"growth_bytes\": %.0f, ", w->site_growth[idx]);
	fputs("\"stack\": [", out);
	for (i = 0; st && i < st->nframes; i++) {
		if (i)
			fputs(", ", out);
		frame_json(out, m, &st->frames[i]);
	}
	fputs("]}", out);
}

static void argv_json(FILE *out, const char *argv)
{
	const char *p = argv, *tab;
	int first = 1;

	fputc('[', out);
	while (p && *p) {
		char *arg;

		tab = strchr(p, '\t');
		arg = pp_xstrndup(p, tab ? (size_t)(tab - p) : strlen(p));
		if (!first)
			fputs(", ", out);
		pp_json_str(out, arg);
		free(arg);
		first = 0;
		p = tab ? tab + 1 : NULL;
	}
	fputc(']', out);
}

static double duration(const struct pp_model *m)
{
	return pp_model_secs(m, m->t_now);
}

/*
 * What the trace holds: with --max-size the oldest part may be dropped;
 * live figures stay exact (a checkpoint), sums and verdicts cover the
 * part kept.
 */
static void trace_json(FILE *out, const struct pp_model *m)
{
	double from, to;

	pp_model_judged(m, &from, &to);
	fprintf(out, "  \"trace\": {\"dropped\": %s, \"dropped_before_s\": "
		"%.3f, \"leaks_judged\": {\"from_s\": %.3f, \"to_s\": %.3f}},\n",
		m->t_kept ? "true" : "false", pp_model_secs(m, m->t_kept),
		from, to);
}

static void trace_text(FILE *out, const struct pp_model *m)
{
	if (!m->t_kept)
		return;
	fprintf(out, "trace: the first %.1f s were dropped (--max-size): live "
		"figures are exact, sums and leak verdicts cover %.1f-%.1f s\n",
		pp_model_secs(m, m->t_kept), pp_model_secs(m, m->t_kept),
		duration(m));
}

static void heap_json(FILE *out, const struct pp_model *m)
{
	size_t i, step = m->ntimeline / MAX_TIMELINE + 1;

	fprintf(out, "  \"heap\": {\"live_bytes\": %.0f, \"live_count\": %.0f, "
		"\"peak_bytes\": %.0f, \"alloc_count\": %.0f, "
		"\"free_count\": %.0f, \"alloc_bytes\": %.0f, "
		"\"allocator_reserve_bytes\": %.0f, \"rss_peak_bytes\": %.0f, "
		"\"after_finalize_live_bytes\": %.0f, ",
		m->end_live_bytes, m->end_live_count, m->peak_bytes,
		m->alloc_count, m->free_count, m->alloc_bytes, m->arena_bytes,
		m->rss_peak_bytes, m->live_bytes);
	/* the kernel's view, from eBPF: heap growth whatever was hooked */
	fprintf(out, "\"kernel\": {\"source\": \"%s\", \"mapped_bytes\": %.0f, "
		"\"peak_mapped_bytes\": %.0f},\n    \"timeline\": [",
		m->have_kernel ? "ebpf" : "none", m->kernel_bytes,
		m->kernel_peak_bytes);
	for (i = 0; i < m->ntimeline; i += step)
		fprintf(out, "%s{\"t\": %.3f, \"live_bytes\": %.0f, "
			"\"rss_bytes\": %.0f, \"kernel_bytes\": %.0f}",
			i ? ", " : "", m->timeline[i].t,
			m->timeline[i].live_bytes, m->timeline[i].rss_bytes,
			m->timeline[i].kernel_bytes);
	fputs("]},\n", out);
}

static void sites_json(FILE *out, const struct pp_model *m, const char *key,
		       const uint32_t *idx, size_t n, const struct pp_win *w)
{
	size_t i;

	fprintf(out, "  \"%s\": [", key);
	for (i = 0; i < n; i++) {
		fputs(i ? ",\n    " : "\n    ", out);
		site_json(out, m, idx[i], w);
	}
	fputs("],\n", out);
}

/* Attached: what this mode can and cannot see, in the report's words. */
static const char attach_sees[] = "GIL, GC and lock waits (eBPF), and "
	"heap growth as the kernel sees it since attach: anonymous mmaps "
	"(glibc's big blocks, pymalloc's arenas), growth of malloc's brk "
	"heap, and pages of older memory first written since attach, each "
	"charged to the Python line that made it";
static const char attach_misses[] = "blocks made and freed inside memory "
	"that already exists (most small objects reuse free room in "
	"malloc's heap and pymalloc's arenas) are not seen, and memory "
	"freed but kept by an allocator stays charged: that needs injection "
	"(attach without --no-inject); memory allocated before attach is not "
	"known";
/* Attached with the shim loaded into the target (collector/inject.c). */
static const char shim_sees[] = "allocations since attach at their Python "
	"lines (the shim, loaded into the target; sampled unless --sample 0), "
	"GIL, GC and lock waits (eBPF)";
static const char shim_misses[] = "memory allocated before attach (its "
	"frees are counted as untracked_frees, never negative); what a "
	"library loaded after attach allocates in its constructors (before "
	"its dlopen returns)";

static const char shim_never[] = "allocations: the shim was sent but "
	"never loaded while attached (it loads when the target runs Python "
	"code where it can: none did)";

/* the shim was sent (it may not have loaded: shim_ready) */
static int shim_sent(const struct pp_model *m)
{
	return m->attach_mode && !strcmp(m->attach_mode, "shim");
}

/* the shim was loaded: the report is about growth since attach */
static int shim_mode(const struct pp_model *m)
{
	return shim_sent(m) && m->shim_ready;
}

static void attach_time(const struct pp_model *m, char *buf, size_t len)
{
	time_t t = m->realtime0 / 1000000000ull;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void attach_json(FILE *out, const struct pp_model *m)
{
	char when[32];

	if (!m->attach_mode)
		return;
	attach_time(m, when, sizeof(when));
	fputs("  \"attach\": {\"mode\": ", out);
	pp_json_str(out, m->attach_mode);
	fprintf(out, ", \"attached_at\": \"%s\", \"sees\": ", when);
	pp_json_str(out, shim_mode(m) ? shim_sees : shim_sent(m) ?
		    "GIL, GC and lock waits (eBPF)" : attach_sees);
	fputs(", \"cannot_see\": ", out);
	pp_json_str(out, shim_mode(m) ? shim_misses : shim_sent(m) ?
		    shim_never : attach_misses);
	if (shim_sent(m))
		fprintf(out, ", \"shim_loaded\": %s",
			m->shim_ready ? "true" : "false");
	fputs("},\n", out);
}

static void attach_text(FILE *out, const struct pp_model *m)
{
	char when[32], a[32], b[32];

	attach_time(m, when, sizeof(when));
	fprintf(out, "attached at %s, %s only (nothing put into the "
		"target)\nSeen: %s.\n", when, m->attach_mode, attach_sees);
	fprintf(out, "Not seen: %s.\n", attach_misses);
	fprintf(out, "heap: %s mapped since attach (kernel view, peak %s), "
		"RSS peak %s\n", pp_fmt_bytes(m->kernel_bytes, a, sizeof(a)),
		pp_fmt_bytes(m->kernel_peak_bytes, b, sizeof(b)),
		pp_fmt_bytes(m->rss_peak_bytes, when, sizeof(when)));
	fprintf(out, "      %s charged to lines (%.0f mappings, heap growths, "
		"first-touched pages); events %llu, dropped %llu\n\n",
		pp_fmt_bytes(m->end_live_bytes, a, sizeof(a)), m->end_live_count,
		(unsigned long long)m->events, (unsigned long long)m->dropped);
}

/* when producer records were lost: windows between ticks (model.h) */
static void drops_json(FILE *out, const struct pp_model *m)
{
	size_t i;

	fputs("\"dropped_windows\": [", out);
	for (i = 0; i < m->ndrops; i++)
		fprintf(out, "%s{\"from_s\": %.3f, \"to_s\": %.3f, "
			"\"dropped\": %llu}", i ? ", " : "",
			m->drops[i].from_s, m->drops[i].to_s,
			(unsigned long long)m->drops[i].count);
	fputc(']', out);
}

/* what a window's figures are (window.h), where its edges fell */
static void window_json(FILE *out, const struct pp_win *w)
{
	fprintf(out, "  \"window\": {\"from_s\": %.3f, \"to_s\": %.3f, "
		"\"live_at_s\": %.3f, \"asked_from_s\": %.3f, "
		"\"asked_to_s\": ", w->open_s, w->close_s, w->live_s,
		w->from_s);
	if (isfinite(w->to_s))
		fprintf(out, "%.3f", w->to_s);
	else
		fputs("null", out);
	fprintf(out, ", \"heap_live_bytes_at_from\": %.0f, "
		"\"heap_live_bytes_at_to\": %.0f, \"growth_bytes\": %.0f, "
		"\"free_bytes\": %.0f,\n    \"live_means\": \"allocated in "
		"the window and still live at live_at_s\", \"alloc_means\": "
		"\"allocated in the window\", \"growth_means\": \"live at "
		"the end minus live at the start, blocks of any age\"},\n",
		w->heap_at_open, w->heap_at_close,
		w->heap_at_close - w->heap_at_open, w->free_bytes);
}

void pp_report_json(const struct pp_model *m, FILE *out)
{
	pp_report_json_win(m, NULL, out);
}

void pp_report_json_win(const struct pp_model *m, const struct pp_win *w,
			FILE *out)
{
	pp_report_json_top(m, w, SIZE_MAX, out);
}

void pp_report_json_top(const struct pp_model *m, const struct pp_win *w,
			size_t max_sites, FILE *out)
{
	uint32_t *idx;
	size_t n;
	uint64_t bpf;
	int i;

	fprintf(out, "{\n  \"pyprof\": {\"version\": \"%s\", \"format\": %d},\n",
		PP_VERSION, PP_REPORT_FORMAT);
	fprintf(out, "  \"target\": {\"pid\": %d, \"argv\": ", m->pid);
	argv_json(out, m->argv);
	fputs(", \"python\": ", out);
	pp_json_str(out, m->pyver);
	if (m->exited)
		fprintf(out, ", \"exit_status\": %d", m->exit_status);
	if (m->killed_by)
		fprintf(out, ", \"signal\": %d", m->killed_by);
	fputs("},\n", out);
	attach_json(out, m);
	fprintf(out, "  \"duration_s\": %.3f,\n", duration(m));
	trace_json(out, m);
	if (w)
		window_json(out, w);
	fprintf(out, "  \"sample_bytes\": %llu,\n",
		(unsigned long long)m->sample_bytes);
	/*
	 * dropped_by_source (cli.md): shim, bpf and trace_write add up to
	 * dropped; dropped_bpf breaks bpf down by ring buffer.
	 * untracked_frees: blocks made before the hooks, freed after.
	 */
	for (i = PP_LOST_BPF_GIL, bpf = 0; i <= PP_LOST_BPF_KMEM; i++)
		bpf += m->dropped_by[i];
	fprintf(out, "  \"events\": {\"total\": %llu, \"dropped\": %llu, "
		"\"dropped_by_source\": {\"shim\": %llu, \"bpf\": %llu, "
		"\"trace_write\": %llu}, \"dropped_bpf\": {",
		(unsigned long long)m->events, (unsigned long long)m->dropped,
		(unsigned long long)m->dropped_by[PP_LOST_SHIM_RING],
		(unsigned long long)bpf,
		(unsigned long long)m->dropped_by[PP_LOST_TRACE_WRITE]);
	for (i = PP_LOST_BPF_GIL; i <= PP_LOST_BPF_KMEM; i++)
		fprintf(out, "%s\"%s\": %llu", i > PP_LOST_BPF_GIL ? ", " : "",
			pp_lost_src_name(i) + 4,	/* "bpf_gil" -> "gil" */
			(unsigned long long)m->dropped_by[i]);
	fprintf(out, "}, \"untracked_frees\": %llu, ",
		(unsigned long long)m->unknown_frees);
	drops_json(out, m);
	fputs("},\n", out);
	heap_json(out, m);
	n = w ? pp_win_sorted_sites(m, w, &idx) : pp_model_sorted_sites(m, &idx);
	sites_json(out, m, "sites", idx, n < max_sites ? n : max_sites, w);
	free(idx);
	n = pp_model_leaks(m, &idx);
	sites_json(out, m, "leaks", idx, n, w);
	free(idx);
	pp_stalls_json(m->stalls, out, pp_model_frame, (void *)m);
	fputs("\n}\n", out);
}

static void site_text(FILE *out, const struct pp_model *m, uint32_t idx,
		      int growth)
{
	const struct pp_site *s = &m->sites[idx];
	const struct pp_func *f = pp_model_func(m, s->func);
	char live[32], alloc[32], rate[32], fb[512], nb[256];
	const char *file = f ? pp_text_str(f->file, fb, sizeof(fb)) : "<native>";
	const char *name = f ? pp_text_str(f->name, nb, sizeof(nb)) :
			   "(no Python frame: start-up, threads not in Python)";

	pp_fmt_bytes(s->end_live_bytes, live, sizeof(live));
	pp_fmt_bytes(s->alloc_bytes, alloc, sizeof(alloc));
	if (growth) {
		pp_fmt_bytes(s->growth_bytes_per_s, rate, sizeof(rate));
		fprintf(out, "  %10s %9s/s %9.0f  %s:%u %s\n", live, rate,
			s->end_live_count, file, s->line, name);
	} else {
		fprintf(out, "  %10s %10s %9.0f %s %s:%u %s\n", live, alloc,
			s->alloc_count, s->leak ? "LEAK" : "    ", file,
			s->line, name);
	}
}

/* sites that grew like a leak, but by importing modules: said, not judged */
static void imports_text(FILE *out, const struct pp_model *m)
{
	double live = 0;
	size_t i, n = 0;
	char a[32];

	for (i = 1; i < m->nsites; i++)
		if (m->sites[i].imported) {
			n++;
			live += m->sites[i].end_live_bytes;
		}
	if (n)
		fprintf(out, "  (not leaks: %zu site%s that grew by importing "
			"modules, %s live: the loaded modules' own memory)\n",
			n, n == 1 ? "" : "s", pp_fmt_bytes(live, a, sizeof(a)));
}

static void window_text(FILE *out, const struct pp_model *m,
			const struct pp_win *w)
{
	char a[32], b[32], c[32], d[32];
	double g = w->heap_at_close - w->heap_at_open;

	fprintf(out, "window %.1f-%.1f s: %s allocated, %s of it still live "
		"at %.1f s\n", w->open_s, w->close_s,
		pp_fmt_bytes(m->alloc_bytes, a, sizeof(a)),
		pp_fmt_bytes(m->end_live_bytes, b, sizeof(b)), w->live_s);
	fprintf(out, "      the heap went from %s to %s (%s%s), peak %s in "
		"the window\n\n", pp_fmt_bytes(w->heap_at_open, a, sizeof(a)),
		pp_fmt_bytes(w->heap_at_close, b, sizeof(b)), g < 0 ? "-" : "+",
		pp_fmt_bytes(fabs(g), c, sizeof(c)),
		pp_fmt_bytes(m->peak_bytes, d, sizeof(d)));
}

void pp_report_text(const struct pp_model *m, FILE *out)
{
	pp_report_text_win(m, NULL, out);
}

void pp_report_text_win(const struct pp_model *m, const struct pp_win *w,
			FILE *out)
{
	char a[32], b[32], c[32];
	const char *sep;
	uint32_t *idx;
	size_t n, i;

	fprintf(out, "pyprof %s: pid %d, Python %s, %.1f s",
		PP_VERSION, m->pid, m->pyver[0] ? m->pyver : "?", duration(m));
	if (m->sample_bytes && (!shim_sent(m) || m->shim_ready))
		fprintf(out, ", sampling every %llu bytes",
			(unsigned long long)m->sample_bytes);
	fputc('\n', out);
	trace_text(out, m);
	if (w) {
		window_text(out, m, w);
	} else if (m->attach_mode && !shim_sent(m)) {
		attach_text(out, m);
	} else if (shim_sent(m) && !m->shim_ready) {
		attach_time(m, c, sizeof(c));
		fprintf(out, "attached at %s\nNot seen: %s.\nSeen: GIL, GC "
			"and lock waits (eBPF).\n\n", c, shim_never);
	} else {
		if (shim_mode(m)) {
			attach_time(m, c, sizeof(c));
			fprintf(out, "attached at %s, the shim loaded into the "
				"target: growth since attach\nNot seen: %s.\n",
				c, shim_misses);
		}
		fprintf(out, "heap: %s live at end of run, %s peak, RSS peak %s\n",
			pp_fmt_bytes(m->end_live_bytes, a, sizeof(a)),
			pp_fmt_bytes(m->peak_bytes, b, sizeof(b)),
			pp_fmt_bytes(m->rss_peak_bytes, c, sizeof(c)));
		fprintf(out, "      %.0f allocations, %.0f frees; events %llu, "
			"dropped %llu", m->alloc_count, m->free_count,
			(unsigned long long)m->events, (unsigned long long)m->dropped);
		for (i = 0, sep = " ("; i < PP_LOST_NSRC; i++)
			if (m->dropped_by[i]) {
				fprintf(out, "%s%s %llu", sep, pp_lost_src_name(i),
					(unsigned long long)m->dropped_by[i]);
				sep = ", ";
			}
		fputs(m->dropped ? ")\n" : "\n", out);
		for (i = 0; i < m->ndrops && i < TEXT_SITES; i++)
			fprintf(out, "      %llu events dropped between %.1f s and "
				"%.1f s (the collector did not drain the ring)\n",
				(unsigned long long)m->drops[i].count,
				m->drops[i].from_s, m->drops[i].to_s);
		if (m->ndrops > TEXT_SITES)
			fprintf(out, "      (%zu more windows with drops)\n",
				m->ndrops - TEXT_SITES);
		fputc('\n', out);
	}

	n = pp_model_leaks(m, &idx);
	if (m->t_kept) {
		double from, to;

		pp_model_judged(m, &from, &to);
		fprintf(out, "Leaks (%zu): live bytes growing through %.1f-%.1f s "
			"(the part kept)%s\n", n, from, to,
			w ? " and in the window" : "");
	} else {
		fprintf(out, "Leaks (%zu): live bytes growing through the run%s\n",
			n, w ? " and in the window" : "");
	}
	if (n)
		fprintf(out, "  %10s %11s %9s  %s\n", "LIVE", "GROWTH", "COUNT",
			"SITE");
	for (i = 0; i < n && i < TEXT_SITES; i++)
		site_text(out, m, idx[i], 1);
	free(idx);
	imports_text(out, m);

	n = pp_model_sorted_sites(m, &idx);
	if (w)
		fprintf(out, "\nTop sites by bytes allocated in the window and "
			"live at its end (%zu sites)\n", n);
	else
		fprintf(out, "\nTop sites by live bytes (%zu sites)\n", n);
	fprintf(out, "  %10s %10s %9s %4s %s\n", "LIVE", "ALLOCATED", "ALLOCS",
		"", "SITE");
	for (i = 0; i < n && i < TEXT_SITES; i++)
		site_text(out, m, idx[i], 0);
	free(idx);
	fputc('\n', out);
	pp_stalls_text(m->stalls, out, pp_model_frame, (void *)m);
}

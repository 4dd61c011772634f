// SPDX-License-Identifier: MIT
/* pyprof: command line. Parses, then hands over to a session or a report. */
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../collector/model.h"
#include "../collector/diff.h"
#include "../collector/export.h"
#include "../collector/procs.h"
#include "../collector/report.h"
#include "../collector/session.h"
#include "../collector/trace.h"
#include "../collector/window.h"
#include "../viewer/viewer.h"

#define DEFAULT_RING (16u << 20)
/* record --pid: a service recorded for hours */
#define DEFAULT_PID_MAX_SIZE (1ull << 30)
#define MIN_MAX_SIZE (1ull << 20)
#define PP_ATTACH_SAMPLE 524288u	/* --sample default when attached */

static const char usage[] =
"usage: pyprof [OPTIONS] -- COMMAND [ARGS...]    run COMMAND, live view\n"
"       pyprof [OPTIONS] --pid PID                attach to a running Python\n"
"       pyprof record -o FILE [OPTIONS] (-- COMMAND [ARGS...] | --pid PID)\n"
"       pyprof view FILE                          view a recorded trace\n"
"       pyprof report FILE [--format text|json|pprof|collapsed|chrome|html]\n"
"                         [-o OUT] [--by live|alloc|gil|locks]\n"
"                         [--from SEC] [--to SEC] [--proc PID | --merge]\n"
"       pyprof diff A B [--format text|json|collapsed|html] [--by live|alloc]\n"
"                         [-o OUT]   A, B: FILE or FILE:FROM-TO (seconds)\n"
"\n"
"options:\n"
"  -o, --output FILE     trace file to write (record) or report to write\n"
"      --sample BYTES    record one allocation every BYTES bytes on average\n"
"                        (unbiased estimates); 0 records every allocation\n"
"                        (attached: default 524288)\n"
"      --native          also record native (C) frames\n"
"      --no-bpf          measure GC, GIL and locks in-process, without eBPF\n"
"      --gil MODE        precise (every acquisition, uprobes; the default\n"
"                        but with --pid), futex (waits only, cheapest; the\n"
"                        default with --pid) or off\n"
"      --max-size BYTES  record: keep the trace within BYTES (500M, 2G),\n"
"                        dropping the oldest part, live state kept; default\n"
"                        1G with --pid, none otherwise; 0: no cap\n"
"      --duration SEC    stop recording after SEC seconds (attached: SEC s\n"
"                        from the attach, then detach; the target runs on)\n"
"      --pid PID         attach to a running Python process: GIL, GC, locks\n"
"                        (eBPF) and allocations since attach (the shim,\n"
"                        loaded into it: CPython 3.9-3.15)\n"
"      --no-inject       attach without loading anything into the target\n"
"                        (eBPF only: kernel heap growth instead)\n"
"      --children        also profile the target's (or the command's) child\n"
"                        processes, those running and those started later,\n"
"                        each with a shim loaded into it (each reported apart)\n"
"  -b, --batch           no curses: print text frames (with -n, -d)\n"
"  -n N                  stop after N frames (batch)\n"
"  -d SEC                seconds between frames (batch)\n"
"      --format FMT      report format: text (default), json, pprof (gzipped\n"
"                        profile.proto heap profile for go tool pprof),\n"
"                        collapsed (folded stacks for FlameGraph/speedscope),\n"
"                        chrome (Trace Event JSON for Perfetto) or html (one\n"
"                        self-contained page: timeline, flame graph, leaks)\n"
"      --by WHAT         collapsed values: live bytes at the end (default),\n"
"                        alloc (bytes allocated), gil (GIL wait us per\n"
"                        thread), locks (lock wait us per Python stack)\n"
"      --from SEC, --to SEC  only that window, seconds since the trace start:\n"
"                        live = allocated in it and still live at its end,\n"
"                        alloc = allocated in it (chrome: events in it)\n"
"      --proc PID        report: that process of a --children trace only\n"
"      --merge           report: all its processes as one (text: one section\n"
"                        per process by default; other formats merge)\n"
"      --ring-size BYTES event ring size (default 16 MiB)\n"
"  -h, --help            this help\n"
"      --version         print the version\n";

struct opts {
	const char *output;
	const char *format;
	const char *by;
	double from, to;	/* report window (window set) */
	int window, have_to;	/* have_to: --to given, else the end */
	uint64_t sample;
	int sample_given, gil_given;
	uint64_t ring;
	uint64_t max_size;
	int have_max_size;
	int native, no_bpf, gil;
	double duration;
	int batch, frames;
	double delay;
	int pid, no_inject, children;
	int proc, merge;	/* report: one process, or all merged */
};

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "pyprof: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'pyprof --help'.\n");
	return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		return -1;
	*out = v;
	return 0;
}

/*
 * A size: digits with an optional fraction and unit (K, M, G, T: powers
 * of 1024, an optional B or iB after), "500M", "2G", "1.5GiB".
 */
static int parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	size_t n = strspn(s, "0123456789"), f = 0;
	const char *u;
	char *end;
	double v, mul = 1;

	/* digits first: no sign, space, hex, exponent, "nan" or "inf" */
	if (s[n] == '.' && !(f = strspn(s + n + 1, "0123456789")))
		return -1;
	if (!n)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end != s + n + (f ? f + 1 : 0))
		return -1;
	if (*end && (u = strchr(units, *end & ~0x20))) {
		mul = (double)(1ull << (10 * (u - units + 1)));
		end++;
		if ((*end & ~0x20) == 'I' && (end[1] & ~0x20) == 'B')
			end += 2;
	}
	if ((*end & ~0x20) == 'B')
		end++;
	if (*end || v * mul >= 18446744073709551615.0)
		return -1;
	*out = (uint64_t)(v * mul);
	return 0;
}

/* The shim sits next to the binary, or in ../lib/pyprof when installed. */
static int find_shim(char *buf, size_t len)
{
	char self[PATH_MAX - 64], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *env = getenv("PYPROF_SHIM");

	if (env) {
		snprintf(buf, len, "%s", env);
		return access(buf, R_OK);
	}
	if (n < 0)
		return -1;
	self[n] = 0;
	slash = strrchr(self, '/');
	*slash = 0;
	snprintf(buf, len, "%s/libpyprof.so", self);
	if (access(buf, R_OK) == 0)
		return 0;
	snprintf(buf, len, "%s/../lib/pyprof/libpyprof.so", self);
	return access(buf, R_OK);
}

/* a and b name the same existing file */
static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/*
 * Where a report goes: stdout ("-" or no -o); an existing file that is
 * not a regular one (/dev/null, a FIFO) directly; a regular file through
 * a temporary one in the same directory, renamed over it once complete,
 * so a failed write never leaves half a report.
 */
struct report_out {
	FILE *f;
	const char *path;	/* NULL: stdout */
	const char *dest;	/* what is renamed over: a symlink's target */
	char real[PATH_MAX];
	char tmp[PATH_MAX];	/* "" when written directly */
};

static int report_open(struct report_out *ro, const char *path)
{
	struct stat st;
	mode_t mode;
	int fd, exists;

	ro->f = stdout;
	ro->path = NULL;
	ro->tmp[0] = 0;
	if (!path || !strcmp(path, "-"))
		return 0;
	ro->path = ro->dest = path;
	/* a symlink stays one: its target is what gets replaced */
	if (!lstat(path, &st) && S_ISLNK(st.st_mode) && realpath(path, ro->real))
		ro->dest = ro->real;
	exists = !stat(path, &st);
	if ((exists && !S_ISREG(st.st_mode)) ||
	    snprintf(ro->tmp, sizeof(ro->tmp), "%s.XXXXXX", ro->dest) >=
		    (int)sizeof(ro->tmp)) {
		ro->tmp[0] = 0;
		ro->f = fopen(path, "w");
		return ro->f ? 0 : -1;
	}
	fd = mkstemp(ro->tmp);
	if (fd < 0 && errno == EACCES && exists) {
		/* a writable file in a directory we may not write: in place */
		ro->tmp[0] = 0;
		ro->f = fopen(path, "w");
		return ro->f ? 0 : -1;
	}
	if (fd < 0) {
		int e = errno;

		ro->tmp[0] = 0;
		errno = e;
		return -1;
	}
	/* the mode a plain fopen() would give: the old file's, or umask's */
	if (exists) {
		mode = st.st_mode & 07777;
	} else {
		mode = umask(0);
		umask(mode);
		mode = 0666 & ~mode;
	}
	if (fchmod(fd, mode) < 0 || !(ro->f = fdopen(fd, "w"))) {
		int e = errno;

		close(fd);
		unlink(ro->tmp);
		errno = e;
		return -1;
	}
	return 0;
}

/* 0 when every byte reached its place; else -1 with errno, nothing left */
static int report_close(struct report_out *ro)
{
	int bad = fflush(ro->f) != 0 || ferror(ro->f), e = errno;

	if (ro->f != stdout) {
		if (fclose(ro->f) != 0 && !bad) {
			bad = 1;
			e = errno;
		}
	}
	if (!bad && ro->tmp[0] && rename(ro->tmp, ro->dest) < 0) {
		bad = 1;
		e = errno;
	}
	if (bad && ro->tmp[0])
		unlink(ro->tmp);
	errno = e ? e : EIO;
	return bad ? -1 : 0;
}

/* --from/--to: seconds, --to after --from */
static int check_window(const struct opts *o)
{
	if (o->have_to && o->to <= o->from)
		return usage_error("%s", "--to must come after --from (seconds since the trace start)");
	return 0;
}

enum { FMT_TEXT, FMT_JSON, FMT_COLLAPSED, FMT_CHROME, FMT_PPROF, FMT_HTML };

static int parse_report_opts(const struct opts *o, int *fmt, int *by)
{
	static const char *const fmts[] = { "text", "json", "collapsed",
					    "chrome", "pprof", "html" };
	static const char *const bys[] = { "live", "alloc", "gil", "locks" };
	int i;

	*fmt = o->format ? -1 : FMT_TEXT;
	for (i = 0; i < 6 && *fmt < 0; i++)
		if (!strcmp(o->format, fmts[i]))
			*fmt = i;
	if (*fmt < 0)
		return usage_error("unknown report format '%s' (text, json, "
				   "pprof, collapsed, chrome, html)", o->format);
	*by = o->by ? -1 : PP_BY_LIVE;
	for (i = 0; i < 4 && *by < 0; i++)
		if (!strcmp(o->by, bys[i]))
			*by = i;	/* enum pp_collapsed_by order */
	if (*by < 0)
		return usage_error("--by is live, alloc, gil or locks, not "
				   "'%s'", o->by);
	if (o->by && *fmt != FMT_COLLAPSED)
		return usage_error("%s", "--by is for --format collapsed");
	return check_window(o);
}

/*
 * Reads the trace at path into m and w over [from, to]; 0, or the exit
 * status after one line saying why (1: the trace, 2: a window past its
 * end). A trace whose tail is cut off or invalid gives its readable
 * prefix, with one line saying so.
 */
static int load_sel(const char *path, struct pp_trace_reader **rp,
		    struct pp_model *m, struct pp_win *w, double from, double to,
		    int figures, struct pp_procsel *sel)
{
	struct pp_trace_reader *r;
	char err[512];
	int past_end, rc;

	r = pp_trace_open(path, err, sizeof(err));
	if (!r) {
		fprintf(stderr, "pyprof: %s: %s\n", path, err);
		return 1;
	}
	if (sel)
		pp_trace_set_filter(r, pp_procsel_filter, sel);
	rc = pp_win_read(r, m, w, from, to, figures, &past_end);
	if (rc < 0) {
		fprintf(stderr, "pyprof: %s: %s\n", path, pp_trace_error(r));
		pp_trace_close_reader(r);
		pp_win_free(w);
		pp_model_free(m);
		return 1;
	}
	if (pp_trace_invalid(r))
		fprintf(stderr, "pyprof: %s: %s; reporting the records before "
			"it\n", path, pp_trace_invalid(r));
	else if (pp_trace_truncated(r))
		fprintf(stderr, "pyprof: %s: the trace ends early (the "
			"recording was cut off); reporting what it holds\n",
			path);
	if (past_end) {
		fprintf(stderr, "pyprof: %s: the window starts at %g s, past "
			"the trace's end (%.3f s)\n", path, from,
			pp_model_secs(m, m->t_now));
		pp_trace_close_reader(r);
		pp_win_free(w);
		pp_model_free(m);
		return 2;
	}
	if (rp)
		*rp = r;
	else
		pp_trace_close_reader(r);
	return 0;
}

/* Processes in the trace at path (--children), 1 when unreadable
 * (the caller's read will say why); *out malloc'd or NULL. */
static long trace_procs(const char *path, struct pp_proc_id **out)
{
	struct pp_trace_reader *r = pp_trace_open(path, NULL, 0);
	long n = r ? pp_trace_procs(r, out) : -1;

	if (r)
		pp_trace_close_reader(r);
	if (n < 0) {
		*out = NULL;
		n = 1;
	}
	return n;	/* *out NULL: the trace cannot be read */
}

/* diff: a trace of several processes (--children) reads as their merge */
static int load(const char *path, struct pp_model *m, struct pp_win *w,
		double from, double to)
{
	struct pp_proc_id *procs;
	struct pp_procsel *sel = trace_procs(path, &procs) > 1 ?
		pp_procsel_new(PP_PROCS_MERGE) : NULL;
	int rc = load_sel(path, NULL, m, w, from, to, 1, sel);

	free(procs);
	pp_procsel_free(sel);
	return rc;
}

/* after a failed export: no half report left behind */
static void report_abandon(struct report_out *ro)
{
	if (ro->path)
		fclose(ro->f);
	if (ro->tmp[0])
		unlink(ro->tmp);
}

static int report_finish(struct report_out *ro)
{
	if (report_close(ro) < 0) {
		fprintf(stderr, "pyprof: writing %s failed: %s%s\n",
			ro->path ? ro->path : "the report to stdout",
			strerror(errno), ro->tmp[0] ? " (nothing was written)" :
			"");
		return 1;
	}
	return 0;
}

/*
 * One report of the trace at path into ro: of process sel_pid (a pid,
 * PP_PROCS_MERGE, or -1: the trace as it is, one process's). 0, or the exit status after one line (ro abandoned).
 */
static int report_one(const char *path, const struct opts *o, int fmt,
		      int by, int sel_pid, struct report_out *ro)
{
	struct pp_trace_reader *r = NULL;
	struct pp_procsel *sel = sel_pid >= 0 ? pp_procsel_new(sel_pid) : NULL;
	struct pp_model m;
	struct pp_win win;
	struct pp_window w = { 0, INFINITY };
	struct pp_stack_snap to = { 0 };
	int rc, heap;

	if (o->window) {
		w.from_s = o->from;
		if (o->have_to)
			w.to_s = o->to;
	}
	/* per-stack window figures: pprof and windows use them */
	rc = load_sel(path, &r, &m, &win, w.from_s, w.to_s,
		      o->window || fmt == FMT_PPROF, sel);
	if (rc) {
		pp_procsel_free(sel);
		report_abandon(ro);
		return rc;
	}
	/* the window's figures in place of the run's (chrome and the
	 * wait folds re-read the trace within w themselves) */
	heap = fmt == FMT_TEXT || fmt == FMT_JSON || fmt == FMT_HTML ||
	       (fmt == FMT_COLLAPSED && (by == PP_BY_LIVE || by == PP_BY_ALLOC));
	if (o->window && heap)
		pp_win_apply(&win, &m);
	rc = 0;
	if (fmt == FMT_JSON)
		pp_report_json_win(&m, o->window ? &win : NULL, ro->f);
	else if (fmt == FMT_TEXT)
		pp_report_text_win(&m, o->window ? &win : NULL, ro->f);
	else if (fmt == FMT_PPROF)
		rc = pp_export_pprof(&m, &win, ro->f) < 0 ? -2 : 0;
	else if (fmt == FMT_HTML)
		rc = pp_export_html(&m, o->window ? &win : NULL, ro->f) < 0 ?
		     -2 : 0;
	else if (fmt == FMT_COLLAPSED) {
		pp_stack_snap_take(&to, &m, 1);
		rc = pp_export_collapsed(&m, r, ro->f, by, NULL, &to, &w);
		pp_stack_snap_free(&to);
	} else
		rc = pp_export_chrome(&m, r, ro->f, &w);
	if (rc == -1)
		fprintf(stderr, "pyprof: %s: re-reading the trace failed: %s\n",
			path, pp_trace_error(r));
	else if (rc < 0)
		fprintf(stderr, "pyprof: writing %s failed: %s\n",
			ro->path ? ro->path : "the report to stdout",
			strerror(errno));
	if (rc < 0)
		report_abandon(ro);
	pp_trace_close_reader(r);
	pp_procsel_free(sel);
	pp_win_free(&win);
	pp_model_free(&m);
	return rc < 0 ? 1 : 0;
}

/* "pid N (parent P): argv": a process's heading in a sectioned report */
static void proc_heading(FILE *f, const struct pp_proc_id *p, size_t i,
			 size_t n)
{
	fprintf(f, "%s== process %zu of %zu: pid %d", i ? "\n" : "", i + 1, n,
		p->pid);
	if (p->ppid)
		fprintf(f, " (child of %d)", p->ppid);
	else
		fputs(p->wrapped ? " (the command)" : " (attached to)", f);
	fputs(" ==\n", f);
}

/*
 * JSON of a trace of several processes: the merged report, with
 * "processes": each one's pid, parent and whole report.
 */
static int report_json_procs(const char *path, const struct opts *o,
			     const struct pp_proc_id *procs, size_t n,
			     struct report_out *ro)
{
	struct report_out mem = { .path = NULL };
	char *buf = NULL, *end;
	size_t len = 0, i;
	int rc;

	mem.f = open_memstream(&buf, &len);
	if (!mem.f)
		return 1;
	rc = report_one(path, o, FMT_JSON, PP_BY_LIVE, PP_PROCS_MERGE, &mem);
	if (!rc && fflush(mem.f))
		rc = 1;
	end = buf && len ? strrchr(buf, '}') : NULL;
	if (!rc && end) {
		/* after the last key of the merged object */
		while (end > buf && (end[-1] == '\n' || end[-1] == ' '))
			end--;
		fwrite(buf, 1, end - buf, ro->f);
		fputs(",\n  \"processes\": [", ro->f);
		for (i = 0; i < n && !rc; i++) {
			fprintf(ro->f, "%s\n    {\"pid\": %d, \"ppid\": %d, "
				"\"report\": ", i ? "," : "", procs[i].pid,
				procs[i].ppid);
			rc = report_one(path, o, FMT_JSON, PP_BY_LIVE,
					procs[i].pid, ro);
			fputs("}", ro->f);
		}
		fputs("\n  ]\n}\n", ro->f);
	}
	fclose(mem.f);
	free(buf);
	return rc;
}

static int do_report(const char *path, const struct opts *o)
{
	struct pp_proc_id *procs = NULL;
	struct report_out ro;
	long n, i;
	int rc = 0, fmt, by = PP_BY_LIVE;

	if (parse_report_opts(o, &fmt, &by))
		return 2;
	if (o->output && same_file(o->output, path))
		return usage_error("-o %s would overwrite the trace being read",
				   o->output);
	if (o->proc && o->merge)
		return usage_error("%s", "--proc and --merge: one or the other");
	/* which processes the trace holds (--children) */
	n = trace_procs(path, &procs);
	for (i = 0; o->proc && procs && i < n && procs[i].pid != o->proc; i++)
		;
	if (o->proc && procs && i == n) {
		char list[256] = "";
		size_t k = 0;

		for (i = 0; i < n && k + 16 < sizeof(list); i++)
			k += snprintf(list + k, sizeof(list) - k, "%s%d",
				      i ? ", " : "", procs[i].pid);
		fprintf(stderr, "pyprof: %s: no process %d in this trace "
			"(it holds %s)\nTry 'pyprof --help'.\n", path, o->proc,
			list);
		free(procs);
		return 2;
	}
	if (report_open(&ro, o->output) < 0) {
		fprintf(stderr, "pyprof: cannot write %s: %s\n", o->output,
			strerror(errno));
		free(procs);
		return 1;
	}
	if (o->proc || n < 2)
		rc = report_one(path, o, fmt, by, n < 2 ? -1 : o->proc, &ro);
	else if (o->merge || (fmt != FMT_TEXT && fmt != FMT_JSON))
		rc = report_one(path, o, fmt, by, PP_PROCS_MERGE, &ro);
	else if (fmt == FMT_JSON)
		rc = report_json_procs(path, o, procs, n, &ro);
	else
		for (i = 0; i < n && !rc; i++) {
			proc_heading(ro.f, &procs[i], i, n);
			rc = report_one(path, o, fmt, by, procs[i].pid, &ro);
		}
	free(procs);
	return rc ? rc : report_finish(&ro);
}

/*
 * A side of a diff: FILE, or FILE:FROM-TO (either end may be left out:
 * FILE:10- is from 10 s to the end). A name that is an existing file is
 * a file, whatever its colons.
 */
static int parse_side(const char *arg, char **path, double *from, double *to)
{
	const char *colon = strrchr(arg, ':');
	char *end, *dash;
	struct stat st;

	*from = 0;
	*to = INFINITY;
	if (!colon || !stat(arg, &st)) {
		*path = strdup(arg);
		return *path ? 0 : -1;
	}
	dash = strchr(colon + 1, '-');
	if (!dash)
		return -1;
	if (dash > colon + 1) {
		*from = strtod(colon + 1, &end);
		if (end != dash || !isfinite(*from) || *from < 0)
			return -1;
	}
	if (dash[1]) {
		*to = strtod(dash + 1, &end);
		if (*end || !isfinite(*to) || *to <= *from)
			return -1;
	}
	*path = strndup(arg, colon - arg);
	return *path ? 0 : -1;
}

static int do_diff(char **args, const struct opts *o)
{
	struct pp_diff_side side[2];
	struct pp_model m[2];
	struct pp_win w[2];
	char *path[2] = { NULL, NULL };
	struct report_out ro;
	int fmt = PP_DIFF_TEXT, by_alloc = 0, k, rc = 0, loaded = 0, html = 0;

	if (o->format && !strcmp(o->format, "json"))
		fmt = PP_DIFF_JSON;
	else if (o->format && !strcmp(o->format, "collapsed"))
		fmt = PP_DIFF_COLLAPSED;
	else if (o->format && !strcmp(o->format, "html"))
		html = 1;
	else if (o->format && strcmp(o->format, "text"))
		return usage_error("diff formats are text, json, collapsed and "
				   "html, not '%s'", o->format);
	if (o->by && !strcmp(o->by, "alloc"))
		by_alloc = 1;
	else if (o->by && strcmp(o->by, "live"))
		return usage_error("diff --by is live or alloc, not '%s'",
				   o->by);
	if (o->window)
		return usage_error("%s", "diff takes windows as FILE:FROM-TO, "
				   "not --from/--to");
	for (k = 0; k < 2; k++) {
		double from, to;

		if (parse_side(args[k], &path[k], &from, &to) < 0) {
			rc = usage_error("'%s' is not FILE or FILE:FROM-TO "
					 "(seconds, FROM < TO)", args[k]);
			break;
		}
		if (o->output && same_file(o->output, path[k])) {
			rc = usage_error("-o %s would overwrite a trace being "
					 "read", o->output);
			break;
		}
		rc = load(path[k], &m[k], &w[k], from, to);
		if (rc)
			break;
		loaded++;
		pp_win_apply(&w[k], &m[k]);
		side[k] = (struct pp_diff_side){ args[k], path[k], &m[k],
						 &w[k] };
	}
	if (!rc && report_open(&ro, o->output) < 0) {
		fprintf(stderr, "pyprof: cannot write %s: %s\n", o->output,
			strerror(errno));
		rc = 1;
	}
	if (!rc) {
		if (html)
			pp_export_html_diff(&side[0], &side[1], by_alloc, ro.f);
		else
			pp_diff_write(&side[0], &side[1], fmt, by_alloc, ro.f);
		rc = report_finish(&ro);
	}
	for (k = 0; k < loaded; k++) {
		pp_win_free(&w[k]);
		pp_model_free(&m[k]);
	}
	free(path[0]);
	free(path[1]);
	return rc;
}

/* record -o FILE onto one of the command's own files (its script) */
static const char *overwrites_input(const char *out, char **cmd)
{
	for (; *cmd; cmd++)
		if (same_file(out, *cmd))
			return *cmd;
	return NULL;
}

/* live without a terminal: the report at the end, as before the viewer */
static void text_report(const struct pp_model *m)
{
	pp_report_text(m, stderr);
}

static int do_run(char **cmd, const struct opts *o, int record)
{
	struct pp_session_opts so = {
		.cmd = cmd,
		.pid = o->pid,
		.no_inject = o->no_inject,
		.children = o->children,
		.sample_bytes = o->sample,
		.native = o->native,
		.no_bpf = o->no_bpf,
		.gil = o->gil,
		.duration = o->duration,
		.max_size = o->max_size,
		.ring_bytes = o->ring ? o->ring : DEFAULT_RING,
	};
	struct pp_view_opts vo = { o->batch, o->frames, o->delay, text_report };
	char shim[PATH_MAX] = "";

	/* attached, a missing shim means eBPF only (said then) */
	if (find_shim(shim, sizeof(shim)) < 0 && !o->pid) {
		fprintf(stderr, "pyprof: cannot find libpyprof.so next to "
			"pyprof or in ../lib/pyprof (set PYPROF_SHIM)\n");
		return 1;
	}
	so.shim_path = shim;
	if (record) {
		so.trace_path = o->output;
		return pp_session_run(&so, NULL);
	}
	/* live: the viewer feeds a model as events arrive */
	return pp_view_live(&so, &vo);
}

enum { OPT_SAMPLE = 256, OPT_NATIVE, OPT_NO_BPF, OPT_GIL, OPT_DURATION, OPT_FORMAT, OPT_PID,
       OPT_RING, OPT_VERSION, OPT_NO_INJECT, OPT_BY, OPT_FROM, OPT_TO,
       OPT_MAX_SIZE, OPT_CHILDREN, OPT_PROC, OPT_MERGE };

static const struct option longopts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "sample", required_argument, NULL, OPT_SAMPLE },
	{ "native", no_argument, NULL, OPT_NATIVE },
	{ "no-bpf", no_argument, NULL, OPT_NO_BPF },
	{ "gil", required_argument, NULL, OPT_GIL },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "by", required_argument, NULL, OPT_BY },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "no-inject", no_argument, NULL, OPT_NO_INJECT },
	{ "children", no_argument, NULL, OPT_CHILDREN },
	{ "proc", required_argument, NULL, OPT_PROC },
	{ "merge", no_argument, NULL, OPT_MERGE },
	{ "ring-size", required_argument, NULL, OPT_RING },
	{ "max-size", required_argument, NULL, OPT_MAX_SIZE },
	{ "batch", no_argument, NULL, 'b' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ 0 }
};

int main(int argc, char **argv)
{
	const char *sub = NULL, *file = NULL, *optstring;
	struct opts o = { 0 };
	char *end;
	int c;

	if (argc > 1 && (!strcmp(argv[1], "record") ||
			 !strcmp(argv[1], "report") ||
			 !strcmp(argv[1], "diff") ||
			 !strcmp(argv[1], "view"))) {
		sub = argv[1];
		argv++;
		argc--;
	}
	opterr = 0;
	/* report/view take options after the file; a command stops them */
	optstring = sub && strcmp(sub, "record") ? "o:bn:d:h" : "+o:bn:d:h";
	while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o.output = optarg;
			break;
		case OPT_SAMPLE:
			if (parse_u64(optarg, &o.sample) < 0)
				return usage_error("--sample needs a byte count, "
						   "not '%s'", optarg);
			o.sample_given = 1;
			break;
		case OPT_NATIVE:
			o.native = 1;
			break;
		case OPT_NO_BPF:
			o.no_bpf = 1;
			break;
		case OPT_GIL:
			o.gil_given = 1;
			if (!strcmp(optarg, "precise"))
				o.gil = PP_GIL_MODE_PRECISE;
			else if (!strcmp(optarg, "futex"))
				o.gil = PP_GIL_MODE_FUTEX;
			else if (!strcmp(optarg, "off"))
				o.gil = PP_GIL_MODE_OFF;
			else
				return usage_error("--gil is precise, futex or "
						   "off, not '%s'", optarg);
			break;
		case OPT_DURATION:
			o.duration = strtod(optarg, &end);
			if (*end || end == optarg || !isfinite(o.duration) ||
			    !(o.duration > 0))
				return usage_error("--duration needs seconds, "
						   "not '%s'", optarg);
			break;
		case OPT_FORMAT:
			o.format = optarg;
			break;
		case OPT_BY:
			o.by = optarg;
			break;
		case OPT_FROM:
		case OPT_TO:
			{
				double v = strtod(optarg, &end);

				if (*end || end == optarg || !isfinite(v) ||
				    v < 0)
					return usage_error("--from/--to need "
							   "seconds >= 0, not "
							   "'%s'", optarg);
				if (c == OPT_FROM)
					o.from = v;
				else
					o.to = v;
				o.have_to |= c == OPT_TO;
				o.window = 1;
			}
			break;
		case OPT_PID:
			o.pid = strtol(optarg, &end, 10);
			if (*end || o.pid <= 0)
				return usage_error("--pid needs a process id, "
						   "not '%s'", optarg);
			break;
		case OPT_NO_INJECT:
			o.no_inject = 1;
			break;
		case OPT_CHILDREN:
			o.children = 1;
			break;
		case OPT_PROC:
			o.proc = strtol(optarg, &end, 10);
			if (*end || o.proc <= 0)
				return usage_error("--proc needs a process id, "
						   "not '%s'", optarg);
			break;
		case OPT_MERGE:
			o.merge = 1;
			break;
		case OPT_RING:
			if (parse_u64(optarg, &o.ring) < 0 || o.ring < 65536 ||
			    (o.ring & (o.ring - 1)))
				return usage_error("--ring-size must be a power "
						   "of two >= 65536, not '%s'",
						   optarg);
			break;
		case OPT_MAX_SIZE:
			if (parse_size(optarg, &o.max_size) < 0 ||
			    (o.max_size && o.max_size < MIN_MAX_SIZE))
				return usage_error("--max-size needs a size of at "
						   "least 1M (500M, 2G; 0: no "
						   "cap), not '%s'", optarg);
			o.have_max_size = 1;
			break;
		case 'b':
			o.batch = 1;
			break;
		case 'n':
			o.frames = strtol(optarg, &end, 10);
			if (*end || o.frames <= 0)
				return usage_error("-n needs a count, not '%s'",
						   optarg);
			break;
		case 'd':
			o.delay = strtod(optarg, &end);
			if (*end || end == optarg || !isfinite(o.delay) ||
			    !(o.delay > 0))
				return usage_error("-d needs seconds, not '%s'",
						   optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case OPT_VERSION:
			printf("pyprof %s\n", PP_VERSION);
			return 0;
		default:
			return usage_error("unknown or incomplete option '%s'",
					   argv[optind - 1]);
		}
	}
	argv += optind;
	argc -= optind;

	if (sub && strcmp(sub, "report") && (o.proc || o.merge))
		return usage_error("%s", "--proc and --merge are for report");
	if (sub && !strcmp(sub, "diff")) {
		if (argc != 2)
			return usage_error("%s", "diff needs two traces or "
					   "windows: A B (FILE or "
					   "FILE:FROM-TO)");
		return do_diff(argv, &o);
	}
	if (sub && (!strcmp(sub, "report") || !strcmp(sub, "view"))) {
		if (argc != 1)
			return usage_error("%s needs exactly one trace file",
					   sub);
		file = argv[0];
		if (!strcmp(sub, "report"))
			return do_report(file, &o);
		return pp_view_replay(file, &(struct pp_view_opts){
			o.batch, o.frames, o.delay, NULL });
	}
	if (o.pid && argc > 0)
		return usage_error("%s", "give a command or --pid, not both");
	if (o.no_inject && !o.pid)
		return usage_error("%s", "--no-inject is for attaching (--pid)");
	if (o.children && o.no_bpf)
		return usage_error("%s", "--children follows the process tree "
				   "with eBPF: not with --no-bpf");
	if (o.proc || o.merge)
		return usage_error("%s", "--proc and --merge are for report");
	if (argc < 1 && !o.pid)
		return usage_error("%s", "no command to run (pyprof [OPTIONS] "
				   "-- COMMAND [ARGS...])");
	if (sub && !o.output)
		return usage_error("%s", "record needs -o FILE");
	if (o.have_max_size && !sub)
		return usage_error("%s", "--max-size is for record (the trace "
				   "it writes)");
	/* a checkpoint holds one process: no default cap with --children */
	if (sub && o.pid && !o.have_max_size && !o.children)
		o.max_size = DEFAULT_PID_MAX_SIZE;
	if (sub && !strcmp(o.output, "-"))
		return usage_error("%s", "record writes its trace to a file "
				   "(-o FILE), not to stdout, which is the "
				   "command's");
	if (o.pid && !o.sample_given)
		o.sample = PP_ATTACH_SAMPLE;	/* the service keeps its pace */
	/* a uprobe per GIL hand-off costs a busy service more than the
	 * shim does (README, Attaching): waits only, unless asked */
	if (o.pid && !o.gil_given)
		o.gil = PP_GIL_MODE_FUTEX;
	if (o.pid)
		return do_run(NULL, &o, sub != NULL);
	if (sub && overwrites_input(o.output, argv))
		return usage_error("-o %s would overwrite the command's own "
				   "file", o.output);
	return do_run(argv, &o, sub != NULL);
}

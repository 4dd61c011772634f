// SPDX-License-Identifier: MIT
/*
 * Wrap mode: the target is our child, started with the shim preloaded
 * and the ring's memfd inherited. The loop drains the ring, stamps
 * time and RSS into the stream every 100 ms and time alone every 5 ms
 * while records flow (the producers send no timestamps on the hot
 * path), flushes the trace every second, and
 * ends when the command does.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "bpf.h"
#include "ckpt.h"
#include "drain.h"
#include "pp_clock.h"
#include "pp_pylayout.h"
#include "pp_ring.h"
#include "procs.h"
#include "session.h"
#include "symbols.h"
#include "trace.h"
#include "uprobe_warm.h"

#define unlikely(x) __builtin_expect(!!(x), 0)
#define TICK_NS 100000000ull
#define CLOCK_NS 5000000ull	/* time stamps while records flow */
#define FLUSH_NS 1000000000ull
#define DRAIN_MAX (4u << 20)
#define DRAIN_BATCH (256u << 10)
/* --children: after the command, its descendants still running are
 * followed this long, then left to run on */
#define CHILDREN_GRACE_S 1.0

struct sess {
	const struct pp_session_opts *o;
	struct pp_ring ring;
	struct pp_trace_writer *tw;
	struct pp_model *m;
	pid_t child;
	int write_err;
	int write_errno;	/* the first failure's errno */
	uint64_t unwritten;	/* records not given to the trace after it */
	uint64_t lost[PP_LOST_NSRC];	/* totals sent in LOST records */
	int saw_proc, py_ok, py_pid, py_ready;
	struct pp_bpf *bpf;
	int warm;		/* pp_uprobe_warm_start's, or -1 */
	char pyver[32];
	uint64_t rss;		/* last reading: a dead target reads as 0 */
	int ring_bad;
	int tick_due;		/* a tick right after this drain */
	struct pp_tree *tree;	/* --children: the command's descendants */
};

static volatile sig_atomic_t forward_sig;

static void on_signal(int sig)
{
	forward_sig = sig;
}

/* A trace write returned e (0 or -errno): the first failure is kept. */
static void write_result(struct sess *s, int e)
{
	if (e < 0 && !s->write_err) {
		s->write_err = 1;
		s->write_errno = -e;
	}
}

/* What the session itself needs to know from the stream. */
static void note(struct sess *s, const struct pp_hdr *rec)
{
	if (rec->type == PP_REC_PROC && !s->saw_proc) {
		const struct pp_rec_proc *p = (const void *)rec;
		size_t n = p->pyver_len < sizeof(s->pyver) - 1 ?
				   p->pyver_len : sizeof(s->pyver) - 1;

		s->saw_proc = 1;
		s->py_ok = p->flags & 1;
		s->py_pid = rec->aux;
		memcpy(s->pyver, p->data, n);
	}
	if (rec->type == PP_REC_MARK && rec->aux == PP_MARK_PY_READY)
		s->py_ready = 1;
	/* the program's run is over: read RSS now, before finalization */
	if (rec->type == PP_REC_MARK && rec->aux == PP_MARK_FINALIZE)
		s->tick_due = 1;
}

/* The model, or with --children the command's model in the mux. */
static void feed(struct sess *s, const struct pp_hdr *rec)
{
	if (s->m->procs)
		pp_procmux_feed(s->m->procs, rec);
	else
		pp_model_feed(s->m, rec);
}

/* --children: the command's records follow (pp_wire.h, PID). */
static void own(struct sess *s)
{
	if (s->tree)
		pp_tree_own(s->tree);
}

/* One record from pyprof itself or the eBPF side. */
static void emit(struct sess *s, const struct pp_hdr *rec)
{
	own(s);
	note(s, rec);
	/* after a failure only the LOST records still go (they are few) */
	if (s->tw && (!s->write_err || rec->type == PP_REC_LOST))
		write_result(s, pp_trace_append(s->tw, rec));
	else if (s->tw)
		s->unwritten++;
	if (s->m)
		feed(s, rec);
}

static void append_run(struct sess *s, const void *recs, size_t len)
{
	const struct pp_hdr *rec;

	if (s->tw && !s->write_err) {
		write_result(s, pp_trace_append_run(s->tw, recs, len));
	} else if (s->tw) {
		pp_rec_for_each(rec, recs, len)
			s->unwritten++;
	}
}

/*
 * A native frame the shim could only name by its offset is named now,
 * while the target's files are at hand, so the trace reads the same on
 * any machine: the run before it goes to the trace, then the named FUNC
 * in its place. 1 if rec was replaced.
 */
static int name_native(struct sess *s, const struct pp_hdr *rec,
		       const char **run)
{
	uint64_t buf[(sizeof(struct pp_rec_func) + 2 * 4096) / 8];
	const struct pp_hdr *named;

	named = pp_symbols_name_func(rec, s->py_pid ? s->py_pid : s->child,
				     buf, sizeof(buf));
	if (!named)
		return 0;
	append_run(s, *run, (const char *)rec - *run);
	emit(s, named);
	*run = (const char *)rec + rec->len;
	return 1;
}

/*
 * A run of records from the ring: the trace takes them in one copy,
 * and only what the session or the model must see is looked at one by
 * one (the collector keeps up with the target this way).
 */
static void drained(const void *recs, size_t len, void *ctx)
{
	struct sess *s = ctx;
	const struct pp_hdr *rec;
	const char *run = recs;

	own(s);
	/* heap records only (the drain saw their types): nothing to look
	 * at one by one, unless a model is fed */
	if (!s->m && !(s->ring.run_types & ~((1u << PP_REC_FUNC) - 1))) {
		append_run(s, recs, len);
		return;
	}
	pp_rec_for_each(rec, recs, len) {
		if (unlikely(rec->type >= PP_REC_FUNC)) {
			note(s, rec);
			if (rec->type == PP_REC_FUNC && name_native(s, rec, &run))
				continue;
		}
		if (s->m)
			feed(s, rec);
	}
	append_run(s, run, (const char *)recs + len - run);
}

/* Of the ring's records, what the session looks at itself (note(),
 * name_native()): pp_trace_take stops at them. */
#define LOOK ((1u << PP_REC_FUNC) | (1u << PP_REC_PROC) | (1u << PP_REC_MARK))

/* A record the session looks at (LOOK): a FUNC is named if need be. */
static void take_one(void *ctx, const struct pp_hdr *rec)
{
	struct sess *s = ctx;
	uint64_t buf[(sizeof(struct pp_rec_func) + 2 * 4096) / 8];
	const struct pp_hdr *named = NULL;

	if (rec->type == PP_REC_FUNC)
		named = pp_symbols_name_func(rec, s->py_pid ? s->py_pid :
					     s->child, buf, sizeof(buf));
	emit(s, named ? named : rec);
}

/*
 * pyprof record's drain (no model fed, the trace being written): the
 * records go from the ring to the trace in one pass, checked and
 * compacted as they are copied; only those in LOOK are handed over
 * one by one.
 */
static long drain_to_trace(struct sess *s)
{
	void *first;
	long n;
	int e;

	/* nothing committed: no PID record for nothing (--children) */
	if (!pp_ring_peek(&s->ring, &first) ||
	    !__atomic_load_n((const uint64_t *)first, __ATOMIC_ACQUIRE))
		return 0;
	own(s);
	n = pp_drain_to_trace(&s->ring, s->tw, DRAIN_MAX, LOOK, take_one, s,
			      &e);
	write_result(s, e);
	return n;
}

static void from_bpf(const struct pp_hdr *rec, void *ctx)
{
	emit(ctx, rec);
}

/* The program runs its own code from now on: the leak windows start. */
static void emit_run_mark(struct sess *s)
{
	struct pp_rec_mark mk = {
		.h = { .len = sizeof(mk), .type = PP_REC_MARK,
		       .aux = PP_MARK_RUN },
		.ts = pp_now_ns(),
	};

	emit(s, &mk.h);
}

/*
 * The Python process announced itself: attach the eBPF probes to it,
 * or, when they cannot be had, tell the shim to measure stalls itself;
 * either way release its start-up.
 */
static void attach_probes(struct sess *s)
{
	struct pp_ring_hdr *h = s->ring.hdr;
	unsigned mode = PP_BPF_GC | PP_BPF_LOCKS | PP_BPF_KMEM;
	char err[256];

	if (s->o->gil == PP_GIL_MODE_PRECISE)
		mode |= PP_BPF_GIL;
	else if (s->o->gil == PP_GIL_MODE_FUTEX)
		mode |= PP_BPF_GIL | PP_BPF_GIL_FUTEX;
	if (s->o->no_bpf || !s->py_ok ||
	    pp_bpf_attach(&s->bpf, s->py_pid, mode, from_bpf, s, err,
			  sizeof(err)) < 0) {
		if (!s->o->no_bpf && s->py_ok)
			fprintf(stderr, "pyprof: %s; GC, GIL and lock figures "
				"come from the in-process fallback\n", err);
		s->bpf = NULL;
		__atomic_or_fetch(&h->opts, PP_OPT_SHIM_STALLS, __ATOMIC_RELEASE);
	}
	pp_uprobe_warm_stop(s->warm);
	s->warm = -1;
	__atomic_store_n(&h->attached, 1, __ATOMIC_RELEASE);
	emit_run_mark(s);
}

/* RssAnon + RssFile: the ring's shared pages are ours, not the target's. */
static uint64_t read_rss(pid_t pid)
{
	char path[64], line[256];
	uint64_t kb, total = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "RssAnon: %lu", &kb) == 1 ||
		    sscanf(line, "RssFile: %lu", &kb) == 1)
			total += kb * 1024;
	}
	fclose(f);
	return total;
}

/* A time stamp for what was drained (the leak windows need it). */
static void emit_clock(struct sess *s, uint64_t ts)
{
	struct pp_rec_tick t = {
		.h = { .len = sizeof(t), .type = PP_REC_TICK,
		       .flags = PP_TICK_CLOCK },
		.ts = ts,
		.rss_bytes = s->rss,
		.dropped = __atomic_load_n(&s->ring.hdr->dropped,
					   __ATOMIC_RELAXED),
	};

	emit(s, &t.h);
}

/* Records the trace lost: failed chunks, and what came after a failure. */
static uint64_t lost_total(const struct sess *s)
{
	return s->tw ? pp_trace_lost(s->tw) + s->unwritten : 0;
}

/*
 * Every place events are lost, as LOST records of each total that grew:
 * the shim's ring, each eBPF ring buffer, chunks the trace could not
 * take. (A trace_write total can only reach the file in a later chunk
 * that does get written; the model sees it at once.)
 */
static void emit_losses(struct sess *s)
{
	uint64_t now[PP_LOST_NSRC] = { 0 };
	int i;

	now[PP_LOST_SHIM_RING] = __atomic_load_n(&s->ring.hdr->dropped,
						 __ATOMIC_RELAXED);
	for (i = PP_LOST_BPF_GIL; i <= PP_LOST_BPF_KMEM; i++)
		now[i] = s->bpf ? pp_bpf_lost(s->bpf, i) : 0;
	now[PP_LOST_TRACE_WRITE] = lost_total(s);
	for (i = 0; i < PP_LOST_NSRC; i++) {
		struct pp_rec_lost r = {
			.h = { .len = sizeof(r), .type = PP_REC_LOST,
			       .flags = i },
			.count = now[i],
		};

		if (now[i] <= s->lost[i])
			continue;
		s->lost[i] = now[i];
		emit(s, &r.h);
	}
}

static void emit_tick(struct sess *s, uint64_t ts)
{
	struct pp_ring_hdr *h = s->ring.hdr;
	pid_t pid = h->owner_pid ? h->owner_pid : s->child;
	uint64_t rss = read_rss(pid);
	struct pp_rec_tick t = {
		.h = { .len = sizeof(t), .type = PP_REC_TICK },
		.ts = ts,
		.dropped = __atomic_load_n(&h->dropped, __ATOMIC_RELAXED),
	};

	if (rss)
		s->rss = rss;
	t.rss_bytes = s->rss;

	emit(s, &t.h);
	emit_losses(s);
}

static void emit_meta(struct sess *s, uint64_t ts)
{
	char buf[8192];
	size_t n = 0, len;
	char **a;
	struct pp_rec_meta *r = (void *)buf;
	struct timespec rt;

	n += snprintf(r->data + n, 4096, "argv\t");
	for (a = s->o->cmd; *a && n < 4000; a++)
		n += snprintf(r->data + n, 4096 - n, "%s%s", a == s->o->cmd ?
			      "" : "\t", *a);
	n += snprintf(r->data + n, 4096 - n, "\nversion\t1\n");
	len = PP_REC_ALIGN(sizeof(*r) + n);
	memset(r->data + n, 0, len - sizeof(*r) - n);
	clock_gettime(CLOCK_REALTIME, &rt);
	r->h = (struct pp_hdr){ .len = len, .type = PP_REC_META,
				.aux = s->child };
	r->ts = ts;
	r->realtime_ns = rt.tv_sec * 1000000000ull + rt.tv_nsec;
	r->sample_bytes = s->o->sample_bytes;
	emit(s, &r->h);
}

static void emit_exit(struct sess *s, int status)
{
	struct pp_rec_exit e = {
		.h = { .len = sizeof(e), .type = PP_REC_EXIT, .aux = s->child },
		.ts = pp_now_ns(),
	};

	if (WIFSIGNALED(status)) {
		e.h.flags = 1;
		e.status = WTERMSIG(status);
	} else {
		e.status = WEXITSTATUS(status);
	}
	emit(s, &e.h);
}

/* LD_PRELOAD gets the shim in front; the ring fd travels by number.
 * gofd (--children, else -1): wait for the parent to follow the tree
 * before anything runs. */
static void exec_child(const struct pp_session_opts *o, int fd, int errfd,
		       int gofd)
{
	const char *pre = getenv("LD_PRELOAD");
	char num[16], *val, c;

	if (gofd >= 0) {
		while (read(gofd, &c, 1) < 0 && errno == EINTR)
			;
		close(gofd);
	}

	if (pre && *pre) {
		if (asprintf(&val, "%s:%s", o->shim_path, pre) < 0)
			_exit(127);
	} else {
		val = (char *)o->shim_path;
	}
	setenv("LD_PRELOAD", val, 1);
	snprintf(num, sizeof(num), "%d", fd);
	setenv("PYPROF_RING_FD", num, 1);
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	execvp(o->cmd[0], o->cmd);
	/* tell the parent why (the pipe closes on a successful exec) */
	{
		int e = errno;

		if (write(errfd, &e, sizeof(e)) < 0)
			_exit(127);
		_exit(e == ENOENT ? 127 : 126);
	}
}

/* --children: the descendants followed up to grace_s more, then let go */
static void close_tree(struct sess *s, double grace_s)
{
	if (s->tree && pp_tree_close(s->tree, grace_s))
		write_result(s, -EIO);
	s->tree = NULL;
}

/* Drain; a ring the target scribbled over ends the recording. */
static long drain(struct sess *s)
{
	long n = !s->m && s->tw && !s->write_err ? drain_to_trace(s) :
		 pp_ring_drain(&s->ring, DRAIN_MAX, drained, s);

	if (n < 0 && !s->ring_bad) {
		fprintf(stderr, "pyprof: the event ring holds a record no "
			"producer wrote (the target overwrote it?): recording "
			"stops here\n");
		s->ring_bad = 1;
		__atomic_store_n(&s->ring.hdr->collector_alive, 0,
				 __ATOMIC_RELEASE);
	}
	return n;
}

static void drain_all(struct sess *s)
{
	while (!s->ring_bad && drain(s) > 0)
		;
}

/* Stop profiling a target that runs on: probes off, the shim told. */
static void stop_recording(struct sess *s)
{
	uint64_t t = pp_now_ns();	/* removing probes takes a while */

	emit_losses(s);		/* the eBPF counters go with the probes */
	/* the shim first: while the probes go, nobody drains its ring */
	__atomic_store_n(&s->ring.hdr->collector_alive, 0, __ATOMIC_RELEASE);
	if (s->bpf)
		pp_bpf_detach(s->bpf);
	s->bpf = NULL;
	drain_all(s);
	emit_tick(s, t);
	close_tree(s, 0);	/* the descendants run on too */
}

/* The command's status as a shell reports it: 128 + N for signal N. */
static int shell_status(int status)
{
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* Nothing worth keeping: leave no trace file and no ring behind. */
static int fail(struct sess *s)
{
	if (s->tw) {
		pp_trace_close(s->tw);
		unlink(s->o->trace_path);
		s->tw = NULL;
	}
	if (s->ring.hdr)
		pp_ring_unmap(&s->ring);
	return 1;
}

int pp_session_run(const struct pp_session_opts *o, struct pp_model *m)
{
	struct sess s = { .o = o, .m = m, .warm = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t start, last_tick, last_flush, last_clock, t, lost_writes = 0;
	int fd, status = 0, rc, running = 1, recording = 1;
	char err[256];
	struct rusage ru = { 0 };
	int errpipe[2], exec_err, gopipe[2] = { -1, -1 };

	if (o->pid)
		return pp_attach_run(o, m);
	if (o->children && !pp_may_load_bpf()) {
		fprintf(stderr, "pyprof: --children needs root or "
			"CAP_BPF+CAP_PERFMON\n");
		return 1;
	}
	fd = pp_ring_create(&s.ring, o->ring_bytes, PP_RING_BLOCK);
	if (fd < 0) {
		fprintf(stderr, "pyprof: cannot create the event ring: %s\n",
			strerror(-fd));
		return 1;
	}
	s.ring.hdr->sample_bytes = o->sample_bytes;
	s.ring.hdr->opts = (o->native ? PP_OPT_NATIVE : 0) | PP_OPT_WAIT_ATTACH |
			   (o->children ? PP_OPT_CHILDREN : 0);
	if (o->trace_path) {
		s.tw = pp_trace_create(o->trace_path, err, sizeof(err));
		if (!s.tw) {
			fprintf(stderr, "pyprof: %s: %s\n", o->trace_path, err);
			return 1;
		}
		/* a checkpoint holds one process's live state */
		if (o->max_size && o->children)
			fprintf(stderr, "pyprof: --max-size is not applied "
				"with --children (the trace keeps growing)\n");
		else if (o->max_size)
			pp_ckpt_cap(s.tw, o->max_size);
	}
	signal(SIGINT, SIG_IGN);	/* the terminal's ^C is for the target */
	signal(SIGQUIT, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	start = pp_now_ns();
	if (!o->no_bpf)
		s.warm = pp_uprobe_warm_start();
	if (pipe2(errpipe, O_CLOEXEC) < 0 ||
	    (o->children && pipe2(gopipe, O_CLOEXEC) < 0) ||
	    (s.child = fork()) < 0) {
		fprintf(stderr, "pyprof: cannot start %s: %s\n", o->cmd[0],
			strerror(errno));
		return fail(&s);
	}
	if (s.child == 0) {
		close(errpipe[0]);
		if (gopipe[1] >= 0)
			close(gopipe[1]);
		exec_child(o, fd, errpipe[1], gopipe[0]);
	}
	close(fd);
	close(errpipe[1]);
	if (o->children) {
		/* the tree's probe before the command runs: no fork missed */
		close(gopipe[0]);
		s.tree = pp_tree_open(o, m, s.tw, s.child,
				      &s.ring.hdr->owner_pid, err, sizeof(err));
		if (!s.tree)
			fprintf(stderr, "pyprof: %s\n", err);
		close(gopipe[1]);	/* go */
	}
	if (read(errpipe[0], &exec_err, sizeof(exec_err)) == sizeof(exec_err)) {
		fprintf(stderr, "pyprof: cannot run %s: %s\n", o->cmd[0],
			strerror(exec_err));
		waitpid(s.child, &status, 0);
		close(errpipe[0]);
		close_tree(&s, 0);
		fail(&s);
		return exec_err == ENOENT ? 127 : 126;
	}
	close(errpipe[0]);
	emit_meta(&s, start);
	last_tick = last_flush = last_clock = start;

	while (running) {
		long got = recording && !s.ring_bad ? drain(&s) : 0;

		if (s.py_ready && !s.ring.hdr->attached)
			attach_probes(&s);
		if (s.bpf && recording)
			pp_bpf_poll(s.bpf, 0);
		if (s.tree)
			pp_tree_poll(s.tree);
		t = pp_now_ns();
		if (recording && (s.tick_due || t - last_tick >= TICK_NS)) {
			s.tick_due = 0;
			emit_tick(&s, t);
			last_tick = last_clock = t;
		} else if (recording && got > 0 && t - last_clock >= CLOCK_NS) {
			emit_clock(&s, t);
			last_clock = t;
		}
		if (s.tw && t - last_flush >= FLUSH_NS) {
			write_result(&s, pp_trace_flush(s.tw));
			last_flush = t;
		}
		/* a trace that cannot be written: stop costing the target */
		if (recording && s.write_err && !m) {
			stop_recording(&s);
			recording = 0;
		}
		if (forward_sig) {
			kill(s.child, forward_sig);
			forward_sig = 0;
		}
		/* the viewer closed, or --duration is up: the target runs on */
		if (recording && ((o->poll && o->poll(o->poll_ctx, m)) ||
				  (o->duration > 0 &&
				   t - start >= o->duration * 1e9))) {
			stop_recording(&s);
			recording = 0;
		} else if (!recording && o->poll) {
			o->poll(o->poll_ctx, m);
		}
		rc = wait4(s.child, &status, WNOHANG, &ru);
		if (rc == s.child) {
			running = 0;
			break;
		}
		if (got < (long)DRAIN_BATCH) {
			/*
			 * Let the ring fill a little: reading the producers'
			 * position in a tight loop would steal their cache
			 * line on every record they reserve.
			 */
			struct timespec nap = { 0, 1000000 };

			nanosleep(&nap, NULL);
		}
	}
	if (recording) {
		emit_losses(&s);
		if (s.bpf)
			pp_bpf_detach_target_gone(s.bpf);
		s.bpf = NULL;
		drain_all(&s);
		emit_tick(&s, pp_now_ns());
	}
	emit_exit(&s, status);
	close_tree(&s, CHILDREN_GRACE_S);
	if (getenv("PYPROF_DEBUG"))
		fprintf(stderr, "pyprof: ring: %lu producer waits, %lu dropped; "
			"target cpu %.3f s\n", (unsigned long)s.ring.hdr->waits,
			(unsigned long)s.ring.hdr->dropped,
			ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
			(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	__atomic_store_n(&s.ring.hdr->collector_alive, 0, __ATOMIC_RELEASE);
	if (!s.saw_proc || !s.py_ok) {
		/* nothing recorded: remove the empty trace */
		fail(&s);
		if (!s.saw_proc)
			fprintf(stderr, "pyprof: %s did not run a CPython "
				"interpreter: nothing was recorded\n",
				o->cmd[0]);
		else if (strstr(s.pyver, "free-thread"))
			/* Py_GetVersion(): "3.14.0 experimental
			 * free-threading build ..." */
			fprintf(stderr, "pyprof: Python %.*s is a free-threaded "
				"build: not supported (pyprof reads GIL builds "
				"of CPython " PP_PY_RANGE "): nothing was "
				"recorded\n",
				(int)strcspn(s.pyver, " "), s.pyver);
		else
			fprintf(stderr, "pyprof: Python %s is not supported "
				"(pyprof reads CPython " PP_PY_RANGE "): nothing "
				"was recorded\n", s.pyver);
		return shell_status(status);
	}
	if (s.tw) {
		/* the last chunk's loss, in one more (small) chunk */
		emit_losses(&s);
		write_result(&s, pp_trace_flush(s.tw));
		if (lost_total(&s) > s.lost[PP_LOST_TRACE_WRITE]) {
			emit_losses(&s);
			write_result(&s, pp_trace_flush(s.tw));
		}
		lost_writes = lost_total(&s);
		write_result(&s, pp_trace_close(s.tw));
	}
	pp_ring_unmap(&s.ring);

	/* our failure, not the command's: said once, its status still wins */
	if (s.write_err)
		fprintf(stderr, "pyprof: writing %s failed (%s): %llu records "
			"lost, the trace is incomplete\n", o->trace_path,
			s.write_errno ? strerror(s.write_errno) : "I/O error",
			(unsigned long long)lost_writes);
	return shell_status(status);
}

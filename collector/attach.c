// SPDX-License-Identifier: MIT
/*
 * Attach mode (see attach.h). The target is not our child and nothing
 * is put into it: every probe is a kernel object held by pyprof's file
 * descriptors, so whenever pyprof ends (detach, or killed at any
 * moment) the kernel removes them and the target runs on untouched.
 * The loop polls the BPF rings, stamps time and RSS into the stream
 * every 100 ms, flushes the trace every second. With --children each
 * process of the tree is a struct aproc of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "attach.h"
#include "bpf.h"
#include "children.h"
#include "ckpt.h"
#include "inject.h"
#include "procfs.h"
#include "pp_clock.h"
#include "pp_mem.h"
#include "procs.h"
#include "pyproc.h"
#include "trace.h"

#define TICK_NS 100000000ull
#define FLUSH_NS 1000000000ull
#define POLL_MS 10	/* a viewer: it reads keys every 20 ms */
/* pyprof record: each wake-up is pyprof's CPU on the service's cores,
 * and each read of the rings re-reads the code objects its stacks name
 * (collector/bpf.c); the rings wake it once a quarter full, and a tick
 * is never late */
#define RECORD_POLL_MS 50
#define INHERITED_NS 3000000000ull
#define EXEC_NS 2000000000ull
#define RETRY_NS 50000000ull

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

/*
 * One attached process: the root, or with --children one of its
 * descendants. Everything pyprof holds on a process is here, so that
 * each has its own probes (and, once injection is built, its own ring).
 */
struct aproc {
	struct att *a;
	int pid, ppid;			/* ppid 0: the root */
	int pidfd, lockfd;
	struct pp_bpf *bpf;		/* NULL: not Python (yet), or ended */
	int ended, announced;
	struct pp_inject *inj;		/* the shim being loaded, or NULL */
	int inj_said;
	int inj_retry;			/* just exec'd: loading failed, again */
	/* --children: forked from a process with our shim, it unloads the
	 * copy it inherited first (preload/attach.c); started once it is
	 * gone, or at this time without the shim */
	uint64_t inherited_until;
	/* exec'd: its new image is Python once its libpython is mapped and
	 * its interpreter made; tried every RETRY_NS until then */
	uint64_t exec_until, retry_at;
	/* when child_start last looked at its image: an exec before it
	 * was seen (the tree's events may come late) */
	uint64_t seen_ns;
	uint64_t rss;
	uint64_t lost[PP_LOST_NSRC];	/* totals sent in LOST records */
};

struct att {
	const struct pp_session_opts *o;
	struct pp_model *m;
	struct pp_procmux *mux;		/* --children: a model per process */
	struct pp_trace_writer *tw;
	struct pp_children *tree;	/* --children */
	struct aproc **procs;		/* [0]: the root */
	size_t nprocs, cap;
	int cur;			/* whose records were emitted last */
	int write_err;
	/* wrap mode (pp_tree_open): the root is the wrapped command, its
	 * records the session's; the process that claimed its ring */
	int wrap;
	const int32_t *ring_owner;
	uint64_t last_tick;
};

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig)
{
	stop_sig = sig;
}

static void put(struct att *a, const struct pp_hdr *rec)
{
	if (a->tw && !a->write_err && pp_trace_append(a->tw, rec) < 0)
		a->write_err = 1;
	if (a->m && a->o->children)
		pp_procmux_feed(a->mux, rec);
	else if (a->m)
		pp_model_feed(a->m, rec);
}

/* With --children, a PID record when another process's records came
 * last (pp_wire.h): p's follow. */
static void switch_to(struct aproc *p)
{
	struct att *a = p->a;

	if (a->o->children && a->cur != p->pid) {
		struct pp_rec_pid r = {
			.h = { .len = sizeof(r), .type = PP_REC_PID,
			       .flags = p->announced ? 0 : PP_PID_NEW,
			       .aux = p->pid },
			.ts = pp_now_ns(),
			.ppid = p->ppid,
		};

		p->announced = 1;
		a->cur = p->pid;
		put(a, &r.h);
	}
}

/* A record of process p (after its PID record, switch_to). */
static void emit(struct aproc *p, const struct pp_hdr *rec)
{
	switch_to(p);
	put(p->a, rec);
}

static void from_bpf(const struct pp_hdr *rec, void *ctx)
{
	emit(ctx, rec);
}

/* ---- may we, and is it a target at all ---- */

/* CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN) in the effective set. */
int pp_may_load_bpf(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2] = { 0 };

	if (syscall(SYS_capget, &h, d))
		return geteuid() == 0;
	if (d[CAP_SYS_ADMIN / 32].effective & 1u << (CAP_SYS_ADMIN % 32))
		return 1;
	return (d[1].effective & 1u << (CAP_BPF - 32)) &&
	       (d[1].effective & 1u << (CAP_PERFMON - 32));
}

/* The first mapping's start: an address any process can be read at. */
static uint64_t first_mapping(int pid)
{
	char fn[64];
	unsigned long start = 0;
	FILE *f;

	snprintf(fn, sizeof(fn), "/proc/%d/maps", pid);
	f = fopen(fn, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%lx-", &start) != 1)
		start = 0;
	fclose(f);
	return start;
}

/*
 * Reading the target's memory (pp_mem_remote) needs what ptrace
 * needs: the same user, or CAP_SYS_PTRACE, and Yama's leave. Say which
 * in one line rather than let a later read fail obscurely.
 */
static int check_access(int pid)
{
	struct pp_mem mem = pp_mem_remote(pid);
	char fn[64], exe[256], c;
	uint64_t at;
	int e;

	snprintf(fn, sizeof(fn), "/proc/%d/exe", pid);
	if (readlink(fn, exe, sizeof(exe)) < 0 &&
	    (errno == EACCES || errno == EPERM))
		goto denied;
	at = first_mapping(pid);
	if (!at) {
		if (errno == EACCES || errno == EPERM)
			goto denied;
		/* a kernel thread or a zombie: no memory at all */
		fprintf(stderr, "pyprof: pid %d has no user memory (a kernel "
			"thread or a process that is exiting): not a Python "
			"process\n", pid);
		return -1;
	}
	e = pp_mem_read(&mem, at, &c, 1);
	if (!e || (e != -EPERM && e != -EACCES))
		return 0;
denied:
	fprintf(stderr, "pyprof: may not read pid %d's memory (another user's "
		"process needs CAP_SYS_PTRACE; kernel.yama.ptrace_scope may "
		"forbid it too)\n", pid);
	return -1;
}

enum { SHIM_NONE, SHIM_OURS, SHIM_OTHER };

/*
 * A target wrapped by pyprof has the shim mapped: its eBPF is taken.
 * SHIM_OURS: a copy this pyprof loaded (collector/inject.c names it
 * libpyprof.so.OURPID.XXXXXX, a file or /memfd:NAME), which a process
 * forked from one we attached to inherits and unloads by itself. *ring
 * (may be NULL): an event ring is mapped (common/ring_drain.c names its
 * memfd).
 */
static int has_shim_ring(int pid, int *ring)
{
	char fn[64], line[4096], ours[64], oursm[64];
	int found = SHIM_NONE;
	FILE *f;

	if (ring)
		*ring = 0;

	snprintf(fn, sizeof(fn), "/proc/%d/maps", pid);
	snprintf(ours, sizeof(ours), "/libpyprof.so.%d.", (int)getpid());
	snprintf(oursm, sizeof(oursm), "/memfd:libpyprof.so.%d.",
		 (int)getpid());
	f = fopen(fn, "re");
	if (!f)
		return SHIM_NONE;
	while (fgets(line, sizeof(line), f)) {
		if (ring && strstr(line, "/memfd:pyprof-ring"))
			*ring = 1;
		if (found == SHIM_OTHER)
			continue;
		if (strstr(line, ours) || strstr(line, oursm))
			found = SHIM_OURS;
		else if (strstr(line, "/libpyprof.so") ||
			 strstr(line, "/memfd:libpyprof.so"))
			found = SHIM_OTHER;
	}
	fclose(f);
	return found;
}

static int has_shim(int pid)
{
	return has_shim_ring(pid, NULL);
}

/* Field 22 of /proc/PID/stat: with the pid, names this process (a
 * recycled pid gets another start time). */
static unsigned long long start_time(int pid)
{
	char buf[1024];
	const char *p = pp_procfs_stat(pid, buf, sizeof(buf));
	int i;

	for (i = 3; p && i < 22; i++) {	/* p is at field i */
		p = strchr(p, ' ');
		p = p ? p + 1 : NULL;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

/*
 * One pyprof per target: an abstract unix socket named after the
 * target's pid and start time. The kernel removes the name when its
 * last descriptor closes, so a pyprof killed at any moment leaves
 * nothing behind (a lock file or a pinned BPF object would stay).
 */
static int take_lock(int pid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd, n;

	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
		     "pyprof/attach/%d/%llu", pid, start_time(pid));
	len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	return fd;
}

/* ---- the stream ---- */

static uint64_t read_rss(int pid)
{
	char path[64], line[256];
	uint64_t kb, total = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %" SCNu64, &kb) == 1 ||
		    sscanf(line, "RssFile: %" SCNu64, &kb) == 1)
			total += kb * 1024;
	fclose(f);
	return total;
}

/* The shim's ring's, each eBPF ring's and the trace's losses, as LOST
 * records of each total that grew. */
static void emit_losses(struct aproc *a)
{
	struct pp_ring *ring = a->inj ? pp_inject_ring(a->inj) : NULL;
	uint64_t now[PP_LOST_NSRC] = { 0 };
	int i;

	now[PP_LOST_SHIM_RING] = ring ? __atomic_load_n(&ring->hdr->dropped,
							__ATOMIC_RELAXED) :
				       a->lost[PP_LOST_SHIM_RING];
	for (i = PP_LOST_BPF_GIL; i <= PP_LOST_BPF_KMEM; i++)
		now[i] = a->bpf ? pp_bpf_lost(a->bpf, i) : a->lost[i];
	/* the trace's losses are the root's (one file for all) */
	now[PP_LOST_TRACE_WRITE] = a->a->tw && !a->ppid ?
					   pp_trace_lost(a->a->tw) : 0;
	for (i = 0; i < PP_LOST_NSRC; i++) {
		struct pp_rec_lost r = {
			.h = { .len = sizeof(r), .type = PP_REC_LOST,
			       .flags = i },
			.count = now[i],
		};

		if (now[i] <= a->lost[i])
			continue;
		a->lost[i] = now[i];
		emit(a, &r.h);
	}
}

static void emit_tick(struct aproc *a, uint64_t ts)
{
	uint64_t rss = a->ended ? 0 : read_rss(a->pid);
	struct pp_rec_tick t = {
		.h = { .len = sizeof(t), .type = PP_REC_TICK },
		.ts = ts,
	};

	if (rss || a->ended)
		a->rss = rss;
	t.rss_bytes = a->rss;
	emit_losses(a);
	emit(a, &t.h);
}

/* argv from /proc/PID/cmdline, tab-separated as in wrap mode; the
 * "attach" key tells the model, the report and the viewer the mode. */
static void emit_meta(struct aproc *a, uint64_t ts)
{
	union {
		struct pp_rec_meta r;
		char buf[sizeof(struct pp_rec_meta) + 4200];
	} u;
	char fn[64], cmd[4000];
	size_t n = 0, len;
	ssize_t got = 0, i;
	struct timespec rt;
	int fd;

	snprintf(fn, sizeof(fn), "/proc/%d/cmdline", a->pid);
	fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		got = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
	}
	if (got < 0)
		got = 0;
	while (got > 0 && !cmd[got - 1])
		got--;
	for (i = 0; i < got; i++)	/* META is one key per line */
		if (!cmd[i] || cmd[i] == '\n' || cmd[i] == '\t')
			cmd[i] = !cmd[i] ? '\t' : ' ';
	cmd[got] = 0;
	memset(&u, 0, sizeof(u));
	n = snprintf(u.r.data, 4200, "argv\t%s\nversion\t1\nattach\t%s\n", cmd,
		     a->inj ? PP_ATTACH_SHIM : PP_ATTACH_NO_INJECT);
	len = PP_REC_ALIGN(sizeof(u.r) + n);
	clock_gettime(CLOCK_REALTIME, &rt);
	u.r.h = (struct pp_hdr){ .len = len, .type = PP_REC_META,
				 .aux = a->pid };
	u.r.ts = ts;
	u.r.realtime_ns = rt.tv_sec * 1000000000ull + rt.tv_nsec;
	u.r.sample_bytes = a->inj ? a->a->o->sample_bytes : 0;
	emit(a, &u.r.h);
}

static void emit_proc(struct aproc *a)
{
	const struct pp_pyproc *p = pp_bpf_proc(a->bpf);
	union {
		struct pp_rec_proc r;
		char buf[sizeof(struct pp_rec_proc) + 40];
	} u;
	size_t n = strlen(p->version);

	memset(&u, 0, sizeof(u));
	u.r.h.len = PP_REC_ALIGN(sizeof(u.r) + n);
	u.r.h.type = PP_REC_PROC;
	u.r.h.aux = a->pid;
	u.r.pyver_len = n;
	u.r.flags = 1;		/* supported: the probes are on */
	u.r.ts = pp_now_ns();
	memcpy(u.r.data, p->version, n);
	emit(a, &u.r.h);
}

static int target_gone(struct aproc *a)
{
	struct pollfd p = { .fd = a->pidfd, .events = POLLIN };

	if (a->pidfd >= 0)
		return poll(&p, 1, 0) == 1;
	return kill(a->pid, 0) && errno == ESRCH;
}

/* ---- the session ---- */

static unsigned bpf_mode(const struct pp_session_opts *o, int shim)
{
	/* with the shim, mappings are its records; the kernel's the total */
	unsigned mode = PP_BPF_GC | PP_BPF_LOCKS | PP_BPF_KMEM |
			(shim ? 0 : PP_BPF_KMEM_LINES | PP_BPF_KMEM_FAULTS);

	if (o->gil == PP_GIL_MODE_PRECISE)
		mode |= PP_BPF_GIL;
	else if (o->gil == PP_GIL_MODE_FUTEX)
		mode |= PP_BPF_GIL | PP_BPF_GIL_FUTEX;
	return mode;
}

/* ---- the shim (inject.h) ---- */

static void from_ring(const void *recs, size_t len, void *ctx)
{
	struct aproc *p = ctx;
	struct att *a = p->a;
	const struct pp_hdr *rec;

	if (a->o->children) {	/* each after its PID record */
		pp_rec_for_each(rec, recs, len)
			emit(p, rec);
		return;
	}
	if (a->tw && !a->write_err &&
	    pp_trace_append_run(a->tw, recs, len) < 0)
		a->write_err = 1;
	if (a->m)
		pp_rec_for_each(rec, recs, len)
			pp_model_feed(a->m, rec);
}

/* With --children, into each process of the tree: each its own ring. */
static void start_inject(struct aproc *p)
{
	const struct pp_session_opts *o = p->a->o;
	struct pp_pyproc py;
	char err[512];

	if (o->no_inject || p->inherited_until == UINT64_MAX)
		return;
	/* not a Python we read: the eBPF attach says so, in its one line */
	if (pp_pyproc_open(&py, p->pid, err, sizeof(err)) < 0) {
		if (getenv("PYPROF_DEBUG"))
			fprintf(stderr, "pyprof: no shim for pid %d: %s\n",
				p->pid, err);
		return;
	}
	if (!o->shim_path || !o->shim_path[0])
		snprintf(err, sizeof(err), "no libpyprof.so next to pyprof");
	else
		p->inj = pp_inject_start(&py, o->shim_path, o->ring_bytes,
					 o->sample_bytes, 0, err, sizeof(err));
	if (p->inj)
		return;
	/* just exec'd, its interpreter half made (3.14: no main thread
	 * state yet): child_wait() tries again, EXEC_NS at most */
	if (p->exec_until && pp_now_ns() < p->exec_until) {
		p->inj_retry = 1;
		return;
	}
	fprintf(stderr, "pyprof: cannot load the shim into pid %d (%s): "
		"attaching with eBPF only (as --no-inject)\n", p->pid, err);
}

static void inject_failed(struct aproc *p, const char *err)
{
	if (p->a->o->children)
		fprintf(stderr, "pyprof: pid %d: %s\n", p->pid, err);
	else
		fprintf(stderr, "pyprof: %s\n", err);
	p->inj_said = 1;
}

/* The shim connected (once), and what it recorded. */
static void poll_inject(struct aproc *p)
{
	struct pp_ring *r;
	char err[256];

	if (!p->inj)
		return;
	if (!p->inj_said) {
		int rc = pp_inject_poll(p->inj, err, sizeof(err));

		if (rc < 0)
			inject_failed(p, err);
		if (rc > 0) {
			struct pp_rec_mark mk = {
				.h = { .len = sizeof(mk), .type = PP_REC_MARK,
				       .aux = PP_MARK_RUN },
				.ts = pp_now_ns(),
			};

			p->inj_said = 1;
			emit(p, &mk.h);
			if (getenv("PYPROF_DEBUG") && p->ppid)
				fprintf(stderr, "pyprof: the shim is loaded "
					"(child %d)\n", p->pid);
			else if (getenv("PYPROF_DEBUG"))
				fprintf(stderr, "pyprof: the shim is loaded\n");
		}
	}
	r = pp_inject_ring(p->inj);
	if (r)
		while (pp_ring_drain(r, 4u << 20, from_ring, p) > 0)
			;
}

static void stop_inject(struct aproc *p)
{
	int was;

	if (!p->inj)
		return;
	was = pp_inject_ring(p->inj) != NULL;
	emit_losses(p);		/* the ring's drops so far */
	if (!pp_inject_stop(p->inj, from_ring, p, 2.0) && was)
		fprintf(stderr, "pyprof: pid %d unloads the shim when its main "
			"thread next runs Python code and no call is inside "
			"the shim\n", p->pid);
	p->inj = NULL;
}

/* ---- the processes ---- */

static void proc_stop(struct aproc *p, int gone)
{
	if (p->bpf) {
		emit_losses(p);	/* the counters go with the probes */
		if (gone)
			pp_bpf_detach_target_gone(p->bpf);
		else
			pp_bpf_detach(p->bpf);
		p->bpf = NULL;
	}
}

static void proc_free(struct aproc *p)
{
	if (p->lockfd >= 0)
		close(p->lockfd);
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p);
}

/*
 * Profile process p: probes on its interpreter, its META and PROC in the
 * stream, and the shim loaded into it (start_inject). 0, 1 when it is
 * to be tried again (start_inject), or -1 with one line in err.
 */
static int proc_start(struct aproc *p, char *err, size_t errlen)
{
	struct pp_inject_answer *ans;
	char why[256];
	int rc;

	start_inject(p);
	if (p->inj_retry) {
		p->inj_retry = 0;
		return 1;
	}
	emit_meta(p, pp_now_ns());
	/* the shim may load meanwhile: it is answered */
	ans = pp_inject_answer_begin(p->inj);
	if (getenv("PYPROF_TEST_PROBES_DELAY"))	/* a loaded machine */
		usleep(atof(getenv("PYPROF_TEST_PROBES_DELAY")) * 1e6);
	rc = pp_bpf_attach(&p->bpf, p->pid, bpf_mode(p->a->o, p->inj != NULL),
			   from_bpf, p, err, errlen);
	if (pp_inject_answer_end(ans, why, sizeof(why)) < 0)
		inject_failed(p, why);
	if (rc < 0) {
		stop_inject(p);
		return -1;
	}
	emit_proc(p);
	emit_tick(p, pp_now_ns());
	return 0;
}

static struct aproc *proc_new(struct att *a, int pid, int ppid)
{
	struct aproc *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->a = a;
	p->pid = pid;
	p->ppid = ppid;
	p->pidfd = p->lockfd = -1;
	a->procs = pp_grow(a->procs, &a->cap, a->nprocs + 1,
			   sizeof(*a->procs));
	a->procs[a->nprocs++] = p;
	return p;
}

static struct aproc *proc_find(struct att *a, int pid)
{
	size_t i;

	for (i = 0; i < a->nprocs; i++)
		if (a->procs[i]->pid == pid && !a->procs[i]->ended)
			return a->procs[i];
	return NULL;
}

/*
 * A descendant (--children), found running or just forked, or one that
 * exec'd (its probes must be set on the new image). One that is not a
 * Python pyprof reads (a shell, a helper) is followed but not profiled;
 * its own children still are.
 */
static void child_start(struct aproc *p)
{
	char err[512];
	size_t i;
	int ring, rc;

	/* a shim that connected meanwhile waits for its ring (2 s at most,
	 * its main thread held): attaching to a tree takes longer */
	for (i = 0; i < p->a->nprocs; i++)
		if (p->a->procs[i] != p)
			poll_inject(p->a->procs[i]);

	/* wrap mode: the process recording into the wrap ring has its
	 * shim from the start (it claims the ring before its interpreter
	 * is made, so before pyproc_open can succeed below) */
	if (p->a->ring_owner &&
	    p->pid == __atomic_load_n(p->a->ring_owner, __ATOMIC_ACQUIRE)) {
		p->inherited_until = p->exec_until = 0;
		return;
	}
	p->seen_ns = pp_now_ns();
	switch (has_shim_ring(p->pid, &ring)) {
	case SHIM_OTHER:
		/* wrap mode: the command's preloaded shim, inert in a forked
		 * child; it steps aside (PyMem hooks, freelists) at its first
		 * hook after the fork, then drops the parent's ring's mapping
		 * (preload/shim.c, pp_shim_forked_quiet). One that never held
		 * the ring (not Python, or not the first Python) is inert. */
		if (p->a->wrap) {
			if (!ring || p->a->o->no_inject) {
				if (p->inherited_until != UINT64_MAX)
					p->inherited_until = 0;
				break;
			}
			if (!p->inherited_until)
				p->inherited_until = pp_now_ns() + INHERITED_NS;
			if (p->inherited_until == UINT64_MAX ||
			    pp_now_ns() < p->inherited_until)
				return;	/* child_wait() calls again */
			fprintf(stderr, "pyprof: child %d still holds the "
				"command's shim (it steps aside when it next "
				"runs Python code): eBPF only\n", p->pid);
			p->inherited_until = UINT64_MAX;
			break;
		}
		fprintf(stderr, "pyprof: child %d already runs under pyprof: "
			"not profiled\n", p->pid);
		p->inherited_until = 0;
		return;
	case SHIM_OURS:
		if (p->a->o->no_inject)
			break;	/* the eBPF's view is the same either way */
		if (!p->inherited_until)
			p->inherited_until = pp_now_ns() + INHERITED_NS;
		if (p->inherited_until == UINT64_MAX ||
		    pp_now_ns() < p->inherited_until)
			return;	/* child_wait() calls again */
		fprintf(stderr, "pyprof: child %d still holds the shim it "
			"inherited (it unloads it when it next runs Python "
			"code): eBPF only, as --no-inject\n", p->pid);
		p->inherited_until = UINT64_MAX;
		break;
	default:
		if (p->inherited_until != UINT64_MAX)
			p->inherited_until = 0;
	}
	if (p->exec_until) {
		struct pp_pyproc py;

		if (pp_pyproc_open(&py, p->pid, err, sizeof(err)) < 0 &&
		    pp_now_ns() < p->exec_until) {
			p->retry_at = pp_now_ns() + RETRY_NS;
			return;		/* child_wait() calls again */
		}
	}
	if (p->lockfd < 0)
		p->lockfd = take_lock(p->pid);
	if (p->lockfd < 0) {
		fprintf(stderr, "pyprof: child %d is attached by another "
			"pyprof: not profiled\n", p->pid);
		return;
	}
	if (p->pidfd < 0)
		p->pidfd = syscall(SYS_pidfd_open, p->pid, 0);
	rc = proc_start(p, err, sizeof(err));
	if (rc > 0) {
		p->retry_at = pp_now_ns() + RETRY_NS;
		return;		/* child_wait() calls again */
	}
	p->exec_until = 0;
	if (rc < 0) {
		if (getenv("PYPROF_DEBUG"))
			fprintf(stderr, "pyprof: child %d not profiled: %s\n",
				p->pid, err);
		return;
	}
	if (getenv("PYPROF_DEBUG"))
		fprintf(stderr, "pyprof: attached to child %d (parent %d)\n",
			p->pid, p->ppid);
}

/* Children waiting for the copy they inherited to go, started once it
 * has (typically at their first pending call, within milliseconds of
 * the fork) or after INHERITED_NS without the shim; and those that
 * exec'd, until their new image is a Python we read (EXEC_NS at most). */
static void child_wait(struct att *a)
{
	uint64_t now = pp_now_ns();
	size_t i;

	for (i = 0; i < a->nprocs; i++) {
		struct aproc *p = a->procs[i];

		if (p->ended || p->bpf)
			continue;
		if ((p->inherited_until && p->inherited_until != UINT64_MAX) ||
		    (p->exec_until && now >= p->retry_at))
			child_start(p);
	}
}

static void proc_end(struct aproc *p)
{
	int was = !!p->bpf;

	proc_stop(p, 1);
	stop_inject(p);		/* its ring's last records */
	p->ended = 1;
	if (was)
		emit_tick(p, pp_now_ns());	/* its RSS is gone */
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
	if (p->lockfd >= 0)
		close(p->lockfd);
	p->lockfd = -1;
}

static void on_child(void *ctx, int op, int pid, int ppid, uint64_t ts)
{
	struct att *a = ctx;
	struct aproc *p = proc_find(a, pid);

	switch (op) {
	case PP_CHILD_NEW:
		if (p || stop_sig)
			return;
		p = proc_new(a, pid, ppid);
		if (p)
			child_start(p);
		return;
	case PP_CHILD_EXEC:
		/* profiled already in its new image (found after the exec) */
		if (!p || (p->bpf && ts < p->seen_ns &&
			   (p->inj || p->a->o->no_inject)))
			return;
		proc_stop(p, 0);
		stop_inject(p);		/* the image it was in is gone */
		p->inherited_until = 0;
		p->exec_until = pp_now_ns() + EXEC_NS;
		child_start(p);
		return;
	case PP_CHILD_END:
		if (p && p->ppid)	/* the root's end is its pidfd's */
			proc_end(p);
		return;
	}
}

/* ---- the session ---- */

static int refuse(struct att *a)
{
	size_t i;

	for (i = 0; i < a->nprocs; i++)
		proc_free(a->procs[i]);
	free(a->procs);
	return 1;
}

/* The tree's events, then every process's rings. */
static int drain_procs(struct att *a)
{
	size_t i;
	int rc;

	if (a->tree) {
		pp_children_poll(a->tree);
		child_wait(a);
	}
	for (i = 0; i < a->nprocs; i++) {
		poll_inject(a->procs[i]);
		if (!a->procs[i]->bpf)
			continue;
		rc = pp_bpf_poll(a->procs[i]->bpf, 0);
		if (rc < 0 && rc != -EINTR)
			return rc;
	}
	return 0;
}

/* Every TICK_NS a tick of each process profiled; the processes that
 * ended, ended. The count of those still running. */
static size_t tick_and_reap(struct att *a, uint64_t t)
{
	size_t i, live;

	if (t - a->last_tick >= TICK_NS) {
		for (i = 0; i < a->nprocs; i++)
			if (a->procs[i]->bpf)
				emit_tick(a->procs[i], t);
		a->last_tick = t;
	}
	for (i = 0, live = 0; i < a->nprocs; i++) {
		struct aproc *p = a->procs[i];

		if (!p->ended && p->pidfd >= 0 && target_gone(p)) {
			if (!p->ppid)
				fprintf(stderr, "pyprof: pid %d ended\n", p->pid);
			proc_end(p);
		}
		live += !p->ended;
	}
	return live;
}

/* The end: the tree let go, every shim told to unload at once, the
 * probes off. */
static void detach_all(struct att *a)
{
	uint64_t t = pp_now_ns();	/* removing uprobes takes a while */
	size_t i;

	pp_children_close(a->tree);
	a->tree = NULL;
	for (i = 0; i < a->nprocs; i++)	/* all unload at once */
		if (!a->procs[i]->ended)
			pp_inject_release(a->procs[i]->inj);
	for (i = 0; i < a->nprocs; i++) {
		struct aproc *p = a->procs[i];

		if (!p->ended)
			stop_inject(p);	/* unloaded while its probes run */
		if (!p->bpf)
			continue;
		proc_stop(p, p->ended);
		emit_tick(p, t);
	}
}

/* How long to wait for the rings: not past the next tick. */
static int poll_ms(const struct att *a)
{
	uint64_t t = pp_now_ns(), next = a->last_tick + TICK_NS;
	int ms = a->o->poll ? POLL_MS : RECORD_POLL_MS;

	if (next <= t)
		return 0;
	if ((next - t) / 1000000 + 1 < (uint64_t)ms)
		ms = (next - t) / 1000000 + 1;
	return ms;
}

/* Wait for any ring (or the tree's events) up to poll_ms, then drain. */
static int poll_all(struct att *a)
{
	struct pollfd fds[64];
	size_t i, n = 0;
	int inj = 0;

	for (i = 0; i < a->nprocs && n < 63; i++)
		if (a->procs[i]->bpf)
			fds[n++] = (struct pollfd){
				.fd = pp_bpf_fd(a->procs[i]->bpf),
				.events = POLLIN };
	if (a->tree)
		fds[n++] = (struct pollfd){ .fd = pp_children_fd(a->tree),
					    .events = POLLIN };
	/* a shim's ring is drained often: it has no wake-up of its own */
	for (i = 0; i < a->nprocs && !inj; i++)
		inj = a->procs[i]->inj != NULL;
	if (poll(fds, n, inj ? 1 : poll_ms(a)) < 0 && errno != EINTR)
		return -errno;
	return drain_procs(a);
}

int pp_attach_run(const struct pp_session_opts *o, struct pp_model *m)
{
	struct att a = { .o = o, .m = m };
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t start, rec_start, t, last_flush;
	struct aproc *root;
	char err[512];
	size_t live;

	if (o->no_bpf) {
		fprintf(stderr, "pyprof: --no-bpf cannot attach: attaching "
			"without injection is eBPF only\n");
		return 1;
	}
	if (o->pid == getpid()) {
		fprintf(stderr, "pyprof: pid %d is pyprof itself\n", o->pid);
		return 1;
	}
	snprintf(err, sizeof(err), "/proc/%d", o->pid);
	if (access(err, F_OK)) {
		fprintf(stderr, "pyprof: no process with pid %d\n", o->pid);
		return 1;
	}
	if (!pp_may_load_bpf()) {
		fprintf(stderr, "pyprof: attaching needs root or "
			"CAP_BPF+CAP_PERFMON\n");
		return 1;
	}
	if (check_access(o->pid))
		return 1;
	if (has_shim(o->pid)) {
		fprintf(stderr, "pyprof: pid %d already runs under pyprof (its "
			"shim is loaded)\n", o->pid);
		return 1;
	}
	root = proc_new(&a, o->pid, 0);
	if (!root)
		return 1;
	a.cur = root->pid;	/* the stream starts with its records */
	root->announced = 1;
	root->lockfd = take_lock(root->pid);
	if (root->lockfd < 0) {
		if (root->lockfd == -EADDRINUSE)
			fprintf(stderr, "pyprof: pid %d is already attached by "
				"another pyprof\n", root->pid);
		else
			fprintf(stderr, "pyprof: cannot take the attach lock for "
				"pid %d: %s\n", root->pid,
				strerror(-root->lockfd));
		return refuse(&a);
	}
	root->pidfd = syscall(SYS_pidfd_open, root->pid, 0);

	start = pp_now_ns();
	if (o->trace_path) {
		a.tw = pp_trace_create(o->trace_path, err, sizeof(err));
		if (!a.tw) {
			fprintf(stderr, "pyprof: %s\n", err);
			return refuse(&a);
		}
		/* a checkpoint holds one process's live state */
		if (o->max_size && o->children)
			fprintf(stderr, "pyprof: --max-size is not applied "
				"with --children (the trace keeps growing)\n");
		else if (o->max_size)
			pp_ckpt_cap(a.tw, o->max_size);
	}
	if (m && o->children) {	/* the model's owner frees it */
		a.mux = pp_xmalloc(sizeof(*a.mux));
		pp_procmux_init(a.mux, m);
		m->procs = a.mux;
	}
	/* ^C, q, --duration or a termination signal: detach, never kill */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (proc_start(root, err, sizeof(err)) < 0) {
		fprintf(stderr, "pyprof: %s\n", err);
		if (a.tw) {
			pp_trace_close(a.tw);
			unlink(o->trace_path);
		}
		goto fail;
	}
	if (getenv("PYPROF_DEBUG"))
		fprintf(stderr, "pyprof: attached to pid %d in %.3f s:\n%s",
			root->pid, (pp_now_ns() - start) / 1e9,
			pp_bpf_sources(root->bpf));
	/* the tree's probe first, then what runs already: none is missed */
	if (o->children) {
		if (pp_children_open(&a.tree, root->pid, on_child, &a, err,
				     sizeof(err)) < 0)
			fprintf(stderr, "pyprof: %s\n", err);
		else
			pp_children_scan(a.tree);
	}

	/* --duration is the time attached: attaching (seconds on a loaded
	 * machine) does not eat into it */
	t = rec_start = pp_now_ns();
	a.last_tick = last_flush = t;
	while (!stop_sig) {
		int rc = poll_all(&a);

		if (rc < 0) {
			fprintf(stderr, "pyprof: reading the eBPF rings: %s\n",
				strerror(-rc));
			break;
		}
		t = pp_now_ns();
		if (a.tw && t - last_flush >= FLUSH_NS) {
			if (pp_trace_flush(a.tw) < 0)
				a.write_err = 1;
			last_flush = t;
		}
		live = tick_and_reap(&a, t);
		/* without --children the root's end is the end; with it, the
		 * last process's */
		if (root->ended && (!o->children || !live))
			break;
		if ((o->poll && o->poll(o->poll_ctx, m)) ||
		    (o->duration > 0 && t - rec_start >= o->duration * 1e9))
			break;
	}
	detach_all(&a);
	if (a.tw && pp_trace_close(a.tw) < 0)
		a.write_err = 1;
	refuse(&a);
	if (a.write_err) {
		fprintf(stderr, "pyprof: writing %s failed: the trace is "
			"incomplete\n", o->trace_path);
		return 1;
	}
	return 0;
fail:
	if (a.mux) {
		m->procs = NULL;
		pp_procmux_free(a.mux);
		free(a.mux);
	}
	return refuse(&a);
}

/* ---- wrap mode's descendants (pp_tree_*) ---- */

struct pp_tree {
	struct att a;
};

struct pp_tree *pp_tree_open(const struct pp_session_opts *o,
			     struct pp_model *m, struct pp_trace_writer *tw,
			     int root, const int32_t *ring_owner,
			     char *err, size_t errlen)
{
	struct pp_tree *t = pp_xcalloc(1, sizeof(*t));
	struct att *a = &t->a;
	struct aproc *r;

	a->o = o;
	a->m = m;
	a->tw = tw;
	a->wrap = 1;
	a->ring_owner = ring_owner;
	a->last_tick = pp_now_ns();
	/* the command: its records are the session's (no probes, no
	 * pidfd here), the stream starts with them */
	r = proc_new(a, root, 0);
	r->announced = 1;
	a->cur = root;
	if (pp_children_open(&a->tree, root, on_child, a, err, errlen) < 0) {
		refuse(a);
		free(t);
		return NULL;
	}
	if (m) {		/* the model's owner frees it */
		a->mux = pp_xmalloc(sizeof(*a->mux));
		pp_procmux_init(a->mux, m);
		m->procs = a->mux;
	}
	return t;
}

void pp_tree_own(struct pp_tree *t)
{
	switch_to(t->a.procs[0]);
}

int pp_tree_poll(struct pp_tree *t)
{
	struct att *a = &t->a;
	int rc = drain_procs(a);

	if (rc < 0 && !a->write_err)
		fprintf(stderr, "pyprof: reading the children's eBPF rings: "
			"%s\n", strerror(-rc));
	/* the root is not counted: the session follows it */
	return (int)tick_and_reap(a, pp_now_ns()) - !a->procs[0]->ended;
}

int pp_tree_close(struct pp_tree *t, double grace_s)
{
	struct att *a;
	uint64_t until;
	int err;

	if (!t)
		return 0;
	a = &t->a;
	a->procs[0]->ended = 1;
	until = pp_now_ns() + (uint64_t)(grace_s * 1e9);
	while (pp_tree_poll(t) > 0 && pp_now_ns() < until) {
		struct timespec nap = { 0, 2000000 };

		nanosleep(&nap, NULL);
	}
	detach_all(a);
	err = a->write_err;
	refuse(a);
	free(t);
	return err;
}

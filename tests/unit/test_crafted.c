// SPDX-License-Identifier: MIT
/*
 * Hostile traces: chunks with valid CRCs (written by the real writer)
 * whose records are crafted to break the reader: a stack naming an
 * undefined function, a tick at 2^64-1, ids of 2^31-1 and 2^28, a META
 * shorter than its header. `pyprof report` must not crash, must print
 * one warning naming the record, report exactly the records before it
 * and exit 0, in bounded memory (peak RSS of the child, and an address
 * space limit when not built with ASan, whose shadow needs terabytes).
 * Checkpoint records (--max-size: CKPT, LIVE) likewise.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pp_test.h"
#include "trace.h"

#define RSS_MAX_KB (256 * 1024)
#define ALLOCS 3		/* ALLOC records in the readable prefix */
#define ID_HI 0x80000000u	/* eBPF ids (collector/bpf.h PP_BPF_ID_BASE) */

static char dir[64], path[128], out[128], errf[128], pyprof[PATH_MAX];
static uint64_t T0 = 1000000000000ull;

static union {
	struct pp_hdr h;
	uint64_t w[8192];
} u;

static struct pp_trace_writer *w;

static void put(const struct pp_hdr *rec)
{
	if (pp_trace_append(w, rec))
		printf("# append type %u failed\n", rec->type);
}

static void meta(uint16_t len)
{
	struct pp_rec_meta *r = (void *)&u;
	const char kv[] = "argv\tcrafted.py\n";

	memset(&u, 0, sizeof(u));
	r->ts = T0;
	memcpy(r->data, kv, sizeof(kv) - 1);
	r->h = (struct pp_hdr){ len ? len : PP_REC_ALIGN(sizeof(*r) + sizeof(kv) - 1),
				PP_REC_META, 0, 4242 };
	put(&r->h);
}

static void tick(uint64_t ts)
{
	struct pp_rec_tick r = { { sizeof(r), PP_REC_TICK, 0, 0 }, ts, 1 << 20, 0 };

	put(&r.h);
}

static void func(uint32_t id, const char *file, const char *name)
{
	struct pp_rec_func *r = (void *)&u;
	size_t fl = strlen(file), nl = strlen(name);

	memset(&u, 0, sizeof(u));
	r->file_len = fl;
	r->name_len = nl;
	memcpy(r->data, file, fl);
	memcpy(r->data + fl, name, nl);
	r->h = (struct pp_hdr){ PP_REC_ALIGN(sizeof(*r) + fl + nl), PP_REC_FUNC,
				0, id };
	put(&r->h);
}

static void stack(uint32_t id, uint32_t fn, uint32_t line)
{
	struct pp_rec_stack *r = (void *)&u;

	memset(&u, 0, sizeof(u));
	r->nframes = 1;
	r->frames[0] = (struct pp_frame){ fn, line };
	r->h = (struct pp_hdr){ sizeof(*r) + 8, PP_REC_STACK, 0, id };
	put(&r->h);
}

static void alloc(uint64_t addr, uint64_t size, uint32_t stack)
{
	struct pp_rec_alloc r = { { sizeof(r), PP_REC_ALLOC, 0, stack }, addr,
				  size };

	put(&r.h);
}

static void lock(uint32_t stack)
{
	struct pp_rec_lock r = { { sizeof(r), PP_REC_LOCK, PP_LOCK_PY, stack },
				 0x1000, T0 + 1000, T0 + 5000000, 7, 0 };

	put(&r.h);
}

/* A consistent start: the readable prefix every case shares. */
static void prefix(void)
{
	meta(0);
	tick(T0);
	func(1, "/app/prefix.py", "handler");
	func(ID_HI | 0x10, "/usr/lib/python3/threading.py", "wait");
	stack(1, 1, 10);
	for (int i = 0; i < ALLOCS; i++)
		alloc(0x10000 + i * 64, 1000, 1);
	lock(1);
	tick(T0 + 100000000);
}

/* After the bad record: what must not be reported. */
static void suffix(void)
{
	alloc(0x900000, 777, 1);
	tick(T0 + 200000000);
}

static int begin(void)
{
	char err[256];

	w = pp_trace_create(path, err, sizeof(err));
	if (!w)
		printf("# %s\n", err);
	return w ? 0 : -1;
}

static int end(void)
{
	return pp_trace_close(w);
}

static char *slurp(const char *p)
{
	FILE *f = fopen(p, "r");
	char *s = calloc(1, 1 << 20);

	if (f && s)
		s[fread(s, 1, (1 << 20) - 1, f)] = 0;
	if (f)
		fclose(f);
	return s;
}

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* pyprof report FILE --format fmt, bounded; exit status, peak RSS */
static int report(const char *fmt, long *rss_kb)
{
	struct rusage ru;
	int st;
	pid_t pid;

	fflush(stdout);	/* the child's freopen must not write it again */
	pid = fork();

	if (pid == 0) {
#ifndef __SANITIZE_ADDRESS__
		struct rlimit rl = { 1ull << 30, 1ull << 30 };

		setrlimit(RLIMIT_AS, &rl);
#endif
		if (!freopen(out, "w", stdout) || !freopen(errf, "w", stderr))
			_exit(127);
		execl(pyprof, pyprof, "report", path, "--format", fmt,
		      (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || wait4(pid, &st, 0, &ru) != pid)
		return -1;
	*rss_kb = ru.ru_maxrss;
	return st;
}

/* PP_CRAFTED_KEEP=DIR: a copy of each case's trace there, as a seed
 * for tests/fuzz (scripts/fuzz.sh --seeds) */
static void keep(const char *name)
{
	const char *dir = getenv("PP_CRAFTED_KEEP");
	char cmd[PATH_MAX + 256];

	if (!dir)
		return;
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s/crafted-%s.trace'", path, dir,
		 name);
	if (system(cmd))
		printf("# keeping %s failed\n", name);
}

/*
 * One crafted case: the prefix, the bad records, the suffix. The
 * report must hold the prefix (its ALLOCs at prefix.py) and nothing
 * after, with one warning line that names why.
 */
static void expect(const char *name, const char *why, void (*bad)(void))
{
	char label[160], want[64];
	char *o, *e;
	long rss = 0;
	int st;

	if (begin())
		return;
	prefix();
	if (bad)
		bad();
	suffix();
	if (end())
		printf("# close failed\n");
	keep(name);
	st = report("json", &rss);
	o = slurp(out);
	e = slurp(errf);
	snprintf(label, sizeof(label), "%s: report exits 0", name);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, label,
	      "status %#x (signal %d): %s", st,
	      WIFSIGNALED(st) ? WTERMSIG(st) : 0, e);
	snprintf(label, sizeof(label), "%s: %s", name,
		 why ? "one warning naming the record" : "no warning");
	if (why)
		CHECK(lines(e) == 1 && strstr(e, "invalid record: chunk 0 at "
					       "offset 64, record ") &&
		      strstr(e, why), label, "stderr: \"%s\", want \"%s\"", e,
		      why);
	else
		CHECK(!*e, label, "stderr: \"%s\"", e);
	/* the suffix's ALLOC only when nothing stopped the reading */
	snprintf(want, sizeof(want), "\"alloc_count\": %d,", ALLOCS + !why);
	snprintf(label, sizeof(label), "%s: %s", name, why ?
		 "the records before it reported" : "every record reported");
	CHECK(strstr(o, "/app/prefix.py") && strstr(o, want), label,
	      "want %s in %.300s", want, o);
	snprintf(label, sizeof(label), "%s: peak RSS %ld KiB", name, rss);
	CHECK(rss > 0 && rss < RSS_MAX_KB, label, "over %d KiB", RSS_MAX_KB);
	if (*e)
		printf("# %s: %s", name, e);
	free(o);
	free(e);
	/* the other outputs read the same prefix (some read it twice) */
	for (int i = 0; i < 5; i++) {
		static const char *const fmts[] = { "text", "collapsed",
						    "chrome", "pprof", "html" };

		st = report(fmts[i], &rss);
		e = slurp(errf);
		snprintf(label, sizeof(label), "%s: --format %s", name,
			 fmts[i]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
		      lines(e) == !!why && rss < RSS_MAX_KB, label,
		      "status %#x, peak RSS %ld KiB: %s", st, rss, e);
		free(e);
	}
}

static void undefined_hi_func(void)
{
	/* func 0x80000005 lies inside the eBPF table (0x80000010 grew it) */
	stack(2, ID_HI | 5, 3);
	lock(2);
}

static void tick_max(void)
{
	tick(UINT64_MAX);
}

static void func_id_max(void)
{
	func(0x7fffffff, "/x.py", "f");
}

static void stack_id_max(void)
{
	stack(0x7fffffff, 1, 1);
}

static void func_id_2_28(void)
{
	func(1u << 28, "/x.py", "f");
}

static void stack_id_2_28(void)
{
	stack(1u << 28, 1, 1);
}

static void hi_stack_2_28(void)
{
	stack(ID_HI | 1u << 28, 1, 1);
}

static void alloc_undefined_stack(void)
{
	alloc(0x700000, 10, 9);
}

static void short_meta(void)
{
	meta(16);
}

static void short_func(void)
{
	struct pp_rec_func *r = (void *)&u;

	memset(&u, 0, sizeof(u));
	*r = (struct pp_rec_func){ { 16, PP_REC_FUNC, 0, 2 }, 0, 200, 200 };
	put(&r->h);
}

static void stack_frames_overrun(void)
{
	struct pp_rec_stack *r = (void *)&u;

	memset(&u, 0, sizeof(u));
	*r = (struct pp_rec_stack){ { 24, PP_REC_STACK, 0, 3 }, 1000, { 0 } };
	put(&r->h);
}

/* STACK id under parent with n frames of function 1 (PP_STACK_PARENT) */
static void stack_under(uint32_t id, uint32_t parent, uint32_t n)
{
	struct pp_rec_stack *r = (void *)&u;

	memset(&u, 0, sizeof(u));
	r->nframes = n;
	r->parent = parent;
	for (uint32_t i = 0; i < n; i++)
		r->frames[i] = (struct pp_frame){ 1, 100 + i };
	r->h = (struct pp_hdr){ sizeof(*r) + n * 8, PP_REC_STACK,
				PP_STACK_PARENT, id };
	put(&r->h);
}

static void stack_undefined_parent(void)
{
	stack_under(2, 7, 1);
}

static void stack_own_parent(void)
{
	stack_under(2, 2, 1);
}

/* 4,000 stacks each 64 frames deeper than its parent: a reader keeps
 * PP_MAX_FRAMES of each (else 4,000 x 128,000 frames on average) */
static void stack_parent_chain(void)
{
	for (uint32_t i = 2; i < 4002; i++)
		stack_under(i, i - 1, 64);
	alloc(0x800000, 500, 4001);
}

static void tick_backwards(void)
{
	tick(T0 + 50000000);
}

/* checkpoint records (--max-size) are untrusted input too */
static void live(uint32_t n, uint16_t len, uint64_t addr, uint32_t stack,
		 uint8_t kind)
{
	struct pp_rec_live *r = (void *)&u;

	memset(&u, 0, sizeof(u));
	r->ent[0] = (struct pp_live_ent){ addr, 8, stack, kind, { 0 } };
	r->h = (struct pp_hdr){ len ? len : sizeof(*r) + sizeof(r->ent[0]),
				PP_REC_LIVE, 0, n };
	put(&r->h);
}

static void ckpt(uint8_t flags, uint64_t ts)
{
	struct pp_rec_ckpt r = { { sizeof(r), PP_REC_CKPT, flags, 2 }, ts, 0,
				 0 };

	put(&r.h);
}

static void live_overrun(void)
{
	live(100000, 32, 0x500000, 1, PP_DOM_LIBC);
}

static void live_bad_kind(void)
{
	live(1, 0, 0x500000, 1, 9);
}

static void live_undefined_stack(void)
{
	live(1, 0, 0x500000, 9, PP_DOM_LIBC);
}

static void live_addr_0(void)
{
	live(1, 0, 0, 1, PP_DOM_LIBC);
}

static void ckpt_bad_flags(void)
{
	ckpt(7, T0 + 150000000);
}

static void ckpt_time_max(void)
{
	ckpt(PP_CKPT_BEGIN, UINT64_MAX);
}

/* a well-formed checkpoint after records: it repeats what the reader
 * knows, so it changes nothing (a reader takes one only at the start) */
static void ckpt_mid_stream(void)
{
	ckpt(PP_CKPT_BEGIN, T0 + 150000000);
	live(1, 0, 0x500000, 1, PP_DOM_LIBC);
	ckpt(PP_CKPT_END, T0 + 150000000);
}

int main(int argc, char **argv)
{
	char self[PATH_MAX - 16], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	/* the pyprof built beside this test: build/ or build-san/ */
	if (n <= 0)
		return 1;
	self[n] = 0;
	slash = strrchr(self, '/');
	*slash = 0;
	snprintf(pyprof, sizeof(pyprof), "%s/../pyprof", self);
	CHECK(access(pyprof, X_OK) == 0, "crafted: pyprof built", "%s: %s",
	      pyprof, strerror(errno));
	snprintf(dir, sizeof(dir), "/tmp/pp_test_crafted.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/t.trace", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(errf, sizeof(errf), "%s/err", dir);

	expect("consistent", NULL, NULL);
	expect("undefined_function",
	       "STACK: function id 0x80000005 used before it is defined",
	       undefined_hi_func);
	expect("tick_2^64-1", "TICK: time 18446744073709551615 ns", tick_max);
	expect("tick_backwards", "goes back", tick_backwards);
	expect("func_id_2^31-1", "FUNC: function id 0x7fffffff", func_id_max);
	expect("stack_id_2^31-1", "STACK: stack id 0x7fffffff", stack_id_max);
	expect("func_id_2^28", "FUNC: function id 0x10000000", func_id_2_28);
	expect("stack_id_2^28", "STACK: stack id 0x10000000", stack_id_2_28);
	expect("ebpf_stack_id_2^28", "STACK: stack id 0x90000000",
	       hi_stack_2_28);
	expect("alloc_undefined_stack",
	       "ALLOC: stack id 0x9 used before it is defined",
	       alloc_undefined_stack);
	expect("short_meta", "META of 16 bytes", short_meta);
	expect("short_func", "FUNC: names of 200 + 200 bytes in 16",
	       short_func);
	expect("stack_frames_overrun", "STACK: 1000 frames in 24 bytes",
	       stack_frames_overrun);
	expect("stack_undefined_parent",
	       "STACK: stack id 0x7 used before it is defined",
	       stack_undefined_parent);
	expect("stack_own_parent", "STACK: stack 0x2 under stack 0x2",
	       stack_own_parent);
	expect("stack_parent_chain", NULL, stack_parent_chain);
	expect("live_overrun", "LIVE: 100000 entries in 32 bytes",
	       live_overrun);
	expect("live_bad_kind", "LIVE: entry 0: kind 9", live_bad_kind);
	expect("live_undefined_stack",
	       "LIVE: stack id 0x9 used before it is defined",
	       live_undefined_stack);
	expect("live_addr_0", "LIVE: entry 0: 0 + 8 bytes", live_addr_0);
	expect("ckpt_bad_flags", "CKPT: flags 0x7", ckpt_bad_flags);
	expect("ckpt_time_2^64-1", "CKPT: time 18446744073709551615 ns",
	       ckpt_time_max);
	expect("ckpt_mid_stream", NULL, ckpt_mid_stream);
	unlink(path);
	unlink(out);
	unlink(errf);
	rmdir(dir);
	TEST_EXIT();
}

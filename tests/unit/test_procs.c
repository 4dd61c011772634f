// SPDX-License-Identifier: MIT
/*
 * A stream of two processes (--children: PID records), as attach.c
 * writes it, read as each process alone and as their merge
 * (collector/procs.c), through the trace reader's filter as `report`
 * does and through the live mux as the viewer does. Both processes use
 * the same function and stack ids (each pp_bpf counts from 2^31) and
 * the same block address (a forked worker's heap looks like its
 * master's): each alone sees only its own, the merge sees both, apart.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "procs.h"
#include "pp_test.h"
#include "trace.h"

#define T0 1000000000000ull
#define ID 0x80000000u
#define ADDR 0x7f0000001000ull

typedef void (*sink_fn)(void *ctx, const struct pp_hdr *rec);

static void meta(sink_fn put, void *ctx, int pid, uint64_t ts)
{
	union {
		struct pp_rec_meta r;
		char b[sizeof(struct pp_rec_meta) + 64];
	} u;
	int n = snprintf(u.r.data, 64, "argv\tpython3\tapp.py\nversion\t1\n"
			 "attach\tebpf\n");

	memset(&u.r, 0, sizeof(u.r));
	snprintf(u.r.data, 64, "argv\tpython3\tapp.py\nversion\t1\n"
		 "attach\tebpf\n");
	u.r.h = (struct pp_hdr){ .len = PP_REC_ALIGN(sizeof(u.r) + n),
				 .type = PP_REC_META, .aux = pid };
	u.r.ts = ts;
	put(ctx, &u.r.h);
}

static void tick(sink_fn put, void *ctx, uint64_t ts, uint64_t rss)
{
	struct pp_rec_tick t = { .h = { .len = sizeof(t), .type = PP_REC_TICK },
				 .ts = ts, .rss_bytes = rss };

	put(ctx, &t.h);
}

/* one function, one stack at `line`, one block of `size` at ADDR */
static void heap(sink_fn put, void *ctx, const char *file, int line,
		 uint64_t size)
{
	union {
		struct pp_rec_func r;
		char b[sizeof(struct pp_rec_func) + 64];
	} f;
	union {
		struct pp_rec_stack r;
		char b[sizeof(struct pp_rec_stack) + 8];
	} s;
	struct pp_rec_alloc a = { .h = { .len = sizeof(a), .type = PP_REC_MMAP,
					 .flags = PP_DOM_MMAP, .aux = ID },
				  .addr = ADDR, .size = size };
	size_t fl = strlen(file);

	memset(&f, 0, sizeof(f));
	f.r.h = (struct pp_hdr){ .len = PP_REC_ALIGN(sizeof(f.r) + fl + 4),
				 .type = PP_REC_FUNC, .aux = ID };
	f.r.firstlineno = 1;
	f.r.file_len = fl;
	f.r.name_len = 4;
	memcpy(f.r.data, file, fl);
	memcpy(f.r.data + fl, "work", 4);
	put(ctx, &f.r.h);
	memset(&s, 0, sizeof(s));
	s.r.h = (struct pp_hdr){ .len = sizeof(s.r) + 8, .type = PP_REC_STACK,
				 .aux = ID };
	s.r.nframes = 1;
	s.r.frames[0] = (struct pp_frame){ ID, line };
	put(ctx, &s.r.h);
	put(ctx, &a.h);
}

static void pid_rec(sink_fn put, void *ctx, int pid, int ppid, uint64_t ts)
{
	struct pp_rec_pid r = { .h = { .len = sizeof(r), .type = PP_REC_PID,
				       .flags = PP_PID_NEW, .aux = pid },
				.ts = ts, .ppid = ppid };

	put(ctx, &r.h);
}

/* master 100 (10 MiB at a.py:5), worker 101 (3 MiB at b.py:7) */
static void stream(sink_fn put, void *ctx)
{
	meta(put, ctx, 100, T0);
	tick(put, ctx, T0, 50 << 20);
	heap(put, ctx, "/srv/a.py", 5, 10 << 20);
	pid_rec(put, ctx, 101, 100, T0 + 1000);
	meta(put, ctx, 101, T0 + 1000);
	tick(put, ctx, T0 + 1000, 20 << 20);
	heap(put, ctx, "/srv/b.py", 7, 3 << 20);
	pid_rec(put, ctx, 100, 0, T0 + 100000000);
	tick(put, ctx, T0 + 100000000, 60 << 20);
	pid_rec(put, ctx, 101, 0, T0 + 100000001);
	tick(put, ctx, T0 + 100000001, 25 << 20);
}

static void to_trace(void *ctx, const struct pp_hdr *rec)
{
	pp_trace_append(ctx, rec);
}

static void to_mux(void *ctx, const struct pp_hdr *rec)
{
	pp_procmux_feed(ctx, rec);
}

static const struct pp_site *only_site(const struct pp_model *m,
				       const char *file, int line)
{
	for (size_t i = 0; i < m->nsites; i++) {
		const struct pp_func *f = pp_model_func(m, m->sites[i].func);

		if (f && !strcmp(f->file, file) && m->sites[i].line == (uint32_t)line)
			return &m->sites[i];
	}
	return NULL;
}

static void read_as(const char *path, int sel, struct pp_model *m)
{
	char err[256];
	struct pp_trace_reader *r = pp_trace_open(path, err, sizeof(err));
	struct pp_procsel *s = pp_procsel_new(sel);
	const struct pp_hdr *rec;

	pp_model_init(m);
	pp_trace_set_filter(r, pp_procsel_filter, s);
	while (pp_trace_next(r, &rec) > 0)
		pp_model_feed(m, rec);
	pp_model_finish(m);
	pp_trace_close_reader(r);
	pp_procsel_free(s);
}

static void check_models(const char *how, struct pp_model *a,
			 struct pp_model *b, struct pp_model *all)
{
	char name[128];
	const struct pp_site *sa = only_site(a, "/srv/a.py", 5);
	const struct pp_site *sb = only_site(b, "/srv/b.py", 7);
	const struct pp_site *ma = only_site(all, "/srv/a.py", 5);
	const struct pp_site *mb = only_site(all, "/srv/b.py", 7);

	snprintf(name, sizeof(name), "%s: the master alone: its pid, its one site", how);
	CHECK(a->pid == 100 && !only_site(a, "/srv/b.py", 7) && sa &&
	      sa->live_bytes == 10 << 20 && a->live_bytes == 10 << 20,
	      name, "pid %d, live %.0f", a->pid, a->live_bytes);
	snprintf(name, sizeof(name), "%s: the worker alone: its pid, its one site, its RSS", how);
	CHECK(b->pid == 101 && !only_site(b, "/srv/a.py", 5) && sb &&
	      sb->live_bytes == 3 << 20 && b->live_bytes == 3 << 20 &&
	      b->rss_peak_bytes == 25 << 20,
	      name, "pid %d, live %.0f, rss %.0f", b->pid, b->live_bytes,
	      b->rss_peak_bytes);
	snprintf(name, sizeof(name), "%s: merged: both sites, the same address kept apart", how);
	CHECK(all->pid == 100 && ma && mb &&
	      ma->live_bytes == 10 << 20 && mb->live_bytes == 3 << 20 &&
	      all->live_bytes == 13 << 20 && all->live_count == 2,
	      name, "pid %d, live %.0f in %.0f", all->pid, all->live_bytes,
	      all->live_count);
	snprintf(name, sizeof(name), "%s: merged RSS is the processes' sum", how);
	CHECK(all->rss_peak_bytes == 85 << 20, name, "peak %.0f", all->rss_peak_bytes);
}

int main(void)
{
	char path[] = "/tmp/pyprof-test-procs-XXXXXX";
	char err[256];
	struct pp_trace_writer *w;
	struct pp_trace_reader *r;
	struct pp_proc_id *ids = NULL;
	struct pp_model a, b, all, merged;
	struct pp_procmux x;
	long n;
	int fd = mkstemp(path);

	close(fd);
	w = pp_trace_create(path, err, sizeof(err));
	stream(to_trace, w);
	pp_trace_close(w);

	r = pp_trace_open(path, err, sizeof(err));
	n = pp_trace_procs(r, &ids);
	CHECK(n == 2 && ids[0].pid == 100 && ids[0].ppid == 0 &&
	      ids[1].pid == 101 && ids[1].ppid == 100,
	      "the trace's processes: the root, then its child", "n %ld", n);
	free(ids);
	pp_trace_close_reader(r);

	read_as(path, 100, &a);
	read_as(path, 101, &b);
	read_as(path, PP_PROCS_MERGE, &all);
	check_models("trace", &a, &b, &all);
	pp_model_free(&a);
	pp_model_free(&b);
	pp_model_free(&all);

	/* the same stream live, as the viewer gets it */
	pp_model_init(&merged);
	pp_procmux_init(&x, &merged);
	stream(to_mux, &x);
	CHECK(x.nprocs == 2, "live: a model per process", "%zu", x.nprocs);
	if (x.nprocs == 2) {
		pp_model_finish(&merged);
		pp_model_finish(&x.procs[0]->m);
		pp_model_finish(&x.procs[1]->m);
		check_models("live", &x.procs[0]->m, &x.procs[1]->m, &merged);
		CHECK(pp_procmux_model(&x, -1) == &merged &&
		      pp_procmux_model(&x, 1) == &x.procs[1]->m,
		      "live: -1 shows the merge, i process i", "%zu", x.nprocs);
	}
	pp_procmux_free(&x);
	pp_model_free(&merged);
	unlink(path);
	TEST_EXIT();
}

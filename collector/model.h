/* SPDX-License-Identifier: MIT */
/*
 * The model: what pyprof knows about the target, built by feeding it
 * records in stream order (live from the rings, or from a trace file).
 * The report and the viewer only read it. It knows nothing of output.
 */
#ifndef PP_MODEL_H
#define PP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "hashmap.h"
#include "pp_wire.h"

/* leak judgement resolution: windows across the run (see README) */
#define PP_WINDOWS 64
#define PP_WINDOW0_NS 25000000ull	/* first window width: 25 ms */
#define PP_MIN_STEPS 6			/* steps judged, at least */

struct pp_stalls;
struct pp_procmux;
struct pp_loc;

struct pp_func {
	const char *file;
	const char *name;
	uint32_t firstlineno;
	uint8_t native;
};

struct pp_stack {
	uint32_t nframes;
	struct pp_frame *frames;	/* innermost first */
	uint32_t site;			/* index into model.sites */
	uint8_t import;			/* runs under the import system */
	double live_bytes;		/* to pick a site's heaviest stack */
	double alloc_bytes;		/* allocated so far (exports) */
	double end_live_bytes;		/* at the end of the run */
};

/*
 * A site: the innermost Python frame of the allocations charged to it.
 * Byte and count figures are doubles because with --sample they are
 * estimates; without sampling they are exact integers.
 */
struct pp_site {
	uint32_t func;			/* pp_func id (0: no Python frame) */
	uint32_t line;
	uint32_t top_stack;		/* heaviest stack id at the end */
	double live_bytes, live_count;
	double alloc_bytes, alloc_count;
	double import_bytes;		/* of alloc_bytes: made while importing */
	double end_live_bytes, end_live_count;	/* at the end of the run */
	/* leak judgement: per window, the lowest live bytes seen and the
	 * bytes allocated so far at the window's end */
	double floor[PP_WINDOWS];
	double cum_alloc[PP_WINDOWS];
	int window;			/* last window written */
	int born;			/* window of its first allocation */
	uint64_t active;		/* bit w: a record at this site in window w */
	uint64_t nrec;			/* records at this site in the run */
	/* verdict (pp_model_finish) */
	int leak;
	int imported;			/* grew by importing: not judged */
	double growth_bytes_per_s;
	double retention;		/* growth / bytes allocated, steady part */
};

struct pp_point {
	double t;			/* seconds since start */
	double live_bytes;
	double rss_bytes;
	double kernel_bytes;
};

/*
 * Producer records lost between two ticks (the ticks' drop counter
 * grew): drops in consecutive tick intervals make one window. The
 * window covers the drops; with a stopped collector it runs from the
 * last tick before the stop to the first one after.
 */
struct pp_drop_window {
	double from_s, to_s;
	uint64_t count;
};

/*
 * A block arriving (arrive = 1: allocated, moved in by a realloc or a
 * RETAG; 2: live already, from a checkpoint) or leaving (0), with the
 * estimate it stands for (weight:
 * blocks; weight * size: bytes). For consumers that need each block's
 * identity, such as a time window's figures (window.h).
 */
typedef void (*pp_block_fn)(void *ctx, int arrive, uint64_t addr,
			    uint64_t size, double weight, uint32_t stack);

struct pp_model {
	/* target */
	int pid;
	char *argv;			/* "\t"-separated, from META */
	char pyver[32];
	int py_supported;		/* -1 unknown, 0 no, 1 yes */
	int exited, exit_status, killed_by;
	uint64_t sample_bytes;
	/* attached to a running process (META "attach"): what was put
	 * into it, "ebpf" = nothing; NULL when pyprof started it */
	char *attach_mode;
	int shim_ready;			/* PP_MARK_PY_READY: the hooks are in */
	uint64_t realtime0;		/* wall clock at start, ns */

	/* time (CLOCK_MONOTONIC ns) */
	uint64_t t0, t_now, t_end_run;	/* t_end_run: atexit mark, or 0 */
	uint64_t t_run;			/* PP_MARK_RUN, or 0 */
	int finalized;			/* the atexit mark was seen */
	/* the trace starts from a checkpoint (--max-size dropped what came
	 * before): its time, or 0; the leak windows start there */
	uint64_t t_kept;
	int ckpt_loading;		/* between its CKPT records */

	/* definitions, indexed by id (BPF ids >= 2^31 in the *_hi arrays) */
	struct pp_func *funcs, *funcs_hi;
	size_t nfuncs, nfuncs_hi;
	struct pp_stack *stacks, *stacks_hi;
	size_t nstacks, nstacks_hi;

	/* sites */
	struct pp_site *sites;
	size_t nsites, cap_sites;
	struct pp_map site_index;	/* hash of (file, name, line) -> site */

	/* the heap */
	struct pp_map live;		/* addr -> struct pp_block */
	struct pp_map maps;		/* anonymous mappings, by start */
	double live_bytes, live_count, peak_bytes;
	double alloc_count, free_count, alloc_bytes;
	double arena_bytes;		/* allocators' own reserve (overhead) */
	double end_live_bytes, end_live_count;
	double rss_bytes, rss_peak_bytes;
	/* what the kernel saw (eBPF): anonymous private mappings and brk,
	 * hooked or not; 0 without eBPF */
	struct pp_map kmaps;		/* start -> length */
	double kernel_bytes, kernel_peak_bytes;
	int have_kernel;

	/* timeline: every tick, kept in memory */
	struct pp_point *timeline;
	size_t ntimeline, cap_timeline;

	/* leak windows, from t_run (the program let run) or t0; bit w of stamped: a time stamp fell in window w
	 * (one that none fell in holds no evidence of its own) */
	uint64_t window_ns;
	int window;
	uint64_t stamped;

	/* records */
	uint64_t events;		/* producer records seen */
	uint64_t dropped;		/* the sum of dropped_by */
	uint64_t dropped_by[PP_LOST_NSRC];	/* enum pp_lost_src */
	uint64_t tick_dropped;		/* the last tick's counter */
	double tick_t;			/* and its time, seconds */
	struct pp_drop_window *drops;
	size_t ndrops, cap_drops;
	uint64_t unknown_frees;		/* frees of blocks made before hooks */

	struct pp_stalls *stalls;	/* GC, GIL, locks */

	/* attached with --children, live: every process's own model
	 * (procs.h), this one being their merge; the owner frees it */
	struct pp_procmux *procs;

	pp_block_fn block_fn;		/* NULL, or told of every block */
	/* set before feeding: keep which blocks are live and the
	 * definitions only: no figures, timeline or stalls (a
	 * checkpoint's state, ckpt.h) */
	int live_only;
	void *block_ctx;
};

void pp_model_init(struct pp_model *m);
void pp_model_feed(struct pp_model *m, const struct pp_hdr *rec);
/* the end of the data: fill the end-of-run figures and the verdicts */
void pp_model_finish(struct pp_model *m);
/* leak verdicts as of now, for a live view (finish does it at the end) */
void pp_model_judge(struct pp_model *m);
void pp_model_free(struct pp_model *m);

const struct pp_func *pp_model_func(const struct pp_model *m, uint32_t id);
const struct pp_stack *pp_model_stack(const struct pp_model *m, uint32_t id);
/* Frame i (0 innermost) of a stack, as stalls.h's pp_frame_fn wants it
 * (ctx: the model): 0, or -1 past the end or for an unknown stack. */
int pp_model_frame(void *ctx, uint32_t stack, int i, struct pp_loc *out);
/* Every live block, allocator arena and kernel-seen mapping, as a
 * checkpoint stores them (pp_wire.h PP_REC_LIVE). */
void pp_model_each_live(const struct pp_model *m,
			void (*fn)(void *ctx, const struct pp_live_ent *e),
			void *ctx);
/* kernel-seen heap growth outside the mappings it tracks (brk) */
double pp_model_brk_bytes(const struct pp_model *m);
/* the span the leak verdicts judge, seconds since the start */
void pp_model_judged(const struct pp_model *m, double *from_s, double *to_s);
/* seconds since the start of the recording */
double pp_model_secs(const struct pp_model *m, uint64_t ns);
/* site indexes, sorted: by end live bytes (sites) or suspicion (leaks);
 * returns the count, *out malloc'd */
size_t pp_model_sorted_sites(const struct pp_model *m, uint32_t **out);
size_t pp_model_leaks(const struct pp_model *m, uint32_t **out);
/* "shim_ring", "bpf_gil", ...: the JSON name of an enum pp_lost_src */
const char *pp_lost_src_name(int src);

#endif

/* SPDX-License-Identifier: MIT */
/* A profiling session: start the target with the shim, drain its ring
 * into a trace file and/or the model until it ends. */
#ifndef PP_SESSION_H
#define PP_SESSION_H

#include <stdint.h>

#include "model.h"

enum pp_gil_mode {
	PP_GIL_MODE_PRECISE = 0,	/* every acquisition and release */
	PP_GIL_MODE_FUTEX,		/* contended waits only */
	PP_GIL_MODE_OFF,
};

struct pp_session_opts {
	char **cmd;			/* the command to run */
	int pid;			/* or attach to this process (attach.h) */
	int no_inject;			/* attach with eBPF only */
	int children;			/* attach to its descendants too */
	const char *trace_path;		/* record here, or NULL */
	uint64_t max_size;		/* keep the trace within this (ckpt.h), 0: no cap */
	uint64_t sample_bytes;
	int native;
	double duration;		/* seconds, 0 = until the end */
	uint64_t ring_bytes;
	const char *shim_path;
	int no_bpf;			/* measure stalls in the shim instead */
	int gil;			/* enum pp_gil_mode */
	/* live consumers (the viewer): called every loop; non-zero stops
	 * recording (the command runs on, and the session waits for it) */
	int (*poll)(void *ctx, struct pp_model *m);
	void *poll_ctx;
};

/*
 * Run it. The model (may be NULL) is fed live. Returns the exit status
 * pyprof should exit with: the command's as a shell gives it (128 + N
 * for signal N, 127/126 when it cannot be found or run), whatever
 * pyprof's own troubles were (printed); 1 only when the command never
 * started (no ring, no trace file). With o->pid it attaches instead
 * (attach.h): 0 after a clean detach, 1 when it cannot attach.
 */
int pp_session_run(const struct pp_session_opts *o, struct pp_model *m);

#endif

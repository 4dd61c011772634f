/* SPDX-License-Identifier: MIT */
/*
 * Attach mode: profile a Python process that is already running, given
 * by pid, with eBPF only (nothing is loaded into the target: no thread,
 * file descriptor or mapping of pyprof's ever appears in it). GIL, GC,
 * lock waits and the kernel's view of heap growth since attach.
 */
#ifndef PP_ATTACH_H
#define PP_ATTACH_H

#include "model.h"
#include "session.h"

/* what the META record's "attach" key says (model.h: attach_mode) */
#define PP_ATTACH_NO_INJECT "ebpf"
/* the shim was loaded into it (inject.h): allocations since attach */
#define PP_ATTACH_SHIM "shim"

/*
 * Attach to o->pid (with o->children, to its descendants too, present
 * and future: each with its own probes, its records after a PID record,
 * the model fed through a pp_procmux set in m->procs, which the caller
 * frees), drain the BPF rings into the trace and/or the model until
 * o->duration, o->poll, a signal (INT, TERM, HUP, QUIT) or the target's
 * end (with o->children, the last process's), then detach. Returns 0
 * after a clean detach, or 1 after printing one line saying why it
 * could not attach.
 */
int pp_attach_run(const struct pp_session_opts *o, struct pp_model *m);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Attach mode: profile a Python process that is already running, given
 * by pid, with eBPF only (nothing is loaded into the target: no thread,
 * file descriptor or mapping of pyprof's ever appears in it). GIL, GC,
 * lock waits and the kernel's view of heap growth since attach.
 */
#ifndef PP_ATTACH_H
#define PP_ATTACH_H

#include <stdint.h>

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

/* root, or CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN) */
int pp_may_load_bpf(void);

/*
 * Wrap mode with o->children (session.c): the wrapped command's
 * descendants, each profiled as attach --children profiles them (its
 * own probes and injected shim, its records after a PID record), into
 * the session's trace writer tw and model m (m->procs set to a
 * pp_procmux the caller frees). The command's own records are the
 * session's: pp_tree_own() before each of its runs. ring_owner: the
 * wrap ring's owner_pid, the process whose shim was preloaded, never
 * given another. NULL with one line in err.
 */
struct pp_tree;
struct pp_trace_writer;
struct pp_tree *pp_tree_open(const struct pp_session_opts *o,
			     struct pp_model *m, struct pp_trace_writer *tw,
			     int root, const int32_t *ring_owner,
			     char *err, size_t errlen);
/* the command's records follow (its PID record if another's came last) */
void pp_tree_own(struct pp_tree *t);
/* Non-blocking: the tree's events, the descendants' rings, their ticks
 * and ends. The count of descendants still running. */
int pp_tree_poll(struct pp_tree *t);
/* The command has ended (or recording stops): follow the descendants
 * up to grace_s more while any runs, then detach from those left (they
 * run on) and free t. Non-zero if a trace write failed. */
int pp_tree_close(struct pp_tree *t, double grace_s);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * --children: the processes descending from a root, present and
 * future. The kernel adds each fork of the tree to it (ebpf/tree.bpf.c);
 * the caller is told of each process found or forked, exec'd or ended:
 *
 *	pp_children_open(&c, root, fn, ctx, err, sizeof(err));
 *	pp_children_scan(c);		// those already running
 *	while (running) { poll(pp_children_fd(c)); pp_children_poll(c); }
 *	pp_children_close(c);
 */
#ifndef PP_CHILDREN_H
#define PP_CHILDREN_H

#include <stddef.h>
#include <stdint.h>

enum pp_child_op { PP_CHILD_NEW = 1, PP_CHILD_EXEC = 2, PP_CHILD_END = 3 };

struct pp_children;
/* op: enum pp_child_op; ppid for PP_CHILD_NEW (the tree's root: none);
 * ts: when it happened (CLOCK_MONOTONIC ns; a scan's: now) */
typedef void (*pp_child_fn)(void *ctx, int op, int pid, int ppid,
			    uint64_t ts);

/* 0, or -1 with one line in err */
int pp_children_open(struct pp_children **out, int root, pp_child_fn fn,
		     void *ctx, char *err, size_t errlen);
/* The root's descendants running now, parents first (PP_CHILD_NEW;
 * one forked meanwhile may also come as a fork: callers ignore a pid
 * they know). */
void pp_children_scan(struct pp_children *c);
/* to wait on (readable: events), and to handle them */
int pp_children_fd(const struct pp_children *c);
int pp_children_poll(struct pp_children *c);
void pp_children_close(struct pp_children *c);

#endif

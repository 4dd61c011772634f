// SPDX-License-Identifier: MIT
/*
 * The process tree under a root (children.h): ebpf/tree.bpf.c holds the
 * tree's tgids in a map and adds each fork of a member at the fork
 * itself; here the tree is seeded (the root, then what already runs
 * under it, from /proc) and the kernel's events handed on.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "alloc.h"
#include "children.h"
#include "pp_clock.h"
#include "procfs.h"
#include "../ebpf/tree.h"
#include "ebpf/tree.skel.h"

struct pp_children {
	struct tree_bpf *skel;
	struct ring_buffer *rb;
	int root;
	pp_child_fn fn;
	void *ctx;
};

static int on_event(void *ctx, void *data, size_t len)
{
	struct pp_children *c = ctx;
	const struct tree_event *e = data;

	if (len < sizeof(*e))
		return 0;
	c->fn(c->ctx, e->op == TREE_FORK ? PP_CHILD_NEW :
		      e->op == TREE_EXEC ? PP_CHILD_EXEC : PP_CHILD_END,
	      e->pid, e->ppid, e->ts);
	return 0;
}

static void add(struct pp_children *c, int pid)
{
	__u32 k = pid, one = 1;

	bpf_map_update_elem(bpf_map__fd(c->skel->maps.tree), &k, &one,
			    BPF_ANY);
}

int pp_children_open(struct pp_children **out, int root, pp_child_fn fn,
		     void *ctx, char *err, size_t errlen)
{
	struct pp_children *c = pp_xcalloc(1, sizeof(*c));
	int e;

	*out = NULL;
	c->root = root;
	c->fn = fn;
	c->ctx = ctx;
	c->skel = tree_bpf__open_and_load();
	if (!c->skel) {
		e = -errno;
		goto fail;
	}
	add(c, root);
	e = tree_bpf__attach(c->skel);
	if (e)
		goto fail;
	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.tree_events),
				 on_event, c, NULL);
	if (!c->rb) {
		e = -errno;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	snprintf(err, errlen, "--children: cannot follow pid %d's forks "
		 "(sched_process_fork tracepoint): %s", root, strerror(-e));
	pp_children_close(c);
	return -1;
}

struct pp_pair {
	int pid, ppid;
};

/* ppid of each process now (field 4 of /proc/PID/stat) */
static size_t all_procs(struct pp_pair **out)
{
	struct pp_pair *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dir = opendir("/proc");
	char buf[512];
	const char *st;

	while (dir && (d = readdir(dir))) {
		int pid = atoi(d->d_name), ppid;

		if (pid <= 0)
			continue;
		st = pp_procfs_stat(pid, buf, sizeof(buf));
		if (!st || sscanf(st, "%*c %d", &ppid) != 1)
			continue;
		v = pp_grow(v, &cap, n + 1, sizeof(*v));
		v[n++] = (struct pp_pair){ pid, ppid };
	}
	if (dir)
		closedir(dir);
	*out = v;
	return n;
}

void pp_children_scan(struct pp_children *c)
{
	struct pp_pair *v;
	size_t n = all_procs(&v), i, j;
	int *queue = pp_xcalloc(n + 1, sizeof(int));
	size_t head = 0, tail = 0;

	queue[tail++] = c->root;
	while (head < tail) {
		int parent = queue[head++];

		for (j = 0; j < n; j++) {
			if (v[j].ppid != parent || v[j].pid == c->root)
				continue;
			for (i = 0; i < tail && queue[i] != v[j].pid; i++)
				;
			if (i < tail)
				continue;
			queue[tail++] = v[j].pid;
			add(c, v[j].pid);
			c->fn(c->ctx, PP_CHILD_NEW, v[j].pid, parent,
			      pp_now_ns());
		}
	}
	free(queue);
	free(v);
}

int pp_children_fd(const struct pp_children *c)
{
	return ring_buffer__epoll_fd(c->rb);
}

int pp_children_poll(struct pp_children *c)
{
	return ring_buffer__consume(c->rb);
}

void pp_children_close(struct pp_children *c)
{
	if (!c)
		return;
	ring_buffer__free(c->rb);
	tree_bpf__destroy(c->skel);
	free(c);
}

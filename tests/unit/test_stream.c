// SPDX-License-Identifier: MIT
/*
 * Stack interning, checked on real recordings: every FUNC and STACK is
 * defined exactly once, before the first record that uses it, and no
 * two definitions describe the same stack (a stack under a parent,
 * PP_STACK_PARENT, is its frames and then its parent's).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hashmap.h"
#include "pp_test.h"
#include "pp_test_interp.h"
#include "trace.h"

static int record(const char *py, const char *out, const char *extra)
{
	char cmd[3 * PATH_MAX], cwd[PATH_MAX];

	/* an absolute workload path: the chroot interpreters have it there */
	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	snprintf(cmd, sizeof(cmd), "build/pyprof record %s -o %s -- %s "
		 "%s/tests/workloads/service.py --seconds 1 >/dev/null 2>&1",
		 extra, out, py, cwd);
	return system(cmd);
}

static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--)
		h = (h ^ *c++) * 0x100000001b3ull;
	return h | 1;
}

struct full {
	uint32_t n;
	struct pp_frame *f;
};

/* st's whole frames, innermost first, kept in full[] by id's index */
static uint64_t full_stack(struct pp_map *ix, struct full **full, size_t *nf,
			   const struct pp_rec_stack *st, uint64_t *undefined)
{
	size_t up = 0;		/* its parent's index + 1, 0: none */
	struct full *d;
	uint32_t *slot;
	uint64_t h;

	if (st->h.flags & PP_STACK_PARENT) {
		slot = pp_map_u32(ix, st->parent, 0, 0);
		if (slot && *slot)
			up = *slot;
		else
			++*undefined;
	}
	*full = realloc(*full, (*nf + 1) * sizeof(**full));
	d = &(*full)[(*nf)++];
	d->n = st->nframes + (up ? (*full)[up - 1].n : 0);
	d->f = malloc(d->n * sizeof(*d->f) + 1);
	memcpy(d->f, st->frames, st->nframes * sizeof(*d->f));
	if (up)
		memcpy(d->f + st->nframes, (*full)[up - 1].f,
		       (*full)[up - 1].n * sizeof(*d->f));
	slot = pp_map_u32(ix, st->h.aux, 1, 0);
	*slot = *nf;
	h = hash_bytes(d->f, d->n * sizeof(*d->f));
	return h;
}

static void check_trace(const char *name, const char *path)
{
	struct pp_map ix;
	struct full *full = NULL;
	size_t nf = 0;
	struct pp_map funcs, stacks, shapes;
	struct pp_trace_reader *r;
	const struct pp_hdr *rec;
	char err[256], label[128];
	uint64_t dup_def = 0, undefined = 0, dup_shape = 0, uses = 0, n = 0;
	uint64_t under = 0;
	int fresh, rc;

	pp_map_init(&funcs, 1);
	pp_map_init(&stacks, 1);
	pp_map_init(&shapes, 1);
	pp_map_init(&ix, sizeof(uint32_t));
	r = pp_trace_open(path, err, sizeof(err));
	snprintf(label, sizeof(label), "%s: trace opens", name);
	CHECK(r != NULL, label, "%s", err);
	if (!r)
		return;
	while ((rc = pp_trace_next(r, &rec)) > 0) {
		const struct pp_rec_stack *st = (const void *)rec;
		uint32_t i;

		switch (rec->type) {
		case PP_REC_FUNC:
			pp_map_put(&funcs, rec->aux | 0x100000000ull, &fresh);
			dup_def += !fresh;
			break;
		case PP_REC_STACK:
			pp_map_put(&stacks, rec->aux | 0x100000000ull, &fresh);
			dup_def += !fresh;
			n++;
			under += !!(rec->flags & PP_STACK_PARENT);
			for (i = 0; i < st->nframes; i++)
				undefined += !pp_map_get(&funcs,
					st->frames[i].func | 0x100000000ull);
			pp_map_put(&shapes, full_stack(&ix, &full, &nf, st,
						       &undefined), &fresh);
			dup_shape += !fresh;
			break;
		case PP_REC_ALLOC:
		case PP_REC_REALLOC:
			if (rec->aux) {
				uses++;
				undefined += !pp_map_get(&stacks,
						rec->aux | 0x100000000ull);
			}
			break;
		}
	}
	snprintf(label, sizeof(label), "%s: trace reads to the end", name);
	CHECK(rc == 0 && !pp_trace_invalid(r), label, "%s",
	      pp_trace_error(r));
	snprintf(label, sizeof(label), "%s: stacks interned (%lu stacks for "
		 "%lu uses)", name, (unsigned long)n, (unsigned long)uses);
	CHECK(n > 100 && uses > 5 * n, label, "too few uses per stack");
	/* service.py's threads run 8 frames deep or more: the shim defines
	 * those stacks under their parents, which the checks here expand */
	snprintf(label, sizeof(label), "%s: stacks under a parent (%lu of %lu)",
		 name, (unsigned long)under, (unsigned long)n);
	CHECK(under > 0 && under < n, label, "want some of each kind");
	snprintf(label, sizeof(label), "%s: each FUNC/STACK defined once", name);
	CHECK(dup_def == 0, label, "%lu redefinitions", (unsigned long)dup_def);
	snprintf(label, sizeof(label), "%s: defined before first use", name);
	CHECK(undefined == 0, label, "%lu uses of undefined ids",
	      (unsigned long)undefined);
	snprintf(label, sizeof(label), "%s: no stack defined twice under two ids",
		 name);
	CHECK(dup_shape == 0, label, "%lu duplicate stacks",
	      (unsigned long)dup_shape);
	pp_trace_close_reader(r);
	pp_map_free(&funcs);
	pp_map_free(&stacks);
	pp_map_free(&shapes);
	pp_map_free(&ix);
	while (nf--)
		free(full[nf].f);
	free(full);
}

int main(void)
{
	static struct pp_test_interp in[32];
	char path[] = "/tmp/pyprof-stream-XXXXXX", label[128];
	int i, n = pp_test_interpreters(in, 32);
	int fd = mkstemp(path);

	close(fd);
	CHECK(n > 0, "stream: interpreters", "cannot read tests/interpreters");
	for (i = 0; i < n; i++) {
		int rc;

		snprintf(label, sizeof(label), "%s: record service.py", in[i].label);
		if (!in[i].present) {
			CHECK(!in[i].required, label, "%s missing", in[i].path);
			continue;
		}
		rc = record(in[i].path, path, "");
		CHECK(rc == 0, label, "exit %d", rc);
		check_trace(in[i].label, path);
	}
	unlink(path);
	TEST_EXIT();
}

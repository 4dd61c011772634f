// SPDX-License-Identifier: MIT
/*
 * region.c, the home of sampled blocks: blocks are where a free finds
 * them (pp_in_region), aligned as asked, reused once freed, safe to use
 * from several threads and across fork; and glibc itself frees,
 * reallocates and sizes them correctly (what the program's free() does
 * once our hooks are gone, which this binary, not preloaded, is).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../preload/shim.h"
#include "pp_test.h"

static int mapped(uintptr_t p)
{
	unsigned char v;
	uintptr_t pg = p & ~(uintptr_t)4095;

	return mincore((void *)pg, 4096, &v) == 0;
}

static void shapes(void)
{
	static const size_t sizes[] = { 1, 16, 100, 4080, 4081, 70000,
					1 << 20, (5 << 20) + 3 };
	static const size_t aligns[] = { 0, 16, 64, 4096, 65536 };
	int ok_in = 1, ok_align = 1, ok_usable = 1;
	unsigned i, j;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (j = 0; j < sizeof(aligns) / sizeof(aligns[0]); j++) {
			size_t n = sizes[i], a = aligns[j];
			char *p = pp_region_alloc(j & 1, n, a);

			if (!p || !pp_in_region(p) || !pp_in_region(p + n - 1))
				ok_in = 0;
			if (!p)
				continue;
			if ((uintptr_t)p % (a ? a : 16))
				ok_align = 0;
			memset(p, 0xa5, pp_region_usable(p));
			/* glibc reads the same size from the header */
			if (pp_region_usable(p) < n ||
			    malloc_usable_size(p) != pp_region_usable(p))
				ok_usable = 0;
			pp_region_free(p);
		}
	CHECK(ok_in, "region: blocks of 1 B to 5 MiB, aligned 16 B to 64 KiB, are in the region", "a block outside");
	CHECK(ok_align, "region: alignment as asked", "misaligned");
	CHECK(ok_usable, "region: usable size covers the request and glibc's malloc_usable_size agrees", "sizes differ");
	CHECK(!pp_in_region(&ok_in) && !pp_in_region(NULL) &&
	      !pp_in_region(malloc(10)),
	      "region: the stack, NULL and a glibc block are not in it", "one is");
	CHECK(!pp_region_alloc(1, 8, 48), "region: a non-power-of-two alignment is declined", "accepted");
}

/* a PyMem hook takes back only its own half's blocks */
static void halves(void)
{
	void *py = pp_region_alloc(0, 100, 0), *c = pp_region_alloc(1, 100, 0);

	CHECK(pp_in_pymem_region(py) && pp_in_region(py) &&
	      !pp_in_pymem_region(c) && pp_in_region(c),
	      "region: PyMem blocks in the PyMem half, libc blocks only in libc's", "%p %p", py, c);
	pp_region_free(py);
	pp_region_free(c);
}

static void reuse(void)
{
	void *a = pp_region_alloc(1, 100, 0), *b;

	pp_region_free(a);
	b = pp_region_alloc(1, 200, 0);
	CHECK(a == b, "region: a freed block of the same page count is reused", "%p then %p", a, b);
	pp_region_free(b);
}

/* once unhooked, glibc is the one to free, reallocate, size */
static void glibc_frees(void)
{
	char *p = pp_region_alloc(1, 3000, 0), *q = pp_region_alloc(0, 100, 64);
	char *r = pp_region_alloc(1, 200000, 0), *s;
	size_t i;
	int same = 1;

	for (i = 0; i < 3000; i++)
		p[i] = (char)i;
	s = realloc(p, 100000);
	for (i = 0; i < 3000; i++)
		if (s[i] != (char)i)
			same = 0;
	CHECK(s && same, "region: glibc's realloc of a region block keeps its bytes", "lost");
	free(s);
	i = (uintptr_t)q;
	free(q);
	CHECK(!mapped(i), "region: glibc's free of a region block unmaps its pages (aligned block)", "still mapped");
	i = (uintptr_t)r;
	free(r);
	CHECK(!mapped(i), "region: glibc's free of a large region block unmaps its pages", "still mapped");
	/* glibc's own heap is intact */
	p = malloc(50);
	free(p);
	CHECK(1, "region: glibc's heap works after freeing region blocks", "-");
}

#define THREADS 4
#define ROUNDS 20000

static void *worker(void *arg)
{
	uintptr_t tag = (uintptr_t)arg;
	uint64_t *held[16] = { 0 };
	int i, bad = 0;

	for (i = 0; i < ROUNDS; i++) {
		int k = i % 16;

		if (held[k]) {
			if (*held[k] != tag + (uint64_t)k)
				bad = 1;
			pp_region_free(held[k]);
		}
		held[k] = pp_region_alloc(i & 1, 8 + (i % 7) * 3000, 0);
		if (!held[k])
			return (void *)1;
		*held[k] = tag + (uint64_t)k;
	}
	for (i = 0; i < 16; i++)
		pp_region_free(held[i]);
	return (void *)(uintptr_t)bad;
}

static void threads_and_fork(void)
{
	pthread_t t[THREADS];
	void *rv;
	int i, bad = 0, forks_ok = 1, st;

	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)((uintptr_t)i << 32));
	/* children forked while the others allocate can use the region */
	for (i = 0; i < 20; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			void *p = pp_region_alloc(0, 64, 0);

			pp_region_free(p);
			_exit(p ? 0 : 1);
		}
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
		    WEXITSTATUS(st))
			forks_ok = 0;
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], &rv);
		bad |= rv != NULL;
	}
	CHECK(!bad, "region: 4 threads allocating and freeing never share a block", "a block was overwritten");
	CHECK(forks_ok, "region: a child forked while threads allocate can allocate and free", "a child failed");
}

int main(void)
{
	alarm(60);	/* a lock lost in a child would hang */
	if (pp_region_init() < 0) {
		CHECK(0, "region: reserved", "mmap failed");
		TEST_EXIT();
	}
	shapes();
	halves();
	reuse();
	glibc_frees();
	threads_and_fork();
	pp_region_retire();
	CHECK(!pp_in_region((void *)(pp_region.lo + 4096)), "region: retired, nothing is in it", "still");
	TEST_EXIT();
}

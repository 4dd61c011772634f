// SPDX-License-Identifier: MIT
/*
 * Lines of code objects, each table decoded once. Resolving a new stack
 * used to scan every frame's line table from its start (O(table) per
 * frame: quadratic in a module's size during an import, where every
 * allocation site of the module body is a new stack). Here a code
 * object's table is decoded once into runs (offset ranges with one line,
 * pp_lt_runs) and each offset is then a binary search.
 *
 * Why here and not in the collector: the runs are what the collector
 * would need too, but sending raw tables changes the wire format, the
 * trace and every reader of it for a cost that is O(table) once per
 * code object either way; the shim already holds the code object, so
 * this keeps the trace format as it is.
 *
 * Identity: a code object is (address, generation). The OBJ free hook
 * bumps the generation of an address whenever a code object there dies
 * (pp_code_died), so a new code object at a reused address is never
 * confused with the old one. Entries also keep the table's address and
 * co_firstlineno as a check.
 *
 * Memory is bounded: a direct-mapped index (a colliding code object
 * replaces the older one) over a ring arena of runs; an entry whose runs
 * the arena has since overwritten is simply decoded again. Only the
 * slow path (a new stack) comes here, under one mutex.
 */
#include <pthread.h>
#include <sys/mman.h>

#include "shim.h"

#define INDEX_BITS 16
#define ARENA_RUNS (1u << 20)		/* 8 MiB of runs, reserved lazily */
#define MAX_RUNS (ARENA_RUNS / 8)	/* bigger tables: scanned each time */

uint32_t pp_code_gens[1u << PP_CODE_GEN_BITS];
uint32_t pp_code_deaths;

struct entry {
	const void *code;
	const void *tab;
	uint64_t pos;			/* logical arena position of the runs */
	uint32_t gen;
	int32_t first;
	uint32_t n;
	uint32_t func;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *index_;
static struct pp_lt_run *arena;
static uint64_t head;			/* logical runs written so far */

int pp_codelines_init(void)
{
	index_ = mmap(NULL, sizeof(*index_) << INDEX_BITS,
		      PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	arena = mmap(NULL, sizeof(*arena) * ARENA_RUNS, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (index_ == MAP_FAILED || arena == MAP_FAILED) {
		index_ = NULL;
		arena = NULL;
		return -1;
	}
	return 0;
}

void pp_codelines_lock(void)
{
	pthread_mutex_lock(&lock);
}

void pp_codelines_unlock(void)
{
	pthread_mutex_unlock(&lock);
}

#define FIELD(p, off, type) (*(type *)((const char *)(p) + (off)))

/* the table as pp_code_line reads it; NULL if it has none */
static const uint8_t *code_table(const struct pp_pylayout *l,
				 const void *code, const void **obj,
				 size_t *len)
{
	const char *tab = FIELD(code, l->code_linetable, const char *);
	intptr_t size;

	*obj = tab;
	if (!tab)
		return NULL;
	size = FIELD(tab, l->bytes_size, intptr_t);
	if (size <= 0 || size > (1 << 26))
		return NULL;
	*len = (size_t)size;
	return (const uint8_t *)tab + l->bytes_data;
}

static int entry_live(const struct entry *e)
{
	return e->n && e->pos + ARENA_RUNS >= head;
}

/*
 * Decode into the arena; 0 if the table is too big to keep. A table has
 * at most a run per byte, and one more at its end: one that surely fits
 * before the arena's end is decoded there in one pass; others are
 * counted first.
 */
static int decode(const struct pp_pylayout *l, struct entry *e,
		  const uint8_t *tab, size_t len)
{
	uint64_t n, room = ARENA_RUNS - head % ARENA_RUNS;

	if (len + 2 <= room && len + 2 <= MAX_RUNS) {
		n = pp_lt_runs(l->lt_kind, tab, len, e->first,
			       arena + head % ARENA_RUNS, len + 2);
		if (n > len + 2)	/* cannot be: the room is no one's now */
			head += len + 2;
		if (!n || n > len + 2)
			return 0;
	} else {
		n = pp_lt_runs(l->lt_kind, tab, len, e->first, NULL, 0);
		if (!n || n > MAX_RUNS)
			return 0;
		if (n > room)
			head += room;	/* wrap */
		pp_lt_runs(l->lt_kind, tab, len, e->first,
			   arena + head % ARENA_RUNS, n);
	}
	e->pos = head;
	e->n = n;
	head += n;
	return 1;
}

struct pp_codelines *pp_codelines_get(const struct pp_pylayout *l,
				      const void *code)
{
	uint32_t gen = *pp_code_gen(code);
	const void *obj;
	const uint8_t *tab;
	size_t len = 0;
	int first = FIELD(code, l->code_firstlineno, int);
	struct entry *e;

	if (!index_)
		return NULL;
	tab = code_table(l, code, &obj, &len);
	e = &index_[pp_hash_ptr(code) >> (64 - INDEX_BITS)];
	if (e->code == code && e->gen == gen && e->tab == obj &&
	    e->first == first) {
		if (!tab || entry_live(e))
			return (struct pp_codelines *)e;
	} else {
		e->code = code;
		e->gen = gen;
		e->tab = obj;
		e->first = first;
		e->func = 0;
	}
	e->n = 0;
	if (tab && !decode(l, e, tab, len))
		return NULL;
	return (struct pp_codelines *)e;
}

int pp_codelines_line(const struct pp_codelines *c, int off)
{
	const struct entry *e = (const struct entry *)c;
	int line;

	if (off < 0 || !e->n)
		return e->first;
	line = pp_lt_runs_line(arena + e->pos % ARENA_RUNS, e->n, off);
	return line < 0 ? e->first : line;
}

uint32_t *pp_codelines_func(struct pp_codelines *c)
{
	return &((struct entry *)c)->func;
}

// SPDX-License-Identifier: MIT
/*
 * User side of the eBPF probes (see bpf.h): open the skeletons, set the
 * target's addresses in rodata, load, attach; turn ring events into pp
 * wire records, resolving Python stacks to file/line/function with
 * process_vm_readv and the line-table decoder.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "alloc.h"
#include "bpf.h"
#include "hashmap.h"
#include "pp_clock.h"
#include "pp_mem.h"
#include "pyproc.h"
#include "../ebpf/gil.h"
#include "../ebpf/gc.h"
#include "../ebpf/locks.h"
#include "../ebpf/kmem.h"
#include "ebpf/gil.skel.h"
#include "ebpf/gc.skel.h"
#include "ebpf/locks.skel.h"
#include "ebpf/kmem.skel.h"
#include "ebpf/sys.skel.h"
#include "../ebpf/sys.h"
#include "ebpf/core_btf.h"

#define CODE_HDR 256

struct code_info {
	uint64_t addr;
	uint8_t hdr[CODE_HDR];	/* the code object's head as last read */
	uint32_t hdr_len;
	uint32_t func;
	int firstlineno;
	uint8_t *lt;
	size_t lt_len;
	unsigned checked;	/* the pp_bpf_poll round it was last read in */
	/* lines of recent instructions (a direct-mapped cache: the line
	 * table's decoding was the collector's top cost on a service) */
	struct {
		uint64_t instr;
		int line;
	} lines[8];
};

struct pp_bpf {
	struct pp_pyproc proc;
	unsigned active;
	pp_emit_fn emit;
	void *ctx;
	uint64_t t_attach;
	struct gil_bpf *gil;
	struct gc_bpf *gc;
	struct locks_bpf *locks;
	struct kmem_bpf *kmem;
	struct sys_bpf *sys;	/* syscall hooks (kmem), switch (gil futex, locks) */
	int sys_err;		/* 0, or why they could not be had */
	struct ring_buffer *rb;
	char sources[1024];

	uint32_t next_func, next_stack;
	struct pp_map funcs;		/* hash(file, name, firstlineno) -> id */
	struct pp_map stacks;		/* hash(frames) -> id */
	struct pp_map codes;		/* code address -> index in code[] */
	struct code_info *code;
	size_t ncode, capcode;
	int handled;
	unsigned round;			/* pp_bpf_poll calls, from 1 */
	int kmem_lines;			/* PP_BPF_KMEM_LINES */
	/* the brk heap's growth since attach, piece by piece (each charged
	 * to the line that grew it), lowest first: a shrink takes the top */
	struct brk_piece {
		uint64_t start, len;
		uint32_t stack;
	} *brk;
	size_t nbrk, capbrk;
	/* first-touch page faults (PP_BPF_KMEM_FAULTS): what is charged
	 * whole since attach (mappings, brk pieces; sorted, disjoint) is
	 * not charged again page by page; the pages that were */
	int kmem_faults;
	struct span {
		uint64_t start, end;
	} *spans;
	size_t nspans, capspans;
	struct pp_map pages;		/* page address -> bytes charged */
	struct pp_map regions;		/* address >> REGION_SHIFT -> which
					 * of its pages are in pages */
};

/* 2 MiB: a bit per page */
#define REGION_SHIFT 21
#define REGION_WORDS 8
struct region {
	uint64_t bits[REGION_WORDS];
};

_Static_assert(offsetof(struct lock_event, frames) == LOCK_EVENT_HEAD,
	       "LOCK_EVENT_HEAD");
_Static_assert(offsetof(struct kmem_event, frames) == KMEM_EVENT_HEAD,
	       "kmem_event head");

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		h = (h ^ *b++) * 0x100000001b3ull;
	return h;
}

/* ---- records ---- */

/* comm: the thread's name as the probe read it (ebpf/gil.h), or NULL:
 * read here (the threads there at attach) */
static void emit_thread(struct pp_bpf *b, uint32_t tid, uint64_t ts,
			int flags, const char *comm)
{
	union {
		struct pp_rec_thread r;
		char buf[sizeof(struct pp_rec_thread) + 64];
	} u;
	char fn[64], name[40] = "";
	size_t n;
	FILE *f;

	if (tid == (uint32_t)b->proc.pid) {
		strcpy(name, "MainThread");
	} else if (comm) {
		snprintf(name, sizeof(name), "%.*s", 15, comm);
	} else if (!(flags & PP_THREAD_EXIT)) {
		snprintf(fn, sizeof(fn), "/proc/%d/task/%u/comm", b->proc.pid,
			 tid);
		f = fopen(fn, "re");
		if (f) {
			if (!fgets(name, sizeof(name), f))
				name[0] = 0;
			fclose(f);
		}
		name[strcspn(name, "\n")] = 0;
	}
	n = strlen(name);
	memset(&u, 0, sizeof(u));
	u.r.h.len = PP_REC_ALIGN(sizeof(u.r) + n);
	u.r.h.type = PP_REC_THREAD;
	u.r.h.flags = flags;
	u.r.h.aux = tid;
	u.r.ts = ts;
	memcpy(u.r.name, name, n);
	b->emit(&u.r.h, b->ctx);
}

static void emit_gil(struct pp_bpf *b, uint32_t tid, int state,
		     uint64_t start, uint64_t end)
{
	struct pp_rec_gil r = { 0 };

	if (end < start)
		return;
	r.h.len = sizeof(r);
	r.h.type = PP_REC_GIL;
	r.h.flags = state;
	r.h.aux = tid;
	r.ts_start = start;
	r.ts_end = end;
	b->emit(&r.h, b->ctx);
}

static void gil_cycle(struct pp_bpf *b, uint32_t tid, uint64_t ws,
		      uint64_t acq, uint64_t rel)
{
	if (acq && ws && ws <= acq)
		emit_gil(b, tid, PP_GIL_WAIT, ws, acq);
	emit_gil(b, tid, PP_GIL_HOLD, acq ? acq : b->t_attach, rel);
}

static int on_gil(void *ctx, void *data, size_t len)
{
	struct pp_bpf *b = ctx;
	const struct gil_event *e = data;

	b->handled++;
	switch (e->kind) {
	case GIL_EV_CYCLE:
		gil_cycle(b, e->tid, e->wait_start, e->acquired, e->released);
		break;
	case GIL_EV_WAIT:
		emit_gil(b, e->tid, PP_GIL_WAIT, e->wait_start, e->released);
		break;
	case GIL_EV_THREAD_NEW:
	case GIL_EV_THREAD_NAME:
		/* a rename is the thread's record again, with a later time:
		 * the model keeps the first time and the last name */
		if (e->kind == GIL_EV_THREAD_NAME &&
		    e->tid == (uint32_t)b->proc.pid)
			break;
		emit_thread(b, e->tid, e->released, 0,
			    len >= sizeof(struct gil_thread_event) ?
				    ((const struct gil_thread_event *)e)->comm :
				    "");
		break;
	case GIL_EV_THREAD_EXIT:
		emit_thread(b, e->tid, e->released, PP_THREAD_EXIT, NULL);
		break;
	}
	return 0;
}

static int on_gc(void *ctx, void *data, size_t len)
{
	struct pp_bpf *b = ctx;
	const struct gc_event *e = data;
	struct pp_rec_gc r = { 0 };

	b->handled++;
	r.h.len = sizeof(r);
	r.h.type = PP_REC_GC;
	r.h.flags = e->generation >= 0 && e->generation < 3 ?
			    e->generation : PP_GC_GEN_UNKNOWN;
	r.h.aux = e->tid;
	r.ts_start = e->ts_start;
	r.ts_end = e->ts_end;
	r.collected = e->collected > 0 ? e->collected : 0;
	r.uncollectable = e->uncollectable > 0 ? e->uncollectable : 0;
	b->emit(&r.h, b->ctx);
	return 0;
}

static void kmem_block(struct pp_bpf *b, const struct kmem_event *e,
		       size_t len);
static void kmem_brk(struct pp_bpf *b, const struct kmem_event *e,
		     size_t len);
static void emit_map(struct pp_bpf *b, int type, uint64_t addr,
		     uint64_t size, uint32_t stack);
static uint32_t stack_id(struct pp_bpf *b, const struct py_rawframe *raw,
			 uint32_t n, uint32_t tid);

/* ---- what is charged whole, and the pages charged one by one ---- */

/* index of the first span ending after addr */
static size_t span_find(const struct pp_bpf *b, uint64_t addr)
{
	size_t lo = 0, hi = b->nspans;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (b->spans[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void span_del(struct pp_bpf *b, uint64_t start, uint64_t end)
{
	size_t i = span_find(b, start);

	while (i < b->nspans && b->spans[i].start < end) {
		struct span *s = &b->spans[i];

		if (s->start < start && s->end > end) {	/* split */
			b->spans = pp_grow(b->spans, &b->capspans,
					   b->nspans + 1, sizeof(*b->spans));
			s = &b->spans[i];
			memmove(s + 1, s, (b->nspans - i) * sizeof(*s));
			b->nspans++;
			s->end = start;
			s[1].start = end;
			return;
		}
		if (s->start < start) {
			s->end = start;
			i++;
		} else if (s->end > end) {
			s->start = end;
			return;
		} else {
			memmove(s, s + 1, (b->nspans - i - 1) * sizeof(*s));
			b->nspans--;
		}
	}
}

static void span_add(struct pp_bpf *b, uint64_t start, uint64_t end)
{
	size_t i;

	if (!b->kmem_faults || end <= start)
		return;
	span_del(b, start, end);
	i = span_find(b, start);
	b->spans = pp_grow(b->spans, &b->capspans, b->nspans + 1,
			   sizeof(*b->spans));
	memmove(&b->spans[i + 1], &b->spans[i],
		(b->nspans - i) * sizeof(*b->spans));
	b->spans[i] = (struct span){ start, end };
	b->nspans++;
}

static int span_has(const struct pp_bpf *b, uint64_t addr)
{
	size_t i = span_find(b, addr);

	return i < b->nspans && b->spans[i].start <= addr;
}

/* the charged pages of region r (REGION_SHIFT) in [start, end), in
 * address order, gone */
static void region_free(struct pp_bpf *b, uint64_t r, uint64_t start,
			uint64_t end)
{
	struct region *rg = pp_map_get(&b->regions, r);
	uint64_t a, m, *v, left = 0;
	unsigned w, bit;

	if (!rg)
		return;
	for (w = 0; w < REGION_WORDS; w++) {
		for (m = rg->bits[w]; m; m &= m - 1) {
			bit = __builtin_ctzll(m);
			a = (r << REGION_SHIFT) + ((uint64_t)(w * 64 + bit) << 12);
			if (a < start || a >= end)
				continue;
			v = pp_map_get(&b->pages, a);
			emit_map(b, PP_REC_MUNMAP, a, v ? *v : 4096, 0);
			pp_map_del(&b->pages, a, NULL);
			rg->bits[w] &= ~(1ull << bit);
		}
		left |= rg->bits[w];
	}
	if (!left)
		pp_map_del(&b->regions, r, NULL);
}

/*
 * The first-touched pages in [start, end) are gone (unmapped, given
 * back with madvise, below a lowered break). Looked for only in the
 * regions that hold some: a service's threads give back most of their
 * 8 MiB stacks at each exit, where hardly a page was charged.
 */
static void pages_free(struct pp_bpf *b, uint64_t start, uint64_t end)
{
	uint64_t r, lo, hi, *rs;
	size_t n = 0, i;

	if (!b->kmem_faults || !b->pages.count || end <= start)
		return;
	start &= ~4095ull;
	lo = start >> REGION_SHIFT;
	hi = (end - 1) >> REGION_SHIFT;
	if (hi - lo < b->regions.count) {
		for (r = lo; r <= hi; r++)
			region_free(b, r, start, end);
		return;
	}
	rs = pp_xmalloc(b->regions.count * sizeof(*rs));
	pp_map_for_each(&b->regions, i) {
		r = b->regions.keys[i] == ~0ull ? 0 : b->regions.keys[i];
		if (r >= lo && r <= hi)
			rs[n++] = r;
	}
	for (i = 0; i < n; i++)
		region_free(b, rs[i], start, end);
	free(rs);
}

/* the frames a kmem event carries: as many as its length holds
 * (ebpf/kmem.bpf.c sends the head and the frames read) */
static uint32_t kmem_frames(const struct kmem_event *e, size_t len)
{
	size_t have = len > KMEM_EVENT_HEAD ?
		      (len - KMEM_EVENT_HEAD) / sizeof(struct py_rawframe) : 0;

	return e->nframes <= have && e->nframes <= PY_MAX_FRAMES ?
	       e->nframes : 0;
}

/* A first write to a page: a block of the line that wrote, unless it
 * lies in what was charged whole already. */
static void kmem_fault(struct pp_bpf *b, const struct kmem_event *e,
		       size_t len)
{
	uint32_t n = kmem_frames(e, len);
	struct region *rg;
	uint64_t *v;
	int fresh;

	if (!b->kmem_faults || span_has(b, e->addr))
		return;
	v = pp_map_put(&b->pages, e->addr, &fresh);
	if (!v || !fresh)
		return;
	*v = e->size;
	rg = pp_map_put(&b->regions, e->addr >> REGION_SHIFT, &fresh);
	if (rg)
		rg->bits[(e->addr >> 18) & (REGION_WORDS - 1)] |=
			1ull << ((e->addr >> 12) & 63);
	emit_map(b, PP_REC_MMAP, e->addr, e->size,
		 stack_id(b, e->frames, n, e->tid));
}

static int on_kmem(void *ctx, void *data, size_t len)
{
	struct pp_bpf *b = ctx;
	const struct kmem_event *e = data;
	struct pp_rec_kmem r = { 0 };

	b->handled++;
	if (e->op == KMEM_FAULT) {
		kmem_fault(b, e, len);
		return 0;
	}
	if (e->op == KMEM_DISCARD) {
		pages_free(b, e->addr, e->addr + e->size);
		return 0;
	}
	/* whatever was there before (MAP_FIXED, munmap) is gone */
	if (e->op != KMEM_BRK) {
		pages_free(b, e->addr, e->addr + e->size);
		span_del(b, e->addr, e->addr + e->size);
	}
	/* heap is anonymous and private: not files, not shared memory
	 * (the shim's own ring is a shared mapping) */
	if (e->op == KMEM_MMAP && (!(e->flags & 0x20 /* MAP_ANONYMOUS */) ||
				   (e->flags & 0x03) != 0x02 /* MAP_PRIVATE */))
		return 0;
	/* attached: an address-space reservation (glibc's thread arenas
	 * map 64 MiB PROT_NONE and open it up bit by bit) is not memory */
	if (b->kmem_lines && e->op == KMEM_MMAP && !(e->prot & 0x2))
		return 0;
	r.h.len = sizeof(r);
	r.h.type = PP_REC_KMEM;
	r.h.flags = e->op;
	r.h.aux = e->tid;
	r.ts = e->ts;
	r.addr = e->addr;
	r.size = e->size;
	b->emit(&r.h, b->ctx);
	if (b->kmem_lines && e->op != KMEM_BRK)
		kmem_block(b, e, len);
	else if (b->kmem_lines)
		kmem_brk(b, e, len);
	if (e->op == KMEM_MMAP)
		span_add(b, e->addr, e->addr + e->size);
	return 0;
}

/* ---- Python stacks ---- */

/* A str of the target as UTF-8 (common/pystr.c); 0 when unreadable. */
static size_t read_str(struct pp_bpf *b, uint64_t addr, char *out,
		       size_t cap)
{
	struct pp_mem mem = pp_mem_remote(b->proc.pid);
	int n = pp_py_str_read(&mem, &b->proc.layout, addr, out, cap);

	return n > 0 ? n : 0;
}

static uint64_t hdr_ptr(const struct code_info *c, uint32_t off)
{
	uint64_t v = 0;

	if (off != PP_OFF_NONE && off + 8 <= c->hdr_len)
		memcpy(&v, c->hdr + off, 8);
	return v;
}

static int hdr_int(const struct code_info *c, uint32_t off)
{
	int v = 0;

	if (off != PP_OFF_NONE && off + 4 <= c->hdr_len)
		memcpy(&v, c->hdr + off, 4);
	return v;
}

static uint32_t define_func(struct pp_bpf *b, struct code_info *c)
{
	const struct pp_pylayout *l = &b->proc.layout;
	union {
		struct pp_rec_func r;
		char buf[sizeof(struct pp_rec_func) + 1024 + 8];
	} u;
	char file[512], name[256];
	size_t fl, nl;
	uint64_t h;
	uint32_t *slot;

	fl = read_str(b, hdr_ptr(c, l->code_filename), file, sizeof(file));
	nl = 0;
	if (l->code_qualname != PP_OFF_NONE)
		nl = read_str(b, hdr_ptr(c, l->code_qualname), name,
			      sizeof(name));
	if (!nl)
		nl = read_str(b, hdr_ptr(c, l->code_name), name, sizeof(name));
	if (!fl) {
		strcpy(file, "<unknown>");
		fl = strlen(file);
	}
	if (!nl) {
		strcpy(name, "<unknown>");
		nl = strlen(name);
	}
	h = fnv(0xcbf29ce484222325ull, file, fl);
	h = fnv(h, "\0", 1);
	h = fnv(h, name, nl);
	h = fnv(h, &c->firstlineno, sizeof(c->firstlineno));
	slot = pp_map_u32(&b->funcs, h, 1, 0);
	if (!slot)
		return 0;
	if (*slot)
		return *slot;
	*slot = PP_BPF_ID_BASE + b->next_func++;
	memset(&u, 0, sizeof(u));
	u.r.h.len = PP_REC_ALIGN(sizeof(u.r) + fl + nl);
	u.r.h.type = PP_REC_FUNC;
	u.r.h.aux = *slot;
	u.r.firstlineno = c->firstlineno;
	u.r.file_len = fl;
	u.r.name_len = nl;
	memcpy(u.r.data, file, fl);
	memcpy(u.r.data + fl, name, nl);
	b->emit(&u.r.h, b->ctx);
	return *slot;
}

/*
 * The code object at addr, read and cached; the cached copy is used
 * only while the object's head reads the same (a freed code object's
 * address may be reused by another). Only the fields read and the type
 * make that identity, not the counters (ob_refcnt, 3.11's co_warmup): a
 * code object seen alive keeps its line table when an event naming it
 * is read after it died (the module's code, freed as the program ends),
 * instead of a re-read of memory that may hold something else by then.
 */
#define OB_TYPE 8	/* PyObject.ob_type (Include/object.h) */

/* The fields we use, and the type: the same code object as cached */
static int same_code(const uint8_t *a, const uint8_t *b, const uint32_t *offs,
		     size_t n)
{
	size_t i;

	if (memcmp(a + OB_TYPE, b + OB_TYPE, 8))
		return 0;
	for (i = 0; i < n; i++)
		if (offs[i] != PP_OFF_NONE && memcmp(a + offs[i], b + offs[i], 8))
			return 0;
	return 1;
}

/* the fields of a code object's head that code_get compares and uses */
#define CODE_NFIELDS 5
static void code_fields(const struct pp_pylayout *l,
			uint32_t offs[CODE_NFIELDS])
{
	offs[0] = l->code_filename;
	offs[1] = l->code_name;
	offs[2] = l->code_qualname;
	offs[3] = l->code_firstlineno;
	offs[4] = l->code_linetable;
}

/* the bytes of the head those fields take */
static uint32_t code_want(const struct pp_pylayout *l)
{
	uint32_t want = 0, offs[CODE_NFIELDS];
	size_t i;

	code_fields(l, offs);
	for (i = 0; i < CODE_NFIELDS; i++)
		if (offs[i] != PP_OFF_NONE && offs[i] + 8 > want)
			want = offs[i] + 8;
	return want;
}

/* pre: the head as read already this round (code_prefetch), or NULL */
static struct code_info *code_get(struct pp_bpf *b, uint64_t addr,
				  const uint8_t *pre)
{
	const struct pp_pylayout *l = &b->proc.layout;
	uint8_t hdr[CODE_HDR];
	uint32_t want = code_want(l), *slot, offs[CODE_NFIELDS];
	struct code_info *c;
	uint64_t lt, size = 0;

	code_fields(l, offs);
	if (want > sizeof(hdr))
		return NULL;
	slot = pp_map_u32(&b->codes, addr, 0, 0);
	/* read once a round: the events of one read of the rings are
	 * resolved against the code objects as they are then */
	if (slot && b->code[*slot].checked == b->round)
		return &b->code[*slot];
	/* the process has ended (its last events drained after its exit),
	 * or the page is gone: what this address held when last seen */
	if (pre)
		memcpy(hdr, pre, want);
	else if (pp_pyproc_read(&b->proc, addr, hdr, want))
		return slot ? &b->code[*slot] : NULL;
	/* freed and reused since the event: what this address held when
	 * last seen (a frame ran it when the event was read), or nothing */
	if (b->proc.code_type && memcmp(hdr + OB_TYPE, &b->proc.code_type, 8))
		return slot ? &b->code[*slot] : NULL;
	if (slot) {
		c = &b->code[*slot];
		if (same_code(c->hdr, hdr, offs, CODE_NFIELDS)) {
			c->checked = b->round;
			return c;
		}
	} else {
		b->code = pp_grow(b->code, &b->capcode, b->ncode + 1,
				  sizeof(*b->code));
		slot = pp_map_u32(&b->codes, addr, 1, 0);
		if (!slot)
			return NULL;
		*slot = b->ncode++;
		c = &b->code[*slot];
		memset(c, 0, sizeof(*c));
	}
	free(c->lt);
	c->lt = NULL;
	c->lt_len = 0;
	memset(c->lines, 0, sizeof(c->lines));
	c->checked = b->round;
	c->addr = addr;
	memcpy(c->hdr, hdr, want);
	c->hdr_len = want;
	c->firstlineno = hdr_int(c, l->code_firstlineno);
	lt = hdr_ptr(c, l->code_linetable);
	if (lt && !pp_pyproc_read(&b->proc, lt + l->bytes_size, &size, 8) &&
	    size > 0 && size < (1u << 24)) {
		c->lt = pp_xmalloc(size);
		if (!pp_pyproc_read(&b->proc, lt + l->bytes_data,
					     c->lt, size))
			c->lt_len = size;
	}
	c->func = define_func(b, c);
	return c;
}

static int frame_line(struct pp_bpf *b, struct code_info *c, uint64_t instr)
{
	const struct pp_pylayout *l = &b->proc.layout;
	__typeof__(c->lines[0]) *e;
	int64_t off;
	int line;

	switch (l->instr_kind) {
	case PP_INSTR_LASTI_BYTES:
		off = (int32_t)instr;
		break;
	case PP_INSTR_LASTI_UNITS:
		off = (int64_t)(int32_t)instr * 2;
		break;
	default:
		off = (int64_t)(instr - (c->addr + l->code_start));
		break;
	}
	if (off < 0 || off > (1 << 26) || !c->lt)
		return c->firstlineno;
	/* entries hold off + 1: a zeroed one matches nothing */
	e = &c->lines[(off >> 1) % (sizeof(c->lines) / sizeof(c->lines[0]))];
	if (e->instr == (uint64_t)off + 1)
		return e->line;
	line = pp_lt_addr2line(l->lt_kind, c->lt, c->lt_len, c->firstlineno,
			       (int)off);
	e->instr = off + 1;
	e->line = line < 0 ? c->firstlineno : line;
	return e->line;
}

/*
 * The heads of a stack's code objects not yet read this round, in one
 * process_vm_readv (one call per object was most of the collector's
 * system time on a service): have[i] when hdr[i] holds frame i's. A
 * read that stops at an unreadable one leaves the rest to code_get.
 */
static void code_prefetch(struct pp_bpf *b, const struct py_rawframe *raw,
			  uint32_t n, uint8_t (*hdr)[CODE_HDR], uint8_t *have)
{
	struct iovec loc[PY_MAX_FRAMES], rem[PY_MAX_FRAMES];
	uint32_t want = code_want(&b->proc.layout), i, j, k = 0, *slot;
	uint8_t ix[PY_MAX_FRAMES];
	ssize_t got;

	memset(have, 0, n);
	if (want > CODE_HDR)
		return;
	for (i = 0; i < n; i++) {
		slot = pp_map_u32(&b->codes, raw[i].code, 0, 0);
		if (slot && b->code[*slot].checked == b->round)
			continue;
		for (j = 0; j < i && raw[j].code != raw[i].code; j++)
			;
		if (j < i)	/* read for frame j: checked by then */
			continue;
		loc[k] = (struct iovec){ hdr[i], want };
		rem[k] = (struct iovec){ (void *)(uintptr_t)raw[i].code, want };
		ix[k++] = i;
	}
	if (k < 2)
		return;
	got = process_vm_readv(b->proc.pid, loc, k, rem, k, 0);
	for (j = 0; j < k && got >= (ssize_t)want; j++, got -= want)
		have[ix[j]] = 1;
}

/* Stack id of the raw frames (defining FUNC/STACK records), 0 if none. */
static uint32_t stack_id(struct pp_bpf *b, const struct py_rawframe *raw,
			 uint32_t n, uint32_t tid)
{
	union {
		struct pp_rec_stack r;
		char buf[sizeof(struct pp_rec_stack) +
			 PY_MAX_FRAMES * sizeof(struct pp_frame)];
	} u;
	uint8_t hdr[PY_MAX_FRAMES][CODE_HDR], have[PY_MAX_FRAMES];
	uint32_t i, k = 0, *slot;
	uint64_t h;

	if (n > PY_MAX_FRAMES)
		n = PY_MAX_FRAMES;
	code_prefetch(b, raw, n, hdr, have);
	for (i = 0; i < n; i++) {
		struct code_info *c = code_get(b, raw[i].code,
					       have[i] ? hdr[i] : NULL);

		if (!c || !c->func)
			continue;
		u.r.frames[k].func = c->func;
		u.r.frames[k].line = frame_line(b, c, raw[i].instr);
		k++;
	}
	if (!k)
		return 0;
	h = fnv(0xcbf29ce484222325ull, u.r.frames, k * sizeof(u.r.frames[0]));
	slot = pp_map_u32(&b->stacks, h, 1, 0);
	if (!slot)
		return 0;
	if (*slot)
		return *slot;
	*slot = PP_BPF_ID_BASE + b->next_stack++;
	u.r.h.len = sizeof(u.r) + k * sizeof(u.r.frames[0]);
	u.r.h.type = PP_REC_STACK;
	u.r.h.flags = 0;
	u.r.h.aux = *slot;
	u.r.nframes = k;
	u.r.tid = tid;
	b->emit(&u.r.h, b->ctx);
	return *slot;
}

/*
 * Attached without the shim: an anonymous mapping is a block of the
 * Python line that made it, as the shim's own MMAP/MUNMAP records are
 * (glibc's big blocks, pymalloc's arenas; the brk heap is not charged).
 */
static void kmem_block(struct pp_bpf *b, const struct kmem_event *e,
		       size_t len)
{
	struct pp_rec_alloc r = { 0 };
	uint32_t n = kmem_frames(e, len);

	r.h.len = sizeof(r);
	r.h.type = e->op == KMEM_MMAP ? PP_REC_MMAP : PP_REC_MUNMAP;
	r.h.flags = PP_DOM_MMAP;
	r.h.aux = e->op == KMEM_MMAP ? stack_id(b, e->frames, n, e->tid) : 0;
	r.addr = e->addr;
	r.size = e->size;
	b->emit(&r.h, b->ctx);
}

static void emit_map(struct pp_bpf *b, int type, uint64_t addr,
		     uint64_t size, uint32_t stack)
{
	struct pp_rec_alloc r = { 0 };

	r.h.len = sizeof(r);
	r.h.type = type;
	r.h.flags = PP_DOM_MMAP;
	r.h.aux = stack;
	r.addr = addr;
	r.size = size;
	b->emit(&r.h, b->ctx);
}

/*
 * The brk heap grown by a line is a block of that line, as a mapping
 * is: malloc's small and mid-sized blocks (below its mmap threshold,
 * which glibc raises as big blocks are freed) land there, so a leak of
 * them grows it. A shrink (malloc trimming its top) frees the pieces
 * above the new break; the one cut in two keeps its lower part.
 */
static void kmem_brk(struct pp_bpf *b, const struct kmem_event *e,
		     size_t len)
{
	uint32_t n = kmem_frames(e, len);
	int64_t d = (int64_t)e->size;
	uint64_t brk = e->addr + d;
	struct brk_piece *p;

	if (d > 0) {
		b->brk = pp_grow(b->brk, &b->capbrk, b->nbrk + 1,
				 sizeof(*b->brk));
		p = &b->brk[b->nbrk++];
		p->start = e->addr;
		p->len = d;
		p->stack = stack_id(b, e->frames, n, e->tid);
		emit_map(b, PP_REC_MMAP, p->start, p->len, p->stack);
		span_add(b, p->start, p->start + p->len);
		return;
	}
	pages_free(b, brk, e->addr);
	span_del(b, brk, e->addr);
	while (b->nbrk && b->brk[b->nbrk - 1].start + b->brk[b->nbrk - 1].len >
				  brk) {
		p = &b->brk[b->nbrk - 1];
		emit_map(b, PP_REC_MUNMAP, p->start, p->len, 0);
		if (p->start < brk) {
			p->len = brk - p->start;
			emit_map(b, PP_REC_MMAP, p->start, p->len, p->stack);
			break;
		}
		b->nbrk--;
	}
}

static int on_lock(void *ctx, void *data, size_t len)
{
	struct pp_bpf *b = ctx;
	const struct lock_event *e = data;
	struct pp_rec_lock r = { 0 };
	uint32_t sid;
	size_t n;

	b->handled++;
	n = len > LOCK_EVENT_HEAD ? (len - LOCK_EVENT_HEAD) /
				    sizeof(e->frames[0]) : 0;
	sid = stack_id(b, e->frames, e->nframes < n ? e->nframes : n, e->tid);
	r.h.len = sizeof(r);
	r.h.type = PP_REC_LOCK;
	r.h.flags = sid ? PP_LOCK_PY : PP_LOCK_FUTEX;
	r.h.aux = sid;
	r.lock_addr = e->uaddr;
	r.ts_start = e->ts_start;
	r.ts_end = e->ts_end;
	r.tid = e->tid;
	b->emit(&r.h, b->ctx);
	return 0;
}

/* ---- attach ---- */

static void add_source(struct pp_bpf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_source(struct pp_bpf *b, const char *fmt, ...)
{
	size_t n = strlen(b->sources);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->sources + n, sizeof(b->sources) - n, fmt, ap);
	va_end(ap);
	n = strlen(b->sources);
	if (n + 1 < sizeof(b->sources)) {
		b->sources[n] = '\n';
		b->sources[n + 1] = 0;
	}
}

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static int add_ring(struct pp_bpf *b, struct bpf_map *map,
		    ring_buffer_sample_fn fn)
{
	if (!b->rb) {
		b->rb = ring_buffer__new(bpf_map__fd(map), fn, b, NULL);
		return b->rb ? 0 : -errno;
	}
	return ring_buffer__add(b->rb, bpf_map__fd(map), fn, b);
}

/*
 * Test knob: PYPROF_TEST_BPF_RING=BYTES (a power of two, at least a
 * page) shrinks every eBPF ring buffer, so that tests can make them
 * overflow (tests/e2e/test_drops.py).
 */
static void test_ring_size(struct bpf_map *map)
{
	const char *v = getenv("PYPROF_TEST_BPF_RING");
	unsigned long n = v ? strtoul(v, NULL, 0) : 0;

	if (n >= 4096 && !(n & (n - 1)))
		bpf_map__set_max_entries(map, n);
}

/*
 * Start-up: libbpf 1.1 reads and parses the kernel's BTF (megabytes)
 * for each object it loads, for that object's CO-RE relocations alone:
 * 17-24 ms of CPU per object, most of pyprof's start-up. The types those
 * relocations name were cut out of the BTF of the kernel the build ran
 * on (Makefile: core_btf.h, a few hundred bytes); on that same kernel
 * (the same build id in its ELF notes) libbpf is given them instead,
 * through a memfd. Any other kernel has its own BTF read, as before.
 * NULL: no such file.
 */
static const char *core_btf_path(void)
{
	static char path[32];
	static int done;
	unsigned char notes[sizeof(pp_core_notes) + 1];
	ssize_t n = -1;
	int fd;

	if (done)
		return path[0] ? path : NULL;
	done = 1;
	fd = open("/sys/kernel/notes", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, notes, sizeof(notes));
		close(fd);
	}
	/* test knob: PYPROF_TEST_KERNEL_BTF=1 takes the other way */
	if (n != sizeof(pp_core_notes) ||
	    memcmp(notes, pp_core_notes, n) ||
	    getenv("PYPROF_TEST_KERNEL_BTF"))
		return NULL;
	fd = memfd_create("pyprof-core-btf", MFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (write(fd, pp_core_btf, sizeof(pp_core_btf)) !=
	    (ssize_t)sizeof(pp_core_btf)) {
		close(fd);
		return NULL;
	}
	/* kept open: each object's open reads it by this name */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return path;
}

#define OPEN(name)                                                     \
	({                                                             \
		LIBBPF_OPTS(bpf_object_open_opts, o_,                  \
			    .btf_custom_path = core_btf_path());       \
		name##_bpf__open_opts(&o_);                            \
	})

/* libbpf returns NULL and sets errno */
#define LINK(skel, prog, expr)                                         \
	({                                                             \
		(skel)->links.prog = (expr);                           \
		(skel)->links.prog ? 0 : -errno;                       \
	})

/*
 * The syscall and switch hooks (ebpf/sys.h): one sys_enter and one
 * sys_exit program per target for kmem, one sched_switch program for
 * the futex waits of the GIL (futex mode) and the locks, each only if
 * used, attached before the users' programs are put in their slots (an
 * empty slot is a no-op). Loaded first: the users' objects share its
 * prog array.
 */
static int load_sys(struct pp_bpf *b, unsigned mode)
{
	struct sys_bpf *s;
	int err;

	s = OPEN(sys);
	if (!s)
		return -errno;
	b->sys = s;
	s->rodata->targ_tgid = b->proc.pid;
	s->rodata->want_mem = !!(mode & PP_BPF_KMEM);
	bpf_program__set_autoload(s->progs.sys_enter, !!(mode & PP_BPF_KMEM));
	bpf_program__set_autoload(s->progs.sys_exit, !!(mode & PP_BPF_KMEM));
	bpf_program__set_autoload(s->progs.sys_switch,
				  (mode & PP_BPF_LOCKS) ||
				  ((mode & PP_BPF_GIL) && (mode & PP_BPF_GIL_FUTEX)));
	s->rodata->want_madvise = (mode & PP_BPF_KMEM_LINES) &&
				  (mode & PP_BPF_KMEM_FAULTS);
	err = sys_bpf__load(s);
	return err ?: sys_bpf__attach(s);
}

/* before the object's load: the target's one prog array and the
 * switch's findings (ebpf/sys.bpf.h), shared with ebpf/sys.bpf.c */
static int sys_share(struct pp_bpf *b, struct bpf_map *progs,
		     struct bpf_map *switched)
{
	return b->sys_err ?:
	       bpf_map__reuse_fd(progs, bpf_map__fd(b->sys->maps.sys_progs)) ?:
	       bpf_map__reuse_fd(switched,
				 bpf_map__fd(b->sys->maps.sys_switched));
}

static int sys_slot(struct pp_bpf *b, int slot, struct bpf_program *prog)
{
	int fd = bpf_program__fd(prog);

	if (bpf_map_update_elem(bpf_map__fd(b->sys->maps.sys_progs), &slot,
				&fd, BPF_ANY))
		return -errno;
	return 0;
}

static int attach_gil(struct pp_bpf *b, unsigned mode, char *why,
		      size_t wl)
{
	const struct pp_pyproc *p = &b->proc;
	struct gil_bpf *s;
	int pid = p->pid, err, futex, precise, cond;

	s = OPEN(gil);
	if (!s)
		return -errno;
	b->gil = s;
	test_ring_size(s->maps.gil_events);
	s->rodata->targ_tgid = pid;
	s->rodata->gil_addr = p->gil;
	/* start-up: only what the branch below attaches is verified */
	futex = !!(mode & PP_BPF_GIL_FUTEX);
	precise = !futex && p->off_take_gil && p->off_drop_gil &&
		  !(mode & PP_BPF_GIL_COND);
	cond = !futex && !precise && p->off_cond_signal &&
	       p->off_cond_timedwait;
	s->rodata->gil_precise = precise;
	bpf_program__set_autoload(s->progs.gil_switch, futex);
	bpf_program__set_autoload(s->progs.take_gil_enter, precise);
	bpf_program__set_autoload(s->progs.take_gil_exit, precise);
	bpf_program__set_autoload(s->progs.drop_gil_enter, precise);
	bpf_program__set_autoload(s->progs.cond_signal, cond);
	bpf_program__set_autoload(s->progs.cond_timedwait, cond);
	bpf_program__set_autoload(s->progs.cond_wait,
				  cond || (precise && p->off_cond_wait));
	err = (futex ? sys_share(b, s->maps.sys_progs,
				 s->maps.sys_switched) : 0) ?:
	      gil_bpf__load(s);
	if (err)
		return err;
	err = LINK(s, gil_thread_new,
		   bpf_program__attach(s->progs.gil_thread_new)) ?:
	      LINK(s, gil_thread_exit,
		   bpf_program__attach(s->progs.gil_thread_exit)) ?:
	      LINK(s, gil_thread_rename,
		   bpf_program__attach(s->progs.gil_thread_rename));
	if (err)
		return err;
	if ((mode & PP_BPF_GIL_FUTEX)) {
		err = sys_slot(b, SYS_GIL_SWITCH, s->progs.gil_switch);
		if (!err)
			add_source(b, "gil: sched_switch, blocked in futex(2) "
				      "on the GIL's words (waits only)");
	} else if (p->off_take_gil && p->off_drop_gil &&
		   !(mode & PP_BPF_GIL_COND)) {
		err = LINK(s, take_gil_enter,
			   bpf_program__attach_uprobe(s->progs.take_gil_enter,
						      false, pid, p->pyelf,
						      p->off_take_gil)) ?:
		      LINK(s, take_gil_exit,
			   bpf_program__attach_uprobe(s->progs.take_gil_exit,
						      true, pid, p->pyelf,
						      p->off_take_gil)) ?:
		      LINK(s, drop_gil_enter,
			   bpf_program__attach_uprobe(s->progs.drop_gil_enter,
						      false, pid, p->pyelf,
						      p->off_drop_gil));
		if (!err && p->off_cond_wait)
			err = LINK(s, cond_wait,
				   bpf_program__attach_uprobe(
					   s->progs.cond_wait, false, pid,
					   p->libc, p->off_cond_wait));
		if (!err)
			add_source(b, "gil: uprobes take_gil/drop_gil (%s)",
				   base(p->pyelf));
	} else if (p->off_cond_signal && p->off_cond_timedwait) {
		err = LINK(s, cond_signal,
			   bpf_program__attach_uprobe(s->progs.cond_signal,
						      false, pid, p->libc,
						      p->off_cond_signal)) ?:
		      LINK(s, cond_timedwait,
			   bpf_program__attach_uprobe(s->progs.cond_timedwait,
						      false, pid, p->libc,
						      p->off_cond_timedwait)) ?:
		      LINK(s, cond_wait,
			   bpf_program__attach_uprobe(s->progs.cond_wait,
						      false, pid, p->libc,
						      p->off_cond_wait));
		if (!err)
			add_source(b, "gil: uprobes pthread_cond_signal/"
				      "timedwait/wait on the GIL's condvars (%s)",
				   base(p->libc));
	} else {
		snprintf(why, wl, "no take_gil symbol and no glibc "
				  "pthread_cond_* in pid %d", pid);
		return -ENOENT;
	}
	if (!err)
		err = add_ring(b, s->maps.gil_events, on_gil);
	return err;
}

static int attach_gc(struct pp_bpf *b, unsigned mode, char *why, size_t wl)
{
	const struct pp_pyproc *p = &b->proc;
	struct gc_bpf *s;
	int pid = p->pid, err, usdt;

	s = OPEN(gc);
	if (!s)
		return -errno;
	b->gc = s;
	test_ring_size(s->maps.gc_events);
	s->rodata->targ_tgid = pid;
	s->rodata->runtime_addr = p->runtime;
	s->rodata->interp_head_off = p->layout.runtime_interp_head;
	s->rodata->gc_stats_off = p->gc_stats ? p->gc_stats - p->interp : 0;
	s->rodata->collector_has_ptrs = p->gc_has_ptrs;
	/* start-up: only what is attached below is verified */
	usdt = p->usdt_gc && !(mode & PP_BPF_GC_UPROBE);
	bpf_program__set_autoload(s->progs.gc_start, usdt);
	bpf_program__set_autoload(s->progs.gc_done, usdt);
	bpf_program__set_autoload(s->progs.gc_enter, !usdt && p->off_gc);
	bpf_program__set_autoload(s->progs.gc_exit, !usdt && p->off_gc);
	err = gc_bpf__load(s);
	if (err)
		return err;
	if (usdt) {
		err = LINK(s, gc_start,
			   bpf_program__attach_usdt(s->progs.gc_start, pid,
						    p->pyelf, "python",
						    "gc__start", NULL)) ?:
		      LINK(s, gc_done,
			   bpf_program__attach_usdt(s->progs.gc_done, pid,
						    p->pyelf, "python",
						    "gc__done", NULL));
		if (!err)
			add_source(b, "gc: USDT python:gc__start/gc__done (%s)",
				   base(p->pyelf));
	} else if (p->off_gc) {
		err = LINK(s, gc_enter,
			   bpf_program__attach_uprobe(s->progs.gc_enter, false,
						      pid, p->pyelf,
						      p->off_gc)) ?:
		      LINK(s, gc_exit,
			   bpf_program__attach_uprobe(s->progs.gc_exit, true,
						      pid, p->pyelf,
						      p->off_gc));
		if (!err)
			add_source(b, "gc: uprobe+uretprobe %s (%s)", p->gc_fn,
				   base(p->pyelf));
	} else {
		snprintf(why, wl, "no USDT gc probes and no %s symbol in %.100s",
			 p->gc_fn, base(p->pyelf));
		return -ENOENT;
	}
	if (!err)
		err = add_ring(b, s->maps.gc_events, on_gc);
	return err;
}

/* ebpf/pystack.h is a copy of these pp_pylayout fields: same width,
 * same "not there" value, or the build fails */
#define SAME_WIDTH(cfg, lay)                                               \
	_Static_assert(sizeof(((struct py_walk_cfg *)0)->cfg) ==           \
			       sizeof(((struct pp_pylayout *)0)->lay),     \
		       "py_walk_cfg." #cfg " vs pp_pylayout." #lay)
_Static_assert(PY_OFF_NONE == PP_OFF_NONE, "PY_OFF_NONE");
SAME_WIDTH(interp_head, runtime_interp_head);
SAME_WIDTH(tstate_head, interp_tstate_head);
SAME_WIDTH(tstate_next, tstate_next);
SAME_WIDTH(tstate_thread_id, tstate_thread_id);
SAME_WIDTH(tstate_frame, tstate_frame);
SAME_WIDTH(cframe_frame, cframe_frame);
SAME_WIDTH(frame_code, frame_code);
SAME_WIDTH(frame_back, frame_back);
SAME_WIDTH(frame_instr, frame_instr);
SAME_WIDTH(frame_owner, frame_owner);
SAME_WIDTH(owner_cstack, owner_cstack);
SAME_WIDTH(code_tagged, code_tagged);

/* The bytes from a frame's start that hold every field the BPF walker
 * reads (8 for each, the owner byte 1), read at once; 0 if more than
 * it may read in one piece (ebpf/pystack.bpf.h). */
static uint32_t frame_span(const struct pp_pylayout *l)
{
	uint32_t offs[] = { l->frame_code, l->frame_back, l->frame_instr },
		 span = 0;
	size_t i;

	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		if (offs[i] + 8 > span)
			span = offs[i] + 8;
	if (l->frame_owner != PP_OFF_NONE && l->frame_owner + 1 > span)
		span = l->frame_owner + 1;
	return span <= PY_FRAME_READ ? span : 0;
}

/* The BPF stack walker's view of the target (ebpf/pystack.h). */
static void walk_cfg(struct py_walk_cfg *c, const struct pp_pyproc *p)
{
	const struct pp_pylayout *l = &p->layout;

	c->runtime = p->runtime;
	c->interp_head = l->runtime_interp_head;
	c->tstate_head = l->interp_tstate_head;
	c->tstate_next = l->tstate_next;
	c->tstate_thread_id = l->tstate_thread_id;
	c->tstate_frame = l->tstate_frame;
	c->cframe_frame = l->cframe_frame;
	c->frame_code = l->frame_code;
	c->frame_back = l->frame_back;
	c->frame_instr = l->frame_instr;
	c->instr_is_int = l->instr_kind == PP_INSTR_LASTI_BYTES ||
			  l->instr_kind == PP_INSTR_LASTI_UNITS;
	c->frame_owner = l->frame_owner;
	c->owner_cstack = l->owner_cstack;
	c->code_tagged = l->code_tagged;
	c->frame_span = frame_span(l);
	/* 3.11+ (an instruction pointer, not f_lasti): _PyInterpreterFrame
	 * in the thread's data stack (ebpf/pystack.bpf.h) */
	c->frame_window = c->frame_span && !c->instr_is_int;
}

/* open and load only: may run on another thread (see pp_bpf_attach) */
static int load_locks(struct pp_bpf *b)
{
	const struct pp_pyproc *p = &b->proc;
	struct py_walk_cfg *c;
	struct locks_bpf *s;
	uint64_t words[LOCK_MAX_EXCLUDE];
	int i, n;

	s = OPEN(locks);
	if (!s)
		return -errno;
	b->locks = s;
	test_ring_size(s->maps.lock_events);
	s->rodata->targ_tgid = p->pid;
	n = pp_pyproc_gil_words(p, words, LOCK_MAX_EXCLUDE);
	for (i = 0; i < n; i++)
		s->rodata->exclude[i] = words[i];
	c = (struct py_walk_cfg *)&s->rodata->py;
	walk_cfg(c, p);
	return sys_share(b, s->maps.sys_progs, s->maps.sys_switched) ?:
	       locks_bpf__load(s);
}

static int attach_locks(struct pp_bpf *b)
{
	struct locks_bpf *s = b->locks;
	int err = sys_slot(b, SYS_LOCK_SWITCH, s->progs.lock_switch);

	if (err)
		return err;
	add_source(b, "locks: sched_switch, blocked in futex(2) outside the "
		      "GIL, Python stack read in BPF");
	return add_ring(b, s->maps.lock_events, on_lock);
}

/*
 * The break now, from the end of [heap] (glibc moves it by whole pages),
 * so the first brk after an attach has a starting point; 0 if none.
 */
static uint64_t heap_end(int pid)
{
	char fn[64], line[512];
	unsigned long lo, hi, end = 0;
	FILE *f;

	snprintf(fn, sizeof(fn), "/proc/%d/maps", pid);
	f = fopen(fn, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[heap]") &&
		    sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			end = hi;
	fclose(f);
	return end;
}

/* PYPROF_FAULT_EVERY=N: one first-touch fault in N is read (its
 * stack), standing for N pages; 1 (the default) reads every one */
static unsigned fault_every(void)
{
	const char *v = getenv("PYPROF_FAULT_EVERY");
	unsigned long n = v ? strtoul(v, NULL, 10) : 1;

	return n >= 1 && n <= 4096 ? n : 1;
}

/* open and load only: may run on another thread (see pp_bpf_attach) */
static int load_kmem(struct pp_bpf *b, unsigned mode)
{
	struct kmem_bpf *s;
	int err;

	s = OPEN(kmem);
	if (!s)
		return -errno;
	b->kmem = s;
	test_ring_size(s->maps.kmem_events);
	s->rodata->targ_tgid = b->proc.pid;
	if (mode & PP_BPF_KMEM_LINES) {
		s->rodata->with_stack = 1;
		walk_cfg((struct py_walk_cfg *)&s->rodata->py, &b->proc);
	}
	if ((mode & PP_BPF_KMEM_LINES) && (mode & PP_BPF_KMEM_FAULTS)) {
		s->rodata->with_faults = 1;
		s->rodata->fault_every = fault_every();
	} else {
		bpf_program__set_autoload(s->progs.kmem_fault, false);
	}
	err = sys_share(b, s->maps.sys_progs, s->maps.sys_switched) ?:
	      kmem_bpf__load(s);
	if (err && (mode & PP_BPF_KMEM_FAULTS) && s->rodata->with_faults) {
		/* a kernel without page_fault_user or bpf_find_vma: the
		 * rest still works */
		kmem_bpf__destroy(s);
		b->kmem = NULL;
		return load_kmem(b, mode & ~PP_BPF_KMEM_FAULTS);
	}
	return err;
}

static int attach_kmem(struct pp_bpf *b, unsigned mode)
{
	struct kmem_bpf *s = b->kmem;
	int err;

	if (!s->rodata->with_faults)	/* the kernel could not have them */
		mode &= ~PP_BPF_KMEM_FAULTS;
	if (mode & PP_BPF_KMEM_LINES) {
		__u32 zero = 0;
		__u64 brk = heap_end(b->proc.pid);

		if (brk)
			bpf_map_update_elem(bpf_map__fd(s->maps.cur_brk), &zero,
					    &brk, BPF_ANY);
	}
	/* the page fault tracepoint, if loaded; then the syscalls */
	err = kmem_bpf__attach(s) ?:
	      sys_slot(b, SYS_KMEM_IN, s->progs.kmem_enter) ?:
	      sys_slot(b, SYS_KMEM_OUT, s->progs.kmem_exit);
	if (err)
		return err;
	b->kmem_lines = !!(mode & PP_BPF_KMEM_LINES);
	b->kmem_faults = b->kmem_lines && (mode & PP_BPF_KMEM_FAULTS);
	pp_map_init(&b->pages, sizeof(uint64_t));
	pp_map_init(&b->regions, sizeof(struct region));
	add_source(b, "kmem: syscall tracepoints mmap/munmap/brk%s%s",
		   b->kmem_lines ? ", Python stack of each mmap and brk growth "
				   "read in BPF" :
				   "",
		   b->kmem_faults ? "; first-touch page faults (page_fault_user"
				    " tracepoint) with their Python stack" : "");
	return add_ring(b, s->maps.kmem_events, on_kmem);
}

static void emit_threads(struct pp_bpf *b)
{
	char fn[64];
	struct dirent *d;
	DIR *dir;

	snprintf(fn, sizeof(fn), "/proc/%d/task", b->proc.pid);
	dir = opendir(fn);
	if (!dir)
		return;
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.')
			emit_thread(b, atoi(d->d_name), b->t_attach, 0, NULL);
	closedir(dir);
}

static int silent(enum libbpf_print_level level, const char *fmt,
		  va_list ap)
{
	return level == LIBBPF_WARN && getenv("PP_BPF_DEBUG") ?
		       vfprintf(stderr, fmt, ap) : 0;
}

/*
 * Start-up: the tracepoint objects (locks, kmem) are verified on a
 * thread of their own while the uprobes (GIL, GC) are registered,
 * which is mostly waiting for the kernel; they are attached afterwards,
 * on the calling thread, in their turn. The thread touches nothing but
 * its own objects.
 */
struct tp_load {
	struct pp_bpf *b;
	unsigned mode;
	int locks, kmem;	/* 0 or -errno */
	int threaded, loaded;
	pthread_t thread;
};

static void *load_tp(void *arg)
{
	struct tp_load *l = arg;

	if (l->mode & PP_BPF_LOCKS)
		l->locks = load_locks(l->b);
	if (l->mode & PP_BPF_KMEM)
		l->kmem = load_kmem(l->b, l->mode);
	return NULL;
}

static void tp_start(struct tp_load *l)
{
	if ((l->mode & (PP_BPF_GIL | PP_BPF_GC)) &&
	    (l->mode & (PP_BPF_LOCKS | PP_BPF_KMEM)))
		l->threaded = !pthread_create(&l->thread, NULL, load_tp, l);
}

static void tp_wait(struct tp_load *l)
{
	if (l->threaded)
		pthread_join(l->thread, NULL);
	else if (!l->loaded)
		load_tp(l);
	l->threaded = 0;
	l->loaded = 1;
}

/*
 * Bench knob: PYPROF_TEST_BPF_OFF=locks+kmem+faults (any of them, any
 * separator) leaves those probes out, so that scripts/bench_attach.sh
 * can price each one (the GIL's: --gil off).
 */
static unsigned test_off(unsigned mode)
{
	const char *v = getenv("PYPROF_TEST_BPF_OFF");

	if (!v)
		return mode;
	if (strstr(v, "locks"))
		mode &= ~PP_BPF_LOCKS;
	if (strstr(v, "kmem"))
		mode &= ~PP_BPF_KMEM;
	if (strstr(v, "faults"))
		mode &= ~PP_BPF_KMEM_FAULTS;
	return mode;
}

int pp_bpf_attach(struct pp_bpf **out, int pid, unsigned mode,
		  pp_emit_fn emit, void *ctx, char *err, size_t errlen)
{
	struct {
		unsigned bit;
		const char *name;
	} parts[] = { { PP_BPF_GIL, "gil" }, { PP_BPF_GC, "gc" },
		      { PP_BPF_LOCKS, "locks" }, { PP_BPF_KMEM, "kmem" } };
	struct tp_load tl = { .mode = mode };
	struct pp_bpf *b;
	char why[256];
	size_t i;
	int rc;

	*out = NULL;
	mode = test_off(mode);
	tl.mode = mode;
	b = pp_xcalloc(1, sizeof(*b));
	if (pp_pyproc_open(&b->proc, pid, err, errlen)) {
		free(b);
		return -1;
	}
	libbpf_set_print(silent);
	b->emit = emit;
	b->ctx = ctx;
	b->t_attach = pp_now_ns();
	tl.b = b;
	core_btf_path();	/* made before the thread can ask */
	if (mode & (PP_BPF_GIL_FUTEX | PP_BPF_LOCKS | PP_BPF_KMEM))
		b->sys_err = load_sys(b, mode);
	if (b->sys_err == -EPERM || b->sys_err == -EACCES) {
		snprintf(err, errlen, "attaching needs root or "
				      "CAP_BPF+CAP_PERFMON");
		goto fail;
	}
	tp_start(&tl);
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (!(mode & parts[i].bit))
			continue;
		why[0] = 0;
		if (parts[i].bit == PP_BPF_GIL) {
			rc = attach_gil(b, mode, why, sizeof(why));
		} else if (parts[i].bit == PP_BPF_GC) {
			rc = attach_gc(b, mode, why, sizeof(why));
		} else {
			tp_wait(&tl);
			rc = parts[i].bit == PP_BPF_LOCKS ?
				     tl.locks ?: attach_locks(b) :
				     tl.kmem ?: attach_kmem(b, mode);
		}
		if (rc == -EPERM || rc == -EACCES) {
			snprintf(err, errlen, "attaching needs root or "
					      "CAP_BPF+CAP_PERFMON");
			goto fail;
		}
		if (rc) {
			add_source(b, "%s: unavailable (%s)", parts[i].name,
				   why[0] ? why : strerror(-rc));
			continue;
		}
		b->active |= parts[i].bit;
	}
	if (!b->active) {
		snprintf(err, errlen, "pid %d (Python %s): no probe could be "
				      "attached: %s", pid, b->proc.version,
			 b->sources);
		err[strcspn(err, "\n")] = 0;
		goto fail;
	}
	if (b->active & PP_BPF_GIL)
		emit_threads(b);
	*out = b;
	return 0;
fail:
	if (tl.threaded)
		pthread_join(tl.thread, NULL);
	pp_bpf_detach(b);
	return -1;
}

int pp_bpf_poll(struct pp_bpf *b, int timeout_ms)
{
	int rc;

	b->handled = 0;
	b->round++;
	/*
	 * Without waiting, read every ring whether or not its wake-up came:
	 * the programs send none (BPF_RB_NO_WAKEUP: a wake-up is an
	 * interrupt per event, 3% of a busy service's CPU under perf), and
	 * the collector stamps time and heap into the stream on its own
	 * clock, so what has been produced must be in by then. Callers read
	 * every few ms (attach: 10 ms, a 1 MiB ring's worth at 100 MiB/s).
	 */
	if (timeout_ms == 0)
		rc = ring_buffer__consume(b->rb);
	else
		rc = ring_buffer__poll(b->rb, timeout_ms);
	if (rc < 0 && rc != -EINTR)
		return rc;
	return b->handled;
}

/* Intervals still open at detach: a thread holding or waiting. */
static void close_gil(struct pp_bpf *b)
{
	struct gil_thread v;
	uint64_t now = pp_now_ns();
	__u32 key, next, *prev = NULL;
	int fd = bpf_map__fd(b->gil->maps.threads);

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		if (v.acquired)
			gil_cycle(b, key, v.wait_start, v.acquired, now);
		else if (v.wait_start)
			emit_gil(b, key, PP_GIL_WAIT, v.wait_start, now);
		else if (v.futex_start)
			emit_gil(b, key, PP_GIL_WAIT, v.futex_start, now);
	}
}

/*
 * Removing a uprobe waits for the kernel (tens of ms each, serialized),
 * about half a second for our set. Once the target is gone nothing can
 * hit them, so a child holding copies of the probe fds takes the last
 * reference and that wait, and pyprof exits at once. The child drops
 * stdio first, so a pipe reading pyprof's output sees EOF on time.
 */
void pp_bpf_detach_target_gone(struct pp_bpf *b)
{
	int fds[2], fd;
	char c;

	if (b && pipe(fds) == 0) {
		pid_t pid = fork();

		if (pid == 0) {
			fd = open("/dev/null", O_RDWR);
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			close(fds[1]);
			setsid();
			/* hold the fds until pyprof has let go of its own */
			while (read(fds[0], &c, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		close(fds[0]);
		pp_bpf_detach(b);
		close(fds[1]);
		return;
	}
	pp_bpf_detach(b);
}

void pp_bpf_detach(struct pp_bpf *b)
{
	size_t i;

	if (!b)
		return;
	/* stop the probes first, then drain what they queued */
	if (b->sys)
		sys_bpf__detach(b->sys);
	if (b->gil)
		gil_bpf__detach(b->gil);
	if (b->gc)
		gc_bpf__detach(b->gc);
	if (b->locks)
		locks_bpf__detach(b->locks);
	if (b->kmem)
		kmem_bpf__detach(b->kmem);
	if (b->rb) {
		b->round++;
		while (ring_buffer__consume(b->rb) > 0)
			;
		ring_buffer__free(b->rb);
	}
	if (b->gil && (b->active & PP_BPF_GIL))
		close_gil(b);
	gil_bpf__destroy(b->gil);
	gc_bpf__destroy(b->gc);
	locks_bpf__destroy(b->locks);
	kmem_bpf__destroy(b->kmem);
	sys_bpf__destroy(b->sys);
	for (i = 0; i < b->ncode; i++)
		free(b->code[i].lt);
	free(b->code);
	free(b->brk);
	free(b->spans);
	pp_map_free(&b->pages);
	pp_map_free(&b->regions);
	pp_map_free(&b->funcs);
	pp_map_free(&b->stacks);
	pp_map_free(&b->codes);
	free(b);
}

int pp_bpf_fd(const struct pp_bpf *b)
{
	return ring_buffer__epoll_fd(b->rb);
}

const char *pp_bpf_sources(const struct pp_bpf *b)
{
	return b->sources;
}

unsigned pp_bpf_active(const struct pp_bpf *b)
{
	return b->active;
}

uint64_t pp_bpf_lost(const struct pp_bpf *b, int src)
{
	switch (src) {
	case PP_LOST_BPF_GIL:
		return b->gil ? b->gil->bss->lost : 0;
	case PP_LOST_BPF_GC:
		return b->gc ? b->gc->bss->lost : 0;
	case PP_LOST_BPF_LOCKS:
		return b->locks ? b->locks->bss->lost : 0;
	case PP_LOST_BPF_KMEM:
		return b->kmem ? b->kmem->bss->lost : 0;
	}
	return 0;
}

const struct pp_pyproc *pp_bpf_proc(const struct pp_bpf *b)
{
	return &b->proc;
}

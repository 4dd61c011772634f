// SPDX-License-Identifier: MIT
/*
 * The libc allocation family and anonymous mmap/munmap, interposed by
 * LD_PRELOAD. Each wrapper calls the next definition (found once with
 * dlsym(RTLD_NEXT)) and records after an allocation, before a release,
 * so a block reused by another thread is always ordered after its free.
 * Calls made while one of our hooks runs in this thread (the
 * PyMem wrappers calling malloc, pymalloc mapping an arena) pass
 * through: a block is counted once, by the outermost hook.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

#define EXPORT __attribute__((visibility("default")))

static struct {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*reallocarray)(void *, size_t, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	int (*munmap)(void *, size_t);
} real;

/*
 * dlsym itself may allocate (its error buffer) before we know where
 * malloc is: serve those few requests from a static pool, never freed.
 */
static char boot_pool[16384] __attribute__((aligned(16)));
static size_t boot_used;
/* volatile: glibc declares dlsym leaf (it never calls back into this
 * file, says __THROW), so GCC drops a plain store around it; glibc
 * before 2.34 does call calloc and free from dlsym. */
static volatile int resolving;

static void *boot_alloc(size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (boot_used + n > sizeof(boot_pool))
		return NULL;
	p = boot_pool + boot_used;
	boot_used += n;
	return p;
}

static int in_boot_pool(const void *p)
{
	return (const char *)p >= boot_pool &&
	       (const char *)p < boot_pool + sizeof(boot_pool);
}

static void resolve(void)
{
	resolving = 1;
#define NEXT(name) real.name = dlsym(RTLD_NEXT, #name)
	NEXT(calloc);
	NEXT(malloc);
	NEXT(free);
	NEXT(realloc);
	NEXT(reallocarray);
	NEXT(posix_memalign);
	NEXT(aligned_alloc);
	NEXT(memalign);
	NEXT(valloc);
	NEXT(pvalloc);
	NEXT(mmap);
	NEXT(munmap);
#undef NEXT
	resolving = 0;
}

/* Common entry: 1 if this call should be recorded. */
static inline int hook_enter(void)
{
	if (unlikely(!real.free))
		resolve();
	if (unlikely(pp_shim.py_state == PP_PY_WAIT))
		pp_py_maybe_install();
	if (!pp_shim.active || pp_in_hook)
		return 0;
	pp_in_hook++;
	return 1;
}

static inline void hook_leave(void)
{
	pp_in_hook--;
}

/*
 * --sample: the allocation the countdown picks is served from the
 * region (region.c) and recorded; the rest pass through unrecorded.
 */
static inline void *sampled(size_t n, size_t align, int zero)
{
	void *p = pp_sample_alloc(1, n, align);

	if (p) {
		if (zero)
			memset(p, 0, n);
		pp_emit_alloc(PP_DOM_LIBC, p, n);
	}
	return p;
}

EXPORT void *malloc(size_t n)
{
	void *p;

	if (unlikely(resolving))
		return boot_alloc(n);
	if (!hook_enter())
		return real.malloc(n);
	if (pp_shim.sample_bytes) {
		p = sampled(n, 0, 0);
		if (!p)
			p = real.malloc(n);
	} else {
		p = real.malloc(n);
		if (p)
			pp_emit_alloc(PP_DOM_LIBC, p, n);
	}
	hook_leave();
	return p;
}

EXPORT void free(void *p)
{
	if (unlikely(!p || in_boot_pool(p)))
		return;
	if (unlikely(pp_in_region(p))) {
		pp_region_free_rec(PP_DOM_LIBC, p);
		return;
	}
	if (pp_shim.sample_bytes || !hook_enter()) {
		if (unlikely(!real.free))
			resolve();
		real.free(p);
		return;
	}
	pp_emit_free(PP_DOM_LIBC, p);
	real.free(p);
	hook_leave();
}

/* C23's sized frees: glibc's own would unmap a region block under us */
EXPORT void free_sized(void *p, size_t n)
{
	free(p);
}

EXPORT void free_aligned_sized(void *p, size_t align, size_t n)
{
	free(p);
}

EXPORT void *calloc(size_t n, size_t size)
{
	size_t bytes;
	void *p;

	if (unlikely(resolving)) {
		p = boot_alloc(n * size);	/* the pool is zeroed */
		return p;
	}
	if (!hook_enter())
		return real.calloc(n, size);
	if (pp_shim.sample_bytes) {
		p = NULL;
		if (!__builtin_mul_overflow(n, size, &bytes))
			p = sampled(bytes, 0, 1);
		if (!p)
			p = real.calloc(n, size);
	} else {
		p = real.calloc(n, size);
		if (p)
			pp_emit_alloc(PP_DOM_LIBC, p, n * size);
	}
	hook_leave();
	return p;
}

/*
 * A region block reallocated, recording or not: it moves out to the
 * real heap (take = 0) or to another region block (take = 1, recorded
 * as a realloc when rec). NULL with the block untouched on failure.
 */
static void *region_realloc(void *old, size_t n, int take, int rec)
{
	size_t have = pp_region_usable(old);
	void *p = NULL;

	if (take && n <= have && n + 2 * 4096 > have) {
		p = old;		/* fits: stays where it is */
		if (rec)
			pp_emit_realloc(PP_DOM_LIBC, old, p, n);
		return p;
	}
	if (take)
		p = pp_region_alloc(1, n, 0);
	if (p && rec)
		pp_emit_realloc(PP_DOM_LIBC, old, p, n);
	if (!p) {
		p = real.malloc(n);
		if (!p)
			return NULL;
		if (rec)
			pp_emit_free(PP_DOM_LIBC, old);
	}
	memcpy(p, old, n < have ? n : have);
	pp_region_free(old);
	return p;
}

/* Sampled realloc of a block of the real heap that the countdown picks:
 * into a new region block (NULL: not taken, or out of memory). */
static void *realloc_into_region(void *old, size_t n)
{
	void *p = pp_region_alloc(1, n, 0), *q;

	if (!p)
		return NULL;
	if (old) {
		/* the old size is the allocator's: let it copy n bytes */
		q = real.realloc(old, n);
		if (!q) {
			pp_region_free(p);
			return NULL;
		}
		memcpy(p, q, n);
		real.free(q);
	}
	pp_emit_realloc(PP_DOM_LIBC, NULL, p, n);
	return p;
}

EXPORT void *realloc(void *old, size_t n)
{
	void *p;

	if (unlikely(in_boot_pool(old))) {
		/* a boot block grows: move it to the real heap */
		p = malloc(n);
		if (p)
			memcpy(p, old, n);
		return p;
	}
	if (unlikely(pp_in_region(old)) && !n) {
		/* glibc frees and returns NULL */
		pp_region_free_rec(PP_DOM_LIBC, old);
		return NULL;
	}
	if (!hook_enter()) {
		/* nested (no outer hook records it) or not recording */
		if (unlikely(pp_in_region(old)))
			return region_realloc(old, n, 0, pp_shim.active);
		return real.realloc(old, n);
	}
	if (pp_shim.sample_bytes) {
		int take = pp_sample_take(n);

		if (unlikely(pp_in_region(old)))
			p = region_realloc(old, n, take, 1);
		else if (!take || !(p = realloc_into_region(old, n)))
			p = real.realloc(old, n);
	} else if (old && !n) {
		/* glibc frees and returns NULL */
		pp_emit_free(PP_DOM_LIBC, old);
		p = real.realloc(old, n);
	} else {
		struct pp_realloc_tx tx;

		pp_record_realloc_begin(&tx, PP_DOM_LIBC, old, n);
		p = real.realloc(old, n);
		pp_record_realloc_end(&tx, p);
	}
	hook_leave();
	return p;
}

EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(old, bytes);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	int err = 0;

	if (!hook_enter())
		return real.posix_memalign(out, align, n);
	if (pp_shim.sample_bytes) {
		void *p = NULL;

		/* EINVAL as glibc would say it, before the countdown */
		if (!align || align % sizeof(void *) || (align & (align - 1)))
			err = EINVAL;
		else if ((p = sampled(n, align, 0)))
			*out = p;
		else
			err = real.posix_memalign(out, align, n);
	} else {
		err = real.posix_memalign(out, align, n);
		if (!err)
			pp_emit_alloc(PP_DOM_LIBC, *out, n);
	}
	hook_leave();
	return err;
}

#define ALIGNED_HOOK(name, proto, args, size, align)                    \
	EXPORT void *name proto                                         \
	{                                                               \
		void *p;                                                \
		if (!hook_enter())                                      \
			return real.name args;                          \
		if (pp_shim.sample_bytes) {                             \
			p = sampled(size, align, 0);                    \
			if (!p)                                         \
				p = real.name args;                     \
		} else {                                                \
			p = real.name args;                             \
			if (p)                                          \
				pp_emit_alloc(PP_DOM_LIBC, p, size);    \
		}                                                       \
		hook_leave();                                           \
		return p;                                               \
	}

/* (an alignment that is not a power of two: the region declines and
 * glibc decides, unrecorded) */
ALIGNED_HOOK(aligned_alloc, (size_t align, size_t n), (align, n), n, align)
ALIGNED_HOOK(memalign, (size_t align, size_t n), (align, n), n, align)
ALIGNED_HOOK(valloc, (size_t n), (n), n, 4096)
ALIGNED_HOOK(pvalloc, (size_t n), (n), n, 4096)

/*
 * Anonymous private mappings are heap: the program's own (charged to
 * its line) or an allocator's reserve such as a pymalloc arena (made
 * inside one of our hooks: recorded as allocator overhead).
 */
static int is_heap_map(int flags, int fd)
{
	return (flags & MAP_ANONYMOUS) && !(flags & MAP_SHARED) && fd < 0;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off)
{
	void *p;
	int nested;

	if (unlikely(!real.mmap))
		resolve();
	if (!pp_shim.active || !is_heap_map(flags, fd))
		return real.mmap(addr, len, prot, flags, fd, off);
	nested = pp_in_hook;
	pp_in_hook++;
	p = real.mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED)
		pp_record_alloc(nested ? PP_DOM_ARENA : PP_DOM_MMAP, p, len);
	pp_in_hook--;
	return p;
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
		    off_t off) __attribute__((alias("mmap")));

EXPORT int munmap(void *addr, size_t len)
{
	int ret;

	if (unlikely(!real.munmap))
		resolve();
	if (!pp_shim.active)
		return real.munmap(addr, len);
	pp_in_hook++;
	pp_record_munmap(addr, len);
	ret = real.munmap(addr, len);
	pp_in_hook--;
	return ret;
}

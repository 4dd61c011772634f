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

static struct pp_alloc_fns real;

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

EXPORT void *malloc(size_t n)
{
	void *p;

	if (unlikely(resolving))
		return boot_alloc(n);
	if (!hook_enter())
		return real.malloc(n);
	p = real.malloc(n);
	if (p)
		pp_record_alloc(PP_DOM_LIBC, p, n);
	hook_leave();
	return p;
}

static __attribute__((noinline)) void free_hooked(void *p)
{
	if (!hook_enter()) {
		real.free(p);
		return;
	}
	pp_record_free(PP_DOM_LIBC, p);
	real.free(p);
	hook_leave();
}

EXPORT void free(void *p)
{
	if (unlikely(!p || in_boot_pool(p)))
		return;
	/* --sample: a block the filter rules out was not recorded */
	if (pp_shim.sample_bytes && likely(real.free) &&
	    likely(!pp_sample_maybe(p))) {
		real.free(p);
		return;
	}
	free_hooked(p);
}

EXPORT void *calloc(size_t n, size_t size)
{
	void *p;

	if (unlikely(resolving)) {
		p = boot_alloc(n * size);	/* the pool is zeroed */
		return p;
	}
	if (!hook_enter())
		return real.calloc(n, size);
	p = real.calloc(n, size);
	if (p)
		pp_record_alloc(PP_DOM_LIBC, p, n * size);
	hook_leave();
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
	if (!hook_enter())
		return real.realloc(old, n);
	if (old && !n) {
		/* glibc frees and returns NULL */
		pp_record_free(PP_DOM_LIBC, old);
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
	int err;

	if (!hook_enter())
		return real.posix_memalign(out, align, n);
	err = real.posix_memalign(out, align, n);
	if (!err)
		pp_record_alloc(PP_DOM_LIBC, *out, n);
	hook_leave();
	return err;
}

#define ALIGNED_HOOK(name, proto, args, size)                           \
	EXPORT void *name proto                                         \
	{                                                               \
		void *p;                                                \
		if (!hook_enter())                                      \
			return real.name args;                          \
		p = real.name args;                                     \
		if (p)                                                  \
			pp_record_alloc(PP_DOM_LIBC, p, size);          \
		hook_leave();                                           \
		return p;                                               \
	}

ALIGNED_HOOK(aligned_alloc, (size_t align, size_t n), (align, n), n)
ALIGNED_HOOK(memalign, (size_t align, size_t n), (align, n), n)
ALIGNED_HOOK(valloc, (size_t n), (n), n)
ALIGNED_HOOK(pvalloc, (size_t n), (n), n)

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

/* Attach mode (got.c): the GOT slots lead here, and the next
 * definitions are lib's own (RTLD_NEXT from a dlopened shim can give a
 * non-PIE executable's canonical PLT address, back through its GOT). */
void pp_interpose_resolve_in(void *lib)
{
	resolving = 1;
#define FROM(name) real.name = dlsym(lib, #name)
	FROM(calloc);
	FROM(malloc);
	FROM(free);
	FROM(realloc);
	FROM(reallocarray);
	FROM(posix_memalign);
	FROM(aligned_alloc);
	FROM(memalign);
	FROM(valloc);
	FROM(pvalloc);
	FROM(mmap);
	FROM(munmap);
#undef FROM
	resolving = 0;
}

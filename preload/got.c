// SPDX-License-Identifier: MIT
/*
 * Attach mode: the libc allocation family hooked by rewriting GOT
 * entries (LD_PRELOAD comes too late for a running process). Every
 * object loaded at attach but the shim, the dynamic loader and the vDSO:
 * the executable too (Debian's static python3.11 calls malloc through
 * its own PLT; it even holds malloc's canonical address, which libc's
 * own GOT then points at). Both JUMP_SLOT and GLOB_DAT relocations (a
 * -z now / -fno-plt object calls through the latter).
 *
 * The slots point at small wrappers that count the calls in flight, so
 * the detach (GIL held) knows when no thread is still inside the shim's
 * code before it is unloaded. The wrappers call interpose.c's functions,
 * which call libc's own definitions (pp_interpose_resolve_in: the
 * canonical address above would lead back into the executable's GOT).
 */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define MAX_SLOTS 1024

static int inflight;

#define ENTER __atomic_fetch_add(&inflight, 1, __ATOMIC_SEQ_CST)
#define LEAVE __atomic_fetch_sub(&inflight, 1, __ATOMIC_RELEASE)

static struct pp_alloc_fns hk;

static void *w_malloc(size_t n)
{
	void *p;

	ENTER;
	p = hk.malloc(n);
	LEAVE;
	return p;
}

static void w_free(void *q)
{
	ENTER;
	hk.free(q);
	LEAVE;
}

static void *w_calloc(size_t n, size_t s)
{
	void *p;

	ENTER;
	p = hk.calloc(n, s);
	LEAVE;
	return p;
}

static void *w_realloc(void *q, size_t n)
{
	void *p;

	ENTER;
	p = hk.realloc(q, n);
	LEAVE;
	return p;
}

static void *w_reallocarray(void *q, size_t n, size_t s)
{
	void *p;

	ENTER;
	p = hk.reallocarray(q, n, s);
	LEAVE;
	return p;
}

static int w_posix_memalign(void **out, size_t a, size_t n)
{
	int e;

	ENTER;
	e = hk.posix_memalign(out, a, n);
	LEAVE;
	return e;
}

static void *w_aligned_alloc(size_t a, size_t n)
{
	void *p;

	ENTER;
	p = hk.aligned_alloc(a, n);
	LEAVE;
	return p;
}

static void *w_memalign(size_t a, size_t n)
{
	void *p;

	ENTER;
	p = hk.memalign(a, n);
	LEAVE;
	return p;
}

static void *w_valloc(size_t n)
{
	void *p;

	ENTER;
	p = hk.valloc(n);
	LEAVE;
	return p;
}

static void *w_pvalloc(size_t n)
{
	void *p;

	ENTER;
	p = hk.pvalloc(n);
	LEAVE;
	return p;
}

static void *w_mmap(void *a, size_t n, int prot, int fl, int fd, off_t off)
{
	void *p;

	ENTER;
	p = hk.mmap(a, n, prot, fl, fd, off);
	LEAVE;
	return p;
}

static int w_munmap(void *a, size_t n)
{
	int r;

	ENTER;
	r = hk.munmap(a, n);
	LEAVE;
	return r;
}

static const struct {
	const char *name;
	void *wrap;
} family[] = {
	{ "malloc", w_malloc },
	{ "free", w_free },
	{ "calloc", w_calloc },
	{ "realloc", w_realloc },
	{ "reallocarray", w_reallocarray },
	{ "posix_memalign", w_posix_memalign },
	{ "aligned_alloc", w_aligned_alloc },
	{ "memalign", w_memalign },
	{ "valloc", w_valloc },
	{ "pvalloc", w_pvalloc },
	{ "mmap", w_mmap },
	{ "mmap64", w_mmap },
	{ "munmap", w_munmap },
};
#define NFAMILY (sizeof(family) / sizeof(family[0]))

static struct slot {
	void **addr;
	void *old;
	void *wrap;
	uintptr_t ro_lo, ro_hi;		/* RELRO pages around it, or 0 */
} slots[MAX_SLOTS];
static int nslots;
static uintptr_t self_base;

static int family_index(const char *name)
{
	size_t i;

	for (i = 0; i < NFAMILY; i++)
		if (!strcmp(name, family[i].name))
			return (int)i;
	return -1;
}

/* d_ptr values: glibc relocates them in place, except in read-only
 * dynamic sections (the vDSO, skipped anyway) */
static uintptr_t dptr(const struct dl_phdr_info *info, ElfW(Addr) v)
{
	return v < info->dlpi_addr ? info->dlpi_addr + v : v;
}

static void scan_rela(const struct dl_phdr_info *info, const ElfW(Rela) *r,
		      size_t bytes, const ElfW(Sym) *symtab, const char *strtab,
		      uintptr_t ro_lo, uintptr_t ro_hi)
{
	size_t i, n = bytes / sizeof(*r);

	for (i = 0; i < n && nslots < MAX_SLOTS; i++) {
		unsigned type = ELF64_R_TYPE(r[i].r_info);
		const ElfW(Sym) *s;
		struct slot *sl;
		int k;

		if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
			continue;
		s = &symtab[ELF64_R_SYM(r[i].r_info)];
		/* a definition of its own (the canonical PLT of a non-PIE
		 * executable is not one: st_shndx is UNDEF) */
		if (s->st_shndx != SHN_UNDEF)
			continue;
		k = family_index(strtab + s->st_name);
		if (k < 0)
			continue;
		sl = &slots[nslots++];
		sl->addr = (void **)(info->dlpi_addr + r[i].r_offset);
		sl->wrap = family[k].wrap;
		if ((uintptr_t)sl->addr >= ro_lo && (uintptr_t)sl->addr < ro_hi) {
			sl->ro_lo = ro_lo;
			sl->ro_hi = ro_hi;
		}
	}
}

static int scan_object(struct dl_phdr_info *info, size_t size, void *data)
{
	const ElfW(Dyn) *dyn = NULL;
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL, *name = info->dlpi_name;
	uintptr_t rela = 0, jmprel = 0, ro_lo = 0, ro_hi = 0;
	size_t relasz = 0, pltsz = 0, pg = getpagesize();
	int i;

	(void)size, (void)data;
	if (info->dlpi_addr == self_base || strstr(name, "linux-vdso") ||
	    strstr(name, "/ld-linux") || strstr(name, "/ld-2."))
		return 0;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_DYNAMIC)
			dyn = (const void *)(info->dlpi_addr + ph->p_vaddr);
		if (ph->p_type == PT_GNU_RELRO) {
			ro_lo = (info->dlpi_addr + ph->p_vaddr) & ~(pg - 1);
			ro_hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz) &
				~(pg - 1);	/* the kernel keeps a partial
						 * last page writable */
		}
	}
	if (!dyn)
		return 0;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		switch (dyn->d_tag) {
		case DT_SYMTAB:
			symtab = (const void *)dptr(info, dyn->d_un.d_ptr);
			break;
		case DT_STRTAB:
			strtab = (const void *)dptr(info, dyn->d_un.d_ptr);
			break;
		case DT_RELA:
			rela = dptr(info, dyn->d_un.d_ptr);
			break;
		case DT_RELASZ:
			relasz = dyn->d_un.d_val;
			break;
		case DT_JMPREL:
			jmprel = dptr(info, dyn->d_un.d_ptr);
			break;
		case DT_PLTRELSZ:
			pltsz = dyn->d_un.d_val;
			break;
		}
	}
	if (!symtab || !strtab)
		return 0;
	if (rela)
		scan_rela(info, (const void *)rela, relasz, symtab, strtab,
			  ro_lo, ro_hi);
	if (jmprel)
		scan_rela(info, (const void *)jmprel, pltsz, symtab, strtab,
			  ro_lo, ro_hi);
	return 0;
}

/* one slot, its RELRO page writable meanwhile */
static void set_slot(struct slot *s, void *v)
{
	if (s->ro_lo)
		mprotect((void *)s->ro_lo, s->ro_hi - s->ro_lo,
			 PROT_READ | PROT_WRITE);
	__atomic_store_n(s->addr, v, __ATOMIC_RELEASE);
	if (s->ro_lo)
		mprotect((void *)s->ro_lo, s->ro_hi - s->ro_lo, PROT_READ);
}

int pp_got_hook(void *self)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	Dl_info di;
	int i;

	if (!libc || !dladdr((void *)pp_got_hook, &di))
		return -1;
	pp_interpose_resolve_in(libc);
	dlclose(libc);
	self_base = (uintptr_t)di.dli_fbase;
#define HK(name) *(void **)&hk.name = dlsym(self, #name)
	HK(malloc); HK(free); HK(calloc); HK(realloc); HK(reallocarray);
	HK(posix_memalign); HK(aligned_alloc); HK(memalign); HK(valloc);
	HK(pvalloc); HK(mmap); HK(munmap);
#undef HK
	if (!hk.malloc || !hk.free || !hk.calloc || !hk.realloc ||
	    !hk.reallocarray || !hk.posix_memalign || !hk.aligned_alloc ||
	    !hk.memalign || !hk.valloc || !hk.pvalloc || !hk.mmap ||
	    !hk.munmap)
		return -1;
	dl_iterate_phdr(scan_object, NULL);
	for (i = 0; i < nslots; i++) {
		slots[i].old = *slots[i].addr;
		set_slot(&slots[i], slots[i].wrap);
	}
	return nslots;
}

/* Put every slot back (one still ours), then wait until no call is in
 * a wrapper: bounded, the calls in flight are single allocations. */
void pp_got_unhook(void)
{
	struct timespec nap = { 0, 1000000 };
	int i;

	for (i = 0; i < nslots; i++)
		if (*slots[i].addr == slots[i].wrap)
			set_slot(&slots[i], slots[i].old);
	nslots = 0;
	for (i = 0; i < 2000 && __atomic_load_n(&inflight, __ATOMIC_SEQ_CST);
	     i++)
		sched_yield();
	/* a thread may have read a slot just before it changed and not be
	 * counted yet: a grace period far longer than that */
	nanosleep(&nap, NULL);
	while (__atomic_load_n(&inflight, __ATOMIC_SEQ_CST) && i++ < 4000)
		sched_yield();
}

int pp_got_busy(void)
{
	return 0;
}

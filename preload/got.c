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
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define MAX_SLOTS 8192
#define MAX_OBJS 1024

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

/* --- objects loaded after attach -------------------------------------- */

static void *(*real_dlopen)(const char *, int) __attribute__((used));
static uintptr_t main_base;	/* the program's first mapping (dli_fbase) */
static int dl_calls;		/* w_dlopen calls in progress (may be long) */
static __thread int dl_depth;
static void rescan(void);

/*
 * "$ORIGIN" in a name is the calling object's directory (glibc
 * dl-load.c expand_dynamic_string_token, against the caller's map):
 * ours would be the shim's. Other tokens do not depend on the caller.
 */
static const char *origin_name(const char *file, const void *caller,
			       char *buf, size_t len)
{
	char dir[PATH_MAX], *slash, *o = buf;
	const char *f = file;
	Dl_info di;
	ssize_t n;

	if (!strstr(file, "$ORIGIN") && !strstr(file, "${ORIGIN}"))
		return file;
	if (!dladdr(caller, &di) || !di.dli_fname)
		return file;
	if ((uintptr_t)di.dli_fbase == main_base) {	/* dli_fname: argv[0] */
		n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
		if (n <= 0)
			return file;
		dir[n] = 0;
	} else {
		snprintf(dir, sizeof(dir), "%s", di.dli_fname);
	}
	slash = strrchr(dir, '/');
	if (!slash)
		return file;
	*slash = 0;
	while (*f && (size_t)(o - buf) < len - 1) {
		size_t k = !strncmp(f, "$ORIGIN", 7) ? 7 :
			   !strncmp(f, "${ORIGIN}", 9) ? 9 : 0;

		if (k) {
			o += snprintf(o, len - (o - buf), "%s", dir);
			if ((size_t)(o - buf) >= len)
				return file;
			f += k;
		} else {
			*o++ = *f++;
		}
	}
	*o = 0;
	return *f ? file : buf;
}

/*
 * dlopen, in the objects for which our call is the caller's own (see
 * scan_object): the real one, then the objects it brought are hooked
 * before the caller gets the handle (CPython's import calls PyInit_ at
 * once; their constructors, run inside dlopen, are not seen).
 */
static __attribute__((used)) void *w_dlopen(const char *file, int mode)
{
	char buf[PATH_MAX];
	void *h;

	__atomic_fetch_add(&dl_calls, 1, __ATOMIC_SEQ_CST);
	if (file)
		file = origin_name(file, __builtin_return_address(0), buf,
				   sizeof(buf));
	dl_depth++;
	h = real_dlopen(file, mode);
	dl_depth--;
	if (h)
		rescan();
	if (!__atomic_sub_fetch(&dl_calls, 1, __ATOMIC_SEQ_CST))
		pp_attach_idle();
	return h;
}

/*
 * The dlopen of an object with DT_RUNPATH, along which a name without
 * '/' is searched: such a call jumps to dlopen itself, leaving no frame
 * of ours, so the object stays its caller (the library is hooked at the
 * next dlopen through ours); the others jump to w_dlopen.
 */
static __attribute__((used)) int bare_name(const char *file)
{
	return file && !strchr(file, '/');
}

void *w_dlopen_rp(const char *file, int mode);
__asm__(".text\n"
	".p2align 4\n"
	".type w_dlopen_rp, @function\n"
	"w_dlopen_rp:\n"
	"	endbr64\n"
	"	push %rdi\n"
	"	push %rsi\n"
	"	sub $8, %rsp\n"
	"	call bare_name\n"
	"	add $8, %rsp\n"
	"	pop %rsi\n"
	"	pop %rdi\n"
	"	test %eax, %eax\n"
	"	jnz 1f\n"
	"	jmp w_dlopen\n"
	"1:	jmp *real_dlopen(%rip)\n"
	".size w_dlopen_rp, .-w_dlopen_rp\n");

int pp_got_busy(void)
{
	return __atomic_load_n(&dl_calls, __ATOMIC_SEQ_CST) != 0;
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
	{ "dlopen", w_dlopen },		/* last: see scan_object */
};
#define NFAMILY (sizeof(family) / sizeof(family[0]))
#define FAM_DLOPEN ((int)NFAMILY - 1)

static struct slot {
	void **addr;
	void *old;
	void *wrap;			/* NULL: left alone */
	uintptr_t ro_lo, ro_hi;		/* RELRO pages around it, or 0 */
	int obj;			/* objs[] index */
} slots[MAX_SLOTS];
static int nslots, slots_full;

/* the objects seen, known by their program headers' address */
static struct obj {
	const void *phdr;
	const void *dyn;		/* its l_ld, to check a handle */
	int paths;			/* DT_RPATH 2, DT_RUNPATH 1, none 0 */
	int live;			/* seen in this pass */
	int done;			/* its slots written (or left) */
} objs[MAX_OBJS];
static int nobjs;
static int rpath_seen;		/* an object but the program has DT_RPATH */
static int hooking;		/* between pp_got_hook and pp_got_unhook */
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;
static int scan_again;
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
		      uintptr_t ro_lo, uintptr_t ro_hi, int obj)
{
	size_t i, n = bytes / sizeof(*r);

	for (i = 0; i < n; i++) {
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
		if (nslots == MAX_SLOTS) {
			slots_full = 1;
			return;
		}
		sl = &slots[nslots++];
		sl->addr = (void **)(info->dlpi_addr + r[i].r_offset);
		sl->wrap = family[k].wrap;
		sl->obj = obj;
		sl->ro_lo = sl->ro_hi = 0;
		if ((uintptr_t)sl->addr >= ro_lo && (uintptr_t)sl->addr < ro_hi) {
			sl->ro_lo = ro_lo;
			sl->ro_hi = ro_hi;
		}
	}
}

static int known(const void *phdr)
{
	int i;

	for (i = 0; i < nobjs; i++)
		if (objs[i].phdr == phdr)
			return i;
	return -1;
}

/*
 * One object, in dl_iterate_phdr (the loader's list locked): its slots
 * noted, nothing written. Its dlopen slots only if our call of dlopen is
 * the same as the caller's (dl-open.c dl_open_worker: the caller's map
 * gives the namespace, the RPATH/RUNPATH a name without '/' is searched
 * along, and the new object's l_loader, whose DT_RPATH chain its own
 * dependencies are searched along): an object without DT_RPATH, in the
 * base namespace (checked when pinned), and no object but the program
 * with DT_RPATH (the program's is searched anyway); with DT_RUNPATH, a
 * name without '/' goes to dlopen directly (w_dlopen_rp).
 */
static int scan_object(struct dl_phdr_info *info, size_t size, void *data)
{
	const ElfW(Dyn) *dyn = NULL, *d;
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL, *name = info->dlpi_name;
	uintptr_t rela = 0, jmprel = 0, ro_lo = 0, ro_hi = 0;
	size_t relasz = 0, pltsz = 0, pg = getpagesize();
	int i, paths = 0, obj, first;

	(void)size, (void)data;
	if (info->dlpi_addr == self_base || strstr(name, "linux-vdso") ||
	    strstr(name, "/ld-linux") || strstr(name, "/ld-2.") ||
	    known(info->dlpi_phdr) >= 0 || nobjs >= MAX_OBJS)
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
	for (d = dyn; d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB:
			symtab = (const void *)dptr(info, d->d_un.d_ptr);
			break;
		case DT_STRTAB:
			strtab = (const void *)dptr(info, d->d_un.d_ptr);
			break;
		case DT_RELA:
			rela = dptr(info, d->d_un.d_ptr);
			break;
		case DT_RELASZ:
			relasz = d->d_un.d_val;
			break;
		case DT_JMPREL:
			jmprel = dptr(info, d->d_un.d_ptr);
			break;
		case DT_PLTRELSZ:
			pltsz = d->d_un.d_val;
			break;
		case DT_RPATH:
			if (name[0])
				rpath_seen = 1;
			paths = 2;
			break;
		case DT_RUNPATH:
			if (!paths)
				paths = 1;
			break;
		}
	}
	if (!symtab || !strtab)
		return 0;
	obj = nobjs++;
	objs[obj] = (struct obj){ .phdr = info->dlpi_phdr, .dyn = dyn,
				  .paths = paths };
	first = nslots;
	slots_full = 0;
	if (rela)
		scan_rela(info, (const void *)rela, relasz, symtab, strtab,
			  ro_lo, ro_hi, obj);
	if (jmprel && !slots_full)
		scan_rela(info, (const void *)jmprel, pltsz, symtab, strtab,
			  ro_lo, ro_hi, obj);
	if (slots_full)
		nslots = first;	/* all of an object or none: its free
				 * must be hooked if its malloc is */
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

/*
 * The objects loaded now, each held by a handle of ours while its slots
 * are written: dlopen(RTLD_NOLOAD) waits for a dlopen in progress in
 * another thread (the loader's lock), so the object is relocated (its
 * RELRO protected) and stays loaded meanwhile; an object it does not
 * find (gone, another namespace, a relative name) is left alone.
 */
struct pin {
	const void *phdr;
	char name[PATH_MAX];
};

static int list_pins(struct dl_phdr_info *info, size_t size, void *data)
{
	struct pin **p = data;
	int i = known(info->dlpi_phdr);

	(void)size;
	if (i < 0 || objs[i].live)
		return 0;
	(*p)->phdr = info->dlpi_phdr;
	snprintf((*p)->name, sizeof((*p)->name), "%s", info->dlpi_name);
	return 1;		/* one at a time: the lock is not ours */
}

static void *pin(const struct pin *p, int i)
{
	struct link_map *lm = NULL;
	void *h;

	if (!p->name[0])
		return (void *)&main_base;	/* the program: never unloaded */
	h = real_dlopen(p->name, RTLD_LAZY | RTLD_NOLOAD);
	if (h && (dlinfo(h, RTLD_DI_LINKMAP, &lm) < 0 || !lm ||
		  (const void *)lm->l_ld != objs[i].dyn)) {
		dlclose(h);
		h = NULL;
	}
	if (!h)
		dlerror();	/* the program's next dlerror() is its own */
	return h;
}

/* for each object known and present (fresh: not done yet), once:
 * fn(index) while pinned */
static void each_pinned(void (*fn)(int), int fresh)
{
	struct pin pb, *p = &pb;
	int i;

	for (i = 0; i < nobjs; i++)
		objs[i].live = fresh && objs[i].done;
	for (;;) {
		void *h;

		pb.phdr = NULL;
		if (!dl_iterate_phdr(list_pins, &p) || !pb.phdr)
			break;
		i = known(pb.phdr);
		objs[i].live = 1;
		objs[i].done = 1;
		h = pin(&pb, i);
		if (!h)
			continue;
		fn(i);
		if (h != (void *)&main_base)
			dlclose(h);
	}
}

static void hook_obj(int i)
{
	int k;

	for (k = 0; k < nslots; k++) {
		struct slot *s = &slots[k];

		if (s->obj != i || !s->wrap || s->old)
			continue;
		if (s->wrap == (void *)w_dlopen) {
			if (rpath_seen || objs[i].paths == 2) {
				s->wrap = NULL;
				continue;
			}
			if (objs[i].paths == 1)
				s->wrap = (void *)w_dlopen_rp;
		}
		s->old = *s->addr;
		set_slot(s, s->wrap);
	}
}

static void unhook_obj(int i)
{
	int k;

	for (k = 0; k < nslots; k++)
		if (slots[k].obj == i && slots[k].old &&
		    *slots[k].addr == slots[k].wrap)
			set_slot(&slots[k], slots[k].old);
}

/* the loader's list, new objects hooked; scan_lock held */
static void scan_hook(void)
{
	do {
		scan_again = 0;
		dl_iterate_phdr(scan_object, NULL);
		each_pinned(hook_obj, 1);
	} while (__atomic_load_n(&scan_again, __ATOMIC_ACQUIRE));
}

/* After a dlopen through ours. A dlopen inside a constructor (the
 * loader's lock held) does not wait for a scan that waits for it. */
static void rescan(void)
{
	if (!__atomic_load_n(&hooking, __ATOMIC_ACQUIRE))
		return;
	if (dl_depth || pthread_mutex_trylock(&scan_lock)) {
		__atomic_store_n(&scan_again, 1, __ATOMIC_RELEASE);
		return;		/* the scan in progress does it again */
	}
	pp_in_hook++;		/* what the loader allocates is not the program's */
	if (hooking)
		scan_hook();
	pp_in_hook--;
	pthread_mutex_unlock(&scan_lock);
}

/* the program is the first object */
static int first_object(struct dl_phdr_info *info, size_t size, void *data)
{
	uintptr_t lo = UINTPTR_MAX;
	int i;

	(void)size, (void)data;
	for (i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD &&
		    info->dlpi_phdr[i].p_vaddr < lo)
			lo = info->dlpi_phdr[i].p_vaddr;
	main_base = (info->dlpi_addr + lo) & ~(uintptr_t)(getpagesize() - 1);
	return 1;
}

int pp_got_hook(void *self)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	Dl_info di;

	if (!libc || !dladdr((void *)pp_got_hook, &di))
		return -1;
	pp_interpose_resolve_in(libc);
	dlclose(libc);
	self_base = (uintptr_t)di.dli_fbase;
	dl_iterate_phdr(first_object, NULL);
	*(void **)&real_dlopen = dlsym(RTLD_DEFAULT, "dlopen");
#define HK(name) *(void **)&hk.name = dlsym(self, #name)
	HK(malloc); HK(free); HK(calloc); HK(realloc); HK(reallocarray);
	HK(posix_memalign); HK(aligned_alloc); HK(memalign); HK(valloc);
	HK(pvalloc); HK(mmap); HK(munmap);
#undef HK
	if (!hk.malloc || !hk.free || !hk.calloc || !hk.realloc ||
	    !hk.reallocarray || !hk.posix_memalign || !hk.aligned_alloc ||
	    !hk.memalign || !hk.valloc || !hk.pvalloc || !hk.mmap ||
	    !hk.munmap || !real_dlopen)
		return -1;
	pthread_mutex_lock(&scan_lock);
	__atomic_store_n(&hooking, 1, __ATOMIC_RELEASE);
	scan_hook();
	pthread_mutex_unlock(&scan_lock);
	return nslots;
}

/* In a forked child, inside fork(): the calls in flight were other
 * threads' (this one forks from Python code, not from a wrapper), but
 * for a dlopen of this thread's (a constructor that forks); the scan
 * lock may have been held by one of them. */
void pp_got_atfork_child(void)
{
	__atomic_store_n(&inflight, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&dl_calls, dl_depth, __ATOMIC_RELAXED);
	pthread_mutex_init(&scan_lock, NULL);
}

/* Put every slot back (one still ours) in the objects still loaded,
 * then wait until no call is in a wrapper: bounded, the calls in flight
 * are single allocations (a dlopen in flight holds the unload back:
 * pp_got_busy). */
void pp_got_unhook(void)
{
	struct timespec nap = { 0, 1000000 };
	int i;

	pthread_mutex_lock(&scan_lock);
	__atomic_store_n(&hooking, 0, __ATOMIC_RELEASE);
	each_pinned(unhook_obj, 0);
	nslots = 0;
	nobjs = 0;
	pthread_mutex_unlock(&scan_lock);
	for (i = 0; i < 2000 && __atomic_load_n(&inflight, __ATOMIC_SEQ_CST);
	     i++)
		sched_yield();
	/* a thread may have read a slot just before it changed and not be
	 * counted yet: a grace period far longer than that */
	nanosleep(&nap, NULL);
	while (__atomic_load_n(&inflight, __ATOMIC_SEQ_CST) && i++ < 4000)
		sched_yield();
}

// SPDX-License-Identifier: MIT
/* Out-of-process discovery of a CPython interpreter (see pyproc.h). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "alloc.h"
#include "pp_mem.h"
#include "pp_pystate.h"
#include "pyproc.h"

struct mapping {
	uint64_t start, end, off;
	dev_t dev;
	ino_t ino;
	char path[PATH_MAX];
};

struct elf_file {
	int fd;
	Elf *e;
};

static void seterr(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
}

int pp_pyproc_read(const struct pp_pyproc *p, uint64_t addr, void *buf,
		   size_t len)
{
	struct pp_mem mem = pp_mem_remote(p->pid);

	return pp_mem_read(&mem, addr, buf, len) ? -1 : 0;
}

/*
 * A path to the mapped file usable from here: the path as the kernel
 * printed it, or under /proc/PID/root (another mount namespace or a
 * chroot), whichever is the same inode as the mapping; else the
 * map_files link itself.
 */
static int resolve_path(int pid, struct mapping *m)
{
	char cand[PATH_MAX];
	struct stat st;

	if (stat(m->path, &st) == 0 && st.st_ino == m->ino &&
	    major(st.st_dev) == major(m->dev) &&
	    minor(st.st_dev) == minor(m->dev))
		return 0;
	if (snprintf(cand, sizeof(cand), "/proc/%d/root%s", pid, m->path) <
		    (int)sizeof(cand) &&
	    stat(cand, &st) == 0 && st.st_ino == m->ino) {
		memcpy(m->path, cand, sizeof(cand));
		return 0;
	}
	snprintf(cand, sizeof(cand), "/proc/%d/map_files/%lx-%lx", pid,
		 (unsigned long)m->start, (unsigned long)m->end);
	if (stat(cand, &st) == 0) {
		memcpy(m->path, cand, sizeof(cand));
		return 0;
	}
	return -1;
}

/* File-backed mappings of pid with file offset 0 (one per file). */
static int read_maps(int pid, struct mapping **out, int *n)
{
	char fn[64], line[PATH_MAX + 128], path[PATH_MAX];
	unsigned long s, e, off, ino;
	unsigned int dmaj, dmin;
	struct mapping *v = NULL;
	size_t cnt = 0, cap = 0;
	FILE *f;

	snprintf(fn, sizeof(fn), "/proc/%d/maps", pid);
	f = fopen(fn, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		path[0] = 0;
		if (sscanf(line, "%lx-%lx %*s %lx %x:%x %lu %s", &s, &e, &off,
			   &dmaj, &dmin, &ino, path) < 7 ||
		    path[0] != '/' || off != 0)
			continue;
		v = pp_grow(v, &cap, cnt + 1, sizeof(*v));
		v[cnt].start = s;
		v[cnt].end = e;
		v[cnt].off = off;
		v[cnt].dev = makedev(dmaj, dmin);
		v[cnt].ino = ino;
		snprintf(v[cnt].path, sizeof(v[cnt].path), "%s", path);
		cnt++;
	}
	fclose(f);
	*out = v;
	*n = cnt;
	return 0;
}

static void elf_close(struct elf_file *ef)
{
	if (ef->e)
		elf_end(ef->e);
	if (ef->fd >= 0)
		close(ef->fd);
	ef->e = NULL;
	ef->fd = -1;
}

static int elf_open(struct elf_file *ef, const char *path)
{
	ef->e = NULL;
	ef->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ef->fd < 0)
		return -1;
	ef->e = elf_begin(ef->fd, ELF_C_READ_MMAP, NULL);
	if (!ef->e || elf_kind(ef->e) != ELF_K_ELF) {
		elf_close(ef);
		return -1;
	}
	return 0;
}

static Elf_Scn *find_section(Elf *e, const char *name, GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(e, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(e, scn))) {
		const char *n;

		if (!gelf_getshdr(scn, sh))
			continue;
		n = elf_strptr(e, shstrndx, sh->sh_name);
		if (n && !strcmp(n, name))
			return scn;
	}
	return NULL;
}

/* file offset of virtual address v, 0 if not in a loaded segment */
static uint64_t vaddr_to_off(Elf *e, uint64_t v)
{
	size_t i, n;
	GElf_Phdr ph;

	if (elf_getphdrnum(e, &n))
		return 0;
	for (i = 0; i < n; i++) {
		if (!gelf_getphdr(e, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (v >= ph.p_vaddr && v < ph.p_vaddr + ph.p_filesz)
			return v - ph.p_vaddr + ph.p_offset;
	}
	return 0;
}

/* lowest PT_LOAD vaddr, page aligned: where the offset-0 mapping starts */
static uint64_t first_load_vaddr(Elf *e)
{
	uint64_t lo = UINT64_MAX;
	size_t i, n;
	GElf_Phdr ph;

	if (elf_getphdrnum(e, &n))
		return 0;
	for (i = 0; i < n; i++)
		if (gelf_getphdr(e, i, &ph) && ph.p_type == PT_LOAD &&
		    ph.p_vaddr - ph.p_offset < lo)
			lo = ph.p_vaddr - ph.p_offset;
	return lo == UINT64_MAX ? 0 : lo & ~0xfffULL;
}

/*
 * Look names up in .symtab then .dynsym: values[i] gets the address of a
 * defined symbol named names[i] (or names[i] + ".lto_priv.N"...). With
 * default_ver, only a .dynsym entry whose version is the default one
 * (versym without VERSYM_HIDDEN) counts: glibc keeps old
 * pthread_cond_* next to the current ones.
 */
static void elf_syms(Elf *e, const char **names, uint64_t *values, int n,
		     int default_ver)
{
	Elf_Scn *scn = NULL, *vscn;
	GElf_Shdr sh, vsh;

	while ((scn = elf_nextscn(e, scn))) {
		Elf_Data *d, *vd = NULL;
		size_t i, cnt;

		if (!gelf_getshdr(scn, &sh) ||
		    (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		if (default_ver && sh.sh_type != SHT_DYNSYM)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !sh.sh_entsize)
			continue;
		if (default_ver) {
			vscn = find_section(e, ".gnu.version", &vsh);
			vd = vscn ? elf_getdata(vscn, NULL) : NULL;
		}
		cnt = sh.sh_size / sh.sh_entsize;
		for (i = 0; i < cnt; i++) {
			GElf_Sym s;
			const char *nm;
			int k;

			if (!gelf_getsym(d, i, &s) || s.st_shndx == SHN_UNDEF ||
			    !s.st_value)
				continue;
			nm = elf_strptr(e, sh.sh_link, s.st_name);
			if (!nm)
				continue;
			for (k = 0; k < n; k++) {
				size_t l = strlen(names[k]);

				if (values[k] || strncmp(nm, names[k], l) ||
				    (nm[l] && nm[l] != '.'))
					continue;
				if (vd) {
					GElf_Versym vs;

					if (!gelf_getversym(vd, i, &vs) ||
					    (vs & 0x8000))
						continue;
				}
				values[k] = s.st_value;
			}
		}
	}
}

/* Does .note.stapsdt have provider/name? */
static int has_usdt(Elf *e, const char *prov, const char *name)
{
	GElf_Shdr sh;
	Elf_Scn *scn = find_section(e, ".note.stapsdt", &sh);
	Elf_Data *d;
	GElf_Nhdr nh;
	size_t off = 0, noff, doff;

	if (!scn || !(d = elf_getdata(scn, NULL)))
		return 0;
	while ((off = gelf_getnote(d, off, &nh, &noff, &doff)) > 0) {
		const char *desc = (const char *)d->d_buf + doff;
		size_t plen;

		if (nh.n_type != 3 || nh.n_descsz < 3 * 8 + 2)
			continue;
		plen = strnlen(desc + 24, nh.n_descsz - 24);
		if (!strcmp(desc + 24, prov) && 24 + plen + 1 < nh.n_descsz &&
		    !strcmp(desc + 24 + plen + 1, name))
			return 1;
	}
	return 0;
}

/* PY_VERSION ("3.10.13") as a string in .rodata: 3.9/3.10 have no
 * Py_Version. Returns the micro version or -1. */
static int rodata_micro(Elf *e, int major, int minor)
{
	char pre[16];
	GElf_Shdr sh;
	Elf_Scn *scn = find_section(e, ".rodata", &sh);
	Elf_Data *d;
	const char *b;
	size_t i, pl;

	if (!scn || !(d = elf_getdata(scn, NULL)) || !d->d_buf)
		return -1;
	pl = snprintf(pre, sizeof(pre), "%d.%d.", major, minor);
	b = d->d_buf;
	for (i = 1; i + pl + 2 < d->d_size; i++) {
		size_t j = i + pl;
		int micro = 0;

		/* the linker may merge it into the tail of a longer
		 * string ("/root/.pyenv/versions/3.10.13") */
		if ((b[i - 1] >= '0' && b[i - 1] <= '9') || b[i - 1] == '.' ||
		    memcmp(b + i, pre, pl))
			continue;
		while (j < d->d_size && b[j] >= '0' && b[j] <= '9')
			micro = micro * 10 + b[j++] - '0';
		if (j > i + pl && j < d->d_size && !b[j])
			return micro;
	}
	return -1;
}

/* "python3.10", "libpython3.10.so.1.0", "libpython3.13t.so" */
static int name_version(const char *path, int *major, int *minor)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	if (!strncmp(b, "lib", 3))
		b += 3;
	return sscanf(b, "python%d.%d", major, minor) == 2 ? 0 : -1;
}

static int is_libc(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	return !strncmp(b, "libc.so", 7) || !strncmp(b, "libc-2.", 7);
}

static int is_libpthread(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	return !strncmp(b, "libpthread", 10);
}

static int find_cond_syms(struct pp_pyproc *p, struct mapping *maps, int n)
{
	const char *names[] = { "pthread_cond_signal",
				"pthread_cond_timedwait",
				"pthread_cond_wait" };
	int pass, i;

	/* glibc < 2.34 keeps them in libpthread, later in libc */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i++) {
			uint64_t v[3] = { 0, 0, 0 };
			struct elf_file ef;

			if (pass == 0 ? !is_libpthread(maps[i].path) :
					!is_libc(maps[i].path))
				continue;
			if (resolve_path(p->pid, &maps[i]) ||
			    elf_open(&ef, maps[i].path))
				continue;
			elf_syms(ef.e, names, v, 3, 1);
			if (v[0] && v[1] && v[2]) {
				p->off_cond_signal = vaddr_to_off(ef.e, v[0]);
				p->off_cond_timedwait = vaddr_to_off(ef.e, v[1]);
				p->off_cond_wait = vaddr_to_off(ef.e, v[2]);
				snprintf(p->libc, sizeof(p->libc), "%s",
					 maps[i].path);
			}
			elf_close(&ef);
			if (p->off_cond_signal)
				return 0;
		}
	}
	return -1;
}

static int load_layout(struct pp_pyproc *p, char *err, size_t errlen)
{
	/* 3.13+: _Py_DebugOffsets at the head of _PyRuntime; give the
	 * layout code a copy of it */
	static char copy[8192];
	const char *why = "unknown";

	memset(copy, 0, sizeof(copy));
	if (pp_pyproc_read(p, p->runtime, copy, sizeof(copy)) &&
	    pp_pyproc_read(p, p->runtime, copy, 1024)) {
		seterr(err, errlen, "cannot read pid %d's memory: %s", p->pid,
		       strerror(errno));
		return -1;
	}
	if (pp_pylayout_init(&p->layout, p->version, copy, &why)) {
		seterr(err, errlen, "Python %s in pid %d: %s", p->version,
		       p->pid, why);
		return -1;
	}
	return 0;
}

int pp_pyproc_open(struct pp_pyproc *p, int pid, char *err, size_t errlen)
{
	const char *names[] = { "_PyRuntime", "Py_Version", "take_gil",
				"drop_gil", NULL };
	enum { S_RT, S_VER, S_TAKE, S_DROP, S_GC, S_N };
	uint64_t v[S_N];
	const struct pp_pystate *vi = NULL;
	struct mapping *maps = NULL, *py = NULL;
	char exe[PATH_MAX], fn[64];
	struct elf_file ef = { -1, NULL };
	struct stat exe_st;
	int n = 0, i, pass, rc = -1, ev;
	ssize_t l;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	elf_version(EV_CURRENT);
	snprintf(fn, sizeof(fn), "/proc/%d/exe", pid);
	l = readlink(fn, exe, sizeof(exe) - 1);
	if (l < 0 || stat(fn, &exe_st)) {
		if (errno == ENOENT || errno == ESRCH)
			seterr(err, errlen, "no process with pid %d", pid);
		else
			seterr(err, errlen, "cannot inspect pid %d: %s", pid,
			       strerror(errno));
		return -1;
	}
	exe[l] = 0;
	ev = read_maps(pid, &maps, &n);
	if (ev) {
		seterr(err, errlen, "cannot read /proc/%d/maps: %s", pid,
		       strerror(-ev));
		return -1;
	}

	/* the executable first (static builds), then a libpython */
	for (pass = 0; pass < 2 && !py; pass++) {
		for (i = 0; i < n && !py; i++) {
			const char *b = strrchr(maps[i].path, '/');
			int is_exe = maps[i].ino == exe_st.st_ino &&
				     maps[i].dev == exe_st.st_dev;

			if (pass == 0 ? !is_exe :
					(is_exe || !strstr(b, "libpython")))
				continue;
			if (resolve_path(pid, &maps[i]) ||
			    elf_open(&ef, maps[i].path))
				continue;
			memset(v, 0, sizeof(v));
			elf_syms(ef.e, names, v, 1, 0);
			if (v[S_RT]) {
				py = &maps[i];
				break;
			}
			elf_close(&ef);
		}
	}
	if (!py) {
		seterr(err, errlen,
		       "pid %d (%s) is not a Python process: no _PyRuntime in "
		       "its executable or a libpython it maps", pid, exe);
		goto out;
	}
	snprintf(p->pyelf, sizeof(p->pyelf), "%s", py->path);
	p->bias = py->start - first_load_vaddr(ef.e);
	p->runtime = v[S_RT] + p->bias;

	/* version: Py_Version (3.11+), else the file name */
	elf_syms(ef.e, names + 1, v + 1, 3, 0);
	if (v[S_VER]) {
		uint64_t hex = 0, off = vaddr_to_off(ef.e, v[S_VER]);

		if (off && pread(ef.fd, &hex, sizeof(hex), off) == sizeof(hex)) {
			p->major = (hex >> 24) & 0xff;
			p->minor = (hex >> 16) & 0xff;
			p->micro = (hex >> 8) & 0xff;
		}
	}
	if (!p->major &&
	    name_version(py->path, &p->major, &p->minor) &&
	    name_version(exe, &p->major, &p->minor)) {
		seterr(err, errlen, "pid %d (%s): cannot tell the Python version",
		       pid, exe);
		goto out;
	}
	if (!v[S_VER]) {
		p->micro = rodata_micro(ef.e, p->major, p->minor);
		if (p->micro < 0)
			p->micro = 0;
	}
	snprintf(p->version, sizeof(p->version), "%d.%d.%d", p->major,
		 p->minor, p->micro);
	vi = pp_pystate_find(p->major, p->minor);
	if (!vi) {
		seterr(err, errlen,
		       "pid %d runs Python %s: supported are " PP_PY_RANGE, pid,
		       p->version);
		goto out;
	}

	/* symbols for uprobes */
	{
		const char *gcn[] = { vi->gc_fn };
		uint64_t g = 0;

		elf_syms(ef.e, gcn, &g, 1, 0);
		p->gc_fn = vi->gc_fn;
		p->gc_has_ptrs = vi->gc_has_ptrs;
		p->off_gc = g ? vaddr_to_off(ef.e, g) : 0;
	}
	{	/* exported by every build (the C API's): tells a live code
		 * object from memory reused since */
		const char *ct[] = { "PyCode_Type" };
		uint64_t t = 0;

		elf_syms(ef.e, ct, &t, 1, 0);
		p->code_type = t ? t + p->bias : 0;
	}
	p->off_take_gil = v[S_TAKE] ? vaddr_to_off(ef.e, v[S_TAKE]) : 0;
	p->off_drop_gil = v[S_DROP] ? vaddr_to_off(ef.e, v[S_DROP]) : 0;
	p->usdt_gc = has_usdt(ef.e, "python", "gc__start") &&
		     has_usdt(ef.e, "python", "gc__done");
	find_cond_syms(p, maps, n);

	if (load_layout(p, err, errlen))
		goto out;
	if (pp_pyproc_read(p, p->runtime + p->layout.runtime_interp_head,
			   &p->interp, 8) || !p->interp) {
		seterr(err, errlen,
		       "pid %d: Python %s is not initialized (no interpreter)",
		       pid, p->version);
		goto out;
	}
	if (vi->gil_in_interp) {
		uint32_t off = vi->gil_off ? vi->gil_off :
					     p->layout.interp_gil_ptr;

		if (pp_pyproc_read(p, p->interp + off, &p->gil, 8) ||
		    !p->gil) {
			seterr(err, errlen, "pid %d: cannot read the GIL pointer",
			       pid);
			goto out;
		}
	} else {
		p->gil = p->runtime + vi->gil_off;
	}
	if (vi->minor >= 13)
		p->gc_stats = vi->gc_stats_off ? p->interp + p->layout.interp_gc +
							 vi->gc_stats_off : 0;
	else
		p->gc_stats = p->interp + vi->gc_stats_off;
	rc = 0;
out:
	elf_close(&ef);
	free(maps);
	return rc;
}

int pp_pyproc_gil_words(const struct pp_pyproc *p, uint64_t *out, int max)
{
	/* the futex words of the GIL's mutexes and condition variables */
	const uint32_t offs[] = {
		PP_GIL_OFF_COND + PP_COND_OFF_SIGNALS0,
		PP_GIL_OFF_COND + PP_COND_OFF_SIGNALS1,
		PP_GIL_OFF_COND + PP_COND_OFF_SIGNALS0_2_41,
		PP_GIL_OFF_COND + PP_COND_OFF_SIGNALS1_2_41,
		PP_GIL_OFF_MUTEX,
		PP_GIL_OFF_SWITCH_COND + PP_COND_OFF_SIGNALS0,
		PP_GIL_OFF_SWITCH_COND + PP_COND_OFF_SIGNALS1,
		PP_GIL_OFF_SWITCH_COND + PP_COND_OFF_SIGNALS0_2_41,
		PP_GIL_OFF_SWITCH_COND + PP_COND_OFF_SIGNALS1_2_41,
		PP_GIL_OFF_SWITCH_MUTEX,
	};
	int i, n = 0;

	for (i = 0; i < (int)(sizeof(offs) / sizeof(offs[0])) && n < max; i++)
		out[n++] = p->gil + offs[i];
	return n;
}

static int has_prefix_base(const char *path, const char *prefix)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	if (!strcmp(prefix, "libc"))
		return is_libc(path);
	return !strncmp(b, prefix, strlen(prefix));
}

int pp_pyproc_lib_syms(int pid, const char *lib, const char **names,
		       uint64_t *addrs, int n)
{
	struct mapping *maps = NULL;
	int cnt = 0, i, k, found = 0;

	elf_version(EV_CURRENT);
	memset(addrs, 0, n * sizeof(*addrs));
	if (read_maps(pid, &maps, &cnt))
		return -1;
	for (i = 0; i < cnt && !found; i++) {
		struct elf_file ef;
		uint64_t bias;

		if (lib ? !has_prefix_base(maps[i].path, lib) :
			  !strstr(maps[i].path, "/"))
			continue;
		if (resolve_path(pid, &maps[i]) || elf_open(&ef, maps[i].path))
			continue;
		bias = maps[i].start - first_load_vaddr(ef.e);
		elf_syms(ef.e, names, addrs, n, 1);
		for (k = 0; k < n; k++)
			if (addrs[k]) {
				addrs[k] += bias;
				found = 1;
			}
		elf_close(&ef);
	}
	free(maps);
	return found ? 0 : -1;
}

int pp_pyproc_sym(const struct pp_pyproc *p, const char *name, uint64_t *addr)
{
	struct elf_file ef;
	const char *names[] = { name };
	uint64_t v = 0;

	elf_version(EV_CURRENT);
	if (elf_open(&ef, p->pyelf))
		return -1;
	elf_syms(ef.e, names, &v, 1, 1);
	elf_close(&ef);
	if (!v)
		return -1;
	*addr = v + p->bias;
	return 0;
}

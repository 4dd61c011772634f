// SPDX-License-Identifier: MIT
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "symbols.h"

struct sym {
	uint64_t addr, size;
	char *name;
};

struct elf_syms {
	char *path;
	uint64_t base;		/* vaddr of the first loaded page */
	struct sym *syms;
	size_t n;
	struct elf_syms *next;
};

static struct elf_syms *cache;

static int by_addr(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void read_table(struct elf_syms *es, Elf *elf, Elf_Scn *scn,
		       GElf_Shdr *sh)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t i, count = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;
	GElf_Sym s;

	es->syms = pp_xcalloc(count + 1, sizeof(*es->syms));
	if (!data)
		return;
	for (i = 0; i < count; i++) {
		const char *name;

		if (!gelf_getsym(data, i, &s) || GELF_ST_TYPE(s.st_info) !=
		    STT_FUNC || !s.st_value)
			continue;
		name = elf_strptr(elf, sh->sh_link, s.st_name);
		if (!name || !*name)
			continue;
		es->syms[es->n].addr = s.st_value;
		es->syms[es->n].size = s.st_size;
		es->syms[es->n++].name = pp_xstrdup(name);
	}
	qsort(es->syms, es->n, sizeof(*es->syms), by_addr);
}

static struct elf_syms *load(const char *path)
{
	struct elf_syms *es = pp_xcalloc(1, sizeof(*es));
	Elf_Scn *scn = NULL, *dyn = NULL, *full = NULL;
	GElf_Shdr sh, dyn_sh, full_sh;
	GElf_Phdr ph;
	size_t i, nph;
	Elf *elf;
	int fd;

	es->path = pp_xstrdup(path);
	es->base = UINT64_MAX;
	es->next = cache;
	cache = es;
	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return es;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && elf_getphdrnum(elf, &nph) == 0) {
		for (i = 0; i < nph; i++)
			if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD &&
			    ph.p_vaddr < es->base)
				es->base = ph.p_vaddr & ~0xfffull;
		while ((scn = elf_nextscn(elf, scn))) {
			if (!gelf_getshdr(scn, &sh))
				continue;
			if (sh.sh_type == SHT_SYMTAB) {
				full = scn;
				full_sh = sh;
			} else if (sh.sh_type == SHT_DYNSYM) {
				dyn = scn;
				dyn_sh = sh;
			}
		}
		if (full)
			read_table(es, elf, full, &full_sh);
		else if (dyn)
			read_table(es, elf, dyn, &dyn_sh);
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return es;
}

const char *pp_symbols_lookup(const char *path, uint64_t off)
{
	struct elf_syms *es;
	uint64_t addr;
	size_t lo = 0, hi;

	for (es = cache; es; es = es->next)
		if (!strcmp(es->path, path))
			break;
	if (!es)
		es = load(path);
	if (!es || !es->n || es->base == UINT64_MAX)
		return NULL;
	addr = es->base + off;
	hi = es->n;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (es->syms[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	if (es->syms[lo].addr <= addr &&
	    addr < es->syms[lo].addr + (es->syms[lo].size ? es->syms[lo].size : 1))
		return es->syms[lo].name;
	return NULL;
}

void pp_symbols_free(void)
{
	while (cache) {
		struct elf_syms *es = cache;
		size_t i;

		cache = es->next;
		for (i = 0; i < es->n; i++)
			free(es->syms[i].name);
		free(es->syms);
		free(es->path);
		free(es);
	}
}

const struct pp_hdr *pp_symbols_name_func(const struct pp_hdr *rec, int pid,
					  void *buf, size_t cap)
{
	const struct pp_rec_func *r = (const void *)rec;
	struct pp_rec_func *out = buf;
	char path[PATH_MAX], root[PATH_MAX + 32];
	char name[24];		/* "+0x" and at most 16 hex digits */
	const char *sym;
	uint64_t off;
	size_t n, len;

	if (rec->type != PP_REC_FUNC || !(rec->flags & PP_FUNC_NATIVE) ||
	    sizeof(*r) + r->file_len + r->name_len > rec->len ||
	    r->name_len < 4 || r->name_len >= sizeof(name) ||
	    r->file_len >= sizeof(path))
		return NULL;
	memcpy(name, r->data + r->file_len, r->name_len);
	name[r->name_len] = 0;
	if (strncmp(name, "+0x", 3))
		return NULL;
	memcpy(path, r->data, r->file_len);
	path[r->file_len] = 0;
	off = strtoull(name + 1, NULL, 16);
	snprintf(root, sizeof(root), "/proc/%d/root%s", pid, path);
	if (pid > 0 && !access(root, R_OK))
		sym = pp_symbols_lookup(root, off);
	else
		sym = pp_symbols_lookup(path, off);
	if (!sym)
		return NULL;
	n = strlen(sym);
	if (n > UINT16_MAX)
		n = UINT16_MAX;
	len = PP_REC_ALIGN(sizeof(*r) + r->file_len + n);
	if (len > cap)
		return NULL;
	memset(out, 0, len);
	memcpy(out, r, sizeof(*r));
	out->h.len = len;
	out->name_len = n;
	memcpy(out->data, r->data, r->file_len);
	memcpy(out->data + r->file_len, sym, n);
	return &out->h;
}

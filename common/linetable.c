// SPDX-License-Identifier: MIT
/*
 * Byte offset -> line number for the three line-table formats CPython
 * has used since 3.9. Each decoder is a single forward scan that gives
 * what PyCode_Addr2Line() gives for offsets >= 0 (the unit test checks
 * that against every installed interpreter). Formats are described in
 * CPython's Objects/lnotab_notes.txt (3.9, 3.10) and
 * Objects/locations.md (3.11+); the decoding rules follow
 * Objects/codeobject.c of each version.
 *
 * Pure functions over (table, len): no libc, safe on any input.
 */
#include <stddef.h>
#include <stdint.h>

#include "pp_pylayout.h"

/*
 * 3.9 co_lnotab: (addr_incr u8, line_incr s8) pairs. PyCode_Addr2Line
 * (3.9 Objects/codeobject.c) applies a pair's line increment only when
 * the address after its increment is still <= the queried one, so
 * every offset has a line.
 */
static int lnotab_addr2line(const uint8_t *tab, size_t len, int line, int off)
{
	size_t i;
	int addr = 0;

	for (i = 0; i + 1 < len; i += 2) {
		addr += tab[i];
		if (addr > off)
			break;
		line += (int8_t)tab[i + 1];
	}
	return line;
}

/*
 * 3.10 co_linetable: (start_delta u8, line_delta s8) pairs, each a
 * range of bytes; line delta -128 means "no line" and does not move the
 * running line (3.10 Objects/codeobject.c: advance()). Empty ranges only
 * carry their delta forward.
 */
static int linetable310_addr2line(const uint8_t *tab, size_t len, int line,
				  int off)
{
	size_t i;
	int start = 0, end;
	int8_t ld;

	for (i = 0; i + 1 < len; i += 2) {
		end = start + tab[i];
		ld = (int8_t)tab[i + 1];
		if (ld != -128)
			line += ld;
		if (off < end)
			return ld == -128 ? -1 : line;
		start = end;
	}
	return -1;
}

/* 3.11+ varints: 6-bit groups, least significant first, bit 6 = more. */
static unsigned int lt_varint(const uint8_t *tab, size_t len, size_t *i)
{
	unsigned int val = 0, shift = 0;
	uint8_t b;

	while (*i < len) {
		b = tab[(*i)++];
		if (shift < 32)
			val |= (unsigned int)(b & 63) << shift;
		shift += 6;
		if (!(b & 64))
			break;
	}
	return val;
}

static int lt_svarint(const uint8_t *tab, size_t len, size_t *i)
{
	unsigned int u = lt_varint(tab, len, i);

	return (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
}

/* location codes, Objects/locations.md */
enum {
	LOC_ONE_LINE0 = 10,	/* 10..12: line delta 0..2, two column bytes */
	LOC_NO_COLUMNS = 13,	/* signed varint line delta */
	LOC_LONG = 14,		/* signed varint line delta, then 3 varints */
	LOC_NONE = 15,		/* no location; running line unchanged */
};

/*
 * 3.11+ location table: entries start with a byte that has bit 7 set,
 * bits 3-6 the code and bits 0-2 the length in code units minus one.
 * Only the line delta matters here; the rest of an entry is skipped by
 * looking for the next start byte (as advance() does in 3.11+
 * Objects/codeobject.c).
 */
/*
 * One entry at *i (a start byte; non-start bytes of a corrupt table
 * are skipped): moves *end past its code units and *line by its delta,
 * leaves *i at the next start byte. Returns its line, -1 for no line,
 * or -2 at the end of the table.
 */
static int loc_next(const uint8_t *tab, size_t len, size_t *i,
		    uint32_t *end, int *line)
{
	size_t j;
	int code;

	while (*i < len && !(tab[*i] & 0x80))
		(*i)++;			/* corrupt: resync */
	if (*i >= len)
		return -2;
	code = (tab[*i] >> 3) & 15;
	*end += ((tab[*i] & 7) + 1) * 2;
	j = *i + 1;
	if (code == LOC_NO_COLUMNS || code == LOC_LONG)
		*line += lt_svarint(tab, len, &j);
	else if (code >= LOC_ONE_LINE0 && code < LOC_NO_COLUMNS)
		*line += code - LOC_ONE_LINE0;
	for ((*i)++; *i < len && !(tab[*i] & 0x80); (*i)++)
		;
	return code == LOC_NONE ? -1 : *line;
}

static int locations_addr2line(const uint8_t *tab, size_t len, int line,
			       int off)
{
	size_t i = 0;
	uint32_t end = 0;
	int l;

	while ((l = loc_next(tab, len, &i, &end, &line)) != -2)
		if ((uint32_t)off < end)
			return l;
	return -1;
}

int pp_lt_addr2line(uint32_t kind, const uint8_t *tab, size_t len,
		    int firstlineno, int off)
{
	if (off < 0 || (!tab && len))
		return -1;
	switch (kind) {
	case PP_LT_LNOTAB:
		return lnotab_addr2line(tab, len, firstlineno, off);
	case PP_LT_LINETABLE310:
		return linetable310_addr2line(tab, len, firstlineno, off);
	case PP_LT_LOCATIONS:
		return locations_addr2line(tab, len, firstlineno, off);
	}
	return -1;
}

/*
 * Whole tables at once, for a cache that decodes each code object once
 * (codelines.c): the same three scans, each range appended as a run
 * (equal neighbours merged). Every offset's answer is what the scans
 * above give (the unit test checks both against each interpreter).
 */
struct runs {
	struct pp_lt_run *out;
	size_t cap, n;
	int last;		/* line of run n - 1 */
};

static void run_push(struct runs *r, uint32_t end, int line)
{
	if (r->n && r->last == line) {
		if (r->n <= r->cap)
			r->out[r->n - 1].end = end;
		return;
	}
	if (r->n < r->cap) {
		r->out[r->n].end = end;
		r->out[r->n].line = line;
	}
	r->last = line;
	r->n++;
}

static void lnotab_runs(struct runs *r, const uint8_t *tab, size_t len,
			int line)
{
	size_t i;
	uint32_t addr = 0;

	/* a pair counts for offsets >= its address (lnotab_addr2line) */
	for (i = 0; i + 1 < len; i += 2) {
		if (tab[i]) {
			run_push(r, addr + tab[i], line);
			addr += tab[i];
		}
		line += (int8_t)tab[i + 1];
	}
	run_push(r, UINT32_MAX, line);
}

static void linetable310_runs(struct runs *r, const uint8_t *tab, size_t len,
			      int line)
{
	size_t i;
	uint32_t end = 0;
	int8_t ld;

	for (i = 0; i + 1 < len; i += 2) {
		ld = (int8_t)tab[i + 1];
		if (ld != -128)
			line += ld;
		if (tab[i]) {
			end += tab[i];
			run_push(r, end, ld == -128 ? -1 : line);
		}
	}
	run_push(r, UINT32_MAX, -1);
}

static void locations_runs(struct runs *r, const uint8_t *tab, size_t len,
			   int line)
{
	size_t i = 0;
	uint32_t end = 0;
	int l;

	while ((l = loc_next(tab, len, &i, &end, &line)) != -2)
		run_push(r, end, l);
	run_push(r, UINT32_MAX, -1);
}

size_t pp_lt_runs(uint32_t kind, const uint8_t *tab, size_t len,
		  int firstlineno, struct pp_lt_run *out, size_t cap)
{
	struct runs r = { .out = out, .cap = out ? cap : 0 };

	if (!tab)
		len = 0;
	switch (kind) {
	case PP_LT_LNOTAB:
		lnotab_runs(&r, tab, len, firstlineno);
		break;
	case PP_LT_LINETABLE310:
		linetable310_runs(&r, tab, len, firstlineno);
		break;
	case PP_LT_LOCATIONS:
		locations_runs(&r, tab, len, firstlineno);
		break;
	default:
		run_push(&r, UINT32_MAX, -1);
	}
	return r.n;
}

int pp_lt_runs_line(const struct pp_lt_run *runs, size_t n, int off)
{
	size_t lo = 0, hi = n;

	if (off < 0 || !n)
		return -1;
	while (lo < hi) {	/* first run that ends after off */
		size_t mid = lo + (hi - lo) / 2;

		if (runs[mid].end > (uint32_t)off)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo < n ? runs[lo].line : -1;
}

int pp_code_line(const struct pp_pylayout *l, const void *code, int off)
{
	const char *co = code, *tab;
	int first, line;
	intptr_t size;

	if (!l || !co)
		return 0;
	first = *(const int *)(co + l->code_firstlineno);
	tab = *(const char *const *)(co + l->code_linetable);
	if (off < 0 || !tab)
		return first;
	size = *(const intptr_t *)(tab + l->bytes_size);
	if (size <= 0 || size > (1 << 26))
		return first;
	line = pp_lt_addr2line(l->lt_kind, (const uint8_t *)tab + l->bytes_data,
			       (size_t)size, first, off);
	return line < 0 ? first : line;
}

// SPDX-License-Identifier: MIT
/*
 * Python str -> UTF-8, reading the object's memory (pp_mem.h: in this
 * process or another; no API call, so it works without the GIL and in
 * the middle of an allocation). The one decoder of the shim and the
 * collector.
 *
 * PyASCIIObject.state (Include/cpython/unicodeobject.h) is a bitfield;
 * in every supported GIL build it starts interned:2, kind:3, compact:1,
 * ascii:1 from bit 0 (checked with a probe against 3.9-3.14 headers;
 * 3.14's free-threaded build moves interned to its own byte, which
 * pp_pylayout_init refuses). Compact strings keep their characters
 * right after the struct; legacy (non-compact) strings, made only by
 * str subclasses or the old C API, are not followed.
 */
#include <stddef.h>
#include <stdint.h>

#include "pp_mem.h"
#include "pp_pylayout.h"

#define STATE_KIND(s)		(((s) >> 2) & 7)
#define STATE_COMPACT(s)	(((s) >> 5) & 1)
#define STATE_ASCII(s)		(((s) >> 6) & 1)

/*
 * bytes of the UTF-8 encoding of c; lone surrogates (what
 * surrogateescape makes of a name's non-UTF-8 bytes) become U+FFFD, as
 * everywhere in pyprof's output (collector/utf8.h)
 */
static size_t utf8_put(uint32_t c, char *p, size_t room)
{
	if (c < 0x80) {
		if (room < 1)
			return 0;
		p[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		if (room < 2)
			return 0;
		p[0] = (char)(0xc0 | c >> 6);
		p[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if ((c >= 0xd800 && c < 0xe000) || c > 0x10ffff)
		return utf8_put(0xfffd, p, room);
	if (c < 0x10000) {
		if (room < 3)
			return 0;
		p[0] = (char)(0xe0 | c >> 12);
		p[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		p[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	if (room < 4)
		return 0;
	p[0] = (char)(0xf0 | c >> 18);
	p[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	p[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	p[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

int pp_py_str_read(const struct pp_mem *mem, const struct pp_pylayout *l,
		   uint64_t str, char *buf, size_t cap)
{
	uint8_t raw[256];
	uint64_t data;
	int64_t len = 0;
	uint32_t state = 0, kind, c;
	size_t n = 0, i, k, chunk, w;

	if (!buf || !cap)
		return -1;
	buf[0] = '\0';
	if (!l || !str || pp_mem_read(mem, str + l->str_state, &state, 4) ||
	    pp_mem_read(mem, str + l->str_length, &len, 8))
		return -1;
	kind = STATE_ASCII(state) ? 1 : STATE_KIND(state);
	if (!STATE_COMPACT(state) || len < 0 ||
	    (kind != 1 && kind != 2 && kind != 4))
		return -1;
	data = str + (STATE_ASCII(state) ? l->str_ascii_data :
					   l->str_compact_data);
	/* a chunk at a time, never more than what fits in buf */
	for (i = 0; i < (uint64_t)len && n + 1 < cap; i += chunk) {
		chunk = sizeof(raw) / kind;
		if (chunk > (uint64_t)len - i)
			chunk = len - i;
		if (chunk > cap - 1 - n)
			chunk = cap - 1 - n;
		if (pp_mem_read(mem, data + i * kind, raw, chunk * kind))
			break;
		for (k = 0; k < chunk; k++) {
			if (kind == 1)
				c = raw[k];
			else if (kind == 2)
				c = ((const uint16_t *)raw)[k];
			else
				c = ((const uint32_t *)raw)[k];
			/* keep one byte for the NUL; never split a character */
			w = utf8_put(c, buf + n, cap - 1 - n);
			if (!w)
				goto out;
			n += w;
		}
	}
out:
	buf[n] = '\0';
	return n;
}

size_t pp_py_str(const struct pp_pylayout *l, const void *str,
		 char *buf, size_t cap)
{
	int n = pp_py_str_read(&pp_mem_self, l, (uintptr_t)str, buf, cap);

	if (n >= 0 || !buf || !cap)
		return n >= 0 ? (size_t)n : 0;
	if (cap >= 2) {
		buf[0] = '?';
		buf[1] = '\0';
		return 1;
	}
	return 0;
}

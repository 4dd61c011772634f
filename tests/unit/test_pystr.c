// SPDX-License-Identifier: MIT
/*
 * The one str decoder (common/pystr.c) through both readers of
 * common/pp_mem.h: plain loads and process_vm_readv of this process
 * must give the same, valid UTF-8, with lone surrogates as U+FFFD. The
 * objects are laid out as PyASCIIObject/PyCompactUnicodeObject are
 * (Include/cpython/unicodeobject.h): length, state bits kind:3 at 2,
 * compact at 5, ascii at 6, the characters after the header.
 */
#include <string.h>
#include <unistd.h>

#include "pp_mem.h"
#include "pp_pylayout.h"
#include "pp_test.h"

#define ASCII_DATA 48
#define COMPACT_DATA 64

struct fake {
	int64_t refcnt, type, length, hash;
	uint32_t state, pad;
	char rest[4096];
};

static const struct pp_pylayout layout = {
	.str_length = offsetof(struct fake, length),
	.str_state = offsetof(struct fake, state),
	.str_ascii_data = ASCII_DATA,
	.str_compact_data = COMPACT_DATA,
};

static void make(struct fake *f, int kind, int ascii, const uint32_t *c,
		 size_t n)
{
	char *base = (char *)f;
	size_t i;

	memset(f, 0, sizeof(*f));
	f->length = n;
	f->state = kind << 2 | 1 << 5 | ascii << 6;
	for (i = 0; i < n; i++) {
		if (ascii)
			base[ASCII_DATA + i] = c[i];
		else if (kind == 1)
			((uint8_t *)(base + COMPACT_DATA))[i] = c[i];
		else if (kind == 2)
			((uint16_t *)(base + COMPACT_DATA))[i] = c[i];
		else
			((uint32_t *)(base + COMPACT_DATA))[i] = c[i];
	}
}

/* the same through both readers, and equal to want */
static void both(const char *name, struct fake *f, size_t cap, int want_n,
		 const char *want)
{
	struct pp_mem remote = pp_mem_remote(getpid());
	char a[512], b[512], t[160];
	int na, nb;

	memset(a, 'x', sizeof(a));
	memset(b, 'y', sizeof(b));
	na = pp_py_str_read(&pp_mem_self, &layout, (uintptr_t)f, a, cap);
	nb = pp_py_str_read(&remote, &layout, (uintptr_t)f, b, cap);
	snprintf(t, sizeof(t), "%s: in-process and remote agree", name);
	CHECK(na == nb && (na < 0 || !memcmp(a, b, na + 1)), t,
	      "%d '%s' vs %d '%s'", na, na >= 0 ? a : "", nb,
	      nb >= 0 ? b : "");
	snprintf(t, sizeof(t), "%s: decodes as expected", name);
	CHECK(na == want_n && (na < 0 || !strcmp(a, want)), t,
	      "got %d '%s', want %d '%s'", na, na >= 0 ? a : "", want_n,
	      want ? want : "");
}

int main(void)
{
	static struct fake f;
	uint32_t hello[] = { 'h', 'e', 'l', 'l', 'o' };
	uint32_t latin[] = { 'c', 0xe9 };			/* "cé" */
	uint32_t lone[] = { 'a', 0xd800, 'b' };			/* lone surrogate */
	uint32_t astral[] = { 0x1f600, 'x' };
	uint32_t euro[] = { 0x20ac, 0x20ac, 0x20ac };
	char got[8];

	make(&f, 1, 1, hello, 5);
	both("ascii", &f, 64, 5, "hello");
	both("ascii truncated", &f, 3, 2, "he");
	make(&f, 1, 0, latin, 2);
	both("ucs1", &f, 64, 3, "c\xc3\xa9");
	make(&f, 2, 0, lone, 3);
	both("ucs2 lone surrogate", &f, 64, 5, "a\xef\xbf\xbd" "b");
	make(&f, 4, 0, astral, 2);
	both("ucs4", &f, 64, 5, "\xf0\x9f\x98\x80x");
	make(&f, 2, 0, euro, 3);
	/* 7 bytes of room: two 3-byte characters, never half of the third */
	both("never splits a character", &f, 8, 6, "\xe2\x82\xac\xe2\x82\xac");
	make(&f, 1, 0, hello, 0);
	both("empty", &f, 64, 0, "");
	make(&f, 3, 0, hello, 2);
	both("kind 3 is no str", &f, 64, -1, NULL);
	f.state &= ~(1u << 5);
	both("legacy (not compact) is not followed", &f, 64, -1, NULL);

	pp_py_str(&layout, &f, got, sizeof(got));
	CHECK(!strcmp(got, "?"), "pp_py_str: '?' for what it cannot read",
	      "got '%s'", got);
	{
		struct pp_mem gone = pp_mem_remote(getpid());
		char buf[16];

		CHECK(pp_py_str_read(&gone, &layout, 8, buf, sizeof(buf)) < 0 &&
		      !buf[0], "remote: an unmapped address reads as nothing",
		      "got '%s'", buf);
	}
	TEST_EXIT();
}

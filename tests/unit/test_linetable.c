// SPDX-License-Identifier: MIT
/*
 * Line-table decoder against every interpreter on the machine: each one
 * runs linetable_dump.py, which prints its code objects' raw tables and
 * its own answers (PyCode_Addr2Line for every code unit, and co_lines()
 * or dis.findlinestarts()), plus fuzzed tables; pp_lt_addr2line must
 * agree everywhere. Also pp_code_line over a hand-built code object and
 * the error paths of pp_pylayout_init.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pp_pylayout.h"
#include "pp_test.h"
#include "pp_test_interp.h"

struct interp {
	const char *label;
	const char *path;
	unsigned int minor;
};

static uint32_t kind_of(unsigned int minor)
{
	return minor == 9 ? PP_LT_LNOTAB :
	       minor == 10 ? PP_LT_LINETABLE310 : PP_LT_LOCATIONS;
}

struct tally {
	long codes, offsets, bad_a, bad_b, fuzz_offsets, bad_fuzz;
	long no_line, back, jump255, max_line;
	char first_bad[3][256];
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static size_t unhex(const char *s, uint8_t *out)
{
	size_t n = 0;

	if (!strcmp(s, "-"))
		return 0;
	for (; s[0] && s[1]; s += 2)
		out[n++] = hexval(s[0]) << 4 | hexval(s[1]);
	return n;
}

/* "A"/"B" record -> lines[], returns the count */
static long parse_lines(const char *s, int *lines, long cap)
{
	long n = 0;
	char *end;

	s += 2;
	while (n < cap) {
		long v = strtol(s, &end, 10);

		if (end == s)
			break;
		lines[n++] = (int)v;
		s = end;
	}
	return n;
}

static void note_bad(struct tally *t, int which, const char *name, long off,
		     int want, int got)
{
	char *slot = t->first_bad[which];

	if (!slot[0])
		snprintf(slot, 256, "%.180s offset %ld: interpreter %d, decoder %d",
			 name, off, want, got);
}

/* Check one code object's answers (A: Addr2Line, B: second oracle). */
static void check_code(struct tally *t, uint32_t kind, const char *name,
		       int first, const uint8_t *tab, size_t len,
		       const int *a, long na, const int *b, long nb)
{
	int fuzz = !strncmp(name, "fuzz", 4);
	long i;
	int got;

	for (i = 0; i < na; i++) {
		got = pp_lt_addr2line(kind, tab, len, first, 2 * i);
		if (fuzz) {
			t->fuzz_offsets++;
			if (got != a[i]) {
				t->bad_fuzz++;
				note_bad(t, 2, name, 2 * i, a[i], got);
			}
			continue;
		}
		t->offsets++;
		if (got != a[i]) {
			t->bad_a++;
			note_bad(t, 0, name, 2 * i, a[i], got);
		}
		if (i < nb && got != b[i]) {
			t->bad_b++;
			note_bad(t, 1, name, 2 * i, b[i], got);
		}
		if (a[i] < 0)
			t->no_line++;
		if (a[i] > t->max_line)
			t->max_line = a[i];
		if (i && a[i] >= 0 && a[i - 1] >= 0) {
			if (a[i] < a[i - 1])
				t->back++;
			if (a[i] - a[i - 1] > 255)
				t->jump255++;
		}
	}
	if (!fuzz)
		t->codes++;
}

static const char *dump_script(void)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX - 64];
	ssize_t n;

	/* absolute: the chroot interpreters have it at the same path
	 * (tests/setup_chroot.sh) */
	if (realpath("tests/unit/linetable_dump.py", path))
		return path;
	/* build/tests/test_linetable -> tests/unit/ */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return "tests/unit/linetable_dump.py";
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(path, sizeof(path), "%s/../../tests/unit/linetable_dump.py",
		 exe);
	return path;
}

static void run_interp(const struct interp *in)
{
	char name[128], cmd[PATH_MAX * 2 + 32], cname[256], *line = NULL;
	char *hex = NULL;
	static uint8_t tab[1 << 20];
	size_t cap = 0, len = 0;
	long na = 0, nb = 0, ncap = 1 << 20;
	int *a = malloc(ncap * sizeof(int)), *b = malloc(ncap * sizeof(int));
	int first = 0, have = 0, st;
	unsigned int vmaj = 0, vmin = 0;
	struct tally t;
	FILE *p;

	memset(&t, 0, sizeof(t));
	snprintf(name, sizeof(name), "linetable/%s/run", in->label);
	if (access(in->path, X_OK)) {
		CHECK(0, name, "interpreter %s is missing", in->path);
		goto out;
	}
	snprintf(cmd, sizeof(cmd), "%s %s", in->path, dump_script());
	p = popen(cmd, "r");
	if (!p) {
		CHECK(0, name, "popen %s failed", cmd);
		goto out;
	}
	hex = malloc(2 * sizeof(tab) + 1);
	while (getline(&line, &cap, p) > 0) {
		line[strcspn(line, "\n")] = '\0';
		switch (line[0]) {
		case 'V':
			sscanf(line, "V %u %u", &vmaj, &vmin);
			break;
		case 'C':
			if (sscanf(line, "C %255s %d %s", cname, &first, hex) != 3 ||
			    strlen(hex) > 2 * sizeof(tab)) {
				have = 0;
				break;
			}
			len = unhex(hex, tab);
			have = 1;
			break;
		case 'A':
			na = parse_lines(line, a, ncap);
			break;
		case 'B':
			nb = line[2] == '-' ? 0 : parse_lines(line, b, ncap);
			if (have)
				check_code(&t, kind_of(in->minor), cname, first,
					   tab, len, a, na, b, nb);
			have = 0;
			break;
		}
	}
	st = pclose(p);
	CHECK(st == 0 && vmaj == 3 && vmin == in->minor && t.codes >= 500, name,
	      "exit status %d, version %u.%u, %ld code objects", st, vmaj,
	      vmin, t.codes);
	printf("# %s: %ld code objects, %ld offsets, %ld fuzzed offsets\n",
	       in->label, t.codes, t.offsets, t.fuzz_offsets);

	snprintf(name, sizeof(name), "linetable/%s/addr2line", in->label);
	CHECK(t.offsets > 20000 && !t.bad_a, name, "%ld of %ld offsets differ, first %s",
	      t.bad_a, t.offsets, t.first_bad[0]);
	snprintf(name, sizeof(name), "linetable/%s/co_lines", in->label);
	CHECK(t.offsets > 20000 && !t.bad_b, name, "%ld of %ld offsets differ, first %s",
	      t.bad_b, t.offsets, t.first_bad[1]);
	snprintf(name, sizeof(name), "linetable/%s/fuzz", in->label);
	CHECK(t.fuzz_offsets > 10000 && !t.bad_fuzz, name,
	      "%ld of %ld offsets differ, first %s", t.bad_fuzz,
	      t.fuzz_offsets, t.first_bad[2]);
	/* the dump must have exercised the hard cases */
	snprintf(name, sizeof(name), "linetable/%s/coverage", in->label);
	CHECK(t.back > 0 && t.jump255 > 0 && t.max_line > 70000 &&
	      (in->minor == 9 || t.no_line > 0), name,
	      "backward %ld, jumps over 255 %ld, max line %ld, no-line %ld",
	      t.back, t.jump255, t.max_line, t.no_line);
out:
	free(line);
	free(hex);
	free(a);
	free(b);
}

/* pp_code_line over a fake code object (firstlineno, a bytes table) */
static void check_code_line(const char *ver)
{
	struct pp_pylayout l;
	const char *why;
	char name[64];
	/* one entry per 2 units, lines 10, 11, no line, 13 in 3.11 form:
	 * ONE_LINE0..2 and NONE codes, lengths 2 units */
	static const uint8_t loc[] = { 0xd1, 1, 2, 0xd9, 1, 2, 0xf9,
				       0xe1, 1, 2 };
	/* 3.10: (4 bytes, +0) (4, +1) (4, none) (4, +2) */
	static const uint8_t t310[] = { 4, 0, 4, 1, 4, 0x80, 4, 2 };
	/* 3.9: lines at 0: 10, 4: 11, 8: 11, 12: 13 */
	static const uint8_t t39[] = { 4, 1, 8, 2 };
	union {
		uint64_t align;
		char b[512];
	} code, bytes;
	const uint8_t *tab;
	size_t len;
	int ok = 1, got[8], i;
	static const int want[][8] = {
		/* offsets 0, 2, ... 14 */
		{ 10, 10, 11, 11, 11, 11, 13, 13 },	/* 3.9 */
		{ 10, 10, 11, 11, 10, 10, 13, 13 },	/* 3.10: none -> first */
		{ 10, 10, 11, 11, 10, 10, 13, 13 },	/* 3.11+ */
	};
	const int *w;

	snprintf(name, sizeof(name), "code_line/%s", ver);
	if (pp_pylayout_init(&l, ver, NULL, &why)) {
		CHECK(0, name, "init: %s", why);
		return;
	}
	if (l.lt_kind == PP_LT_LNOTAB) {
		tab = t39, len = sizeof(t39), w = want[0];
	} else if (l.lt_kind == PP_LT_LINETABLE310) {
		tab = t310, len = sizeof(t310), w = want[1];
	} else {
		tab = loc, len = sizeof(loc), w = want[2];
	}
	memset(&code, 0, sizeof(code));
	memset(&bytes, 0, sizeof(bytes));
	*(int *)(code.b + l.code_firstlineno) = 10;
	*(void **)(code.b + l.code_linetable) = bytes.b;
	*(intptr_t *)(bytes.b + l.bytes_size) = len;
	memcpy(bytes.b + l.bytes_data, tab, len);
	for (i = 0; i < 8; i++) {
		got[i] = pp_code_line(&l, code.b, 2 * i);
		ok &= got[i] == w[i];
	}
	ok &= pp_code_line(&l, code.b, -1) == 10;
	ok &= pp_code_line(&l, code.b, 1000) ==
	      (l.lt_kind == PP_LT_LNOTAB ? 13 : 10);
	ok &= pp_code_line(&l, NULL, 4) == 0;
	*(void **)(code.b + l.code_linetable) = NULL;
	ok &= pp_code_line(&l, code.b, 4) == 10;
	CHECK(ok, name, "lines %d %d %d %d %d %d %d %d", got[0], got[1], got[2],
	      got[3], got[4], got[5], got[6], got[7]);
}

static void check_init_errors(void)
{
	static const char *bad[] = { "3.8.18", "2.7.18 (default)", "garbage",
				     "", "3.15.0", "4.0.0" };
	struct pp_pylayout l;
	uint64_t rt[128];
	const char *why;
	char name[64];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		rc = pp_pylayout_init(&l, bad[i], NULL, &why);
		snprintf(name, sizeof(name), "init/rejects \"%s\"", bad[i]);
		CHECK(rc == -1 && why && why[0], name, "rc %d why %s", rc,
		      why ? why : "(null)");
	}
	why = NULL;
	rc = pp_pylayout_init(&l, "3.8.18", NULL, &why);
	CHECK(rc == -1 && why && strstr(why, "3.9"), "init/3.8 says why",
	      "why %s", why ? why : "(null)");
	rc = pp_pylayout_init(&l, NULL, NULL, NULL);
	CHECK(rc == -1, "init/NULL version", "rc %d", rc);

	/* 3.13: no runtime, wrong cookie, version mismatch, free-threaded */
	rc = pp_pylayout_init(&l, "3.13.0", NULL, &why);
	CHECK(rc == -1 && why, "init/3.13 without runtime", "rc %d", rc);
	memset(rt, 0, sizeof(rt));
	rc = pp_pylayout_init(&l, "3.13.0", rt, &why);
	CHECK(rc == -1 && why && strstr(why, "cookie"), "init/3.13 bad cookie",
	      "rc %d why %s", rc, why);
	memcpy(rt, "xdebugpy", 8);
	rt[1] = 0x030c01f0;	/* says 3.12.1 */
	rc = pp_pylayout_init(&l, "3.13.0", rt, &why);
	CHECK(rc == -1 && why && strstr(why, "version"),
	      "init/3.13 version mismatch", "rc %d why %s", rc, why);
	rt[1] = 0x030d00f0;
	rt[2] = 1;
	rc = pp_pylayout_init(&l, "3.13.0", rt, &why);
	CHECK(rc == -1 && why && strstr(why, "free-threaded"),
	      "init/3.13 free-threaded", "rc %d why %s", rc, why);
	rt[2] = 0;	/* all sizes 0: offsets cannot fit */
	rc = pp_pylayout_init(&l, "3.13.0", rt, &why);
	CHECK(rc == -1 && why, "init/3.13 implausible offsets", "rc %d", rc);

	for (i = 9; i <= 12; i++) {
		char ver[16];

		snprintf(ver, sizeof(ver), "3.%zu.0 (main)", i);
		rc = pp_pylayout_init(&l, ver, NULL, &why);
		snprintf(name, sizeof(name), "init/3.%zu table", i);
		CHECK(rc == 0 && l.minor == i && l.lt_kind == kind_of(i), name,
		      "rc %d minor %u kind %u", rc, l.minor, l.lt_kind);
	}
}

/* Garbage tables must not crash or read past len. */
static void check_garbage(void)
{
	uint8_t *buf;
	unsigned int seed = 23, k;
	int i, off, ok = 1;
	size_t len;

	for (i = 0; i < 2000; i++) {
		len = rand_r(&seed) % 64;
		/* exact-size heap block: ASan/valgrind would see overreads */
		buf = malloc(len ? len : 1);
		for (size_t j = 0; j < len; j++)
			buf[j] = rand_r(&seed);
		for (k = PP_LT_LNOTAB; k <= PP_LT_LOCATIONS; k++)
			for (off = -4; off < 300; off += 3)
				(void)pp_lt_addr2line(k, buf, len, 1, off);
		free(buf);
	}
	ok &= pp_lt_addr2line(PP_LT_LOCATIONS, NULL, 0, 5, 0) == -1;
	ok &= pp_lt_addr2line(99, (const uint8_t *)"ab", 2, 5, 0) == -1;
	ok &= pp_lt_addr2line(PP_LT_LNOTAB, NULL, 0, 5, 0) == 5;
	ok &= pp_lt_addr2line(PP_LT_LOCATIONS, (const uint8_t *)"\x80", 1, 5,
			      -2) == -1;
	CHECK(ok, "linetable/garbage", "unexpected answers on empty tables");
}

/* test_linetable [LABEL PYTHON MINOR]: one other interpreter only */
int main(int argc, char **argv)
{
	if (argc == 4) {
		struct interp in = { argv[1], argv[2], atoi(argv[3]) };

		run_interp(&in);
		TEST_EXIT();
	}
	check_init_errors();
	check_code_line("3.9.18");
	check_code_line("3.10.13");
	check_code_line("3.11.7");
	check_code_line("3.12.1");
	check_garbage();
	/* every interpreter of tests/interpreters ("py3.X-..." labels) */
	{
		static struct pp_test_interp li[32];
		int k, n = pp_test_interpreters(li, 32);

		CHECK(n > 0, "linetable/interpreters",
		      "cannot read tests/interpreters");
		for (k = 0; k < n; k++) {
			struct interp in = { li[k].label, li[k].path, 0 };

			if (sscanf(li[k].label, "py3.%u", &in.minor) != 1 ||
			    (!li[k].present && !li[k].required))
				continue;
			run_interp(&in);
		}
	}
	TEST_EXIT();
}

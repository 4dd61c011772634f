// SPDX-License-Identifier: MIT
/*
 * Whole-table decoding (pp_lt_runs, which the shim caches per code
 * object) against the scanning decoder pp_lt_addr2line, which
 * test_linetable checks against each interpreter: for every code object
 * linetable_dump.py prints (and its fuzzed tables), every offset up to
 * past the end must get the same answer, and the merged runs must be no
 * more than the table has entries. Also garbage tables.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' :
	       c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
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

struct tally {
	long codes, offsets, bad, big;
	char first_bad[256];
};

/* one table: every offset to 64 bytes past its last unit, and -2 */
static void check_table(struct tally *t, uint32_t kind, const char *name,
			int first, const uint8_t *tab, size_t len, long units)
{
	static struct pp_lt_run runs[1 << 20];
	size_t n = pp_lt_runs(kind, tab, len, first, runs, 1 << 20);
	long off;
	int want, got;

	if (n > len + 1 || n > (1 << 20)) {
		t->bad++;
		if (!t->first_bad[0])
			snprintf(t->first_bad, 256, "%.180s: %zu runs for %zu bytes",
				 name, n, len);
		return;
	}
	if (n > 1000)
		t->big++;
	t->codes++;
	for (off = -2; off < 2 * units + 64; off++) {
		want = pp_lt_addr2line(kind, tab, len, first, (int)off);
		got = pp_lt_runs_line(runs, n, (int)off);
		t->offsets++;
		if (want != got) {
			t->bad++;
			if (!t->first_bad[0])
				snprintf(t->first_bad, 256,
					 "%.180s offset %ld: scan %d, runs %d",
					 name, off, want, got);
		}
	}
}

static const char *dump_script(void)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX - 64];
	ssize_t n;

	/* absolute: the chroot interpreters have it at the same path */
	if (realpath("tests/unit/linetable_dump.py", path))
		return path;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return "tests/unit/linetable_dump.py";
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(path, sizeof(path), "%s/../../tests/unit/linetable_dump.py",
		 exe);
	return path;
}

/* a module of 6000 lines with one statement per line, a run each */
#define BIG_SCRIPT							\
	"import sys\n"							\
	"t = \"co_lnotab\" if sys.version_info < (3, 10) else \"co_linetable\"\n" \
	"src = \"\".join(\"x%d = [%d]\\n\" % (i, i) for i in range(6000))\n" \
	"co = compile(src, \"big\", \"exec\")\n"			\
	"print(\"C big %d %s %d\" % (co.co_firstlineno, getattr(co, t).hex(),\n" \
	"      len(co.co_code) // 2))\n"

static void run_interp(const struct interp *in)
{
	static uint8_t tab[1 << 20];
	char name[128], cmd[PATH_MAX * 2 + 32], cname[256], *line = NULL;
	char *hex = malloc(2 * sizeof(tab) + 1);
	size_t cap = 0, len;
	long units;
	int first, st;
	struct tally t;
	FILE *p;

	memset(&t, 0, sizeof(t));
	snprintf(name, sizeof(name), "ltruns/%s", in->label);
	if (access(in->path, X_OK)) {
		CHECK(0, name, "interpreter %s is missing", in->path);
		goto out;
	}
	snprintf(cmd, sizeof(cmd), "%s %s; %s -c '%s'", in->path,
		 dump_script(), in->path, BIG_SCRIPT);
	p = popen(cmd, "r");
	if (!p) {
		CHECK(0, name, "popen %s failed", cmd);
		goto out;
	}
	while (getline(&line, &cap, p) > 0) {
		if (line[0] != 'C' ||
		    sscanf(line, "C %255s %d %s %ld", cname, &first, hex,
			   &units) != 4 || strlen(hex) > 2 * sizeof(tab))
			continue;
		len = unhex(hex, tab);
		check_table(&t, kind_of(in->minor), cname, first, tab, len,
			    units);
	}
	st = pclose(p);
	printf("# %s: %ld tables, %ld offsets, %ld with over 1000 runs\n",
	       in->label, t.codes, t.offsets, t.big);
	CHECK(st == 0 && t.codes >= 500 && t.offsets > 20000 && t.big > 0 &&
	      !t.bad, name, "exit %d, %ld tables, %ld of %ld offsets differ, first %s",
	      st, t.codes, t.bad, t.offsets, t.first_bad);
out:
	free(line);
	free(hex);
}

/* Garbage tables: the same answers as the scan, no overreads. */
static void check_garbage(void)
{
	struct pp_lt_run runs[130];
	unsigned int seed = 29, k;
	int i, off, ok = 1;
	uint8_t *buf;
	size_t len, n;

	for (i = 0; i < 3000; i++) {
		len = rand_r(&seed) % 64;
		buf = malloc(len ? len : 1);	/* exact size: ASan sees overreads */
		for (size_t j = 0; j < len; j++)
			buf[j] = rand_r(&seed);
		for (k = PP_LT_LNOTAB; k <= PP_LT_LOCATIONS; k++) {
			n = pp_lt_runs(k, buf, len, 7, runs, 130);
			ok &= n <= len + 1 && n == pp_lt_runs(k, buf, len, 7,
							      NULL, 0);
			for (off = -4; off < 600 && n <= 130; off++)
				ok &= pp_lt_runs_line(runs, n, off) ==
				      pp_lt_addr2line(k, buf, len, 7, off);
		}
		free(buf);
	}
	n = pp_lt_runs(99, (const uint8_t *)"ab", 2, 5, runs, 130);
	ok &= pp_lt_runs_line(runs, n, 0) == -1;
	ok &= pp_lt_runs_line(runs, 0, 0) == -1;
	CHECK(ok, "ltruns/garbage", "runs and scan disagree on a garbage table");
}

/* test_ltruns [LABEL PYTHON MINOR]: one other interpreter only */
int main(int argc, char **argv)
{
	static struct pp_test_interp li[32];
	int k, n;

	if (argc == 4) {
		struct interp in = { argv[1], argv[2], atoi(argv[3]) };

		run_interp(&in);
		TEST_EXIT();
	}
	check_garbage();
	/* every interpreter of tests/interpreters ("py3.X-..." labels) */
	n = pp_test_interpreters(li, 32);
	CHECK(n > 0, "ltruns/interpreters", "cannot read tests/interpreters");
	for (k = 0; k < n; k++) {
		struct interp in = { li[k].label, li[k].path, 0 };

		if (sscanf(li[k].label, "py3.%u", &in.minor) != 1 ||
		    (!li[k].present && !li[k].required))
			continue;
		run_interp(&in);
	}
	TEST_EXIT();
}

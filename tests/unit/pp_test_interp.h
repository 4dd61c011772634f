/* SPDX-License-Identifier: MIT */
/*
 * The interpreters under test, from tests/interpreters (the one list the
 * e2e harness and tests/run.sh read too). Run from the repository's top.
 */
#ifndef PP_TEST_INTERP_H
#define PP_TEST_INTERP_H

#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct pp_test_interp {
	char label[64];
	char path[PATH_MAX];
	int required;		/* a missing one is a FAIL */
	int stripped;		/* Debian's builds: no static symbols */
	int present;
};

/* Fill out[max]; returns the count, -1 when the list cannot be read. */
static int pp_test_interpreters(struct pp_test_interp *out, int max)
{
	char line[PATH_MAX + 256], need[32], build[32], path[PATH_MAX];
	char cwd[PATH_MAX];
	FILE *f = fopen("tests/interpreters", "r");
	int n = 0;

	if (!f)
		return -1;
	while (n < max && fgets(line, sizeof(line), f)) {
		struct pp_test_interp *p = &out[n];
		char *hash = strchr(line, '#');
		glob_t g;

		if (hash)
			*hash = 0;
		if (sscanf(line, "%63s %31s %31s %4095s", p->label, need, build,
			   path) != 4)
			continue;
		p->required = !strcmp(need, "required");
		p->stripped = !strcmp(build, "stripped");
		if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
			cwd[0] = 0;
		else
			strcat(cwd, "/");
		if (snprintf(p->path, sizeof(p->path), "%s%s", cwd, path) >=
		    (int)sizeof(p->path))
			continue;
		if (strpbrk(p->path, "*?[") && !glob(p->path, 0, NULL, &g)) {
			if (g.gl_pathc)
				snprintf(p->path, sizeof(p->path), "%s",
					 g.gl_pathv[0]);
			globfree(&g);
		}
		p->present = access(p->path, X_OK) == 0;
		n++;
	}
	fclose(f);
	return n;
}

#endif

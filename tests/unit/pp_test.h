/* SPDX-License-Identifier: MIT */
/* A minimal check harness: each check prints "ok NAME" or "FAIL NAME: ..."
 * and tests/run.sh counts them. */
#ifndef PP_TEST_H
#define PP_TEST_H

#include <stdio.h>

static int pp_test_failed;

#define CHECK(cond, name, ...)                                          \
	do {                                                            \
		if (cond) {                                             \
			printf("ok %s\n", name);                        \
		} else {                                                \
			printf("FAIL %s: ", name);                      \
			printf(__VA_ARGS__);                            \
			printf(" (%s:%d)\n", __FILE__, __LINE__);       \
			pp_test_failed++;                               \
		}                                                       \
		fflush(stdout);                                         \
	} while (0)

#define TEST_EXIT() return pp_test_failed ? 1 : 0

#endif

/* SPDX-License-Identifier: MIT */
/*
 * What pyprof hands the shim it loads into a running process
 * (collector/inject.c writes, preload/attach.c reads): the data page the
 * pending call receives, and the message sent over the socket with the
 * ring's fd.
 */
#ifndef PP_INJECT_WIRE_H
#define PP_INJECT_WIRE_H

#include <stdint.h>

/* The data page: the trampoline (collector/inject.c) uses the offsets,
 * the shim's entry reads sock and path. */
#define PP_INJ_DATA 256		/* the data's offset in the page */
/* the socket's abstract name: this and the shim copy's file name (or
 * its memfd's name: /memfd:libpyprof.so.PID.XXXXXX in /proc/PID/maps) */
#define PP_INJ_SOCK_PREFIX "pyprof/inject/"

struct pp_inject_data {
	uint64_t dlopen, dlsym, munmap, page_size;	/* 0, 8, 16, 24 */
	uint64_t dlclose;				/* 32 */
	char sym[32];					/* 40 */
	char sock[96];					/* 72 */
	char path[3072];				/* 168 */
	/* the direct call (collector/inject.c): PyGILState_Ensure and
	 * PyGILState_Release */
	uint64_t gil_ensure, gil_release;		/* 3240, 3248 */
	/* 1: the entry runs from the direct trampoline, which dlcloses
	 * the shim when the entry returns non-zero */
	uint32_t direct;				/* 3256 */
	/* the shim's memfd in the target, which it was loaded from as
	 * /proc/self/fd/N (its /tmp not usable): the trampoline closes it
	 * after dlopen, loaded or not; -1: a file */
	int32_t memfd;					/* 3260 */
	uint64_t close;					/* 3264 */
};
#define PP_INJ_ENTRY "pyprof_inject_entry"
#define PP_INJ_MAGIC 0x4a4e4950u	/* "PINJ": the settings message */

/* what pyprof sends over the socket, with the ring's fd */
struct pp_inject_hello {
	uint32_t magic;
	uint32_t abi;		/* PP_ABI_VERSION */
	uint64_t breaker;	/* the main interpreter's eval_breaker, 0 = none */
};

#endif

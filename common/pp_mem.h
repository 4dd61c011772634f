/* SPDX-License-Identifier: MIT */
/*
 * Reading a Python process's memory: the one seam between the CPython
 * description (pylayout.c, pystr.c) and where the process is. In the
 * shim the target is this process (plain loads); the collector and
 * later attach code read another one (process_vm_readv).
 */
#ifndef PP_MEM_H
#define PP_MEM_H

#include <stddef.h>
#include <stdint.h>

struct pp_mem {
	/* 0, or -errno when [addr, addr + len) cannot be read whole */
	int (*read)(const struct pp_mem *m, uint64_t addr, void *buf,
		    size_t len);
	int pid;			/* pp_mem_remote: the process read */
};

/* This process: the caller knows the addresses are mapped. */
extern const struct pp_mem pp_mem_self;

/* Process pid (process_vm_readv: ptrace access, e.g. root, needed). */
struct pp_mem pp_mem_remote(int pid);

static inline int pp_mem_read(const struct pp_mem *m, uint64_t addr,
			      void *buf, size_t len)
{
	return m->read(m, addr, buf, len);
}

#endif

/* SPDX-License-Identifier: MIT */
/* Native symbol names from ELF symbol tables (.symtab, else .dynsym),
 * for frames the shim could only name as "+0xOFFSET" (dladdr sees the
 * dynamic symbols only: static functions need the full table). They are
 * resolved at record time, while the target's files are at hand, so a
 * trace names its frames the same on any machine. */
#ifndef PP_SYMBOLS_H
#define PP_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

#include "pp_wire.h"

/* Name of the function at offset off from the load base of the ELF
 * file path, or NULL. The string lives until pp_symbols_free. */
const char *pp_symbols_lookup(const char *path, uint64_t off);
void pp_symbols_free(void);

/*
 * rec, a native FUNC record named "+0xOFFSET", again with the name the
 * file's symbol table gives, written to buf (cap bytes). The file is read
 * as process pid sees it (/proc/pid/root: the target may run in another
 * root), else as pyprof sees it. NULL when rec is no such record or the
 * table has no name for it.
 */
const struct pp_hdr *pp_symbols_name_func(const struct pp_hdr *rec, int pid,
					  void *buf, size_t cap);

#endif

/* SPDX-License-Identifier: MIT */
/* Native symbol names from ELF symbol tables (.symtab, else .dynsym),
 * for frames the shim could only name as "+0xOFFSET" (dladdr sees the
 * dynamic symbols only: static functions need the full table). */
#ifndef PP_SYMBOLS_H
#define PP_SYMBOLS_H

#include <stdint.h>

/* Name of the function at offset off from the load base of the ELF
 * file path, or NULL. The string lives until pp_symbols_free. */
const char *pp_symbols_lookup(const char *path, uint64_t off);
void pp_symbols_free(void);

#endif

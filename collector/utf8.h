/* SPDX-License-Identifier: MIT */
/*
 * Strings leaving pyprof (JSON, text reports, every later format) are
 * valid UTF-8, whatever bytes the target's names held: an invalid
 * sequence becomes U+FFFD, one per maximal invalid subpart (Unicode's
 * "best practice", what Python's errors="replace" does), everywhere.
 */
#ifndef PP_UTF8_H
#define PP_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PP_UTF8_REPLACEMENT "\xef\xbf\xbd"	/* U+FFFD */

/*
 * The sequence at s (n bytes left, n >= 1): its length (> 0) when it is
 * one valid character, or minus the length of the invalid subpart that
 * one U+FFFD replaces.
 */
int pp_utf8_seq(const unsigned char *s, size_t n);

/* s as a JSON string literal, quotes included (NULL: "") */
void pp_json_str(FILE *out, const char *s);

/*
 * s for text output: valid UTF-8, control characters as '?'. Returns s
 * itself when it needs nothing, else buf (truncated to len).
 */
const char *pp_text_str(const char *s, char *buf, size_t len);

/* the character at s (n >= 1 bytes left): its code point, U+FFFD for
 * an invalid sequence; *len the bytes it takes */
uint32_t pp_utf8_next(const unsigned char *s, size_t n, int *len);
/* the columns a terminal gives cp (wcwidth in a UTF-8 locale, whatever
 * pyprof's own): 2 for CJK, 0 for a combining mark, -1 for a control */
int pp_cp_cols(uint32_t cp);
/* the columns s takes (a control character counted as one '?') */
int pp_utf8_cols(const char *s);

#endif

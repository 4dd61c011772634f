// SPDX-License-Identifier: MIT
/* Valid UTF-8 out, whatever came in (see utf8.h). */
#include <locale.h>
#include <string.h>
#include <wchar.h>

#include "utf8.h"

int pp_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return -1;	/* continuation, overlong lead, beyond U+10FFFF */
	len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	/* RFC 3629's table: no overlongs, no surrogates, <= U+10FFFF */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	for (i = 1; i < len; i++) {
		if (i >= n || s[i] < lo || s[i] > hi)
			return -(int)i;
		lo = 0x80;
		hi = 0xbf;
	}
	return (int)len;
}

void pp_json_str(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t n = strlen((const char *)s);
	int k;

	fputc('"', out);
	while (n) {
		unsigned char c = *s;

		k = pp_utf8_seq(s, n);
		if (k < 0) {
			fputs(PP_UTF8_REPLACEMENT, out);
			k = -k;
		} else if (c == '"' || c == '\\') {
			fputc('\\', out);
			fputc(c, out);
		} else if (c == '\n') {
			fputs("\\n", out);
		} else if (c == '\t') {
			fputs("\\t", out);
		} else if (c == '\r') {
			fputs("\\r", out);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
		} else {
			fwrite(s, 1, k, out);
		}
		s += k;
		n -= k;
	}
	fputc('"', out);
}

const char *pp_text_str(const char *str, char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t n = strlen((const char *)s), o = 0;
	int k, clean = 1;
	const unsigned char *p;

	for (p = s; p < s + n; p += k < 0 ? -k : k) {
		k = pp_utf8_seq(p, s + n - p);
		if (k < 0 || *p < 0x20 || *p == 0x7f) {
			clean = 0;
			break;
		}
	}
	if (clean || !len)
		return (const char *)s;
	for (p = s; p < s + n; p += k) {
		const char *rep = (const char *)p;
		size_t w;

		k = pp_utf8_seq(p, s + n - p);
		if (k < 0) {
			rep = PP_UTF8_REPLACEMENT;
			w = 3;
			k = -k;
		} else if (*p < 0x20 || *p == 0x7f) {
			rep = "?";
			w = 1;
		} else {
			w = k;
		}
		if (o + w >= len)
			break;	/* never half a character */
		memcpy(buf + o, rep, w);
		o += w;
	}
	buf[o] = 0;
	return buf;
}

int pp_cp_cols(uint32_t cp)
{
	static locale_t utf8;
	static int tried;
	locale_t old;
	int w;

	if (cp < 0x7f)
		return cp >= 0x20 ? 1 : -1;
	if (!tried) {
		tried = 1;
		utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	}
	if (!utf8)
		return 1;
	old = uselocale(utf8);	/* wcwidth in a UTF-8 locale, whatever ours */
	w = wcwidth((wchar_t)cp);
	uselocale(old);
	return w;
}

uint32_t pp_utf8_next(const unsigned char *s, size_t n, int *len)
{
	int k = pp_utf8_seq(s, n);

	if (k < 0) {
		*len = -k;
		return 0xfffd;
	}
	*len = k;
	switch (k) {
	case 1:
		return s[0];
	case 2:
		return (s[0] & 0x1f) << 6 | (s[1] & 0x3f);
	case 3:
		return (s[0] & 0x0f) << 12 | (s[1] & 0x3f) << 6 | (s[2] & 0x3f);
	default:
		return (s[0] & 0x07) << 18 | (s[1] & 0x3f) << 12 |
		       (s[2] & 0x3f) << 6 | (s[3] & 0x3f);
	}
}

int pp_utf8_cols(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	int len, w, sum = 0;

	for (; n; p += len, n -= len) {
		w = pp_cp_cols(pp_utf8_next(p, n, &len));
		sum += w < 0 ? 1 : w;
	}
	return sum;
}

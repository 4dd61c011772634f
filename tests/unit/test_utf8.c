// SPDX-License-Identifier: MIT
/*
 * The one string writer of pyprof's output: valid UTF-8 whatever comes
 * in, U+FFFD per maximal invalid subpart (what Python's
 * bytes.decode("utf-8", "replace") gives), JSON escapes for the rest.
 */
#include <stdlib.h>
#include <string.h>

#include "pp_test.h"
#include "utf8.h"

#define R "\xef\xbf\xbd"

static const struct {
	const char *in, *json, *name;
} cases[] = {
	{ "plain.py", "\"plain.py\"", "ascii" },
	{ "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x90\x8d", "\"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x90\x8d\"",
	  "valid 2, 3 and 4 byte characters kept" },
	{ "a\xff" "b", "\"a" R "b\"", "a stray byte" },
	{ "\x80\x80", "\"" R R "\"", "lone continuation bytes, one each" },
	{ "\xc0\xaf", "\"" R R "\"", "overlong lead" },
	{ "\xed\xa0\x80", "\"" R R R "\"", "encoded surrogate" },
	{ "\xf4\x90\x80\x80", "\"" R R R R "\"", "beyond U+10FFFF" },
	{ "\xe2\x82" "x", "\"" R "x\"", "truncated sequence, one for the prefix" },
	{ "\xe2\x82", "\"" R "\"", "truncated at the end" },
	{ "q\"b\\s\n\t\r\x01\x7f", "\"q\\\"b\\\\s\\n\\t\\r\\u0001\\u007f\"",
	  "JSON escapes" },
};

int main(void)
{
	char *buf, name[128], txt[64];
	size_t i, len;
	FILE *f;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		f = open_memstream(&buf, &len);
		pp_json_str(f, cases[i].in);
		fclose(f);
		snprintf(name, sizeof(name), "utf8 json: %s", cases[i].name);
		CHECK(!strcmp(buf, cases[i].json), name, "got '%s'", buf);
		free(buf);
	}
	CHECK(!strcmp(pp_text_str("a\xff\n", txt, sizeof(txt)), "a" R "?"),
	      "utf8 text: replaced, control characters as '?'", "got '%s'",
	      txt);
	CHECK(!strcmp(pp_text_str("a" R "b\xff", txt, 6), "a" R "b"),
	      "utf8 text: truncation never splits a character", "got '%s'",
	      txt);
	TEST_EXIT();
}

// SPDX-License-Identifier: MIT
/* Number formatting shared by the text report and the viewer (fmt.h). */
#include <math.h>
#include <stdio.h>

#include "fmt.h"

const char *pp_fmt_bytes(double b, char *buf, size_t len)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;
	double a = fabs(b);

	while (a >= 1024 && u < 4) {
		a /= 1024;
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f %s", b, unit[u]);
	else
		snprintf(buf, len, "%.1f %s", b, unit[u]);
	return buf;
}

/* SPDX-License-Identifier: MIT */
/* Number formatting shared by the text report and the viewer. */
#ifndef PP_FMT_H
#define PP_FMT_H

#include <stddef.h>

/* "12.3 MiB" into buf */
const char *pp_fmt_bytes(double bytes, char *buf, size_t len);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * --max-size: the trace writer keeps a bounded sequence of segments
 * (trace.h), each after the first starting with a checkpoint of the
 * live state. This is what writes them: a model fed every record the
 * writer takes, turned back into records (pp_wire.h PP_REC_CKPT).
 */
#ifndef PP_CKPT_H
#define PP_CKPT_H

#include <stdint.h>

#include "trace.h"

/* From now on, w keeps within max_bytes (plus one chunk). */
void pp_ckpt_cap(struct pp_trace_writer *w, uint64_t max_bytes);

#endif

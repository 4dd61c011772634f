/* SPDX-License-Identifier: MIT */
/*
 * Small /proc files, read whole in one read(2) (the kernel makes them
 * at open; a short file needs no loop).
 */
#ifndef PP_PROCFS_H
#define PP_PROCFS_H

#include <stddef.h>

/* The file at path into buf, NUL-terminated: its length, or -1. */
int pp_procfs_read(const char *path, char *buf, size_t len);

/*
 * The fields of /proc/PID/stat after the command name, from field 3
 * (the state letter) on: a pointer into buf, or NULL. The name may
 * hold spaces and parentheses, so it is cut at the last ')'.
 */
const char *pp_procfs_stat(int pid, char *buf, size_t len);

#endif

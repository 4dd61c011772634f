/* SPDX-License-Identifier: MIT */
/*
 * The shim is loaded into interpreters of other roots too (Debian 11's
 * glibc 2.31 in tests/cache/bullseye, older containers): bind the few
 * calls whose default version is newer than 2.29 to the versions every
 * x86-64 glibc has. glibc 2.34 moved them from libdl/libpthread into
 * libc under GLIBC_2.34 and kept the old versions as aliases, so the
 * same code runs; the shim links libdl and libpthread explicitly for
 * the older glibcs that still keep them there. Included in every shim
 * file (-include); the Makefile checks the result with objdump.
 */
#ifndef PP_GLIBC_COMPAT_H
#define PP_GLIBC_COMPAT_H
#include <features.h>
#if defined(__x86_64__) && defined(__GLIBC__)
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
__asm__(".symver dlvsym,dlvsym@GLIBC_2.2.5");
__asm__(".symver dladdr,dladdr@GLIBC_2.2.5");
__asm__(".symver dlclose,dlclose@GLIBC_2.2.5");
__asm__(".symver dlinfo,dlinfo@GLIBC_2.3.3");
__asm__(".symver dlerror,dlerror@GLIBC_2.2.5");
__asm__(".symver pthread_create,pthread_create@GLIBC_2.2.5");
__asm__(".symver pthread_join,pthread_join@GLIBC_2.2.5");
__asm__(".symver pthread_detach,pthread_detach@GLIBC_2.2.5");
__asm__(".symver pthread_mutex_trylock,pthread_mutex_trylock@GLIBC_2.2.5");
__asm__(".symver pthread_sigmask,pthread_sigmask@GLIBC_2.2.5");
__asm__(".symver pthread_key_create,pthread_key_create@GLIBC_2.2.5");
__asm__(".symver pthread_setspecific,pthread_setspecific@GLIBC_2.2.5");
__asm__(".symver pthread_key_delete,pthread_key_delete@GLIBC_2.2.5");
__asm__(".symver sem_trywait,sem_trywait@GLIBC_2.2.5");
#endif
#endif

// SPDX-License-Identifier: MIT
/*
 * CPython 3.14+: the interpreter's own remote execution (PEP 768), no
 * ptrace. _PyRuntime starts with _Py_DebugOffsets
 * (Include/internal/pycore_debug_offsets.h): the main thread state's
 * _PyRemoteDebuggerSupport gets a script path and its pending flag, then
 * the eval breaker's _PY_EVAL_PLEASE_STOP_BIT (Include/internal/
 * pycore_ceval.h); the main thread runs the script at its next check
 * (Python/ceval_gil.c _PyRunRemoteDebugger), as sys.remote_exec() does.
 *
 * The debugger_support group is the table's last, after groups whose
 * number changed between 3.14 and 3.15: it is found by its constant
 * tail (debugger_pending_call 0, debugger_script_path 4, the path's
 * size 512), the interpreter's head and main thread by their fixed
 * place at the start (runtime_state, interpreter_state).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "inject.h"

#define DO_INTERP_HEAD 40	/* runtime_state.interpreters_head */
#define DO_THREADS_MAIN 80	/* interpreter_state.threads_main */
#define DO_SCAN 4096		/* the table is ~1 KiB */
#define PLEASE_STOP (1u << 5)

static int rd(int pid, uint64_t addr, void *buf, size_t n)
{
	struct iovec l = { buf, n }, r = { (void *)addr, n };

	return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)n ? 0 : -1;
}

static int wr(int pid, uint64_t addr, const void *buf, size_t n)
{
	struct iovec l = { (void *)buf, n }, r = { (void *)addr, n };

	return process_vm_writev(pid, &l, 1, &r, 1, 0) == (ssize_t)n ? 0 : -1;
}

struct rdebug {
	uint64_t interp, off_tm, eb, rds, pend, path, size;
};

static int locate(const struct pp_pyproc *p, struct rdebug *d, char *err,
		  size_t errlen)
{
	uint64_t t[DO_SCAN / 8], interp, off_ih, off_tm;
	uint64_t eb, rds, enabled_off, pend, path, size;
	int32_t enabled = 0;
	size_t i;

	if (rd(p->pid, p->runtime, t, sizeof(t)) || memcmp(t, "xdebugpy", 8)) {
		snprintf(err, errlen, "no debug offsets in Python %s", p->version);
		return -1;
	}
	if (t[2]) {
		snprintf(err, errlen, "Python %s is a free-threaded build",
			 p->version);
		return -1;
	}
	for (i = 3; i + 2 < DO_SCAN / 8; i++)
		if (t[i] == 0 && t[i + 1] == 4 && t[i + 2] == 512 && i >= 6)
			break;
	if (i + 2 >= DO_SCAN / 8) {
		snprintf(err, errlen, "Python %s has no remote debugging "
			 "support (built without it)", p->version);
		return -1;
	}
	eb = t[i - 3];
	rds = t[i - 2];
	enabled_off = t[i - 1];
	pend = t[i];
	path = t[i + 1];
	size = t[i + 2];
	off_ih = t[DO_INTERP_HEAD / 8];
	off_tm = t[DO_THREADS_MAIN / 8];
	if (rd(p->pid, p->runtime + off_ih, &interp, 8) || !interp ||
	    rd(p->pid, interp + enabled_off, &enabled, 4)) {
		snprintf(err, errlen, "cannot read the interpreter's state");
		return -1;
	}
	if (!enabled) {
		snprintf(err, errlen, "its remote debugging is disabled "
			 "(PYTHON_DISABLE_REMOTE_DEBUG or -X disable-remote-debug)");
		return -1;
	}
	*d = (struct rdebug){ interp, off_tm, eb, rds, pend, path, size };
	return 0;
}

int pp_remote_exec_ok(const struct pp_pyproc *p, char *err, size_t errlen)
{
	struct rdebug d;

	return locate(p, &d, err, errlen);
}

int pp_remote_exec(const struct pp_pyproc *p, const char *script,
		   uint64_t *pending, char *err, size_t errlen)
{
	uint64_t tstate, breaker, interp, off_tm, eb, rds, pend, path, size;
	struct rdebug d;
	int32_t one = 1;

	if (locate(p, &d, err, errlen) < 0)
		return -1;
	interp = d.interp;
	off_tm = d.off_tm;
	eb = d.eb;
	rds = d.rds;
	pend = d.pend;
	path = d.path;
	size = d.size;
	if (strlen(script) >= size) {
		snprintf(err, errlen, "the script path is too long");
		return -1;
	}
	if (rd(p->pid, interp + off_tm, &tstate, 8) || !tstate ||
	    rd(p->pid, tstate + eb, &breaker, 8)) {
		snprintf(err, errlen, "cannot find the main thread's state");
		return -1;
	}
	breaker |= PLEASE_STOP;
	if (wr(p->pid, tstate + rds + path, script, strlen(script) + 1) ||
	    wr(p->pid, tstate + rds + pend, &one, 4) ||
	    wr(p->pid, tstate + eb, &breaker, 8)) {
		snprintf(err, errlen, "cannot write to the target: %s",
			 strerror(errno));
		return -1;
	}
	*pending = tstate + rds + pend;
	return 0;
}

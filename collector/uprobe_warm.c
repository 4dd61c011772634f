// SPDX-License-Identifier: MIT
/*
 * Uprobe registrations kept coming while the target starts (see
 * uprobe_warm.h). The probe is on offset 0 of pyprof's own executable,
 * for the helper alone: the ELF header, in no executable mapping, so it
 * is installed nowhere and nothing can hit it; registering it is all.
 *
 * A process, not a thread: removing a uprobe waits for the kernel
 * (~0.1 s each here), so the probes are never closed but go with the
 * helper's exit, which nobody waits for (it is orphaned at once).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pp_clock.h"
#include "uprobe_warm.h"

#define WARM_EVERY_MS 3		/* well inside a grace period */
#define WARM_MAX 200		/* 0.6 s: a target that never gets ready */

static int uprobe_type(void)
{
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "re");
	int t = -1;

	if (f) {
		if (fscanf(f, "%d", &t) != 1)
			t = -1;
		fclose(f);
	}
	return t;
}

/* until the pipe closes, or WARM_MAX probes */
static void warm(int rd)
{
	static const char exe[] = "/proc/self/exe";
	struct perf_event_attr a;
	struct pollfd p = { .fd = rd, .events = POLLIN };
	int type = uprobe_type(), i;

	if (type < 0)
		return;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = type;
	a.config1 = (uintptr_t)exe;	/* path */
	a.config2 = 0;			/* file offset */
	for (i = 0; i < WARM_MAX; i++) {
		/* no privilege, no uprobes: nothing to win */
		if (syscall(SYS_perf_event_open, &a, getpid(), -1, -1, 0) < 0)
			return;
		if (poll(&p, 1, WARM_EVERY_MS) != 0)
			return;
	}
}

int pp_uprobe_warm_start(void)
{
	int fds[2], fd, st;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		/* orphaned at once, so never a zombie of pyprof's */
		if (fork() != 0)
			_exit(0);
		/* nothing of pyprof's held open: a pipe reading its
		 * output sees EOF on time */
		fd = open("/dev/null", O_RDWR);
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		dup2(fds[0], 3);
		syscall(SYS_close_range, 4, ~0u, 0);
		warm(3);
		_exit(0);
	}
	close(fds[0]);
	if (pid < 0) {
		close(fds[1]);
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return fds[1];
}

void pp_uprobe_warm_stop(int w)
{
	if (w >= 0)
		close(w);
}

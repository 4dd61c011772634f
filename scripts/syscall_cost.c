/* SPDX-License-Identifier: MIT */
/*
 * ns per syscall of this process (scripts/bench_attach.sh): what a
 * process unrelated to the target pays while pyprof is attached, since
 * syscall tracepoints run for every process of the machine.
 * Prints "getpid NS read NS": each the median of 21 batches of 50000
 * calls (getpid; a 1-byte read of /dev/zero), in this thread's CPU time
 * (user + sys): on a shared machine, time spent preempted is not the
 * syscall's.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BATCHES 21
#define CALLS 50000

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median_ns(int fd)
{
	double t[BATCHES], t0;
	char c;
	int i, j;

	for (i = 0; i < BATCHES; i++) {
		t0 = now();
		for (j = 0; j < CALLS; j++)
			if (fd < 0)
				syscall(SYS_getpid);
			else if (read(fd, &c, 1) != 1)
				exit(1);
		t[i] = (now() - t0) / CALLS;
	}
	qsort(t, BATCHES, sizeof(t[0]), cmp);
	return t[BATCHES / 2];
}

int main(void)
{
	int fd = open("/dev/zero", O_RDONLY);

	if (fd < 0) {
		perror("syscall_cost: /dev/zero");
		return 1;
	}
	printf("getpid %.1f read %.1f\n", median_ns(-1), median_ns(fd));
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * The shim's life: find the ring pyprof passed down, claim it if this
 * process is the Python program being profiled, and hand the
 * environment back untouched-looking so the program's own children
 * run unprofiled. A process that is not Python (a shell, env) neither
 * claims nor cleans, so the shim reaches the Python it starts.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

#define PP_ENV_RING "PYPROF_RING_FD"

struct pp_shim pp_shim;
__thread struct pp_tls pp_tls;

void pp_emit_mark(uint32_t mark)
{
	struct pp_rec_mark *r = pp_emit_reserve(sizeof(*r));

	if (!r)
		return;
	r->ts = pp_now_ns();
	pp_ring_commit(r, PP_REC_MARK, 0, mark, sizeof(*r));
}

void pp_emit_thread(uint32_t tid, uint8_t flags, uint64_t ts,
		    const char *name, size_t n)
{
	uint32_t len = PP_REC_ALIGN(sizeof(struct pp_rec_thread) + n);
	struct pp_rec_thread *r = pp_emit_reserve(len);

	if (!r)
		return;
	r->ts = ts;
	memcpy(r->name, name, n);
	memset(r->name + n, 0, len - sizeof(*r) - n);
	pp_ring_commit(r, PP_REC_THREAD, flags, tid, len);
}

void pp_emit_proc(void)
{
	const char *ver = pp_shim.py.get_version ? pp_shim.py.get_version() : "";
	size_t vlen = strcspn(ver, " ");
	uint32_t len = PP_REC_ALIGN(sizeof(struct pp_rec_proc) + vlen);
	struct pp_rec_proc *r = pp_emit_reserve(len);

	if (!r)
		return;
	r->ppid = getppid();
	r->pyver_len = vlen;
	r->flags = pp_shim.have_layout;
	r->ts = pp_now_ns();
	memcpy(r->data, ver, vlen);
	memset(r->data + vlen, 0, len - sizeof(*r) - vlen);
	pp_ring_commit(r, PP_REC_PROC, 0, getpid(), len);
}

/*
 * The collector attaches its eBPF probes once it knows our pid (from
 * the PY_READY mark): wait for that before Python runs user code, so the GC and
 * GIL are observed from the first collection on. Bounded: a collector
 * that never answers costs at most a few seconds, then we run on.
 */
void pp_wait_for_probes(void)
{
	struct pp_ring_hdr *h = pp_shim.ring.hdr;
	struct timespec nap = { 0, 1000000 };
	int i;

	if (!(h->opts & PP_OPT_WAIT_ATTACH))
		return;
	for (i = 0; i < 10000; i++) {
		if (__atomic_load_n(&h->attached, __ATOMIC_ACQUIRE) ||
		    !__atomic_load_n(&h->collector_alive, __ATOMIC_ACQUIRE))
			return;
		/* a collector killed meanwhile: run on now, unrecorded */
		if (i % 50 == 49 && pp_ring_collector_gone(&pp_shim.ring)) {
			pp_shim_disable();
			return;
		}
		nanosleep(&nap, NULL);
	}
}

/* Stop recording in this process (a forked child; a lost collector). */
void pp_shim_disable(void)
{
	pp_shim.active = 0;
	if (pp_shim.py_state == PP_PY_WAIT)
		pp_shim.py_state = PP_PY_NONE;
	if (pp_shim.injected)
		pp_attach_disabled();	/* unhook and unload (attach.c) */
}

/*
 * Wrap mode with --children, a child forked from the profiled process,
 * once its MEM and OBJ hooks have stepped aside (GIL held): the
 * freelists are given back now rather than at the next dealloc, and the
 * parent's ring is no longer mapped (plain zeroed memory in its place:
 * a stray read finds no collector, a write reaches no one). The
 * collector waits for the ring's mapping to go before it loads a shim of
 * the child's own (collector/attach.c), which then finds the program's
 * allocators and freelists as they were. A vfork child, sharing its
 * parent's memory, never gets here (it runs no Python before exec).
 */
void pp_shim_forked_quiet(void)
{
	struct pp_ring *r = &pp_shim.ring;

	if (pp_shim.injected || !r->hdr || getpid() == pp_shim.pid ||
	    !(__atomic_load_n(&r->hdr->opts, __ATOMIC_RELAXED) &
	      PP_OPT_CHILDREN))
		return;
	pp_freelist_undo();
	/* its opts read 0 from now on: not again */
	mmap(r->hdr, r->map_len, PROT_READ | PROT_WRITE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

static void atfork_child(void)
{
	/* the ring belongs to the parent: the child runs untraced */
	pp_shim_disable();
}

/* Remove our entry from LD_PRELOAD, and our own variable. */
static void clean_env(void)
{
	const char *pre = getenv("LD_PRELOAD");
	char in[4096], out[4096] = "", *tok, *save;

	unsetenv(PP_ENV_RING);
	if (!pre || strlen(pre) >= sizeof(in))
		return;
	strcpy(in, pre);
	for (tok = strtok_r(in, " :", &save); tok;
	     tok = strtok_r(NULL, " :", &save)) {
		if (strstr(tok, "libpyprof"))
			continue;
		if (out[0])
			strcat(out, ":");
		strcat(out, tok);
	}
	if (out[0])
		setenv("LD_PRELOAD", out, 1);
	else
		unsetenv("LD_PRELOAD");
}

int pp_shim_claim_ring(int fd, int native)
{
	struct pp_ring_hdr *h;
	int expected = 0;

	if (pp_ring_map(&pp_shim.ring, fd) < 0)
		return -1;
	h = pp_shim.ring.hdr;
	if (!__atomic_compare_exchange_n(&h->owner_pid, &expected, getpid(),
					 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED)) {
		pp_ring_unmap(&pp_shim.ring);
		return -1;
	}
	pp_shim.sample_bytes = h->sample_bytes;
	pp_shim.native = native && (h->opts & PP_OPT_NATIVE);
	return 0;
}

__attribute__((constructor)) static void pp_shim_init(void)
{
	const char *env = getenv(PP_ENV_RING);
	int fd;

	if (!env)
		return;
	pp_py_detect();
	if (pp_shim.py_state == PP_PY_NONE)
		return;		/* not Python: pass the shim on to children */
	fd = atoi(env);
	clean_env();
	if (fd <= 2 || pp_shim_claim_ring(fd, 1) < 0) {
		pp_shim.py_state = PP_PY_NONE;
		return;		/* another process is being profiled */
	}
	close(fd);
	pp_shim.pid = getpid();
	pp_emit_proc();		/* says which Python, or that it is unsupported */
	if (!pp_shim.have_layout || pp_stacks_init() < 0 ||
	    pp_sample_init() < 0) {
		pp_shim.py_state = PP_PY_NONE;
		pp_emit_mark(PP_MARK_DETACH);
		return;
	}
	pthread_atfork(NULL, NULL, atfork_child);
	__atomic_store_n(&pp_shim.active, 1, __ATOMIC_RELEASE);
}

__attribute__((destructor)) static void pp_shim_fini(void)
{
	if (pp_shim.active && getpid() == pp_shim.pid)
		pp_emit_mark(PP_MARK_DETACH);
}

// SPDX-License-Identifier: MIT
/*
 * The leak rule on synthetic record streams, fed straight into the model
 * (README, "What counts as a leak"). A simulated program makes one
 * request per millisecond after a start-up; the collector's time stamps
 * come every 5 ms and its full ticks every 100 ms, as in a recording.
 * Each site is one behaviour, with the verdict the README promises:
 * steady growth leaks; churn, a bounded cache that fills and turns
 * over, cycles freed by collections, a step-down, a sawtooth and growth
 * that stops halfway do not. Also: the shortest judged growth, one just
 * too short, a trace with 100 ms stamps only (and one ending right after
 * two windows became one), and the live judgement
 * naming a leak at the same moment a finished run of that length would.
 * And the drop totals per source, and RETAG's moves.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "pp_test.h"

#define BASE_NS 1000000000000ull	/* an arbitrary CLOCK_MONOTONIC start */
#define MS 1000000ull

enum site_kind {
	K_GROW = 1, K_CHURN, K_CACHE, K_CYCLES, K_STEPDOWN, K_SAWTOOTH,
	K_HALFWAY, K_ONE_CLEAR, K_LIST, K_IMPORT, K_FROZEN, K_NKINDS
};

static const char *kind_name[K_NKINDS] = {
	[K_GROW] = "steady growth", [K_CHURN] = "churn",
	[K_CACHE] = "bounded cache", [K_CYCLES] = "cycles freed by a collection",
	[K_STEPDOWN] = "step-down", [K_SAWTOOTH] = "sawtooth (cleared every 250 ms)",
	[K_HALFWAY] = "growth that stops halfway",
	[K_ONE_CLEAR] = "growth with one clear",
	[K_LIST] = "a growing list (its buffer reallocated)",
	[K_IMPORT] = "steady growth under an import",
	[K_FROZEN] = "steady growth under another frozen module",
};

/* the outer frame of K_IMPORT's and K_FROZEN's stacks */
static const char *outer_file[K_NKINDS] = {
	[K_IMPORT] = "<frozen importlib._bootstrap>",
	[K_FROZEN] = "<frozen runpy>",
};

/* a FIFO of live addresses per site */
#define MAXLIVE 8192
struct fifo {
	uint64_t a[MAXLIVE];
	size_t head, n;
};

struct sim {
	struct pp_model m;
	uint64_t addr;
	struct fifo live[K_NKINDS];
	int clock;		/* 5 ms stamps (else 100 ms ticks only) */
	int run_ms, startup_ms;
	int attach_ms;		/* the collector's RUN mark (0: none) */
	uint64_t list_buf, list_cap, list_n;	/* K_LIST's item array */
	uint64_t sample, rng;	/* sampling as the shim does (0: all) */
	unsigned kinds;		/* bit k: site k is active */
	unsigned defined;	/* bit k: site k's stack is defined */
};

static void feed(struct sim *s, const void *rec)
{
	pp_model_feed(&s->m, rec);
}

static void def_func(struct sim *s, uint32_t id, const char *file,
		     const char *name)
{
	char buf[256];
	struct pp_rec_func *f = (void *)buf;
	size_t fl = strlen(file), nl = strlen(name);

	memset(buf, 0, sizeof(buf));
	f->h = (struct pp_hdr){ .len = PP_REC_ALIGN(sizeof(*f) + fl + nl),
				.type = PP_REC_FUNC, .aux = id };
	f->firstlineno = id * 10;
	f->file_len = fl;
	f->name_len = nl;
	memcpy(f->data, file, fl);
	memcpy(f->data + fl, name, nl);
	feed(s, f);
}

/* site id's stack: its own frame, under an outer one for some kinds */
static void def_site(struct sim *s, uint32_t id, const char *name)
{
	struct {
		struct pp_rec_stack r;
		struct pp_frame fr[2];
	} st;

	def_func(s, id, "synthetic.py", name);
	memset(&st, 0, sizeof(st));
	st.r.h = (struct pp_hdr){ .len = sizeof(st), .type = PP_REC_STACK,
				  .aux = id };
	st.r.nframes = 1;
	st.fr[0] = (struct pp_frame){ .func = id, .line = id * 10 + 1 };
	if (outer_file[id]) {
		def_func(s, 100 + id, outer_file[id], "outer");
		st.r.nframes = 2;
		st.fr[1] = (struct pp_frame){ .func = 100 + id, .line = 7 };
	}
	feed(s, &st);
}

static void alloc(struct sim *s, int k, uint64_t size, int keep)
{
	struct pp_rec_alloc r = {
		.h = { .len = sizeof(r), .type = PP_REC_ALLOC,
		       .flags = PP_DOM_PYOBJ, .aux = k },
		.addr = s->addr += 0x10000, .size = size,
	};
	struct fifo *q = &s->live[k];

	/* defined before first use, as the shim does */
	if (!(s->defined & 1u << k)) {
		def_site(s, k, kind_name[k]);
		s->defined |= 1u << k;
	}
	if (s->sample) {
		/* recorded with p = 1 - e^(-n/BYTES) (README, --sample);
		 * a block not recorded is never freed in the stream either */
		double p = -expm1(-(double)size / (double)s->sample);

		s->rng = s->rng * 6364136223846793005ull +
			 1442695040888963407ull;
		if ((double)(s->rng >> 11) * 0x1.0p-53 >= p)
			return;
	}
	feed(s, &r);
	if (keep && q->n < MAXLIVE)
		q->a[(q->head + q->n++) % MAXLIVE] = r.addr;
	else if (!keep) {
		struct pp_rec_free f = {
			.h = { .len = sizeof(f), .type = PP_REC_FREE },
			.addr = r.addr,
		};

		feed(s, &f);
	}
}

/* free the oldest n blocks of site k */
static void release(struct sim *s, int k, size_t n)
{
	struct fifo *q = &s->live[k];

	while (n-- && q->n) {
		struct pp_rec_free f = {
			.h = { .len = sizeof(f), .type = PP_REC_FREE },
			.addr = q->a[q->head],
		};

		q->head = (q->head + 1) % MAXLIVE;
		q->n--;
		feed(s, &f);
	}
}

static void stamp(struct sim *s, uint64_t ts, int full)
{
	struct pp_rec_tick t = {
		.h = { .len = sizeof(t), .type = PP_REC_TICK,
		       .flags = full ? 0 : PP_TICK_CLOCK },
		.ts = ts, .rss_bytes = 64 << 20,
	};

	feed(s, &t);
}

/*
 * append() to a global list: a kept object, and now and then the list's
 * item array moved by a realloc to one about 9/8 its size
 * (Objects/listobject.c list_resize), at the same line.
 */
static void list_append(struct sim *s)
{
	alloc(s, K_LIST, 64, 1);
	if (s->list_n++ < s->list_cap)
		return;
	{
		struct pp_rec_realloc r = {
			.h = { .len = sizeof(r), .type = PP_REC_REALLOC,
			       .flags = PP_DOM_PYMEM, .aux = K_LIST },
			.old = s->list_buf, .addr = s->addr += 0x10000,
		};

		s->list_cap += (s->list_cap >> 3) + 6;
		r.size = s->list_cap * 8;
		s->list_buf = r.addr;
		feed(s, &r);
	}
}

/* one request of the program: what each site does */
static void request(struct sim *s, int req, int ms)
{
	unsigned k = s->kinds;
	int half = (s->startup_ms + s->run_ms) / 2;	/* of the requests */

	if (k & 1u << K_GROW)
		alloc(s, K_GROW, 2048, 1);
	if (k & 1u << K_IMPORT)
		alloc(s, K_IMPORT, 2048, 1);
	if (k & 1u << K_FROZEN)
		alloc(s, K_FROZEN, 2048, 1);
	if (k & 1u << K_CHURN)
		alloc(s, K_CHURN, 256 << 10, 0);
	if (k & 1u << K_CACHE) {
		/* an LRU of 64 entries: full after 64 ms, turns over after */
		alloc(s, K_CACHE, 2048, 1);
		if (s->live[K_CACHE].n > 64)
			release(s, K_CACHE, 1);
	}
	if (k & 1u << K_CYCLES) {
		/* garbage until a collection, every 37 allocations */
		alloc(s, K_CYCLES, 512, 1);
		if (req % 37 == 36)
			release(s, K_CYCLES, MAXLIVE);
	}
	if (k & 1u << K_STEPDOWN) {
		/* data loaded at start, half of it dropped halfway */
		if (req == 0)
			for (int i = 0; i < 1000; i++)
				alloc(s, K_STEPDOWN, 4096, 1);
		if (ms == half)
			release(s, K_STEPDOWN, 500);
	}
	if (k & 1u << K_SAWTOOTH) {
		alloc(s, K_SAWTOOTH, 1024, 1);
		if (req % 250 == 249)
			release(s, K_SAWTOOTH, MAXLIVE);
	}
	if ((k & 1u << K_HALFWAY) && ms < half)
		alloc(s, K_HALFWAY, 2048, 1);
	if (k & 1u << K_LIST)
		list_append(s);
	if (k & 1u << K_ONE_CLEAR) {
		alloc(s, K_ONE_CLEAR, 1024, 1);
		if (ms == s->startup_ms + (s->run_ms - s->startup_ms) * 3 / 5)
			release(s, K_ONE_CLEAR, MAXLIVE);
	}
}

static void sim_start(struct sim *s, int run_ms, int startup_ms, int clock,
		      unsigned kinds)
{
	struct pp_rec_meta meta = {
		.h = { .len = sizeof(meta), .type = PP_REC_META, .aux = 42 },
		.ts = BASE_NS,
	};
	memset(s, 0, sizeof(*s));
	pp_model_init(&s->m);
	s->run_ms = run_ms;
	s->startup_ms = startup_ms;
	s->clock = clock;
	s->kinds = kinds;
	feed(s, &meta);
}

/* run up to ms (exclusive); stamps after each 5 ms, as the collector */
static void sim_run(struct sim *s, int from_ms, int to_ms)
{
	int ms;

	for (ms = from_ms; ms < to_ms; ms++) {
		if (s->attach_ms && ms == s->attach_ms) {
			struct pp_rec_mark mk = {
				.h = { .len = sizeof(mk), .type = PP_REC_MARK,
				       .aux = PP_MARK_RUN },
				.ts = BASE_NS + ms * MS,
			};

			feed(s, &mk);
		}
		if (ms >= s->startup_ms)
			request(s, ms - s->startup_ms, ms);
		if ((ms + 1) % 100 == 0)
			stamp(s, BASE_NS + (ms + 1) * MS, 1);
		else if (s->clock && (ms + 1) % 5 == 0)
			stamp(s, BASE_NS + (ms + 1) * MS, 0);
	}
}

static void sim_finish(struct sim *s)
{
	struct pp_rec_mark mk = {
		.h = { .len = sizeof(mk), .type = PP_REC_MARK,
		       .aux = PP_MARK_FINALIZE },
		.ts = BASE_NS + s->run_ms * MS,
	};

	feed(s, &mk);
	pp_model_finish(&s->m);
}

static const struct pp_site *site(const struct sim *s, int k)
{
	const struct pp_stack *st = pp_model_stack(&s->m, k);

	return st ? &s->m.sites[st->site] : &s->m.sites[0];
}

static void verdicts(const char *run, int run_ms, int attach_ms,
		     int startup_ms, int clock, unsigned kinds)
{
	struct sim *s = malloc(sizeof(*s));
	char name[200];
	int k;

	sim_start(s, run_ms, startup_ms, clock, kinds);
	s->attach_ms = attach_ms;
	sim_run(s, 0, run_ms);
	sim_finish(s);
	for (k = 1; k < K_NKINDS; k++) {
		const struct pp_site *st = site(s, k);
		int want;

		if (!(kinds & 1u << k))
			continue;
		want = k == K_GROW || k == K_ONE_CLEAR || k == K_LIST ||
		       k == K_FROZEN;

		snprintf(name, sizeof(name), "%s: %s %s", run, kind_name[k],
			 want ? "is a leak" : "is not a leak");
		CHECK(st->alloc_count > 0 && st->leak == want, name,
		      "leak %d, growth %.0f B/s, retention %.3f, live %.0f",
		      st->leak, st->growth_bytes_per_s, st->retention,
		      st->end_live_bytes);
		/* said apart: it grew as a leak does, by importing */
		if (k == K_IMPORT) {
			snprintf(name, sizeof(name), "%s: growth under an "
				 "import is told apart", run);
			CHECK(st->imported && st->import_bytes ==
			      st->alloc_bytes, name, "imported %d, %.0f of "
			      "%.0f bytes", st->imported, st->import_bytes,
			      st->alloc_bytes);
		} else if (st->imported || st->import_bytes) {
			snprintf(name, sizeof(name), "%s: %s is not an import",
				 run, kind_name[k]);
			CHECK(0, name, "imported %d, %.0f bytes", st->imported,
			      st->import_bytes);
		}
	}
	/* 2048 B per ms kept: 2 MB/s */
	snprintf(name, sizeof(name), "%s: steady growth rate within 5%%", run);
	CHECK(site(s, K_GROW)->growth_bytes_per_s > 2048e3 * 0.95 &&
	      site(s, K_GROW)->growth_bytes_per_s < 2048e3 * 1.05, name,
	      "%.0f B/s, want 2048000", site(s, K_GROW)->growth_bytes_per_s);
	pp_model_free(&s->m);
	free(s);
}

/*
 * Sampled so sparsely that a leak leaves about 40 recorded blocks over
 * a 3.5 s run (as --sample 65536 does to a 1.5 KiB-per-request leak):
 * many windows get no record at the site. Over 20 seeds, the leak is
 * always flagged and growth that stops halfway never is.
 */
static void sampled_sparse(void)
{
	int seed, missed = 0, halfway = 0, churn = 0;

	for (seed = 1; seed <= 20; seed++) {
		struct sim *s = malloc(sizeof(*s));

		sim_start(s, 3700, 200, 1,
			  1u << K_GROW | 1u << K_HALFWAY | 1u << K_CHURN);
		s->attach_ms = 100;
		s->sample = 170 << 10;	/* 2048 B kept per ms: ~1.2% recorded */
		s->rng = seed * 0x9e3779b97f4a7c15ull;
		s->m.sample_bytes = s->sample;
		sim_run(s, 0, 3700);
		sim_finish(s);
		missed += !site(s, K_GROW)->leak;
		halfway += site(s, K_HALFWAY)->leak;
		churn += site(s, K_CHURN)->leak;
		pp_model_free(&s->m);
		free(s);
	}
	CHECK(!missed, "sampled sparsely: the leak is flagged on every seed",
	      "missed on %d of 20 seeds", missed);
	CHECK(!halfway, "sampled sparsely: growth that stops halfway is never a leak",
	      "flagged on %d of 20 seeds", halfway);
	CHECK(!churn, "sampled sparsely: churn is never a leak",
	      "flagged on %d of 20 seeds", churn);
}

/* a steady leak on a run of run_ms: is it judged a leak? */
static int short_run(int run_ms, int attach_ms, int startup_ms)
{
	struct sim *s = malloc(sizeof(*s));
	int leak;

	sim_start(s, run_ms, startup_ms, 1, 1u << K_GROW | 1u << K_CHURN);
	s->attach_ms = attach_ms;
	sim_run(s, 0, run_ms);
	sim_finish(s);
	leak = site(s, K_GROW)->leak && !site(s, K_CHURN)->leak;
	pp_model_free(&s->m);
	free(s);
	return leak;
}

/*
 * The live judgement at each stamp against a finished run of the same
 * length: the viewer names the leak exactly when the report would.
 */
static void live_vs_finished(void)
{
	struct sim *s = malloc(sizeof(*s)), *f = malloc(sizeof(*f));
	int ms, first_live = -1, first_done = -1, disagree = 0;
	unsigned kinds = 1u << K_GROW | 1u << K_CACHE | 1u << K_CHURN;

	sim_start(s, 3000, 150, 1, kinds);
	s->attach_ms = 100;
	for (ms = 10; ms <= 3000; ms += 10) {
		sim_run(s, ms - 10, ms);
		pp_model_judge(&s->m);
		if (first_live < 0 && site(s, K_GROW)->leak)
			first_live = ms;

		sim_start(f, ms, 150, 1, kinds);
		f->attach_ms = 100;
		f->run_ms = 3000;	/* the same program, stopped at ms */
		sim_run(f, 0, ms);
		f->run_ms = ms;
		sim_finish(f);
		if (first_done < 0 && site(f, K_GROW)->leak)
			first_done = ms;
		if (site(f, K_GROW)->leak != site(s, K_GROW)->leak ||
		    site(f, K_CACHE)->leak != site(s, K_CACHE)->leak)
			disagree++;
		pp_model_free(&f->m);
	}
	CHECK(first_live > 0 && first_live == first_done,
	      "live: the leak is named as soon as a finished run would name it",
	      "live from %d ms, finished from %d ms", first_live, first_done);
	CHECK(!disagree, "live: verdicts agree with a finished run at every stamp",
	      "%d of 300 stamps disagree", disagree);
	CHECK(site(s, K_GROW)->leak && !site(s, K_CACHE)->leak &&
	      !site(s, K_CHURN)->leak, "live: at 3 s the leak is named, the "
	      "cache and the churn are not", "grow %d cache %d churn %d",
	      site(s, K_GROW)->leak, site(s, K_CACHE)->leak,
	      site(s, K_CHURN)->leak);
	pp_model_free(&s->m);
	free(s);
	free(f);
}

/*
 * RETAG (an object re-made from a freelist): to another stack, a move
 * (an allocation there, the block gone from the old site, no free); at
 * the stack it already had (re-made where it was parked), one more
 * allocation there with the live figures unchanged.
 */
static void retag(void)
{
	struct sim *s = calloc(1, sizeof(*s));
	struct pp_rec_alloc a = {
		.h = { .len = sizeof(a), .type = PP_REC_ALLOC,
		       .flags = PP_DOM_PYOBJ, .aux = K_GROW },
		.addr = 0x10000, .size = 64,
	};
	struct pp_rec_free t = {
		.h = { .len = sizeof(t), .type = PP_REC_RETAG,
		       .flags = PP_DOM_PYOBJ, .aux = K_GROW },
		.addr = 0x10000,
	};
	const struct pp_site *g, *c;

	pp_model_init(&s->m);
	def_site(s, K_GROW, "parks");
	def_site(s, K_CHURN, "takes");
	feed(s, &a);
	feed(s, &t);
	feed(s, &t);
	g = site(s, K_GROW);
	CHECK(g->alloc_count == 3 && g->alloc_bytes == 192 &&
	      g->live_count == 1 && g->live_bytes == 64 &&
	      s->m.live_count == 1 && s->m.alloc_count == 3 &&
	      s->m.free_count == 0,
	      "retag: re-made at its own stack, one more allocation there",
	      "site alloc %.0f (%.0f B) live %.0f (%.0f B); heap live %.0f "
	      "alloc %.0f free %.0f", g->alloc_count, g->alloc_bytes,
	      g->live_count, g->live_bytes, s->m.live_count,
	      s->m.alloc_count, s->m.free_count);
	t.h.aux = K_CHURN;
	feed(s, &t);
	g = site(s, K_GROW);
	c = site(s, K_CHURN);
	CHECK(g->live_count == 0 && g->alloc_count == 3 &&
	      c->live_count == 1 && c->alloc_count == 1 &&
	      s->m.live_count == 1 && s->m.free_count == 0,
	      "retag: re-made at another stack, moved there",
	      "old site live %.0f alloc %.0f, new live %.0f alloc %.0f, "
	      "free %.0f", g->live_count, g->alloc_count, c->live_count,
	      c->alloc_count, s->m.free_count);
	pp_model_free(&s->m);
	free(s);
}

/* Drops: each source's total (ticks and LOST records), their sum. */
static void drops(void)
{
	struct pp_model m;
	struct pp_rec_tick t = {
		.h = { .len = sizeof(t), .type = PP_REC_TICK },
		.ts = BASE_NS, .dropped = 7,
	};
	struct pp_rec_lost l = { .h = { .len = sizeof(l), .type = PP_REC_LOST } };
	uint64_t want = 0;
	int i, ok = 1;

	pp_model_init(&m);
	pp_model_feed(&m, &t.h);
	for (i = 0; i < PP_LOST_NSRC; i++) {
		l.h.flags = i;
		l.count = 100 + i;
		pp_model_feed(&m, &l.h);
		l.count = 10;		/* a smaller total is an older one */
		pp_model_feed(&m, &l.h);
		want += 100 + i;
		ok &= m.dropped_by[i] == 100u + i && pp_lost_src_name(i);
	}
	t.ts += 100 * MS;
	t.dropped = 500;	/* the shim ring's counter, in a tick */
	pp_model_feed(&m, &t.h);
	want += 500 - 100;
	CHECK(ok && m.dropped == want && m.dropped_by[PP_LOST_SHIM_RING] == 500,
	      "drops: per-source totals add up to events.dropped",
	      "dropped %llu, want %llu", (unsigned long long)m.dropped,
	      (unsigned long long)want);
	CHECK(m.events == 0, "drops: LOST records are not counted as events",
	      "%llu", (unsigned long long)m.events);
	pp_model_free(&m);
}

int main(void)
{
	int ms, shortest = -1, w0;

	/* attached at 100 ms, the program's requests from 200 ms */
	verdicts("1.2 s run", 1200, 100, 200, 1, ~0u);
	verdicts("0.8 s run", 800, 100, 200, 1, ~0u);
	/*
	 * 0.45 s of requests: a sawtooth cleared every 250 ms clears only
	 * once, which is growth with one clear.
	 */
	verdicts("0.8 s run, 350 ms start-up", 800, 100, 350, 1,
		 ~0u & ~(1u << K_SAWTOOTH));
	/* probes that took 0.9 s to attach: the windows start after them */
	verdicts("1.6 s run, attached at 0.9 s", 1600, 900, 950, 1, ~0u);
	/* one clear is one fall too many under 10 judged steps */
	verdicts("0.4 s run", 400, 100, 150, 1,
		 ~0u & ~(1u << K_ONE_CLEAR | 1u << K_SAWTOOTH));
	verdicts("3 s run", 3000, 100, 200, 1, ~0u);
	verdicts("12 s run", 12000, 100, 200, 1, ~0u);
	sampled_sparse();
	/*
	 * Traces with neither the RUN mark nor time stamps between the
	 * 100 ms ticks (before both existed): three in four 25 ms windows
	 * see no time and are skipped. One clear is allowed only from 10 steps on,
	 * which 1.2 s of such ticks do not have.
	 */
	verdicts("1.2 s run, 100 ms ticks only", 1200, 0, 200, 0,
		 ~0u & ~(1u << K_ONE_CLEAR));
	/*
	 * Attach mode's 100 ms ticks with the RUN mark: at 1.7 s time jumps
	 * from 25 ms window 60 to 64 and two windows become one; a run
	 * ending in the first 50 ms window after that is judged up to the
	 * merged window 31, whose floor must be the leak's live bytes then
	 * (it was a zero left in the slots time skipped: no leak).
	 */
	verdicts("1.72 s run, 100 ms ticks, attached", 1720, 100, 200, 0,
		 1u << K_GROW | 1u << K_CHURN | 1u << K_CACHE);

	/*
	 * The shortest judged growth: 9 windows of the site's life (its
	 * first allocation 50 ms after the RUN mark, on a window boundary).
	 */
	w0 = PP_WINDOW0_NS / MS;
	for (ms = 350; ms <= 1500 && shortest < 0; ms += 5)
		if (short_run(ms, 300, 350))
			shortest = ms - 350;
	printf("shortest judged growth: %d ms\n", shortest);
	CHECK(shortest == 9 * w0, "shortest judged growth is 9 windows",
	      "%d ms, windows of %d ms", shortest, w0);
	CHECK(!short_run(350 + 9 * w0 - 5, 300, 350),
	      "5 ms less is too short to judge", "flagged");
	CHECK(short_run(150 + 9 * w0 + w0, 0, 150), "without a RUN mark, "
	      "10 windows of growth are judged", "not flagged");
	/* a long start-up (imports) of the program itself */
	CHECK(short_run(100 + 1200 + 500, 100, 1300), "0.5 s of growth after "
	      "a 1.2 s start-up is judged a leak", "not flagged");

	live_vs_finished();
	retag();
	drops();
	TEST_EXIT();
}

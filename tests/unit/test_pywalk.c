// SPDX-License-Identifier: MIT
/*
 * pp_py_walk, pp_code_line and pp_py_str inside real interpreters: for
 * Debian's libpython3.11 and each pyenv CPython present, a child
 * process dlopen()s the libpython, runs a
 * script whose calls end in a C function, and that function walks its
 * own thread's frames. Each stack must be the known file:line:function
 * chain and agree frame by frame with the C API (PyFrame_GetCode,
 * PyFrame_GetLineNumber). The thread list fields used from outside the
 * process (interpreters.head, threads.head, next, thread ids) are
 * checked against a second Python thread. The memo walker (the shim's
 * for deep stacks) must give pp_py_walk's frames at every probe, the
 * memo kept from the probe before (other stacks, frames reused), and
 * match every link when walked again at once; the quick key walker
 * (the shim's for short stacks) pp_py_walk's frame count, the same key
 * again, another key for another stack.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pp_pylayout.h"
#include "pp_test.h"
#include "pp_test_interp.h"

typedef void PyObject;

/* Include/methodobject.h: unchanged 3.9-3.13 */
struct py_method_def {
	const char *ml_name;
	PyObject *(*ml_meth)(PyObject *, PyObject *);
	int ml_flags;
	const char *ml_doc;
};
#define METH_O 0x0008

static struct {
	void (*initialize_ex)(int);
	int (*run)(const char *);
	void *(*this_tstate)(void);
	const char *(*version)(void);
	PyObject *(*cfunction_new)(struct py_method_def *, PyObject *,
				   PyObject *);
	PyObject *(*add_module)(const char *);
	int (*set_attr)(PyObject *, const char *, PyObject *);
	PyObject *(*build_value)(const char *, ...);
	PyObject *(*get_frame)(void);
	PyObject *(*frame_back)(PyObject *);
	int (*frame_line)(PyObject *);
	PyObject *(*frame_code)(PyObject *);
	void (*decref)(PyObject *);
	void *runtime;
	void *code_type;
} py;

static struct pp_pylayout layout;
static const char *label;

/* Python source run by each interpreter; line numbers matter. */
static const char script[] =
	"class S(str): pass\n"					/* 1 */
	"def inner(x):\n"					/* 2 */
	"    return probe(x)\n"					/* 3 */
	"def middle(x):\n"					/* 4 */
	"    y = 1\n"						/* 5 */
	"    return inner(x)\n"					/* 6 */
	"def outer(x):\n"					/* 7 */
	"    return [middle(x) for _ in (1,)][0]\n"		/* 8 */
	"def gen(x):\n"						/* 9 */
	"    yield probe(x)\n"					/* 10 */
	"outer('hello')\n"					/* 11 */
	"outer('caf\\xe9')\n"					/* 12 */
	"next(gen('\\u65e5\\u672c\\u8a9e'))\n"			/* 13 */
	"outer('a\\U0001F600b')\n"				/* 14 */
	"outer(S('sub'))\n"					/* 15 */
	"class K:\n"						/* 16 */
	"    def meth(self, x):\n"				/* 17 */
	"        return probe(x)\n"				/* 18 */
	"K().meth('m\\xe9th')\n";				/* 19 */

#define NCALLS 6
#define MAXF 16

static struct call {
	int n;
	char frames[MAXF][96];
	char arg[64];
	char qualname[64];
	int capped;		/* frames walked with max = 2 */
	const void *capped_code[2];
	int api_mismatch;
	char api_why[160];
	int memo_mismatch;
	char memo_why[160];
	uint64_t key;		/* the quick key's */
	int key_mismatch;
	char key_why[160];
} calls[NCALLS];
static int ncalls;
/* kept across probes: each walk starts from the previous probe's */
static struct pp_walkmemo memo;

/* the memo walk gives walk()'s frames, from the last memo or afresh */
static void check_memo(struct call *c, const struct pp_rawframe *raw)
{
	pp_py_memo_walk_fn mw = pp_py_memo_walker(&layout, py.code_type);
	int pass, same, j, n;

	for (pass = 0; pass < 2 && mw; pass++) {
		same = mw(&layout, py.this_tstate(), py.code_type, &memo);
		n = 0;
		for (j = (int)memo.nlinks - 1; j >= 0 && n <= c->n; j--)
			if (memo.link[j].kind == PP_LINK_FRAME &&
			    (n == c->n || memo.link[j].raw.code != raw[n].code ||
			     memo.link[j].raw.offset != raw[n++].offset))
				n = c->n + 1;
		/* the second walk: nothing moved, every link matches */
		if (same < 0 || n != c->n || (int)memo.nkept != c->n ||
		    (pass && same != (int)memo.nlinks)) {
			c->memo_mismatch++;
			snprintf(c->memo_why, sizeof(c->memo_why),
				 "memo walk %d: %d of %u links matched, %u "
				 "frames%s, pp_py_walk has %d", pass, same,
				 memo.nlinks, memo.nkept,
				 n != c->n ? " not pp_py_walk's" : "", c->n);
		}
	}
	if (!mw) {
		c->memo_mismatch++;
		snprintf(c->memo_why, sizeof(c->memo_why), "no memo walker");
	}
}

/*
 * The quick key (the shim's for short stacks): pp_py_walk's frame
 * count, -1 when that is more than max, and the same key when the
 * same stack is walked again.
 */
static void check_key(struct call *c)
{
	pp_py_key_walk_fn kw = pp_py_key_walker(&layout, py.code_type);
	uint64_t k2 = 0, k3 = 0;
	int n, n2, cut;

	if (!kw) {
		c->key_mismatch++;
		snprintf(c->key_why, sizeof(c->key_why), "no key walker");
		return;
	}
	n = kw(&layout, py.this_tstate(), py.code_type, &c->key, MAXF);
	n2 = kw(&layout, py.this_tstate(), py.code_type, &k2, MAXF);
	cut = kw(&layout, py.this_tstate(), py.code_type, &k3, c->n - 1);
	if (n != c->n || n2 != n || k2 != c->key || cut != -1) {
		c->key_mismatch++;
		snprintf(c->key_why, sizeof(c->key_why),
			 "key walk: %d frames (again: %d, key %s), with max "
			 "%d: %d; pp_py_walk has %d", n, n2,
			 k2 == c->key ? "the same" : "another", c->n - 1,
			 cut, c->n);
	}
}

/* probe(x): walk our own stack and remember what it says */
static PyObject *probe(PyObject *self, PyObject *arg)
{
	struct pp_rawframe raw[MAXF];
	struct call *c = &calls[ncalls < NCALLS ? ncalls++ : NCALLS - 1];
	char file[40], name[40];
	PyObject *f, *code, *back;
	int i, line;

	c->n = pp_py_walk(&layout, py.this_tstate(), py.code_type, raw, MAXF);
	c->capped = pp_py_walk(&layout, py.this_tstate(), py.code_type, raw, 2);
	c->capped_code[0] = raw[0].code;
	c->capped_code[1] = raw[1].code;
	c->n = pp_py_walk(&layout, py.this_tstate(), py.code_type, raw, MAXF);
	if (c->n < 2 || c->capped_code[0] != raw[0].code ||
	    c->capped_code[1] != raw[1].code)
		c->capped = -1;
	check_memo(c, raw);
	check_key(c);
	for (i = 0; i < c->n; i++) {
		pp_py_str(&layout, *(void **)((char *)raw[i].code +
					      layout.code_filename),
			  file, sizeof(file));
		pp_py_str(&layout, *(void **)((char *)raw[i].code +
					      layout.code_name),
			  name, sizeof(name));
		line = pp_code_line(&layout, raw[i].code, raw[i].offset);
		snprintf(c->frames[i], sizeof(c->frames[i]), "%s:%d:%s", file,
			 line, name);
	}
	if (c->n && layout.code_qualname != PP_OFF_NONE)
		pp_py_str(&layout, *(void **)((char *)raw[0].code +
					      layout.code_qualname),
			  c->qualname, sizeof(c->qualname));
	pp_py_str(&layout, arg, c->arg, sizeof(c->arg));

	/* the interpreter's own view, frame by frame */
	f = py.get_frame();
	for (i = 0; f && i < c->n; i++) {
		code = py.frame_code(f);
		line = py.frame_line(f);
		if (code != raw[i].code ||
		    line != pp_code_line(&layout, raw[i].code, raw[i].offset)) {
			c->api_mismatch++;
			snprintf(c->api_why, sizeof(c->api_why),
				 "frame %d: API line %d, walk %s", i, line,
				 c->frames[i]);
		}
		py.decref(code);
		back = py.frame_back(f);	/* new reference */
		if (i)
			py.decref(f);
		f = back;
	}
	if (f && i)
		py.decref(f);
	if (i != c->n || f) {
		c->api_mismatch++;
		snprintf(c->api_why, sizeof(c->api_why),
			 "API has %s frames than the walk (%d)",
			 f ? "more" : "fewer", c->n);
	}
	return py.build_value("");
}

static int check_stack(int k, const char *arg, ...)
{
	struct call *c = &calls[k];
	char name[96], want[MAXF][96], got[2048], exp[2048];
	int n = 0, ok, i;
	const char *s;
	va_list ap;

	va_start(ap, arg);
	while ((s = va_arg(ap, const char *)) && n < MAXF)
		snprintf(want[n++], sizeof(want[0]), "%s", s);
	va_end(ap);

	got[0] = exp[0] = '\0';
	ok = c->n == n;
	for (i = 0; i < c->n || i < n; i++) {
		if (i < c->n)
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
				 " %s", c->frames[i]);
		if (i < n)
			snprintf(exp + strlen(exp), sizeof(exp) - strlen(exp),
				 " %s", want[i]);
		if (i < c->n && i < n && strcmp(c->frames[i], want[i]))
			ok = 0;
	}
	snprintf(name, sizeof(name), "pywalk/%s/stack%d", label, k);
	CHECK(ok, name, "got%s, want%s", got, exp);
	if (k == 0)
		printf("# %s:%s\n", label, got);
	snprintf(name, sizeof(name), "pywalk/%s/api%d", label, k);
	CHECK(!c->api_mismatch, name, "%s", c->api_why);
	snprintf(name, sizeof(name), "pywalk/%s/memo%d", label, k);
	CHECK(!c->memo_mismatch, name, "%s", c->memo_why);
	/* other stacks, other keys */
	for (i = 0; i < k && !c->key_mismatch; i++) {
		int j, same = calls[i].n == c->n;

		for (j = 0; same && j < c->n; j++)
			same = !strcmp(calls[i].frames[j], c->frames[j]);
		if (!same && calls[i].key == c->key) {
			c->key_mismatch++;
			snprintf(c->key_why, sizeof(c->key_why),
				 "the key of probe %d's other stack", i);
		}
	}
	snprintf(name, sizeof(name), "pywalk/%s/key%d", label, k);
	CHECK(!c->key_mismatch, name, "%s", c->key_why);
	snprintf(name, sizeof(name), "pywalk/%s/str%d", label, k);
	CHECK(!strcmp(c->arg, arg), name, "got \"%s\", want \"%s\"", c->arg,
	      arg);
	return ok;
}

/* The thread list as a reader outside the process walks it. */
static void check_threads(void)
{
	char name[96];
	const char *interp, *ts;
	int n = 0, mine = 0, native = 0;

	interp = *(const char **)((const char *)py.runtime +
				  layout.runtime_interp_head);
	ts = interp ? *(const char **)(interp + layout.interp_tstate_head) :
		      NULL;
	for (; ts && n < 64; n++) {
		if (ts == py.this_tstate() &&
		    *(const unsigned long *)(ts + layout.tstate_thread_id) ==
			    (unsigned long)pthread_self())
			mine++;
		if (layout.tstate_native_id == PP_OFF_NONE ||
		    *(const unsigned long *)(ts + layout.tstate_native_id) ==
			    (unsigned long)gettid())
			native++;
		ts = *(const char **)(ts + layout.tstate_next);
	}
	snprintf(name, sizeof(name), "pywalk/%s/threads", label);
	CHECK(n == 2 && mine == 1 && native >= 1, name,
	      "%d thread states, %d ours, %d with our native id", n, mine,
	      native);
}

#define SYM(field, sym)							\
	do {								\
		*(void **)&py.field = dlsym(h, sym);			\
		if (!py.field) {					\
			CHECK(0, name, "no symbol %s", sym);		\
			return;						\
		}							\
	} while (0)

static void run_child(const char *home, const char *path)
{
	static struct py_method_def def = { "probe", probe, METH_O, NULL };
	struct pp_rawframe raw[4];
	const char *why = NULL;
	char name[96];
	int rc, n, py12;
	void *h;

	snprintf(name, sizeof(name), "pywalk/%s/load", label);
	setenv("PYTHONHOME", home, 1);
	unsetenv("PYTHONPATH");
	h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (!h) {
		CHECK(0, name, "dlopen: %s", dlerror());
		return;
	}
	SYM(initialize_ex, "Py_InitializeEx");
	SYM(run, "PyRun_SimpleString");
	SYM(this_tstate, "PyGILState_GetThisThreadState");
	SYM(version, "Py_GetVersion");
	SYM(cfunction_new, "PyCFunction_NewEx");
	SYM(add_module, "PyImport_AddModule");
	SYM(set_attr, "PyObject_SetAttrString");
	SYM(build_value, "Py_BuildValue");
	SYM(get_frame, "PyEval_GetFrame");
	SYM(frame_back, "PyFrame_GetBack");
	SYM(frame_line, "PyFrame_GetLineNumber");
	SYM(frame_code, "PyFrame_GetCode");
	SYM(decref, "Py_DecRef");
	SYM(runtime, "_PyRuntime");
	SYM(code_type, "PyCode_Type");
	CHECK(1, name, "%s", path);

	py.initialize_ex(0);
	snprintf(name, sizeof(name), "pywalk/%s/layout", label);
	rc = pp_pylayout_init(&layout, py.version(), py.runtime, &why);
	CHECK(rc == 0, name, "%s: %s", py.version(), why);
	if (rc)
		return;

	/* no Python code running: no frames */
	snprintf(name, sizeof(name), "pywalk/%s/idle", label);
	n = pp_py_walk(&layout, py.this_tstate(), py.code_type, raw, 4);
	CHECK(n == 0 && pp_py_walk(&layout, NULL, NULL, raw, 4) == 0 &&
	      pp_py_walk(NULL, py.this_tstate(), NULL, raw, 4) == 0, name,
	      "%d frames outside Python", n);

	py.set_attr(py.add_module("__main__"), "probe",
		    py.cfunction_new(&def, NULL, NULL));
	snprintf(name, sizeof(name), "pywalk/%s/run", label);
	rc = py.run(script);
	CHECK(rc == 0 && ncalls == NCALLS, name, "rc %d, %d probe calls", rc,
	      ncalls);

	py12 = layout.minor >= 12;	/* PEP 709 inlines comprehensions */
#define OUTER(line)							\
	"<string>:3:inner", "<string>:6:middle",			\
		py12 ? "<string>:8:outer" : "<string>:8:<listcomp>",	\
		py12 ? "<string>:" #line ":<module>" : "<string>:8:outer", \
		py12 ? NULL : "<string>:" #line ":<module>", NULL
	check_stack(0, "hello", OUTER(11));
	check_stack(1, "caf\xc3\xa9", OUTER(12));
	check_stack(2, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		    "<string>:10:gen", "<string>:13:<module>", NULL);
	check_stack(3, "a\xf0\x9f\x98\x80" "b", OUTER(14));
	/* a str subclass is a legacy (non-compact) string */
	check_stack(4, "?", OUTER(15));
	check_stack(5, "m\xc3\xa9th", "<string>:18:meth",
		    "<string>:19:<module>", NULL);
	if (layout.code_qualname != PP_OFF_NONE) {
		snprintf(name, sizeof(name), "pywalk/%s/qualname", label);
		CHECK(!strcmp(calls[5].qualname, "K.meth"), name, "got %s",
		      calls[5].qualname);
	}

	/* the depth cap keeps the innermost frames */
	snprintf(name, sizeof(name), "pywalk/%s/cap", label);
	CHECK(calls[0].capped == 2 && calls[0].n >= 4, name,
	      "max 2 gave %d frames", calls[0].capped);

	rc = py.run("import threading\n"
		    "ev = threading.Event()\n"
		    "t = threading.Thread(target=ev.wait)\n"
		    "t.start()\n");
	check_threads();
	py.run("ev.set()\nt.join()\n");
}

/* truncating conversion, checked without Python: a fake compact str */
static void check_str_truncation(void)
{
	struct pp_pylayout l;
	const char *why;
	union {
		uint64_t align;
		char b[256];
	} s;
	char out[5];
	size_t n;
	int ok;

	pp_pylayout_init(&l, "3.12.1", NULL, &why);
	memset(&s, 0, sizeof(s));
	*(intptr_t *)(s.b + l.str_length) = 3;
	/* kind 2 (UCS2), compact, not ascii */
	*(uint32_t *)(s.b + l.str_state) = 2 << 2 | 1 << 5;
	memcpy(s.b + l.str_compact_data, "\xe5\x65\x2c\x67\x9e\x8a", 6);
	n = pp_py_str(&l, s.b, out, sizeof(out));
	ok = n == 3 && !strcmp(out, "\xe6\x97\xa5");
	n = pp_py_str(&l, s.b, out, 1);
	ok &= n == 0 && !out[0];
	/* lone surrogate and kind 4 beyond the BMP */
	*(uint32_t *)(s.b + l.str_state) = 4 << 2 | 1 << 5;
	*(intptr_t *)(s.b + l.str_length) = 1;
	memcpy(s.b + l.str_compact_data, "\x00\xd8\x00\x00", 4);
	n = pp_py_str(&l, s.b, out, sizeof(out));
	ok &= n == 3 && !strcmp(out, "\xef\xbf\xbd");	/* U+FFFD */
	CHECK(ok, "pystr/truncation", "got %zu \"%s\"", n, out);
}

struct version {
	char label[64], home[PATH_MAX], lib[PATH_MAX];
};

/*
 * The shared libpythons to dlopen: Debian's libpython3.11 (the one the
 * embedding host of tests/interpreters links), required; and the
 * pyenv builds of tests/interpreters when present (HOME/lib/libpython3.X.so
 * beside HOME/bin/python3). The chroot and static interpreters cannot be
 * dlopen()ed here: the end-to-end tests cover their walks.
 */
static int libpythons(struct version *v, int max)
{
	static struct pp_test_interp in[32];
	int i, n = pp_test_interpreters(in, 32), k = 0;
	unsigned minor;

	snprintf(v[k].label, sizeof(v[k].label), "py3.11-libpython-debian");
	snprintf(v[k].home, sizeof(v[k].home), "/usr");
	snprintf(v[k].lib, sizeof(v[k].lib),
		 "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0");
	k++;
	for (i = 0; i < n && k < max; i++) {
		char *slash;

		if (in[i].required || !in[i].present || in[i].stripped ||
		    sscanf(in[i].label, "py3.%u", &minor) != 1)
			continue;
		memcpy(v[k].label, in[i].label, sizeof(v[k].label));
		snprintf(v[k].home, sizeof(v[k].home), "%s", in[i].path);
		/* HOME/bin/python3 -> HOME */
		if (!(slash = strrchr(v[k].home, '/')))
			continue;
		*slash = 0;
		if (!(slash = strrchr(v[k].home, '/')))
			continue;
		*slash = 0;
		if (snprintf(v[k].lib, sizeof(v[k].lib), "%s/lib/libpython3.%u.so",
			     v[k].home, minor) >= (int)sizeof(v[k].lib))
			continue;
		k++;
	}
	return k;
}

/* test_pywalk [LABEL PYTHONHOME LIBPYTHON]: one other interpreter, e.g.
 * a distribution's 3.14 inside a chroot */
int main(int argc, char **argv)
{
	static struct version versions[32];
	char name[128];
	int i, n;
	pid_t pid;
	int st;

	if (argc == 4) {
		label = argv[1];
		run_child(argv[2], argv[3]);
		TEST_EXIT();
	}
	check_str_truncation();
	printf("# /usr/bin/python3.11 is a static executable and cannot be "
	       "dlopen()ed: its walk is covered by the end-to-end tests\n");
	n = libpythons(versions, 32);
	for (i = 0; i < n; i++) {
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			label = versions[i].label;
			run_child(versions[i].home, versions[i].lib);
			fflush(stdout);
			_exit(pp_test_failed ? 1 : 0);
		}
		snprintf(name, sizeof(name), "pywalk/%s/child", versions[i].label);
		st = -1;
		if (pid > 0)
			waitpid(pid, &st, 0);
		/* a crash or a failed check both end here */
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, name,
		      "child status 0x%x", st);
	}
	TEST_EXIT();
}

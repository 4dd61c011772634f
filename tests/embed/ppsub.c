// SPDX-License-Identifier: MIT
/*
 * An extension module for Debian's python3.11, which
 * tests/workloads/attach_freelists.py imports after pyprof attached
 * (tests/e2e/test_inject.py):
 * - keep(n, size): n blocks of libc malloc, kept (its GOT is hooked only
 *   if objects loaded after attach are);
 * - List: a static subtype of list without a tp_dealloc of its own, so
 *   PyType_Ready copies list's, which is the shim's wrapper while
 *   attached (3.9-3.12): the detach must give it the original back, or
 *   its instances crash the process once the shim is unloaded.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEPT 65536

static void *kept[MAX_KEPT];
static int nkept;

static PyObject *keep(PyObject *self, PyObject *args)
{
	int n, size, i;

	(void)self;
	if (!PyArg_ParseTuple(args, "ii", &n, &size))
		return NULL;
	for (i = 0; i < n && nkept < MAX_KEPT; i++) {
		kept[nkept] = malloc(size);
		if (!kept[nkept])
			return PyErr_NoMemory();
		memset(kept[nkept++], 1, size);
	}
	return PyLong_FromLong(i);
}

static PyTypeObject list_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "ppsub.List",
	.tp_basicsize = sizeof(PyListObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
};

static PyMethodDef methods[] = {
	{ "keep", keep, METH_VARARGS, "keep(n, size): n malloc'd blocks" },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "ppsub", NULL, -1, methods,
	NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_ppsub(void)
{
	PyObject *m;

	list_type.tp_base = &PyList_Type;
	if (PyType_Ready(&list_type) < 0)
		return NULL;
	m = PyModule_Create(&module);
	if (m && PyModule_AddObject(m, "List", (PyObject *)&list_type) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	Py_INCREF(&list_type);
	return m;
}

// SPDX-License-Identifier: MIT
/*
 * A program that embeds CPython through Debian's shared libpython3.11
 * (the build type of uWSGI, Blender, a C++ service with a Python
 * plug-in): the interpreter lives in libpython3.11.so, not in the
 * executable. It runs its arguments as `python` would, so the tests
 * use it like any other interpreter (tests/interpreters).
 */
#include <Python.h>

int main(int argc, char **argv)
{
	return Py_BytesMain(argc, argv);
}

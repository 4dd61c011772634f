"""Import every standard-library module (a benchmark workload).

Top-level names from sys.stdlib_module_names (3.10+; pkgutil before),
then every submodule of the packages among them, each in a try. Left
out: what opens windows, starts servers or prints on import (idlelib,
tkinter, turtle, turtledemo, antigravity, this, __hello__, __phello__),
test suites and __main__ modules. Prints how many modules imported.
"""
import importlib
import io
import os
import pkgutil
import sys
import warnings

SKIP = {"idlelib", "tkinter", "turtle", "turtledemo", "antigravity", "this",
        "__hello__", "__phello__", "test", "lib2to3.tests", "__main__"}


def skipped(name):
    parts = name.split(".")
    return (name in SKIP or parts[0] in SKIP or "__main__" in parts or
            "test" in parts or "tests" in parts or parts[-1].startswith("_test"))


def names():
    top = getattr(sys, "stdlib_module_names", None)
    if top is None:
        lib = os.path.dirname(os.__file__)
        top = {m.name for m in pkgutil.iter_modules([lib])} | set(sys.builtin_module_names)
    return sorted(n for n in top if not skipped(n))


def load(name, ok):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = importlib.import_module(name)
    except BaseException:  # noqa: B036 (SystemExit, ImportError, anything)
        return None
    ok.append(name)
    return mod


def main():
    ok = []
    out, sys.stdout = sys.stdout, io.StringIO()  # some modules print
    try:
        for name in names():
            mod = load(name, ok)
            path = getattr(mod, "__path__", None)
            if not path:
                continue
            for sub in pkgutil.walk_packages(path, name + ".", onerror=lambda n: None):
                if not skipped(sub.name):
                    load(sub.name, ok)
    finally:
        sys.stdout = out
    print("imported %d modules" % len(ok))


if __name__ == "__main__":
    main()

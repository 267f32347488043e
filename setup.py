"""Build treadle: the hot modules compiled by Cython from their own .py sources.

pyproject.toml holds the project's metadata; this file only adds the
extension modules.  The modules listed in src/treadle/_accel.py
(``COMPILED_MODULES``) are compiled in Cython's pure Python mode: the ``.py``
is the source, with a ``.pxd`` beside it where C declarations pay.  Each
extension module gets the module's own name, so it lands beside its source
(in place for ``pip install -e .``, in the wheel for ``python -m build``).

The build never fails for want of the compiled core: with
``TREADLE_PURE_PYTHON=1`` set, without Cython, or when the C compiler is
missing or fails, it warns and the package is pure Python, which behaves the
same (``treadle.compiled`` says which form runs).  A Cython error in a module
does fail the build: that is a bug in the source, not a missing tool.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
ENV_VAR = "TREADLE_PURE_PYTHON"


def _compiled_modules() -> list[str]:
    """COMPILED_MODULES from src/treadle/_accel.py, read without importing the package."""
    tree = ast.parse((SRC / "treadle" / "_accel.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "COMPILED_MODULES":
            return list(ast.literal_eval(node.value))  # type: ignore[arg-type]
    raise RuntimeError("src/treadle/_accel.py defines no COMPILED_MODULES")


def _note(message: str) -> None:
    print(f"treadle build: {message}", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that leaves a module pure Python when the C compiler cannot build it."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1  # the modules compile independently

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all (DistutilsPlatformError and kin)
            _note(f"the compiled core could not be built ({exc}); treadle is pure Python")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # the compiler failed on this module (CompileError, LinkError)
            _note(f"{ext.name} could not be compiled ({exc}); the core will run as pure Python, all of it")


def _extensions() -> list[Extension]:
    if os.environ.get(ENV_VAR, "") not in ("", "0"):
        _note(f"{ENV_VAR} is set: building pure Python")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        _note("Cython is not installed: building pure Python")
        return []
    extensions = []
    for name in _compiled_modules():
        source = Path("src", *name.split(".")).with_suffix(".py")
        extensions.append(Extension(name, [str(source)]))
    return cythonize(
        extensions,
        build_dir="build/cython",
        quiet=True,
        compiler_directives={
            "language_level": 3,
            # Annotations are for mypy; C types come from the .pxd files only,
            # so that a module behaves the same compiled and not.
            "annotation_typing": False,
        },
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})

"""The compiled core: which modules Cython compiles, and which form of them is imported.

Owns: :data:`COMPILED_MODULES` (the hot modules that the build compiles from
their own ``.py`` source, Cython's pure Python mode, with a ``.pxd`` beside some
of them), the import-time choice between a module's extension module and its
source, and :func:`running_compiled`, behind ``treadle.compiled``.

Never: imports anything of treadle, or anything outside the standard library:
``setup.py`` reads :data:`COMPILED_MODULES` from this file before the package
is built, and the package imports it before any compiled module.

Discussion: a compiled module sits beside its source under the same name
(``loop.py`` and ``loop.cpython-311-x86_64-linux-gnu.so``), where Python's
path finder prefers the extension module.  :func:`install` puts a finder in
front of it that loads the ``.py`` instead, for the modules listed here only,
when

- ``TREADLE_PURE_PYTHON`` is set to anything but ``""`` or ``"0"`` (the whole
  core runs as plain Python, e.g. to profile it with py-spy, or to test both
  forms of one build), or
- any listed module has no extension module, or one older than its source
  or its ``.pxd`` (an edited work tree that was not rebuilt, a module the
  compiler failed on): the source is what the reader sees, so it is what
  runs, and a :class:`RuntimeWarning` names the modules; ``make`` (or
  ``pip install -e .``) rebuilds.

The core is compiled as a whole or not at all: compiled modules call each
other's C functions and use each other's C types (a ``cimport`` in a ``.pxd``:
the loop calls the handles' hot path and the poller as C), which a module run
from source does not have.  A build without any extension module (no C
compiler, no Cython) is pure Python without a warning.

Keeping one name for both forms (rather than gevent's ``_x.py`` beside a
compiled ``__x``) means that tracebacks, ``repr``s, pickles and
``isinstance`` checks name the same module in both modes, and that no module
has to import its own compiled twin at its end.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = ["COMPILED_MODULES", "ENV_VAR", "install", "is_extension_file", "pure_python_requested", "running_compiled"]

ENV_VAR = "TREADLE_PURE_PYTHON"

#: The modules compiled when the package is built, in import order.
COMPILED_MODULES: tuple[str, ...] = (
    "treadle._core.handles",
    "treadle._core.timers",
    "treadle._core.poller",
    "treadle._core.sysio",
    "treadle._core.loopcore",
    "treadle._core.loop",
    "treadle._core.transports",
    "treadle._core.sockops",
    "treadle.green.hub",
    "treadle.green.fdwait",
    "treadle.green.task",
    "treadle.green.generators",
    "treadle.green.bridge",
    "treadle.net.greensocket",
    "treadle.concurrency.waiting",
    "treadle.concurrency.sync",
    "treadle.concurrency.queues",
    "treadle.net.streams",
)

_NAMES = frozenset(COMPILED_MODULES)
_STALE_AFTER = 1.0  # seconds a source may be newer than its build (files unpacked in turn)


def pure_python_requested() -> bool:
    """True if ``TREADLE_PURE_PYTHON`` asks for the pure Python modules."""
    return os.environ.get(ENV_VAR, "") not in ("", "0")


def _extension(directory: str, name: str) -> str | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(directory, name + suffix)
        if os.path.exists(path):
            return path
    return None


def _newest_source(directory: str, name: str) -> float:
    """The modification time of the module's .py or, if newer, of its .pxd."""
    newest = os.path.getmtime(os.path.join(directory, name + ".py"))
    declarations = os.path.join(directory, name + ".pxd")
    if os.path.exists(declarations):
        newest = max(newest, os.path.getmtime(declarations))
    return newest


_core_state: tuple[bool, list[str]] | None = None  # (compiled?, what keeps it from running compiled)


def _core_compiled() -> tuple[bool, list[str]]:
    """Whether the listed modules run compiled, and if not, why (their names); found once per process.

    The modules are looked for beside this file, where the package is.
    """
    global _core_state
    if _core_state is None:
        root = os.path.dirname(os.path.abspath(__file__))
        missing, stale = [], []
        for fullname in COMPILED_MODULES:
            *package, name = fullname.split(".")[1:]
            directory = os.path.join(root, *package)
            built = _extension(directory, name)
            if built is None:
                missing.append(fullname)
            elif _newest_source(directory, name) > os.path.getmtime(built) + _STALE_AFTER:
                stale.append(fullname)
        if len(missing) == len(COMPILED_MODULES):
            _core_state = (False, [])  # not built at all: pure Python, nothing to say
        else:
            reasons = [f"{n} (older than its source)" for n in stale] + [f"{n} (not built)" for n in missing]
            _core_state = (not reasons, reasons)
    return _core_state


class _SourceFinder:
    """A meta path finder: the ``.py`` of a listed module when it must not run compiled."""

    @classmethod
    def find_spec(
        cls, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _NAMES or not path:
            return None
        name = fullname.rpartition(".")[2]
        for directory in path:
            source = os.path.join(directory, name + ".py")
            if not os.path.exists(source):
                continue
            if not pure_python_requested():
                compiled, reasons = _core_compiled()
                if compiled:
                    return None  # the path finder takes the extension module
                if reasons and fullname == COMPILED_MODULES[0]:  # said once, at the first one imported
                    warnings.warn(
                        f"treadle's compiled core runs from source, as a whole, because of {', '.join(reasons)}; "
                        f"rebuild (make, or pip install -e .) or set {ENV_VAR}=1",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            return importlib.util.spec_from_file_location(fullname, source)
        return None


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once): done when this module is imported."""
    if _SourceFinder not in sys.meta_path:
        sys.meta_path.insert(0, _SourceFinder)  # type: ignore[arg-type]


def is_extension_file(path: str) -> bool:
    """True if ``path`` (a module's ``__file__``) is an extension module's: that module runs compiled.

    For a listed module whose compiled form calls C helpers of its ``.pxd``
    that its source cannot: ``_COMPILED = is_extension_file(__file__)``.
    """
    return path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def running_compiled() -> bool:
    """True if every module of :data:`COMPILED_MODULES` is imported and is the compiled one."""
    for name in COMPILED_MODULES:
        loader = getattr(sys.modules.get(name), "__loader__", None)
        if not isinstance(loader, importlib.machinery.ExtensionFileLoader):
            return False
    return True


# The package imports this module first, so the finder is in place before any
# compiled module is imported.
install()

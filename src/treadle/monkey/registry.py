"""What the monkey patcher replaced, and how: atomic, idempotent, reversible records.

Owns: the table of originals (module name → attribute → original value), the
rule that a module is patched all at once or not at all, ``is_patched``,
``get_original``, and the warnings for patching too late (modules that already
hold a reference to an original) or from a thread other than the main one.

Never: imports a green implementation; it only records and applies what the
patch functions hand it.
"""

from __future__ import annotations

import importlib
import os
import sys
import sysconfig
import threading
import warnings
from typing import Any

__all__ = ["apply", "get_original", "is_patched", "patched_modules", "undo"]

_MISSING = object()
_originals: dict[str, dict[str, Any]] = {}
_lock = threading.RLock()


_HERE = os.path.dirname(os.path.abspath(__file__))


def _warn(message: str) -> None:
    """Warn, pointing at the first caller outside treadle.monkey."""
    if sys.version_info >= (3, 12):
        warnings.warn(message, RuntimeWarning, skip_file_prefixes=(_HERE,))  # type: ignore[call-arg]
        return
    level = 2  # 1 is this function; 2 the frame below
    frame = sys._getframe(1)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _HERE:
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


_FLAG_MODULES = {"thread": "threading"}


def is_patched(module_name: str) -> bool:
    """True if the patcher replaced something in the standard module ``module_name``.

    The flag name ``thread`` is accepted for ``threading``.
    """
    if not isinstance(module_name, str):
        raise TypeError(f"is_patched() takes a module name, got {module_name!r}")
    return _FLAG_MODULES.get(module_name, module_name) in _originals


def patched_modules() -> list[str]:
    return sorted(_originals)


def get_original(module_name: str, name: str | list[str] | tuple[str, ...]) -> Any:
    """The standard library's own ``module_name.name`` (or a list for several names), patched or not."""
    if not isinstance(module_name, str):
        raise TypeError(f"get_original() takes a module name, got {module_name!r}")
    if isinstance(name, (list, tuple)):
        return [get_original(module_name, n) for n in name]
    saved = _originals.get(module_name, {})
    if name in saved:
        value = saved[name]
        if value is _MISSING:
            raise AttributeError(f"module {module_name!r} had no attribute {name!r} before it was patched")
        return value
    owner, attr = _resolve(importlib.import_module(module_name), name)
    return getattr(owner, attr)


_STDLIB = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}


def _is_stdlib(mod: Any) -> bool:
    path = getattr(mod, "__file__", None)
    if path is None:
        return True  # built in
    return any(path.startswith(p + os.sep) for p in _STDLIB if p) and "site-packages" not in path


def _holders(module_name: str, replaced: dict[str, Any]) -> list[str]:
    """Modules of the program holding a reference to an original (the standard library and treadle aside)."""
    originals = {id(v): n for n, v in replaced.items() if v is not _MISSING and not isinstance(v, (int, str, float))}
    found = []
    for name, mod in list(sys.modules.items()):
        if mod is None or name == module_name or name.startswith(("treadle", "_pytest", "pytest")):
            continue
        if _is_stdlib(mod):
            continue
        names = [f"{attr}" for attr, value in list(getattr(mod, "__dict__", {}).items()) if id(value) in originals]
        if names and originals:
            found.append(f"{name} ({', '.join(sorted(set(names)))})")
    return found


def _resolve(module: Any, name: str) -> tuple[Any, str]:
    """The object holding ``name`` (``"attr"`` or ``"Class.attr"``) and the last part."""
    owner = module
    *path, last = name.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, last


def apply(module_name: str, replacements: dict[str, Any], remove: tuple[str, ...] = ()) -> bool:
    """Replace attributes of the standard module ``module_name``; False if already patched.

    A name may be ``"Class.attr"``: the class keeps its identity and only the
    attribute changes, so code that took the class before patching (or a
    subclass of it) is covered too.  All or nothing: if setting any
    attribute fails, the ones already set are restored and the error
    propagates.
    """
    with _lock:
        if module_name in _originals:
            return False
        if threading.current_thread() is not threading.main_thread():
            _warn(
                f"treadle.monkey: patching {module_name!r} from a thread other than the main one; "
                "patch first thing in the main thread (or use python -m treadle run)"
            )
        module = importlib.import_module(module_name)
        saved: dict[str, Any] = {}
        for name in (*replacements, *remove):
            owner, attr = _resolve(module, name)
            # The class's own attribute (not an inherited one), so that
            # restoring puts back exactly what was there.
            own = vars(owner) if isinstance(owner, type) else None
            saved[name] = own.get(attr, _MISSING) if own is not None else getattr(owner, attr, _MISSING)
        holders = _holders(module_name, {n: v for n, v in saved.items() if n in replacements and "." not in n})
        done: list[str] = []
        try:
            for name, value in replacements.items():
                owner, attr = _resolve(module, name)
                setattr(owner, attr, value)
                done.append(name)
            for name in remove:
                owner, attr = _resolve(module, name)
                if hasattr(owner, attr):
                    delattr(owner, attr)
                    done.append(name)
        except BaseException:
            for name in done:
                owner, attr = _resolve(module, name)
                if saved[name] is _MISSING:
                    if attr in vars(owner):
                        delattr(owner, attr)
                else:
                    setattr(owner, attr, saved[name])
            raise
        _originals[module_name] = saved
        if holders:
            _warn(
                f"treadle.monkey: {module_name!r} was patched after these modules took references to its "
                f"originals, which stay unpatched there: {'; '.join(holders)}. Patch first thing in the "
                "program, before other imports (or use python -m treadle run)."
            )
        return True


def undo(module_name: str) -> None:
    """Put back every original of ``module_name`` (for a patch of several modules that failed half-way)."""
    with _lock:
        saved = _originals.pop(module_name, None)
        if saved is None:
            return
        module = importlib.import_module(module_name)
        for name, value in saved.items():
            owner, attr = _resolve(module, name)
            if value is _MISSING:
                if attr in vars(owner):
                    delattr(owner, attr)
            else:
                setattr(owner, attr, value)

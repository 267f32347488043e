"""The compiled core and its pure Python twin: which form is imported, and when.

Each test starts a fresh interpreter, since the choice is made when treadle is
first imported.  The suite as a whole runs in both forms (``make test``); these
tests check the choice itself: ``TREADLE_PURE_PYTHON``, ``treadle.compiled``,
and a build older than its source.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import treadle
from treadle import _accel

PACKAGE = Path(treadle.__file__).resolve().parent

_REPORT = """
import json, sys
import treadle
from treadle._accel import COMPILED_MODULES
print(json.dumps({"compiled": treadle.compiled, "files": {n: sys.modules[n].__file__ for n in COMPILED_MODULES}}))
"""


def _built() -> bool:
    """True if this build has an extension module for every listed module."""
    for name in _accel.COMPILED_MODULES:
        stem = PACKAGE.joinpath(*name.split(".")[1:])
        if not any(stem.with_name(stem.name + s).exists() for s in importlib.machinery.EXTENSION_SUFFIXES):
            return False
    return True


needs_build = pytest.mark.skipif(not _built(), reason="the compiled core is not built (no C compiler or Cython)")


def _report(env_value: str | None, pythonpath: Path | None = None) -> tuple[dict[str, object], str]:
    env = dict(os.environ)
    env.pop(_accel.ENV_VAR, None)
    if env_value is not None:
        env[_accel.ENV_VAR] = env_value
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    proc = subprocess.run(
        [sys.executable, "-W", "always", "-c", _REPORT], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def _is_source(path: object) -> bool:
    return isinstance(path, str) and path.endswith(".py")


def test_every_listed_module_is_a_module_of_the_package() -> None:
    for name in _accel.COMPILED_MODULES:
        assert name.startswith("treadle.")
        assert PACKAGE.joinpath(*name.split(".")[1:]).with_suffix(".py").is_file(), name


@pytest.mark.parametrize("value", ["1", "yes"])
def test_pure_python_requested_loads_every_listed_module_from_its_source(value: str) -> None:
    report, _ = _report(value)
    assert report["compiled"] is False
    files = report["files"]
    assert isinstance(files, dict) and set(files) == set(_accel.COMPILED_MODULES)
    assert all(_is_source(path) for path in files.values()), files


@needs_build
@pytest.mark.parametrize("value", [None, "", "0"])
def test_unset_empty_or_zero_runs_the_compiled_core(value: str | None) -> None:
    report, stderr = _report(value)
    assert report["compiled"] is True, stderr
    files = report["files"]
    assert isinstance(files, dict)
    assert not any(_is_source(path) for path in files.values()), files


@needs_build
@pytest.mark.parametrize("suffix", [".py", ".pxd"])
def test_a_build_older_than_its_source_runs_the_whole_core_from_source_and_says_so(tmp_path: Path, suffix: str) -> None:
    copy = tmp_path / "treadle"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    edited = copy / "_core" / ("timers" + suffix)
    assert edited.is_file()
    later = time.time() + 60
    os.utime(edited, (later, later))
    report, stderr = _report(None, pythonpath=tmp_path)
    files = report["files"]
    assert isinstance(files, dict)
    # All of it: the compiled loop uses the compiled TimerQueue's C type, which
    # the source does not have (a mix fails to import).
    assert files["treadle._core.timers"] == str(copy / "_core" / "timers.py")
    assert all(_is_source(path) for path in files.values()), files
    assert report["compiled"] is False
    assert stderr.count("RuntimeWarning") == 1
    assert "treadle._core.timers (older than its source)" in stderr


@needs_build
def test_a_build_missing_one_module_runs_the_whole_core_from_source_and_says_so(tmp_path: Path) -> None:
    copy = tmp_path / "treadle"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    # This interpreter's build of the module (a work tree may hold other versions' too).
    (built,) = [p for s in importlib.machinery.EXTENSION_SUFFIXES if (p := copy / "_core" / ("handles" + s)).exists()]
    built.unlink()  # as when the C compiler failed on that one module
    report, stderr = _report(None, pythonpath=tmp_path)
    files = report["files"]
    assert isinstance(files, dict)
    assert all(_is_source(path) for path in files.values()), files
    assert report["compiled"] is False
    assert "treadle._core.handles (not built)" in stderr


def test_a_package_without_any_build_runs_from_source_silently(tmp_path: Path) -> None:
    copy = tmp_path / "treadle"
    shutil.copytree(
        PACKAGE,
        copy,
        ignore=shutil.ignore_patterns("__pycache__", *(f"*{s}" for s in importlib.machinery.EXTENSION_SUFFIXES)),
    )
    report, stderr = _report(None, pythonpath=tmp_path)
    files = report["files"]
    assert isinstance(files, dict)
    assert all(_is_source(path) for path in files.values()), files
    assert report["compiled"] is False
    assert "RuntimeWarning" not in stderr, stderr


def test_compiled_says_which_form_this_process_runs() -> None:
    forms = {_is_source(sys.modules[name].__file__) for name in _accel.COMPILED_MODULES}
    assert forms == {not treadle.compiled}
    # What the modules with C-only helpers (handles, poller) ask to pick their path.
    assert {_accel.is_extension_file(sys.modules[name].__file__) for name in _accel.COMPILED_MODULES} == {
        treadle.compiled
    }
    if _accel.pure_python_requested():
        assert treadle.compiled is False

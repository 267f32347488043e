"""CPython's own tests in an interpreter patched by treadle.monkey.patch_all().

Each module runs in its own process through ``tests/cpython/run_patched.py``
(which leaves out the entries of ``tests/cpython/expected_failures.py``, each
with its reason); every test it runs must pass.  The counts are printed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).parent / "cpython" / "run_patched.py"

# The modules run in CI; the README gives the counts of a full run.
MODULES = ["test_select", "test_selectors", "test_timeout"]


@pytest.mark.parametrize("module", MODULES)
def test_cpython_module_passes_under_patch_all(module: str) -> None:
    proc = subprocess.run([sys.executable, str(RUNNER), module], capture_output=True, text=True, timeout=600)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    print(summary)
    assert proc.returncode == 0, f"{summary}\n{proc.stderr[-4000:]}"
    assert f"{module}: " in summary and " 0 failed" in summary, summary

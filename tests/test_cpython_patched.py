"""CPython's own tests in an interpreter patched by treadle.monkey.patch_all().

Each module runs in its own process through ``tests/cpython/run_patched.py``
(which leaves out the entries of ``tests/cpython/expected_failures.py``, each
with its reason); every test it runs must pass.  The modules run two at a
time, started by the first test that needs a result; each test then checks
its module's run and prints its counts.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent / "cpython" / "run_patched.py"

# The modules the monkey patcher is held to; the README gives their counts.
# The longest first, so that two at a time finish together.
MODULES = [
    "test_signal",
    "test_socket",
    "test_subprocess",
    "test_threading",
    "test_selectors",
    "test_ssl",
    "test_queue",
    "test_urllib2_localnet",
    "test_select",
    "test_timeout",
    "test_httplib",
    "test_socketserver",
]


def _run(module: str) -> subprocess.CompletedProcess[str]:
    # In a directory of its own, as CPython's test runner does: some tests
    # make fixed names in the current directory (test_subprocess's
    # "tempcwd"), and the compiled and pure suites run side by side.
    with tempfile.TemporaryDirectory(prefix=f"treadle-{module}-") as cwd:
        return subprocess.run(
            [sys.executable, str(RUNNER), module, "--per-test-timeout", "120"],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=cwd,
        )


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, concurrent.futures.Future[subprocess.CompletedProcess[str]]]]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        yield {module: pool.submit(_run, module) for module in MODULES}


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("module", MODULES)
def test_cpython_module_passes_under_patch_all(
    runs: dict[str, concurrent.futures.Future[subprocess.CompletedProcess[str]]], module: str
) -> None:
    proc = runs[module].result()
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    print(summary)
    assert proc.returncode == 0, f"{summary}\n{proc.stderr[-4000:]}"
    assert summary.startswith(f"{module}: ") and " 0 failed" in summary, summary

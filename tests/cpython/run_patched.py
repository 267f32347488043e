"""Run one of CPython's own test modules in an interpreter patched by treadle.monkey.patch_all().

Usage: python tests/cpython/run_patched.py test_socket [--json out.json]

Loads ``test.<name>`` after patching, leaves out the tests listed in
``tests/cpython/expected_failures.py`` (each with its reason), runs the rest
with unittest, and prints one line: ``<name>: N passed, N failed, N skipped``
(and writes the ids of failures to --json if given).
"""

from __future__ import annotations

from treadle import monkey

monkey.patch_all()

import argparse  # noqa: E402
import faulthandler  # noqa: E402
import fnmatch  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from expected_failures import EXPECTED_FAILURES  # noqa: E402


def _iter_tests(suite: unittest.TestSuite):  # type: ignore[no-untyped-def]
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _iter_tests(item)
        else:
            yield item


class _TimedResult(unittest.TextTestResult):
    """Dumps every thread's stack and exits if one test runs past the limit."""

    limit = 60.0

    def startTest(self, test: unittest.TestCase) -> None:
        faulthandler.dump_traceback_later(self.limit, exit=True)
        if os.environ.get("TREADLE_TRACE_TESTS"):
            sys.stderr.write(f"[start] {test.id()}\n")
        super().startTest(test)

    def stopTest(self, test: unittest.TestCase) -> None:
        faulthandler.cancel_dump_traceback_later()
        super().stopTest(test)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--json")
    parser.add_argument("-v", action="store_true")
    parser.add_argument("--per-test-timeout", type=float, default=60.0)
    args = parser.parse_args()
    from test import support

    support.verbose = False
    module = __import__(f"test.{args.name}", fromlist=["*"])
    loader = unittest.TestLoader()
    if hasattr(module, "load_tests"):
        suite = loader.loadTestsFromModule(module)
    else:
        suite = loader.loadTestsFromModule(module)
    kept = unittest.TestSuite()
    left_out = 0
    for test in _iter_tests(suite):
        test_id = test.id().removeprefix("test.")
        if test_id in EXPECTED_FAILURES or any(
            test_id.startswith(k + ".") or fnmatch.fnmatchcase(test_id, k) for k in EXPECTED_FAILURES
        ):
            left_out += 1
            continue
        kept.addTest(test)
    stream = sys.stderr if args.v else open(os.devnull, "w")
    _TimedResult.limit = args.per_test_timeout
    runner = unittest.TextTestRunner(stream=stream, verbosity=2 if args.v else 0, resultclass=_TimedResult)
    started = time.monotonic()
    result = runner.run(kept)
    elapsed = time.monotonic() - started
    failed = [t.id() for t, _ in result.failures + result.errors]
    for test, trace in result.failures + result.errors:
        sys.stderr.write(f"FAILED {test.id()}\n{trace}\n")
    passed = result.testsRun - len(failed) - len(result.skipped) - len(result.unexpectedSuccesses)
    print(
        f"{args.name}: {passed} passed, {len(failed)} failed, {len(result.skipped)} skipped, "
        f"{left_out} left out (expected_failures.py), {elapsed:.0f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"failed": failed, "details": [str(e) for _, e in result.failures + result.errors]}, f)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())

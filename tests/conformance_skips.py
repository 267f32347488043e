"""The one list of CPython conformance tests that treadle does not run, each with its reason.

Only tests that inspect CPython's own internals (a private attribute of the
selector loop, a mock of a stdlib module's global) belong here; a behaviour
that treadle gets wrong is a bug to fix, not an entry to add.
"""

SKIPS: dict[str, str] = {}

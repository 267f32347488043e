"""``python -m treadle run``: patch the standard library, then run a script or module as ``__main__``.

Owns: the command line of ``run`` (``script.py [args]`` or ``-m module [args]``,
and ``--no-<module>`` flags that leave a module unpatched).

Never: runs the target when patching failed, or hides why the target could not
be found: a missing script or module is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys

from .patches import _PATCHES, patch_all

__all__ = ["main"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m treadle run",
        description="Patch the standard library (treadle.monkey.patch_all), then run a script or module.",
    )
    for name in _PATCHES:
        parser.add_argument(f"--no-{name}", action="store_true", help=f"leave {name} unpatched")
    parser.add_argument("-m", dest="module", help="run a library module as a script")
    parser.add_argument("target", nargs=argparse.REMAINDER, help="script.py [args...] (or args of -m)")
    args = parser.parse_args(argv)
    if args.module is None and not args.target:
        parser.error("give a script to run, or -m module")
    flags = {name: not getattr(args, f"no_{name}") for name in _PATCHES}
    if args.module is None:
        path = args.target[0]
        if not os.path.isfile(path):
            print(f"python -m treadle run: no such script: {path}", file=sys.stderr)
            return 2
        patch_all(**flags)
        sys.argv = list(args.target)
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        runpy.run_path(path, run_name="__main__")
        return 0
    import importlib.util

    try:
        spec = importlib.util.find_spec(args.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        print(f"python -m treadle run: no module named {args.module!r}", file=sys.stderr)
        return 2
    patch_all(**flags)
    sys.argv = [spec.origin or args.module, *args.target]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    return 0

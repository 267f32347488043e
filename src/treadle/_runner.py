"""Entry points that run a program on treadle: ``run`` and ``install``.

Owns: starting a treadle loop for a whole program and installing treadle as
asyncio's default.

Never: holds state between runs; each ``run`` makes and closes its own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from ._core import EventLoopPolicy, new_event_loop

__all__ = ["install", "run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """Run coroutine ``main`` on a new treadle loop and return its result.

    Like ``asyncio.run``: the loop is created, runs ``main`` until it is done,
    cancels the tasks left, shuts down async generators and the default
    executor, and is closed.  Raises ``RuntimeError`` if called from a running
    event loop, ``TypeError`` if ``main`` is not a coroutine.
    """
    if not asyncio.iscoroutine(main):
        raise TypeError(f"treadle.run() expects a coroutine, got {type(main).__name__}")
    if asyncio._get_running_loop() is not None:
        raise RuntimeError("treadle.run() cannot be called from a running event loop: await the coroutine instead")
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)


def install() -> None:
    """Make treadle the default: ``asyncio.new_event_loop()`` and ``asyncio.run`` use it."""
    asyncio.set_event_loop_policy(EventLoopPolicy())

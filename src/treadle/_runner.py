"""Entry points that run a program on treadle: ``run`` and ``install``.

Owns: starting a treadle loop for a whole program and installing treadle as
asyncio's default.

Never: holds state between runs; each ``run`` makes and closes its own loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar, overload

from ._core import EventLoopPolicy, new_event_loop
from .green import Greenlet, await_, drive
from .green.hub import cancel_green_tasks, in_hub

__all__ = ["install", "run"]

T = TypeVar("T")


@overload
def run(main: Coroutine[Any, Any, T], /, *, debug: bool | None = None) -> T: ...
@overload
def run(main: Generator[Any, Any, T], /, *, debug: bool | None = None) -> T: ...
@overload
def run(main: Callable[..., T], /, *args: Any, debug: bool | None = None) -> T: ...
def run(main: Any, /, *args: Any, debug: bool | None = None) -> Any:
    """Run ``main`` on a new treadle loop until it is done and return its result.

    ``main`` may be a coroutine (as with ``asyncio.run``), a generator or a
    generator function (run as a generator task), or a plain function, which runs
    as the main green task with ``*args``.  The loop is created, runs ``main``,
    cancels the tasks left, shuts down async generators and the default
    executor, and is closed.  Called from green code while the hub runs, it
    waits for ``main`` on the running loop instead.  Raises ``RuntimeError``
    if called from async code on a running loop, ``TypeError`` if ``main`` is
    none of these.
    """
    if inspect.isgenerator(main) or asyncio.iscoroutine(main):
        if args:
            raise TypeError("treadle.run(coroutine) takes no further arguments")
        # A generator first: asyncio on 3.11 takes one for a legacy coroutine.
        coro = drive(main) if inspect.isgenerator(main) else main
    elif inspect.isgeneratorfunction(main):
        coro = drive(main(*args))
    elif inspect.iscoroutinefunction(main):
        raise TypeError(f"treadle.run() got the coroutine function {main.__qualname__!r}: call it, treadle.run(main())")
    elif callable(main):
        coro = _run_green_main(main, args)
    else:
        raise TypeError(f"treadle.run() expects a coroutine, a generator or a function, got {type(main).__name__}")
    if asyncio._get_running_loop() is not None:
        if not in_hub():
            # A green task (or a gevent-style script's main greenlet): wait for
            # it on the running hub, as any blocking call would.
            return await_(coro)
        coro.close()
        raise RuntimeError("treadle.run() cannot be called from a running event loop: await the coroutine instead")
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(_then_cancel_green_tasks(coro))


async def _then_cancel_green_tasks(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; then cancel the green tasks still alive and wait for them.

    asyncio.Runner cancels the asyncio tasks left when the main one returns;
    this does the same for green tasks, so that their ``finally`` blocks run.
    """
    try:
        return await coro
    finally:
        await cancel_green_tasks()


async def _run_green_main(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    task = Greenlet(fn, *args)
    task.name = "main"
    return await task.start()


def install() -> None:
    """Make treadle the default: ``asyncio.new_event_loop()`` and ``asyncio.run`` use it."""
    asyncio.set_event_loop_policy(EventLoopPolicy())

"""Entry points that run a program on treadle: ``run`` and ``install``.

Owns: starting a treadle loop for a whole program and installing treadle as
asyncio's default.

Never: holds state between runs; each ``run`` makes and closes its own loop.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import threading
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
    executor, and is closed.  Ctrl-C (SIGINT) and SIGTERM cancel ``main`` (every
    ``finally`` runs); the process then ends with the signal's usual status, and
    a second one ends it at once.  Called from green code while the hub runs, it
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
    term = _TermAsCancel()
    try:
        with term, asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(term.main(_then_cancel_green_tasks(coro)))
    except asyncio.CancelledError:
        term.die_if_received()  # the program's cleanup is done: end as SIGTERM ends a process
        raise


class _TermAsCancel:
    """SIGTERM cancels the main task, as asyncio.Runner does for SIGINT; a second one ends the process at once.

    Installed only in the main thread, and only over the default handler.
    Once the main task has finished its cleanup, the process ends by SIGTERM
    itself, so that its parent sees the conventional status.
    """

    __slots__ = ("task", "loop", "received", "installed")

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.received = False
        self.installed = False

    def __enter__(self) -> _TermAsCancel:
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, self._on_sigterm)
            self.installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.installed and signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    async def main(self, coro: Coroutine[Any, Any, T]) -> T:
        self.task = asyncio.current_task()
        self.loop = asyncio.get_running_loop()
        return await coro

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self.received or self.task is None or self.loop is None or self.loop.is_closed():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        self.received = True
        self.loop.call_soon_threadsafe(self.task.cancel)

    def die_if_received(self) -> None:
        if self.received:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


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

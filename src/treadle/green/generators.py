"""Generator coroutines as tasks: ``x = yield aw`` waits for ``aw``; a bare ``yield`` lets others run.

Owns: :class:`GeneratorTask` (an ``asyncio.Task`` that drives a plain generator,
with gevent's ``join``/``get``/``ready``/``successful``/``value`` too) and
:func:`drive`, the coroutine that does the driving.

Never: swallows what the generator raises or what is thrown at it: the
exception an awaited object raises is thrown into the generator at its
``yield``, and a cancellation of the task likewise; what escapes the generator
ends the task.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Generator
from typing import Any

from .hub import get_hub, in_hub
from .task import _wait_for_tasks, check_timeout, raise_blocking_in_hub

__all__ = ["GeneratorTask", "drive"]


async def drive(gen: Generator[Any, Any, Any]) -> Any:
    """Run generator ``gen`` as a coroutine: each yielded awaitable is awaited, ``None`` yields once."""
    if not inspect.isgenerator(gen):
        raise TypeError(f"drive() needs a generator, got {type(gen).__name__}")
    value: Any = None
    exc: BaseException | None = None
    while True:
        try:
            item = gen.send(value) if exc is None else gen.throw(exc)
        except StopIteration as stop:
            return stop.value
        exc = None
        value = None
        try:
            if item is None:
                await asyncio.sleep(0)
            elif hasattr(item, "__await__") or inspect.isawaitable(item):
                # (The first test is for the common case: isawaitable asks an
                # ABC about any awaitable that is not a native coroutine.)
                value = await item
            else:
                raise TypeError(
                    f"a generator task yielded {item!r}: yield an awaitable to wait for it, or a bare `yield` "
                    "to let other tasks run"
                )
        except (SystemExit, KeyboardInterrupt):
            gen.close()
            raise
        except BaseException as e:
            exc = e


class GeneratorTask(asyncio.Task):  # type: ignore[type-arg]
    """A task that runs a generator coroutine; an ``asyncio.Task`` with gevent's methods."""

    def __init__(self, gen: Generator[Any, Any, Any], *, name: str | None = None) -> None:
        if not inspect.isgenerator(gen):
            raise TypeError(f"GeneratorTask needs a generator, got {type(gen).__name__}")
        super().__init__(drive(gen), loop=get_hub().loop, name=name or getattr(gen, "__qualname__", None))

    def start(self) -> GeneratorTask:
        """Already scheduled at creation (as any asyncio task); returns itself."""
        return self

    def ready(self) -> bool:
        return self.done()

    def successful(self) -> bool:
        return self.done() and not self.cancelled() and self.exception() is None

    @property
    def value(self) -> Any:
        return self.result() if self.successful() else None

    def join(self, timeout: float | None = None) -> None:
        """Block the current green task until this one is done or ``timeout`` passes."""
        timeout = check_timeout(timeout)
        if self.done():
            return
        if in_hub():
            raise_blocking_in_hub("GeneratorTask.join()", "`await task`")
        _wait_for_tasks([self], timeout, 1, f"join({self.get_name()!r})")

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The result, waiting for it if ``block``; re-raises the task's exception."""
        if not self.done() and block:
            self.join(timeout)
        if not self.done():
            raise TimeoutError(f"{self!r} is not done")
        return self.result()

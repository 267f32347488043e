"""The way back in: code on a ``to_thread`` thread calls into the loop that started it.

``treadle.from_thread.run(async_fn, *args)`` runs ``async_fn(*args)`` as a
task on that loop and returns its result; ``run_sync(fn, *args)`` calls a
plain function there (as a loop callback).  Both block the calling thread
until done, and raise what the call raised.

Owns: :func:`run`, :func:`run_sync` and the record of which loop a
``to_thread`` thread works for.

Never: runs on the loop's own thread (that would wait for itself: a
``RuntimeError`` says so), or from a thread the loop did not start through
``to_thread`` (there is no loop to go back to).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["run", "run_sync"]

T = TypeVar("T")

_worker = threading.local()  # .loop: the loop the current to_thread call came from


def call_for_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on a worker thread, remembering ``loop`` for :func:`run` and :func:`run_sync`."""
    previous = getattr(_worker, "loop", None)
    _worker.loop = loop
    try:
        return fn(*args)
    finally:
        _worker.loop = previous


def _loop(what: str) -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_worker, "loop", None)
    if loop is None:
        raise RuntimeError(f"from_thread.{what}() must be called from a thread started by treadle.to_thread()")
    if loop.is_closed():
        raise RuntimeError(f"from_thread.{what}(): the loop that started this thread is closed")
    return loop


def run(async_fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``async_fn(*args)`` as a task on the loop that started this thread; block until it returns."""
    if not callable(async_fn):
        raise TypeError(f"from_thread.run() takes an async function, got {async_fn!r}")
    loop = _loop("run")

    async def call() -> T:
        result = async_fn(*args)
        if not inspect.isawaitable(result):
            raise TypeError(f"from_thread.run() takes an async function; {async_fn!r} returned {result!r}")
        return await result

    return asyncio.run_coroutine_threadsafe(call(), loop).result()


def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn(*args)`` on the loop that started this thread (as a callback); block until it returns."""
    if not callable(fn):
        raise TypeError(f"from_thread.run_sync() takes a function, got {fn!r}")
    if inspect.iscoroutinefunction(fn):
        raise TypeError(f"from_thread.run_sync() takes a plain function; {fn!r} is async: use from_thread.run()")
    loop = _loop("run_sync")
    done: concurrent.futures.Future[T] = concurrent.futures.Future()
    context = contextvars.copy_context()

    def call() -> None:
        if not done.set_running_or_notify_cancel():
            return
        try:
            done.set_result(context.run(fn, *args))
        except BaseException as exc:
            done.set_exception(exc)

    loop.call_soon_threadsafe(call)
    return done.result()

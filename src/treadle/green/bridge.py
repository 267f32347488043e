"""The bridges between green and async code, and ``sleep`` in both styles.

Owns: :func:`sleep` (blocks a green task, is awaitable in async code),
:func:`await_` (green code waits for any awaitable), :func:`green_wait` (a
green task waits for a future; the toolkit's primitives wait with it) and :func:`run_green`
(async code runs a blocking-style function in a green task and awaits it).

Never: blocks the hub: a blocking call from async code either returns an
awaitable (``sleep``) or raises ``BlockingInHubError`` naming the fix.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from greenlet import getcurrent

from .generators import drive
from .hub import BlockingInHubError, Waiter, get_hub, green_hub, in_hub
from .task import Greenlet, check_timeout

__all__ = ["await_", "green_wait", "run_green", "sleep"]

T = TypeVar("T")


def sleep(seconds: float = 0, result: Any = None) -> Any:
    """Wait ``seconds``; ``sleep(0)`` lets every other ready task run once.

    In green code this blocks the current green task (a switch point) and
    returns ``result``.  In async code it returns an awaitable: write
    ``await treadle.sleep(seconds)``.
    """
    if seconds != 0 or type(seconds) is not int:  # sleep(0), the common switch point, needs no checks
        seconds = check_timeout(seconds, "seconds") or 0.0
    hub = green_hub()
    if hub is None:
        if in_hub():
            return asyncio.sleep(seconds, result)
        hub = get_hub()
    loop = hub.loop
    waiter = Waiter()
    if seconds <= 0:
        handle = loop._call_soon(waiter.switch, (), hub.wake_context)
        what = "sleep(0)"
    else:
        handle = loop.call_later(seconds, waiter.switch)
        what = f"sleep({seconds:g})"
    try:
        waiter.wait(what, hub)
    except BaseException:
        handle.cancel()  # woken otherwise (cancelled, killed): the wake-up must not come later
        raise
    return result


def await_(aw: Awaitable[T]) -> T:
    """From green code, wait for awaitable ``aw`` (a coroutine, task, future, green task) and return its result.

    A switch point.  If the waiting green task is cancelled, ``aw`` is cancelled
    too, as ``await`` does.  From async code, raises ``BlockingInHubError``:
    there, write ``await aw``.
    """
    if in_hub():
        if asyncio.iscoroutine(aw):
            aw.close()
        raise BlockingInHubError("treadle.await_() was called from async code: write `await aw` there instead")
    loop = get_hub().loop
    if inspect.isgenerator(aw):
        aw = drive(aw)  # a generator coroutine (asyncio would take it for a legacy coroutine)
    fut = asyncio.ensure_future(aw, loop=loop)
    try:
        return green_wait(fut, f"await {fut!r}")
    except asyncio.CancelledError:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            # The awaited work finished in the same iteration as the
            # cancellation arrived: keep its result, as `await` does, and
            # deliver the cancellation at this task's next switch point.
            current = getcurrent()
            if isinstance(current, Greenlet):
                current._cancel_requested = True
                return fut.result()
        raise


def green_wait(fut: asyncio.Future[T], what: str) -> T:
    """Block the current green task until ``fut`` is done; return its result.

    If the task is cancelled or killed meanwhile, ``fut`` is cancelled unless
    it is already done, and the exception propagates; the caller can tell
    from ``fut`` whether it completed in the same moment.
    """
    if not fut.done():
        waiter = Waiter()
        fut.add_done_callback(waiter.switch)
        try:
            waiter.wait(what)
        except BaseException:
            if not fut.done():
                fut.cancel()
            raise
        finally:
            fut.remove_done_callback(waiter.switch)
    return fut.result()


async def run_green(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """From async code, run blocking-style ``fn(*args, **kwargs)`` in a new green task and return its result.

    Cancelling the awaiting task cancels the green task.
    """
    task = Greenlet(fn, *args, **kwargs).start()
    return await task  # type: ignore[no-any-return]

"""Blocking functions on real threads, from green and async code alike: ``to_thread``.

Owns: :func:`to_thread` and the process-wide pool of real threads it runs
functions on (at most :data:`DEFAULT_THREAD_LIMIT` at once; idle threads exit
after a few seconds).  This is the way out for code that no patcher can make
cooperative: a C extension that blocks in C, a CPU-heavy call that releases
the GIL.  The loop keeps running while the thread works.

Never: runs the function on the loop's thread, or lets the caller go on while
its thread still runs unless it asked for that (``cancellable=True``): by
default a cancelled (or killed) caller first waits for the function to end,
then gets the cancellation, as anyio's ``to_thread.run_sync`` does.  Nothing
the function raises is lost: it reaches the caller, or, if the caller was
cancelled meanwhile, it is the cancellation's cause.
"""

from __future__ import annotations

import _thread
import asyncio
import contextvars
import inspect
import os
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import GreenletExit

from .._core.executor import ThreadPool
from ..green.hub import Waiter, get_hub, in_hub
from .from_thread import call_for_loop
from .sync import CapacityLimiter

__all__ = ["DEFAULT_THREAD_LIMIT", "to_thread"]

T = TypeVar("T")

DEFAULT_THREAD_LIMIT = 40  # threads running to_thread functions at once (anyio's default too)

_pool: ThreadPool | None = None
_real_lock = _thread.allocate_lock  # the real one, bound before any patching
_pool_lock = _real_lock()


def _get_pool() -> ThreadPool:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPool(DEFAULT_THREAD_LIMIT, thread_name_prefix="treadle.to_thread")
    return _pool


def _forget_pool_in_child() -> None:
    # A forked child has none of the parent's threads: it makes its own pool.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = _real_lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)


def to_thread(
    fn: Callable[..., T], /, *args: Any, cancellable: bool = False, limiter: CapacityLimiter | None = None
) -> Any:
    """Run ``fn(*args)`` on a real thread and return its result.

    In green code this blocks the current green task (other tasks and the
    loop run meanwhile).  In async code it returns an awaitable: write
    ``await treadle.to_thread(fn, *args)``.  The function runs in a copy of
    the caller's ``contextvars`` context.

    ``cancellable=False`` (the default): if the caller is cancelled (or, green,
    killed) while the function runs, it waits until the function returns,
    then raises the cancellation.  ``cancellable=True``: the caller stops
    waiting at once; the function runs on and its result is dropped.

    ``limiter``: a :class:`~treadle.CapacityLimiter` whose token the call
    holds from before the function starts until it returns (the caller waits
    for a token first), to run fewer than :data:`DEFAULT_THREAD_LIMIT` such
    functions at once; more than that never run at once in any case.
    """
    if not callable(fn):
        raise TypeError(f"to_thread() takes a function to call, got {fn!r}")
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"to_thread() runs a blocking function on a thread; {fn!r} is an async function: await it instead"
        )
    if not isinstance(cancellable, bool):
        raise TypeError(f"to_thread() cancellable= must be True or False, got {cancellable!r}")
    if limiter is not None and not isinstance(limiter, CapacityLimiter):
        raise TypeError(f"to_thread() limiter= must be a treadle.CapacityLimiter, got {limiter!r}")
    context = contextvars.copy_context()
    if in_hub():
        return _to_thread_async(context, fn, args, cancellable, limiter)
    return _to_thread_green(context, fn, args, cancellable, limiter)


class _Call:
    """One limited call: the borrower of its token, and who gives the token back.

    The worker gives it back when the function returns; if the call is
    dropped before the function started (a cancellable caller left), the
    loop gives it back and the function never runs.  A real lock decides
    which of the two happened.
    """

    __slots__ = ("lock", "started", "dropped")

    def __init__(self) -> None:
        self.lock = _real_lock()
        self.started = False
        self.dropped = False


def _limited(
    call: _Call, loop: asyncio.AbstractEventLoop, limiter: CapacityLimiter, fn: Callable[..., T], *args: Any
) -> T:
    with call.lock:
        if call.dropped:
            raise asyncio.CancelledError  # nobody waits for it; the token went back already
        call.started = True
    try:
        return fn(*args)
    finally:
        try:
            loop.call_soon_threadsafe(limiter.release_on_behalf_of, call)
        except RuntimeError:
            pass  # the loop is closed: its limiter is gone with it


def _submit_limited(
    loop: asyncio.AbstractEventLoop,
    context: contextvars.Context,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    limiter: CapacityLimiter,
    call: _Call,
) -> asyncio.Future[T]:
    fut: asyncio.Future[T] = _submit(loop, context, _limited, (call, loop, limiter, fn, *args))

    def on_done(_: Any) -> None:
        with call.lock:
            if call.started:
                return  # the worker gives the token back when the function returns
            call.dropped = True
        limiter.release_on_behalf_of(call)

    fut.add_done_callback(on_done)
    return fut


async def _to_thread_async(
    context: contextvars.Context,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    cancellable: bool,
    limiter: CapacityLimiter | None,
) -> T:
    loop = asyncio.get_running_loop()
    if limiter is not None:
        call = _Call()
        await limiter.acquire_on_behalf_of(call)
        fut: asyncio.Future[T] = _submit_limited(loop, context, fn, args, limiter, call)
    else:
        fut = _submit(loop, context, fn, args)
    if cancellable:
        return await fut
    cancelled: asyncio.CancelledError | None = None
    while not fut.done():
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError as exc:
            cancelled = exc  # delivered once the function has returned (now, if it has)
        except BaseException:
            break  # the function raised: fut.result() raises it below
    return _outcome(fut, cancelled)


def _to_thread_green(
    context: contextvars.Context,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    cancellable: bool,
    limiter: CapacityLimiter | None,
) -> T:
    loop = get_hub().loop
    if limiter is not None:
        call = _Call()
        limiter.acquire_on_behalf_of(call)
        fut: asyncio.Future[T] = _submit_limited(loop, context, fn, args, limiter, call)
    else:
        fut = _submit(loop, context, fn, args)
    stopped: BaseException | None = None
    while not fut.done():
        waiter = Waiter()
        fut.add_done_callback(waiter.switch)
        try:
            waiter.wait(f"to_thread({getattr(fn, '__qualname__', fn)!r})")
        except (asyncio.CancelledError, GreenletExit) as exc:
            if fut.done():
                return _outcome(fut, exc)  # raises exc, caused by the function's error if any
            if cancellable:
                fut.cancel()  # not started yet: never runs; running: its result is dropped
                raise
            stopped = exc
        finally:
            fut.remove_done_callback(waiter.switch)
    return _outcome(fut, stopped)


def _submit(
    loop: asyncio.AbstractEventLoop, context: contextvars.Context, fn: Callable[..., T], args: tuple[Any, ...]
) -> asyncio.Future[T]:
    fut: asyncio.Future[T] = _get_pool().submit_to_loop(loop, context.run, (call_for_loop, loop, fn, *args))
    started = getattr(loop, "_executor_job_started", None)
    if started is not None:
        started(fut)  # a treadle loop knows a thread will wake it: no stall report meanwhile
    return fut


def _outcome(fut: asyncio.Future[T], stopped: BaseException | None) -> T:
    """The function's result, or the cancellation that came while it ran (caused by its error, if any)."""
    if stopped is None:
        return fut.result()
    error = None if fut.cancelled() else fut.exception()
    raise stopped from error

"""Green tasks: greenlets that run on the hub's loop and are asyncio futures too.

Owns: :class:`Greenlet` (gevent's interface: ``join``, ``get``, ``kill``,
``ready``, ``successful``, ``value``, ``exception``, ``name``; and asyncio's
future protocol: ``done``, ``result``, ``exception()``, ``cancel``,
``add_done_callback``, ``await``), and ``spawn``, ``spawn_later``, ``joinall``,
``killall``.

Never: switches except through :mod:`.hub` (``Waiter``/``switch_to_hub``), or
loses an outcome: a green task's exception is re-raised by ``get()``/``result()``
and ``await``, and one nobody retrieved is reported through the loop's
exception handler when the task is collected, as asyncio does for futures.

Discussion: a green task is an asyncio future by protocol
(``_asyncio_future_blocking``, ``get_loop``, ``__await__``), not by subclassing,
so ``asyncio.gather``/``wait``/``wait_for`` and ``await`` take it as it is, and
an async task that awaits it and is cancelled cancels it, as with any future.
Cancellation of a green task is ``asyncio.CancelledError`` thrown in at its
switch point; a task that catches it and goes on is not cancelled.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import itertools
import math
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from greenlet import GreenletExit, getcurrent, greenlet

from .hub import BlockingInHubError, Waiter, get_hub, in_hub, throw_into

__all__ = ["Greenlet", "joinall", "killall", "spawn", "spawn_later"]

_PENDING, _CANCELLED, _FINISHED = "PENDING", "CANCELLED", "FINISHED"

# Called with each green task that ends (the thread patcher forgets its
# threading._DummyThread there).  Empty unless something registered.
exit_hooks: list[Callable[[Any], None]] = []
_counter = itertools.count(1)


_FUNCTION = types.FunctionType
_CO_COROUTINE = inspect.CO_COROUTINE
_CO_GENERATOR = inspect.CO_GENERATOR


def _is_coroutine_function(fn: Any) -> bool:
    # A plain function with no attributes of its own (which is what spawn() is
    # given nearly always) is told by its code's flags alone; anything else asks
    # inspect, which knows methods, partials and markcoroutinefunction().
    if type(fn) is _FUNCTION and not fn.__dict__:
        return bool(fn.__code__.co_flags & _CO_COROUTINE)
    return inspect.iscoroutinefunction(fn)


def _is_generator_function(fn: Any) -> bool:
    if type(fn) is _FUNCTION:
        return bool(fn.__code__.co_flags & _CO_GENERATOR)
    return inspect.isgeneratorfunction(fn)


def check_timeout(timeout: float | None, name: str = "timeout") -> float | None:
    """Validate a timeout argument: None or a non-negative, non-NaN number of seconds."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds, got {timeout!r}")
    return float(timeout)


class _ExceptionView:
    """``task.exception``: gevent's attribute and asyncio's method in one.

    Truthy when the task failed; ``str``/``repr`` are the exception's; calling it
    is asyncio's ``exception()`` (raises ``CancelledError`` for a cancelled
    task, ``InvalidStateError`` for an unfinished one).
    """

    __slots__ = ("_task",)

    def __init__(self, task: Greenlet) -> None:
        self._task = task

    def __call__(self) -> BaseException | None:
        return self._task._future_exception()

    def __bool__(self) -> bool:
        return self._task._exc is not None

    def __repr__(self) -> str:
        return repr(self._task._exc)

    def __str__(self) -> str:
        return str(self._task._exc) if self._task._exc is not None else "None"

    def __eq__(self, other: object) -> bool:
        return self._task._exc is other or self._task._exc == other

    def __hash__(self) -> int:
        return hash(self._task._exc)


class Greenlet(greenlet):
    """A green task: a greenlet run by the hub, and an asyncio future.

    Create it with :func:`spawn` (or ``Greenlet(fn, *args, **kwargs).start()``).
    """

    # Slots rather than the instance dictionary (which the greenlet base still
    # offers for attributes of a user's own): an idle task is mostly its saved
    # stack and this object.  Compiled, they are the C fields of task.pxd.
    __slots__ = (
        "_hub", "_loop", "_fn", "_args", "_kwargs", "_name", "_state", "_result", "_exc", "_callbacks",
        "_log_traceback", "_started", "_cancel_requested", "_cancel_message", "_num_cancels_requested",
        "_start_handle", "_asyncio_future_blocking",
    )  # fmt: skip
    _treadle_green = True

    def __init__(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        self._setup(fn, args, kwargs)

    def _setup(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not callable(fn):
            raise TypeError(f"a green task needs a callable, got {fn!r}")
        if _is_coroutine_function(fn):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is a coroutine function: run it as an async task "
                "(loop.create_task(fn(...))) or await it; spawn() takes plain functions"
            )
        # greenlet.__init__ is not called: with no run or parent given it sets
        # nothing, and greenlet's __new__ made the greenlet already.
        self._asyncio_future_blocking = False
        hub = get_hub()
        self._hub = hub
        self._loop = hub.loop
        self._fn: Callable[..., Any] | None = fn
        self._args = args
        self._kwargs = kwargs
        self._name: int | str = next(_counter)  # the number until a name is asked for or set
        self._state = _PENDING
        self._result: Any = None
        self._exc: BaseException | None = None
        # Made by the first add_done_callback: most tasks never get one.
        self._callbacks: list[tuple[Callable[[Any], object], contextvars.Context]] | None = None
        self._log_traceback = False
        self._started = False
        self._cancel_requested = False
        self._cancel_message: str | None = None
        self._num_cancels_requested = 0  # asyncio.Task's count: cancel() adds one, uncancel() takes one back
        self._start_handle: asyncio.Handle | None = None

    @property
    def name(self) -> str:
        """``Greenlet-N`` (N counts the tasks made) unless set: settable, as gevent's."""
        name = self._name
        return name if isinstance(name, str) else f"Greenlet-{name}"

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    def __repr__(self) -> str:
        state = self._state.lower() if self._state != _PENDING else ("running" if self._started else "pending")
        return f"<Greenlet {self.name!r} {state}>"

    # -- starting and running ----------------------------------------------------

    def start(self) -> Greenlet:
        """Schedule the task to start on the next loop iteration; returns it."""
        self._start_soon()
        return self

    def _start_soon(self) -> None:
        if self._start_handle is None and not self._started and self._state == _PENDING:
            # The hub's wake context: _start only switches in, and the task runs
            # in its greenlet's own context, so no copy of the current one is made.
            self._start_handle = self._loop.call_soon(self._start, context=self._hub.wake_context)
            self._hub.tasks.add(self)

    def start_later(self, seconds: float) -> Greenlet:
        """Schedule the task to start after ``seconds``; returns it."""
        seconds = check_timeout(seconds, "seconds") or 0.0
        if self._start_handle is None and not self._started and self._state == _PENDING:
            self._start_handle = self._loop.call_later(seconds, self._start, context=self._hub.wake_context)
            self._hub.tasks.add(self)
        return self

    def _start(self) -> None:
        self._start_handle = None
        if self._state != _PENDING:
            return
        current = getcurrent()
        # This callback runs in the greenlet that runs the loop: that is the
        # hub, and the parent the task returns to when it finishes.
        self._hub.glet = current
        self.parent = current
        self._started = True
        self.switch()

    def run(self) -> None:  # called by greenlet on the first switch
        fn, args, kwargs = self._fn, self._args, self._kwargs
        self._fn = None
        self._args = ()
        self._kwargs = None  # type: ignore[assignment]  # not needed again: nothing kept alive while the task waits
        try:
            assert fn is not None
            result = fn(*args, **kwargs)
        except (asyncio.CancelledError, GreenletExit) as exc:
            self._finish_cancelled(exc)
        except (SystemExit, KeyboardInterrupt) as exc:
            self._finish(None, exc)
            raise
        except BaseException as exc:
            self._finish(None, exc)
        else:
            self._finish(result, None)

    def _finish(self, result: Any, exc: BaseException | None) -> None:
        self._result = result
        self._exc = exc
        self._state = _FINISHED
        self._forget()
        for hook in exit_hooks:
            hook(self)
        if exc is not None:
            if self._callbacks:
                # Someone waits: they may retrieve it; if nobody does, it is
                # reported when the task is collected, as asyncio's futures do.
                self._log_traceback = True
            else:
                # Nobody waits for this task: report the failure now, as gevent
                # prints it.  get() and await still re-raise it.
                self._loop.call_exception_handler(
                    {"message": f"Green task {self.name!r} failed and nobody waits for it", "exception": exc}
                )
        self._schedule_callbacks()

    def _finish_cancelled(self, exc: BaseException) -> None:
        self._exc = exc if isinstance(exc, asyncio.CancelledError) else asyncio.CancelledError()
        self._state = _CANCELLED
        self._forget()
        for hook in exit_hooks:
            hook(self)
        self._schedule_callbacks()

    def _forget(self) -> None:
        # The hub is None only when the collector cleared this task's fields
        # before greenlet, freeing it unfinished, threw GreenletExit in.
        hub = self._hub
        if hub is not None:
            hub.tasks.discard(self)

    def _schedule_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks, None
        for fn, ctx in callbacks or ():
            self._loop.call_soon(fn, self, context=ctx)

    def __del__(self) -> None:
        # getattr: __init__ may have failed (a bad argument) before setting it.
        if getattr(self, "_log_traceback", False) and not self._loop.is_closed():
            self._loop.call_exception_handler(
                {"message": f"Green task exception was never retrieved: {self!r}", "exception": self._exc}
            )

    # -- asyncio's future protocol ---------------------------------------------

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self) -> Any:
        """The return value; re-raises the task's exception; InvalidStateError if not done."""
        if self._state == _CANCELLED:
            raise self._cancelled_error()
        if self._state != _FINISHED:
            raise asyncio.InvalidStateError(f"{self!r} is not done yet")
        self._log_traceback = False
        if self._exc is not None:
            raise self._exc.with_traceback(self._exc.__traceback__)
        return self._result

    def _future_exception(self) -> BaseException | None:
        if self._state == _CANCELLED:
            raise self._cancelled_error()
        if self._state != _FINISHED:
            raise asyncio.InvalidStateError(f"{self!r} is not done yet")
        self._log_traceback = False
        return self._exc

    def _cancelled_error(self) -> asyncio.CancelledError:
        exc = self._exc
        return exc if isinstance(exc, asyncio.CancelledError) else asyncio.CancelledError()

    _make_cancelled_error = _cancelled_error  # asyncio.gather asks futures for it

    @property
    def exception(self) -> _ExceptionView:  # type: ignore[override]
        """gevent: the exception the task raised, or a falsy value; asyncio: call it."""
        return _ExceptionView(self)

    def add_done_callback(self, fn: Callable[[Any], object], *, context: contextvars.Context | None = None) -> None:
        """Call ``fn(task)`` on the loop once the task is done (at once if it is)."""
        ctx = context if context is not None else contextvars.copy_context()
        if self._state != _PENDING:
            self._loop.call_soon(fn, self, context=ctx)
        elif self._callbacks is None:
            self._callbacks = [(fn, ctx)]
        else:
            self._callbacks.append((fn, ctx))

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        if not self._callbacks:
            return 0
        kept = [(f, c) for f, c in self._callbacks if f != fn]
        removed = len(self._callbacks) - len(kept)
        self._callbacks = kept
        return removed

    def cancel(self, msg: Any = None) -> bool:
        """Request cancellation: ``CancelledError`` is raised in the task at its switch point.

        A task that has not started yet is cancelled at once.  Returns False if
        the task is already done.
        """
        if self._state != _PENDING:
            return False
        self._num_cancels_requested += 1
        if not self._started:
            if self._start_handle is not None:
                self._start_handle.cancel()
                self._start_handle = None
            self._finish_cancelled(asyncio.CancelledError(msg) if msg is not None else asyncio.CancelledError())
            return True
        if self is getcurrent():
            self._cancel_requested = True
            self._cancel_message = msg
        else:
            exc = asyncio.CancelledError(msg) if msg is not None else asyncio.CancelledError()
            self._loop.call_soon(throw_into, self, exc)
        return True

    def cancelling(self) -> int:
        """How many cancellations were requested and not taken back by ``uncancel()`` (as asyncio.Task's)."""
        return self._num_cancels_requested

    def uncancel(self) -> int:
        """Take back one cancellation request; returns how many are left (as asyncio.Task's)."""
        if self._num_cancels_requested > 0:
            self._num_cancels_requested -= 1
        return self._num_cancels_requested

    def __await__(self) -> Any:
        if not self.done():
            self._asyncio_future_blocking = True
            yield self
        if not self.done():
            raise RuntimeError("await wasn't used with future")
        return self.result()

    # -- gevent's interface --------------------------------------------------------

    def ready(self) -> bool:
        return self.done()

    def successful(self) -> bool:
        return self._state == _FINISHED and self._exc is None

    @property
    def value(self) -> Any:
        """The return value if the task finished successfully, else None."""
        return self._result if self.successful() else None

    @property
    def started(self) -> bool:
        return self._started

    def join(self, timeout: float | None = None) -> None:
        """Block the current green task until this one is done, or ``timeout`` passes.

        A switch point.  Returns None either way (check ``ready()``), as gevent's.
        """
        timeout = check_timeout(timeout)
        if self.done():
            return
        if in_hub():
            raise_blocking_in_hub("Greenlet.join()", "`await task`")
        _wait_for_tasks([self], timeout, 1, f"join({self.name!r})")

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The task's return value, waiting for it if ``block``; re-raises its exception.

        Raises ``TimeoutError`` if the task is not done when the wait ends.
        """
        timeout = check_timeout(timeout)
        if not self.done() and block:
            self.join(timeout)
        if not self.done():
            raise TimeoutError(f"{self!r} is not done")
        return self.result()

    def kill(
        self,
        exception: type[BaseException] | BaseException = asyncio.CancelledError,
        block: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Raise ``exception`` in the task (default: cancel it); wait for it to end if ``block``."""
        timeout = check_timeout(timeout)
        if isinstance(exception, type):
            if not issubclass(exception, BaseException):
                raise TypeError(f"kill() needs an exception class or instance, got {exception!r}")
        elif not isinstance(exception, BaseException):
            raise TypeError(f"kill() needs an exception class or instance, got {exception!r}")
        if self.done():
            return
        exc = exception() if isinstance(exception, type) else exception
        if not self._started:
            if isinstance(exc, asyncio.CancelledError | GreenletExit):
                self.cancel()
            else:
                if self._start_handle is not None:
                    self._start_handle.cancel()
                    self._start_handle = None
                self._finish(None, exc)
            return
        if self is getcurrent():
            raise exc
        if isinstance(exc, asyncio.CancelledError):
            self._num_cancels_requested += 1
        self._loop.call_soon(throw_into, self, exc)
        if block:
            self.join(timeout)


def raise_blocking_in_hub(what: str, fix: str) -> None:
    raise BlockingInHubError(
        f"{what} blocks, and was called from the event loop itself (an async task or a callback), which "
        f"would stop the loop: in async code use {fix}, or run the blocking code in a green task"
    )


def _task_done(t: Any) -> bool:
    """``t.done()``; read from a green task's state directly (compiled: a C field)."""
    if type(t) is Greenlet:
        task: Greenlet = t
        return task._state is not _PENDING
    return bool(t.done())


def _wait_for_tasks(tasks: Sequence[Any], timeout: float | None, count: int, what: str) -> None:
    """Block until ``count`` of ``tasks`` are done, or ``timeout`` passes."""
    pending = [t for t in tasks if not _task_done(t)]
    needed = count - (len(tasks) - len(pending))
    if needed <= 0:
        return
    if needed == len(pending):
        _wait_for_each(pending, timeout, what)
        return
    waiter = Waiter()
    remaining = [needed]

    def on_done(task: Any) -> None:
        remaining[0] -= 1
        if remaining[0] <= 0:
            waiter.switch()

    for t in pending:
        t.add_done_callback(on_done)
    loop = get_hub().loop
    timer = loop.call_later(timeout, waiter.switch) if timeout is not None else None
    try:
        waiter.wait(what)
    finally:
        if timer is not None:
            timer.cancel()
        for t in pending:
            t.remove_done_callback(on_done)


def _wait_for_each(tasks: list[Any], timeout: float | None, what: str) -> None:
    """Block until every one of ``tasks`` is done, or ``timeout`` passes.

    Waits for one task at a time, in order: the tasks that end meanwhile cost
    nothing more, so joining many tasks that run together costs a few wake-ups,
    not a done-callback and a wake-up for each.
    """
    loop = get_hub().loop
    deadline = None if timeout is None else loop.time() + timeout
    for t in tasks:
        if _task_done(t):
            continue
        waiter = Waiter()
        t.add_done_callback(waiter.switch)
        timer = None
        if deadline is not None:
            timer = loop.call_at(deadline, waiter.switch)
        try:
            waiter.wait(what)
        finally:
            if timer is not None:
                timer.cancel()
            t.remove_done_callback(waiter.switch)
        if not _task_done(t):
            return  # the timeout passed


def spawn(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Start ``fn(*args, **kwargs)`` as a green task; returns the task (not a switch point).

    A generator function runs as a generator task (see ``treadle.green.generators``).
    """
    if _is_generator_function(fn):
        from .generators import GeneratorTask

        return GeneratorTask(fn(*args, **kwargs)).start()
    return _spawn_greenlet(fn, args, kwargs)


def _spawn_greenlet(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Greenlet:
    """``Greenlet(fn, *args, **kwargs).start()``, without packing the arguments again or calling as Python."""
    task = Greenlet.__new__(Greenlet)
    task._setup(fn, args, kwargs)
    task._start_soon()
    return task


def spawn_later(seconds: float, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Greenlet:
    """Start ``fn(*args, **kwargs)`` as a green task after ``seconds``."""
    return Greenlet(fn, *args, **kwargs).start_later(seconds)


def _check_tasks(tasks: Iterable[Any], what: str) -> list[Any]:
    if asyncio.isfuture(tasks):
        raise TypeError(f"{what}() needs a list of tasks, got a single task: {what}([task])")
    if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Iterable):
        raise TypeError(f"{what}() needs an iterable of green tasks, got {type(tasks).__name__}")
    tasks = list(tasks)
    for t in tasks:
        if not isinstance(t, Greenlet) and not asyncio.isfuture(t):
            raise TypeError(f"{what}() needs green tasks (or asyncio tasks/futures), got {t!r}")
    return tasks


def joinall(
    tasks: Iterable[Any], timeout: float | None = None, raise_error: bool = False, count: int | None = None
) -> list[Any]:
    """Wait until all (or ``count``) of ``tasks`` are done or ``timeout`` passes; returns the done ones.

    A switch point.  With ``raise_error``, re-raises the first failure among them.
    """
    timeout = check_timeout(timeout)
    tasks = _check_tasks(tasks, "joinall")
    if count is not None and (not isinstance(count, int) or count < 0):
        raise ValueError(f"count must be a non-negative int, got {count!r}")
    need = len(tasks) if count is None else min(count, len(tasks))
    if in_hub() and need and not all(_task_done(t) for t in tasks):
        raise_blocking_in_hub("joinall()", "`await asyncio.gather(*tasks)`")
    _wait_for_tasks(tasks, timeout, need, f"joinall({len(tasks)} tasks)")
    done = [t for t in tasks if _task_done(t)]
    if raise_error:
        for t in done:
            if not t.cancelled() and (t._future_exception() if isinstance(t, Greenlet) else t.exception()):
                t.result()
    return done


def killall(
    tasks: Iterable[Any],
    exception: type[BaseException] | BaseException = asyncio.CancelledError,
    block: bool = True,
    timeout: float | None = None,
) -> None:
    """Kill every task of ``tasks`` with ``exception``; wait for them to end if ``block``."""
    timeout = check_timeout(timeout)
    tasks = _check_tasks(tasks, "killall")
    for t in tasks:
        if isinstance(t, Greenlet):
            t.kill(exception, block=False)
        else:
            t.cancel()
    if block:
        joinall(tasks, timeout)

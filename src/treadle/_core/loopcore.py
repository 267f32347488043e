"""The loop's hot state and hot path: what every scheduled callback and every iteration touches.

Owns: :class:`LoopCore`, the first base class of ``CoreLoop`` (``loop``):
the state read on every call and every iteration (the ready queue, the timer
queue, the poller, the clock, the closed/stopping/debug flags, the hooks),
the scheduling methods (``call_soon``, ``call_later``, ``call_at``,
``call_soon_threadsafe``, ``create_future``, ``create_task``, ``time``, ``get_debug``), and
the functions that run the loop: one iteration (``run_once``), its sleep
timeout, and ``run_until_stopped``.

Never: registers descriptors, handles signals or the wake-up pipe, or closes
anything: those are ``CoreLoop``'s (``loop``), which this module must not
import.  Never does I/O itself except through ``Poller.poll``.

Discussion: the loop must be a subclass of asyncio's ``BaseEventLoop`` (a
Python class), so its attributes are found by Python's attribute lookup, about
250 instructions each, several per iteration.  ``LoopCore`` is an extension
type when compiled (``loopcore.pxd``) whose fields are C fields, and
``CoreLoop`` derives from it and from ``BaseEventLoop`` at once: the layout
is ``LoopCore``'s, and ``BaseEventLoop`` adds only methods and an instance
dictionary.  The functions here take the loop as a ``LoopCore``, so they read
the fields directly; Python code (``BaseEventLoop``'s ``self._stopping =
True``, the tests) reads and writes them as attributes of the same names.  As
Python, ``LoopCore`` is a class with these names as slots.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import time
from asyncio import base_events, coroutines
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVarTuple, Unpack

from .handles import Handle, TimerHandle, new_handle, new_timer, run_ready
from .poller import Poller
from .timers import TimerQueue

__all__ = [
    "MAXIMUM_SELECT_TIMEOUT",
    "LoopCore",
    "check_callback",
    "registrations_lower_bound",
    "run_once",
    "run_until_stopped",
    "schedule_soon",
]

_Ts = TypeVarTuple("_Ts")

MAXIMUM_SELECT_TIMEOUT = 24 * 3600.0
_monotonic = time.monotonic
# collections.deque.append and popleft, unbound: a call of one looks nothing up, where ready.append(x)
# looks the method up and makes a bound method first, on every call.
_append = collections.deque.append
_popleft = collections.deque.popleft
_Future = asyncio.Future  # the C type (asyncio's _asyncio.Future), as BaseEventLoop.create_future makes
_Task = asyncio.Task  # the C type, as BaseEventLoop.create_task makes
_base_create_task = base_events.BaseEventLoop.create_task


def check_callback(callback: object, method: str) -> None:
    """TypeError unless ``callback`` is a callable that is not a coroutine (function)."""
    if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
        raise TypeError(f"coroutines cannot be used with {method}()")
    if not callable(callback):
        raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")


class LoopCore:
    """The hot state and the scheduling methods of treadle's loop (see the module docstring)."""

    __slots__ = (
        "_ready",
        "_closed",
        "_debug",
        "_stopping",
        "_thread_id",
        "_poller",
        "_timers",
        "_clock",
        "_clock_resolution",
        "_idle_hook",
        "_stall_hook",
        "_green_fdwaits",
        "_kept_idle",
        "_kept_readers",
        "_transports",
        "_recv_buffer",
        "_csock",
        "_wakeup_pending",
        "_task_factory",
    )

    _ready: collections.deque[Any]
    _closed: bool
    _debug: bool
    _stopping: bool
    _thread_id: int | None
    _poller: Poller
    _timers: TimerQueue
    # The clock (loop.time() and every deadline): time.monotonic, unless a
    # test installs a mock clock (treadle.testing).
    _clock: Callable[[], float]
    _clock_resolution: float
    # Called when the loop would sleep (treadle.testing; CoreLoop._hooked_timeout).
    _idle_hook: Callable[[float | None], float] | None
    # Called when the loop would sleep forever with nothing that could wake
    # it (CoreLoop._cannot_be_woken); the green hub uses it to report a stall.
    _stall_hook: Callable[[], None] | None
    # Registrations kept between two waits, which no task waits on now: they
    # cannot end a stall (CoreLoop._wanted_registrations).  The sock_* reads
    # keep theirs in _kept_readers (sockops); the green hub's descriptor waits
    # keep theirs in an object with kept_count() and holds_idle(fd, handle).
    _green_fdwaits: Any
    _kept_idle: int
    _kept_readers: dict[int, Any]
    _transports: Any  # fd -> transport (a WeakValueDictionary)
    _recv_buffer: bytearray  # what the socket transports read into
    _csock: Any  # the wake-up pipe's writing end
    _wakeup_pending: bool
    _task_factory: Any

    if TYPE_CHECKING:
        # CoreLoop's and BaseEventLoop's, which the methods here call.
        def _check_thread(self) -> None: ...
        def _write_to_self(self) -> None: ...
        def _run_ready_debug(self, ntodo: int) -> None: ...
        def _hooked_timeout(self, deadline: float | None) -> float: ...
        def _no_timeout(self) -> float: ...

    def time(self) -> float:
        return self._clock()

    def get_debug(self) -> bool:
        # BaseEventLoop's, read from the C field: asyncio's C Future and Task
        # call it when each one is made.
        return self._debug

    def call_soon(
        self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts, context: contextvars.Context | None = None
    ) -> Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            check_callback(callback, "call_soon")
        elif not callable(callback):
            check_callback(callback, "call_soon")
        handle = new_handle(callback, args, self, context, self._debug)
        _append(self._ready, handle)
        return handle

    # BaseEventLoop helpers (create_task, futures, executors) call this one.
    def _call_soon(self, callback: Callable[..., object], args: tuple[Any, ...], context: Any) -> Handle:
        return schedule_soon(self, callback, args, context)

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        if not isinstance(delay, (int, float)):
            raise TypeError(f"delay must be a number of seconds, got {type(delay).__name__}")
        if delay != delay:
            raise ValueError("delay must not be NaN")
        return _schedule_at(self, self._clock() + delay, callback, args, context, "call_later")

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        if not isinstance(when, (int, float)):
            raise TypeError(f"when must be a loop time (a number), got {type(when).__name__}")
        if when != when:
            raise ValueError("when must not be NaN")
        return _schedule_at(self, when, callback, args, context, "call_at")

    def call_soon_threadsafe(
        self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts, context: contextvars.Context | None = None
    ) -> Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug or not callable(callback):  # as call_soon: coroutines are looked for in debug mode
            check_callback(callback, "call_soon_threadsafe")
        handle = new_handle(callback, args, self, context, self._debug)
        _append(self._ready, handle)
        if not self._wakeup_pending:  # else the loop is already due to wake up
            self._write_to_self()
        return handle

    def _timer_handle_cancelled(self, handle: TimerHandle) -> None:
        self._timers.on_cancel(handle)

    def _add_callback(self, handle: Handle) -> None:
        if not handle._cancelled:
            _append(self._ready, handle)

    def create_task(self, coro: Any, *, name: Any = None, context: contextvars.Context | None = None) -> Any:
        # BaseEventLoop's, compiled, for the case without a task factory (the
        # same steps in 3.11-3.13); with a factory, BaseEventLoop's own.
        if self._task_factory is not None:
            return _base_create_task(self, coro, name=name, context=context)  # type: ignore[arg-type]
        if self._closed:
            raise RuntimeError("Event loop is closed")
        # Only the keywords given: the C type takes them from a dictionary.
        if name is None and context is None:
            task: Any = _Task(coro, loop=self)  # type: ignore[arg-type]
        else:
            task = _Task(coro, loop=self, name=name, context=context)  # type: ignore[arg-type]
        if self._debug:
            stack = task._source_traceback  # where the task was made
            if stack and stack[-1].filename == __file__:
                # This method's own frame (as Python; compiled, it has none).
                del stack[-1]
        return task

    def create_future(self) -> asyncio.Future[Any]:
        # BaseEventLoop's is the same line in an uncompiled method: every wait
        # of a primitive, a stream and asyncio.sleep() makes a future here.
        return _Future(loop=self)  # type: ignore[arg-type]


def schedule_soon(loop: LoopCore, callback: Callable[..., object], args: tuple[Any, ...], context: Any) -> Handle:
    """``loop._call_soon``: a handle at the end of the ready queue, no checks; a C function for compiled callers.

    The green wake-ups (a ``GreenWaiter``'s, ``green_wait``'s) schedule
    through it without looking up a method of the loop.
    """
    handle = new_handle(callback, args, loop, context, loop._debug)
    _append(loop._ready, handle)
    return handle


def run_until_stopped(loop: LoopCore) -> None:
    """Iterate ``loop`` until it is stopped (``run_forever``'s loop, without its set-up)."""
    while True:
        run_once(loop)
        if loop._stopping:
            break


def run_once(loop: LoopCore) -> None:
    """One iteration of ``loop``: poll for I/O, queue the due timers, run what was ready.

    With callbacks ready the poll does not wait, and ``_sleep_timeout``
    (timers, hooks, the stall check) is only asked when the loop could sleep.
    The poller is read each time: a forked child replaces it.
    """
    ready = loop._ready
    timers = loop._timers
    poller = loop._poller
    if ready or loop._stopping:
        poller.poll(0, ready)
    else:
        poller.poll(_sleep_timeout(loop), ready)
    if timers._heap:
        timers.pop_due(loop._clock() + loop._clock_resolution, ready)
    ntodo = len(ready)
    if loop._debug:
        loop._run_ready_debug(ntodo)
        return
    for _ in range(ntodo):
        run_ready(_popleft(ready))


def _sleep_timeout(loop: LoopCore) -> float:
    """The poll timeout of an iteration that starts with nothing ready and not stopping.

    The common case (a timer, or no timer and more than one registration that
    a task waits on) calls no method of the loop.
    """
    deadline = loop._timers.next_deadline()
    if loop._idle_hook is not None:
        return loop._hooked_timeout(deadline)
    if deadline is None:
        if loop._stall_hook is not None and registrations_lower_bound(loop) <= 1:
            return loop._no_timeout()
        return -1
    timeout: float = deadline - loop._clock()
    if timeout <= 0:
        return 0
    return timeout if timeout < MAXIMUM_SELECT_TIMEOUT else MAXIMUM_SELECT_TIMEOUT


def registrations_lower_bound(loop: LoopCore) -> int:
    """The poller's registrations minus every kept one that may be idle: at most the wanted ones.

    Exact when nothing is kept.  Above one, the loop can be woken through a
    descriptor, and the stall check need not look further.
    """
    green = loop._green_fdwaits
    bound = loop._kept_idle + (green.kept_count() if green is not None else 0)
    return len(loop._poller) - bound


def _schedule_at(loop: LoopCore, when: float, callback: Any, args: tuple[Any, ...], context: Any, method: str) -> Any:
    """``call_at`` once its deadline is checked; ``call_later`` comes here directly, not through ``call_at``."""
    if loop._closed:
        raise RuntimeError("Event loop is closed")
    if loop._debug:
        loop._check_thread()
        check_callback(callback, method)
    elif not callable(callback):
        check_callback(callback, method)
    timers = loop._timers
    timers._seq += 1
    seq = timers._seq
    timer = new_timer(when, seq, callback, args, loop, context, loop._debug)
    heapq.heappush(timers._heap, (when, seq, timer))
    return timer

"""The loop: ready queue, timers, poller, wake-up and signals, and ``run_forever``.

Design principles (check every change against them):

1. One iteration (``_run_once``) polls for I/O with a timeout derived from the
   ready queue and the earliest timer, moves due timers to the ready queue, then
   runs exactly the callbacks that were ready when the iteration began.
   Callbacks scheduled while it runs wait for the next iteration, as in asyncio,
   so that I/O is never starved.
2. The loop never blocks except in ``Poller.poll``.  Every wait in treadle is a
   registration with this loop (a handle in the ready queue, a timer, a reader or
   writer, a wake-up byte, a signal); green tasks and async tasks alike.
3. The loop does not care which greenlet runs ``run_forever``: the hub of green
   tasks is simply the greenlet that called it.  Callbacks must return to it.
4. Errors never pass silently: an exception in a callback goes to the exception
   handler and the loop keeps running; misuse raises at the call.

Owns: ``call_soon``/``call_later``/``call_at``/``call_soon_threadsafe``,
``run_forever``/``stop``/``close``, ``add_reader``/``add_writer`` and friends,
the self-pipe that wakes the poller from other threads and signal handlers,
``add_signal_handler``, and the loop's clock with its two hooks for tests
(``_set_clock``, ``_idle_hook``).

Never: creates transports or servers (``transports``, ``servers``), or
does socket I/O for callers (``sockops``).  Never imports from outside ``_core``
except the standard library.

The rest of ``asyncio.AbstractEventLoop`` that is not on the hot path
(``create_connection`` with happy eyeballs, ``create_server``, TLS through
``asyncio.sslproto``, executors, the exception handler, async generator
hooks) comes from ``asyncio.base_events.BaseEventLoop``, which this class
extends: those methods are the standard library's own, well tested, and call
back into the hooks defined here and in the mixins.
"""

from __future__ import annotations

import _socket
import _thread
import asyncio
import collections
import contextvars
import errno
import heapq
import logging
import os
import signal
import sys
import threading
import time
import warnings
import weakref
from asyncio import base_events, coroutines, events
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple, Unpack

from .._accel import is_extension_file
from .executor import ThreadPool, idle_worker_count
from .handles import Handle, TimerHandle, new_handle, new_timer, run_ready
from .poller import Poller, fileobj_to_fd
from .sysio import recv
from .timers import TimerQueue

__all__ = ["CoreLoop"]

# The standard library's originals, bound now: the monkey patcher may replace
# the module attributes later, and the loop must keep the real ones.
_socketpair = _socket.socketpair  # the C function: its sockets are never green
_get_ident = _thread.get_ident
_thread_count = _thread._count
_set_wakeup_fd = signal.set_wakeup_fd
_signal = signal.signal
_siginterrupt = signal.siginterrupt

_all_loops: weakref.WeakSet[CoreLoop] = weakref.WeakSet()
_Future = asyncio.Future  # the C type (asyncio's _asyncio.Future), as BaseEventLoop.create_future makes
_Task = asyncio.Task  # the C type, as BaseEventLoop.create_task makes


class _RunningHere(_thread._local):
    """Per thread (a real one: bound before any patching): the treadle loop it runs, if any."""

    loop: CoreLoop | None = None


_running_here = _RunningHere()

# Compiled, the loop a thread runs is kept in the thread state's own
# dictionary instead (threadstate.pxd): one dictionary look per ask.
_COMPILED = is_extension_file(__file__)
_LOOP_KEY = sys.intern("treadle.core.running_loop")


def _set_running_here(loop: CoreLoop | None) -> None:
    if _COMPILED:
        thread_set(_LOOP_KEY, loop)  # type: ignore[name-defined]  # noqa: F821
    else:
        _running_here.loop = loop


def running_loop() -> Any:
    """``asyncio._get_running_loop()``, without its ``getpid()`` system call (Python 3.11) when the loop is treadle's.

    For the checks made on every wait and every stream call ("is this async
    code?"); a loop other than treadle's is asked of asyncio.
    """
    loop = thread_get(_LOOP_KEY) if _COMPILED else _running_here.loop  # type: ignore[name-defined]  # noqa: F821
    if loop is not None:
        return loop
    return events._get_running_loop()


def _after_fork_in_child() -> None:
    for loop in list(_all_loops):
        loop._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)

logger = logging.getLogger("treadle")

_Ts = TypeVarTuple("_Ts")
_T = TypeVar("_T")

_MAXIMUM_SELECT_TIMEOUT = 24 * 3600.0
_RECV_BUFFER_SIZE = 256 * 1024  # what one read of a socket transport may bring
_monotonic = time.monotonic


def _sighandler_noop(signum: int, frame: Any) -> None:
    """Python-level handler; the C handler writes the signal number to the wake-up fd."""


def _set_result_unless_done(fut: Any, result: Any) -> None:
    if not fut.done():
        fut.set_result(result)


def _iterate(loop: CoreLoop, ready: collections.deque[Any], timers: TimerQueue) -> None:
    """One iteration of ``loop``: poll for I/O, queue the due timers, run what was ready.

    A function rather than a method so that, compiled, it calls the poller,
    the timer queue and the handles as C functions.  The poller is read each
    time: a forked child replaces it (``_after_fork_in_child``).  With
    callbacks ready the poll does not wait, and ``_sleep_timeout`` (timers,
    hooks, the stall check) is only asked when the loop could sleep.
    """
    poller: Poller = loop._poller
    if ready or loop._stopping:
        poller.poll(0, ready)
    else:
        poller.poll(_sleep_timeout(loop, timers, poller), ready)
    if timers._heap:
        timers.pop_due(loop._clock() + loop._clock_resolution, ready)
    ntodo = len(ready)
    if loop._debug:
        loop._run_ready_debug(ntodo)
        return
    popleft = ready.popleft
    for _ in range(ntodo):
        run_ready(popleft())


def _sleep_timeout(loop: CoreLoop, timers: TimerQueue, poller: Poller) -> float:
    """The poll timeout of an iteration that starts with nothing ready and not stopping.

    A function for the same reason as ``_iterate``: compiled, the common case
    (a timer, or no timer and more than one registration that a task waits
    on) calls no method of the loop.
    """
    deadline = timers.next_deadline()
    if loop._idle_hook is not None:
        return loop._hooked_timeout(deadline)  # type: ignore[no-any-return]
    if deadline is None:
        if loop._stall_hook is not None and _registrations_lower_bound(loop, poller) <= 1:
            return loop._no_timeout()
        return -1
    timeout: float = deadline - loop._clock()
    if timeout <= 0:
        return 0
    return timeout if timeout < _MAXIMUM_SELECT_TIMEOUT else _MAXIMUM_SELECT_TIMEOUT


def _registrations_lower_bound(loop: CoreLoop, poller: Poller) -> int:
    """The poller's registrations minus every kept one that may be idle: at most the wanted ones.

    Exact when nothing is kept.  Above one, the loop can be woken through a
    descriptor, and the stall check need not look further.
    """
    green = loop._green_fdwaits
    bound = loop._kept_idle + (green.kept_count() if green is not None else 0)
    return len(poller) - bound  # type: ignore[no-any-return]


def _schedule_at(loop: CoreLoop, when: float, callback: Any, args: tuple[Any, ...], context: Any, method: str) -> Any:
    """``call_at`` once its deadline is checked; ``call_later`` comes here directly, not through ``call_at``."""
    if loop._closed:
        raise RuntimeError("Event loop is closed")
    if loop._debug:
        loop._check_thread()
        _check_callback(callback, method)
    elif not callable(callback):
        _check_callback(callback, method)
    timers: TimerQueue = loop._timers
    timers._seq += 1
    seq = timers._seq
    timer = new_timer(when, seq, callback, args, loop, context)
    heapq.heappush(timers._heap, (when, seq, timer))
    return timer


def _check_callback(callback: object, method: str) -> None:
    if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
        raise TypeError(f"coroutines cannot be used with {method}()")
    if not callable(callback):
        raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")


class CoreLoop(base_events.BaseEventLoop):
    """The scheduling core of treadle's event loop (see the module docstring)."""

    # The state that call_soon and every iteration read, in slots rather than
    # the instance dictionary (which the loop still has, as BaseEventLoop's
    # subclass): a slot is found in the type's attribute cache and read by
    # its descriptor, where a dictionary attribute costs a failed type lookup
    # and then a dictionary lookup.  BaseEventLoop's own writes
    # (self._closed = ...) land in the slots too.
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

    # What this class uses of BaseEventLoop's private state and helpers, which
    # the type stubs do not list; the coupling is all here.
    _closed: bool
    _debug: bool
    _stopping: bool
    _thread_id: int | None
    _task_factory: Any
    _clock_resolution: float
    _current_handle: Any
    _default_executor: Any
    _executor_shutdown_called: bool
    if TYPE_CHECKING:

        def _check_closed(self) -> None: ...
        def _check_running(self) -> None: ...
        def _set_coroutine_origin_tracking(self, enabled: bool) -> None: ...
        def _asyncgen_firstiter_hook(self, agen: Any) -> None: ...
        def _asyncgen_finalizer_hook(self, agen: Any) -> None: ...

    def __init__(self) -> None:
        super().__init__()
        self._ready: collections.deque[Any] = collections.deque()
        self._timers = TimerQueue()
        self._poller = Poller()
        # The poller plays the selector for code that asks asyncio's selector
        # loop what a descriptor is polled for (it has ``get_key``).
        self._selector: Poller | None = self._poller
        # fd -> transport, so that add_reader() on a transport's socket fails loudly.
        self._transports: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._signal_handlers: dict[int, Handle] = {}
        self._ssock: _socket.socket | None = None
        self._csock: _socket.socket | None = None
        self._wakeup_pending = False
        # Called when the loop would sleep forever with nothing that could wake
        # it (see _cannot_be_woken); the green hub uses it to report a stall.
        self._stall_hook: Callable[[], None] | None = None
        # Registrations kept between two waits, which no task waits on now:
        # they cannot end a stall (see _wanted_registrations).  The sock_*
        # reads keep theirs here (sockops); the green hub's descriptor waits
        # keep theirs in an object with kept_count() and holds_idle(fd, handle).
        self._kept_readers: dict[int, Any] = {}
        self._kept_idle = 0
        self._green_fdwaits: Any = None
        self._executor_jobs = 0  # run_in_executor calls in flight
        # The clock (loop.time() and every deadline) and what the loop does
        # when it would sleep: time.monotonic and nothing, unless a test
        # installs a mock clock (treadle.testing; see _set_clock and
        # _hooked_timeout).  The default costs one attribute test, in
        # _sleep_timeout on iterations that start with nothing ready.
        self._clock: Callable[[], float] = _monotonic
        # What the socket transports read into (recv_into), then copy out of,
        # in the same callback: one buffer for the loop, no allocation per read.
        self._recv_buffer = bytearray(_RECV_BUFFER_SIZE)
        self._recv_view = memoryview(self._recv_buffer)
        self._idle_hook: Callable[[float | None], float] | None = None
        self._make_self_pipe()
        _all_loops.add(self)

    # -- the clock and scheduling ------------------------------------------------

    def time(self) -> float:
        return self._clock()

    def _set_clock(self, clock: Callable[[], float] | None) -> None:
        """Read the time from ``clock`` (loop seconds) instead of ``time.monotonic``; None: back to it.

        For treadle.testing's mock clock.  RuntimeError if a live timer is
        scheduled: its deadline is a time of the old clock.
        """
        if len(self._timers):
            raise RuntimeError("cannot change the clock of a loop that has timers scheduled")
        self._clock = _monotonic if clock is None else clock

    def call_soon(
        self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts, context: contextvars.Context | None = None
    ) -> Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            _check_callback(callback, "call_soon")
        elif not callable(callback):
            _check_callback(callback, "call_soon")
        handle = new_handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def create_task(  # type: ignore[override]
        self, coro: Any, *, name: str | None = None, context: contextvars.Context | None = None
    ) -> Any:
        # BaseEventLoop's, compiled, for the case without a task factory (the
        # same steps in 3.11-3.13); with a factory, BaseEventLoop's own.
        if self._task_factory is not None:
            return super().create_task(coro, name=name, context=context)
        if self._closed:
            raise RuntimeError("Event loop is closed")
        task: Any = _Task(coro, loop=self, name=name, context=context)
        stack = task._source_traceback  # debug mode: where the task was made
        if stack and stack[-1].filename == __file__:
            # This method's own frame (as Python; compiled, it has none).
            del stack[-1]
        return task

    def create_future(self) -> asyncio.Future[Any]:
        # BaseEventLoop's is the same line in an uncompiled method: every wait
        # of a primitive, a stream and asyncio.sleep() makes a future here.
        return _Future(loop=self)

    # BaseEventLoop helpers (create_task, futures, executors) call this one.
    def _call_soon(self, callback: Callable[..., object], args: tuple[Any, ...], context: Any) -> Handle:
        handle = new_handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

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
            _check_callback(callback, "call_soon_threadsafe")
        handle = new_handle(callback, args, self, context)
        self._ready.append(handle)
        if not self._wakeup_pending:  # else the loop is already due to wake up
            self._write_to_self()
        return handle

    def _timer_handle_cancelled(self, handle: TimerHandle) -> None:
        self._timers.on_cancel(handle)

    def _add_callback(self, handle: Handle) -> None:
        if not handle._cancelled:
            self._ready.append(handle)

    # -- running -----------------------------------------------------------------

    def run_forever(self) -> None:
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        old_agen_hooks = sys.get_asyncgen_hooks()
        try:
            self._thread_id = _get_ident()
            sys.set_asyncgen_hooks(
                firstiter=self._asyncgen_firstiter_hook,
                finalizer=self._asyncgen_finalizer_hook,
            )
            events._set_running_loop(self)
            _set_running_here(self)
            ready, timers = self._ready, self._timers
            while True:
                _iterate(self, ready, timers)
                if self._stopping:
                    break
        finally:
            self._stopping = False
            self._thread_id = None
            _set_running_here(None)
            events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def _no_timeout(self) -> float:
        """-1 (sleep until woken), unless nothing can ever wake the loop: then the stall hook reports it."""
        if self._stall_hook is not None and self._cannot_be_woken():
            self._stall_hook()
            if self._ready:
                return 0
        return -1

    def _hooked_timeout(self, deadline: float | None) -> float:
        """The poll timeout when an idle hook is installed (treadle.testing).

        Discussion: the hook is called only when the loop would sleep: nothing
        ready, not stopping, the earliest timer (``deadline``, None if there is
        none) not yet due.  It returns the real seconds to poll for, or -1 for
        no limit.  It may queue callbacks or move a mock clock to ``deadline``
        first and return 0, so that this iteration runs them; it must not run
        a callback itself, nor poll for the loop (it may wait for readiness
        without taking events: the poll that follows takes them).  A -1 goes
        through the stall check, so a program that nothing can wake still gets
        its NeverWokenError under a frozen clock.
        """
        if deadline is not None and deadline <= self._clock():
            return 0
        assert self._idle_hook is not None
        timeout = self._idle_hook(deadline)
        if timeout < 0:
            return self._no_timeout()
        return timeout if timeout < _MAXIMUM_SELECT_TIMEOUT else _MAXIMUM_SELECT_TIMEOUT

    def _run_once(self) -> None:
        _iterate(self, self._ready, self._timers)

    def _run_ready_debug(self, ntodo: int) -> None:
        ready = self._ready
        for _ in range(ntodo):
            handle = ready.popleft()
            if handle._cancelled:
                continue
            try:
                self._current_handle = handle
                t0 = _monotonic()
                handle._run()
                dt = _monotonic() - t0
                if dt >= self.slow_callback_duration:
                    described = base_events._format_handle(handle)  # type: ignore[attr-defined]
                    logger.warning("Executing %s took %.3f seconds", described, dt)
            finally:
                self._current_handle = None

    def _check_thread(self) -> None:
        # BaseEventLoop's version calls threading.get_ident(), which the
        # monkey patcher makes a green task's id; the loop's thread is what counts.
        if self._thread_id is None:
            return
        if _get_ident() != self._thread_id:
            raise RuntimeError("Non-thread-safe operation invoked on an event loop other than the current one")

    def _after_fork_in_child(self) -> None:
        """In a forked child: own epoll and wake-up pipe, not the parent's."""
        if self._closed:
            return
        assert self._ssock is not None and self._csock is not None
        # The epoll instance is shared with the parent: no epoll_ctl on it
        # here (unregistering the wake-up pipe from it would deafen the
        # parent's loop).  Renew first, then drop the pipe from the new one.
        self._poller = self._poller.renew()
        self._poller.remove_reader(self._ssock.fileno())
        self._selector = self._poller
        self._ssock.close()
        self._csock.close()
        self._wakeup_pending = False
        self._make_self_pipe()
        if self._signal_handlers:
            _set_wakeup_fd(self._csock.fileno())

    def _cannot_be_woken(self) -> bool:
        """True if no descriptor, signal, executor job or other thread can wake the loop.

        Conservative: any live thread other than this one counts as a possible
        waker, except the idle workers of treadle's thread pools (the default
        executor's, to_thread's): they hold nothing, and their work for this
        loop is counted in ``_executor_jobs`` while it runs.
        """
        if self._signal_handlers or self._executor_jobs or self._wanted_registrations() > 1:
            return False
        others = _thread_count()  # threads other than the main one
        main = threading.main_thread()
        if _get_ident() != main.ident:
            others -= 1  # this loop runs in one of them
            if main.is_alive():
                others += 1  # and the main thread may wake it
        others -= idle_worker_count()
        return others <= 0

    def _wanted_registrations(self) -> int:
        """How many registered descriptors some task or callback waits on (the wake-up pipe's included).

        Registrations kept between two waits with no wait on them now are left
        out.  The kept counts are upper bounds (a kept handle may have been
        replaced since), so the descriptors are looked at one by one only when
        those bounds leave at most one; above that the answer is a lower bound.
        """
        poller = self._poller
        lower = _registrations_lower_bound(self, poller)
        if lower == len(poller) or lower > 1:
            return lower  # exact (nothing kept), or a lower bound that already says "more than one"
        green = self._green_fdwaits
        kept = self._kept_readers
        for sock_kept in [k for k in kept.values() if k.handle._cancelled]:
            sock_kept.drop()  # replaced (add_reader, a transport): forget it
        wanted = 0
        for fd, reader, writer in poller.registrations():
            for handle in (reader, writer):
                if handle is None:
                    continue
                sock_kept = kept.get(fd)
                if sock_kept is not None and sock_kept.handle is handle and sock_kept.idle():
                    continue
                if green is not None and green.holds_idle(fd, handle):
                    continue
                wanted += 1
                break
        return wanted

    def run_in_executor(self, executor: Any, func: Callable[[*_Ts], _T], *args: *_Ts) -> asyncio.Future[_T]:
        if executor is None and (self._default_executor is None or isinstance(self._default_executor, ThreadPool)):
            # The default executor is treadle's pool of real threads, which
            # stays real when the monkey patcher makes `threading` green.
            self._check_closed()
            if self._debug:
                _check_callback(func, "run_in_executor")
            if self._default_executor is None:
                if self._executor_shutdown_called:
                    raise RuntimeError("Executor shutdown has been called")
                self._default_executor = ThreadPool(thread_name_prefix="asyncio")
            fut = self._default_executor.submit_to_loop(self, func, args)
        else:
            fut = super().run_in_executor(executor, func, *args)
        self._executor_job_started(fut)
        return fut

    def _executor_job_started(self, fut: asyncio.Future[Any]) -> None:
        """Work on another thread will complete ``fut``: until then the loop can be woken (no stall)."""
        self._executor_jobs += 1
        fut.add_done_callback(self._executor_job_done)

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        executor = self._default_executor
        if not isinstance(executor, ThreadPool):
            if sys.version_info >= (3, 12):
                await super().shutdown_default_executor(timeout)  # type: ignore[call-arg]
            else:
                await super().shutdown_default_executor()
            return
        self._executor_shutdown_called = True
        done = self.create_future()

        def on_exit() -> None:
            try:
                self.call_soon_threadsafe(_set_result_unless_done, done, None)
            except RuntimeError:
                pass  # the loop closed meanwhile

        if executor.shutdown(on_exit=on_exit) and not done.done():
            done.set_result(None)
        if timeout is None:
            await done
            executor.join()  # they have finished: returns at once
        else:
            try:
                await asyncio.wait_for(asyncio.shield(done), timeout)
                executor.join()
            except TimeoutError:
                warnings.warn(
                    f"The executor did not finish joining its threads within {timeout} seconds.",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def _executor_job_done(self, fut: Any) -> None:
        self._executor_jobs -= 1

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)
        super().close()
        self._timers.clear()
        self._kept_readers.clear()
        self._kept_idle = 0
        self._close_self_pipe()
        self._poller.close()
        self._selector = None

    # -- I/O callbacks -------------------------------------------------------------

    def _ensure_fd_no_transport(self, fd: Any) -> None:
        fileno = fileobj_to_fd(fd)
        # The dictionary of weak references under the WeakValueDictionary: its
        # get() is Python code, and this runs on every wait of a sock_* call.
        ref = self._transports.data.get(fileno)  # type: ignore[attr-defined]
        transport = None if ref is None else ref()
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    def _add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> Handle:
        self._check_closed()
        handle = new_handle(callback, args, self, None)
        self._poller.set_reader(fileobj_to_fd(fd), handle)
        return handle

    def _add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> Handle:
        self._check_closed()
        handle = new_handle(callback, args, self, None)
        self._poller.set_writer(fileobj_to_fd(fd), handle)
        return handle

    def _remove_reader(self, fd: Any) -> bool:
        if self._closed:
            return False
        return self._poller.remove_reader(fileobj_to_fd(fd))

    def _remove_writer(self, fd: Any) -> bool:
        if self._closed:
            return False
        return self._poller.remove_writer(fileobj_to_fd(fd))

    def add_reader(self, fd: Any, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts) -> None:
        """Call ``callback(*args)`` whenever ``fd`` is readable (level-triggered)."""
        self._ensure_fd_no_transport(fd)
        _check_callback(callback, "add_reader")
        self._drop_kept_reader(fd)
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd: Any) -> bool:
        self._ensure_fd_no_transport(fd)
        self._drop_kept_reader(fd)  # not a reader of the caller's: False, as asyncio
        return self._remove_reader(fd)

    def _drop_kept_reader(self, fd: Any) -> None:
        if self._kept_readers:
            kept = self._kept_readers.get(fileobj_to_fd(fd))
            if kept is not None:
                kept.drop()

    def add_writer(self, fd: Any, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts) -> None:
        """Call ``callback(*args)`` whenever ``fd`` is writable (level-triggered)."""
        self._ensure_fd_no_transport(fd)
        _check_callback(callback, "add_writer")
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd: Any) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    # -- wake-up from other threads and from signal handlers -------------------------

    def _make_self_pipe(self) -> None:
        ssock, csock = _socketpair()
        ssock.setblocking(False)
        csock.setblocking(False)
        self._ssock, self._csock = ssock, csock
        self._add_reader(ssock.fileno(), self._read_from_self)

    def _close_self_pipe(self) -> None:
        if self._ssock is None or self._csock is None:
            return
        self._poller.remove_reader(self._ssock.fileno())
        self._ssock.close()
        self._ssock = None
        self._csock.close()
        self._csock = None

    def _write_to_self(self) -> None:
        # Called from other threads and from signal handlers: no locks, and a
        # full pipe is fine (the loop is already due to wake up).
        csock = self._csock
        if csock is None or self._wakeup_pending:
            return
        self._wakeup_pending = True
        try:
            csock.send(b"\0")
        except OSError:
            pass

    def _read_from_self(self) -> None:
        assert self._ssock is not None
        try:
            while True:
                data = recv(self._ssock, 4096)
                if not data:  # None: drained
                    return
                for sig in data:
                    if sig:
                        self._handle_signal(sig)
        finally:
            # Discussion: clear the flag only after draining.  Cleared before,
            # a byte written by a thread after the clear could be drained here,
            # leaving the flag set with an empty pipe: every later
            # call_soon_threadsafe would skip its write and the loop would
            # sleep with callbacks ready.  Cleared after, a thread that saw the
            # flag set had already queued its callback, which the next
            # iteration runs because the ready queue is not empty.
            self._wakeup_pending = False

    def _process_events(self, event_list: Any) -> None:  # BaseEventLoop hook, unused
        pass

    # -- signals -----------------------------------------------------------------------

    def _check_signal(self, sig: Any) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def add_signal_handler(self, sig: int, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts) -> None:
        """Run ``callback(*args)`` on the loop when signal ``sig`` arrives (main thread only)."""
        if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        assert self._csock is not None
        try:
            # Raises ValueError outside the main thread: a loop running in
            # another thread cannot take over the process's signals.
            _set_wakeup_fd(self._csock.fileno())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc)) from None
        handle = new_handle(callback, args, self, None)
        self._signal_handlers[sig] = handle
        try:
            _signal(sig, _sighandler_noop)
            _siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                try:
                    _set_wakeup_fd(-1)
                except (ValueError, OSError) as nexc:
                    logger.info("set_wakeup_fd(-1) failed: %s", nexc)
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise

    def _handle_signal(self, sig: int) -> None:
        handle = self._signal_handlers.get(sig)
        if handle is None:
            return
        if handle._cancelled:
            self.remove_signal_handler(sig)
        else:
            self._ready.append(handle)

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler of ``sig``; True if there was one."""
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            _signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise
        if not self._signal_handlers:
            try:
                _set_wakeup_fd(-1)
            except (ValueError, OSError) as exc:
                logger.info("set_wakeup_fd(-1) failed: %s", exc)
        return True

"""The loop: ``run_forever``, descriptors, wake-up and signals, on the hot core of ``loopcore``.

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

Owns: :class:`CoreLoop`, built on ``loopcore.LoopCore`` (the hot state,
``call_soon`` and the other scheduling methods, one iteration):
``run_forever``/``close``, ``add_reader``/``add_writer`` and friends, the
self-pipe that wakes the poller from other threads and signal handlers,
``add_signal_handler``, the stall check, the debug-mode run of callbacks, and
the loop's clock with its two hooks for tests (``_set_clock``, ``_idle_hook``).

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
import errno
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
from .handles import Handle, new_handle
from .loopcore import (
    MAXIMUM_SELECT_TIMEOUT,
    LoopCore,
    check_callback,
    registrations_lower_bound,
    run_once,
    run_until_stopped,
)
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

_RECV_BUFFER_SIZE = 256 * 1024  # what one read of a socket transport may bring
_monotonic = time.monotonic


def _sighandler_noop(signum: int, frame: Any) -> None:
    """Python-level handler; the C handler writes the signal number to the wake-up fd."""


def _set_result_unless_done(fut: Any, result: Any) -> None:
    if not fut.done():
        fut.set_result(result)


class CoreLoop(LoopCore, base_events.BaseEventLoop):
    """The scheduling core of treadle's event loop (see the module docstring)."""

    # What this class uses of BaseEventLoop's private state and helpers, which
    # the type stubs do not list; the coupling is all here (and in LoopCore's
    # fields, which BaseEventLoop writes too: _ready, _closed, _debug, ...).
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
        # LoopCore's fields (BaseEventLoop.__init__ set _ready, _closed,
        # _debug, _stopping, _thread_id, _clock_resolution, _task_factory).
        self._timers = TimerQueue()
        self._poller = Poller()
        self._clock = _monotonic
        self._idle_hook = None
        self._stall_hook = None
        self._green_fdwaits = None
        self._kept_readers = {}
        self._kept_idle = 0
        # fd -> transport, so that add_reader() on a transport's socket fails loudly.
        self._transports = weakref.WeakValueDictionary()
        # What the socket transports read into (recv_into), then copy out of,
        # in the same callback: one buffer for the loop, no allocation per read.
        self._recv_buffer = bytearray(_RECV_BUFFER_SIZE)
        self._recv_view = memoryview(self._recv_buffer)
        self._csock = None
        self._wakeup_pending = False
        # The poller plays the selector for code that asks asyncio's selector
        # loop what a descriptor is polled for (it has ``get_key``).
        self._selector: Poller | None = self._poller
        self._signal_handlers: dict[int, Handle] = {}
        self._ssock: _socket.socket | None = None
        self._executor_jobs = 0  # run_in_executor calls in flight
        self._make_self_pipe()
        _all_loops.add(self)

    # -- the clock and scheduling ------------------------------------------------

    def _set_clock(self, clock: Callable[[], float] | None) -> None:
        """Read the time from ``clock`` (loop seconds) instead of ``time.monotonic``; None: back to it.

        For treadle.testing's mock clock.  RuntimeError if a live timer is
        scheduled: its deadline is a time of the old clock.
        """
        if len(self._timers):
            raise RuntimeError("cannot change the clock of a loop that has timers scheduled")
        self._clock = _monotonic if clock is None else clock

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
            run_until_stopped(self)
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
        return timeout if timeout < MAXIMUM_SELECT_TIMEOUT else MAXIMUM_SELECT_TIMEOUT

    def _run_once(self) -> None:
        run_once(self)

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
        lower = registrations_lower_bound(self)
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
                check_callback(func, "run_in_executor")
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
        handle = new_handle(callback, args, self, None, self._debug)
        self._poller.set_reader(fileobj_to_fd(fd), handle)
        return handle

    def _add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> Handle:
        self._check_closed()
        handle = new_handle(callback, args, self, None, self._debug)
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
        check_callback(callback, "add_reader")
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
        check_callback(callback, "add_writer")
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
        handle = new_handle(callback, args, self, None, self._debug)
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

"""Green ``_thread``: threads that are green tasks, locks that block only a green task.

Owns: :class:`GreenLock` (``_thread.lock``'s interface), :func:`start_new_thread`
(the body runs as a green task), :func:`get_ident` (a green task's identity),
:func:`_set_sentinel` (the lock ``threading.Thread.join`` waits on, released
when the green thread ends), and :func:`green_exit` (forget the
``threading._DummyThread`` of a green task that ended).

Never: lets a lock wait block the loop's thread: a contended ``acquire`` from
green code switches to the hub; from the hub itself (async code, a callback)
it raises ``BlockingInHubError``.  A lock is safe across OS threads too: its
state is guarded by a real lock, and a waiter in another thread is woken
through its own loop's ``call_soon_threadsafe``.

Discussion: ``get_ident`` returns the OS thread's identity in a thread's root
greenlet (so ``threading.main_thread()`` stays the main greenlet) and the
green task's ``id`` elsewhere.  Releasing a lock wakes the first waiter; the
waiter takes the lock if it is still free when it runs (a task that comes in
between may take it first, as with ``_thread.lock``).  A woken waiter that
gives up (timeout, cancellation) passes the wake-up on, so none is lost.
"""

from __future__ import annotations

import _thread
import asyncio
import collections
import math
import signal as _signal
import sys
import threading as _threading
from collections.abc import Callable
from typing import Any

from greenlet import getcurrent, greenlet

from ..green.hub import BlockingInHubError, Waiter, get_hub, in_hub, interrupt
from ..green.task import Greenlet

__all__ = [
    "GreenLock",
    "GreenThreadHandle",
    "green_exit",
    "get_ident",
    "make_thread_handle",
    "shutdown",
    "start_joinable_thread",
    "start_new_thread",
]

_real_get_ident = _thread.get_ident
_real_lock = _thread.allocate_lock
_get_ident = _thread.get_ident
_main_ident = _threading.main_thread().ident
_TIMEOUT = object()
TIMEOUT_MAX = _thread.TIMEOUT_MAX


def get_ident() -> int:
    """The current "thread": the OS thread in its root greenlet, else the green task."""
    current = getcurrent()
    if current.parent is None:
        return _real_get_ident()
    return id(current)


def _wake(waiter: Waiter, loop: Any) -> None:
    """Wake ``waiter`` on its own loop, from whichever thread releases."""
    try:
        if loop._thread_id == _real_get_ident() or loop._thread_id is None:
            loop.call_soon(waiter.switch, None)
        else:
            loop.call_soon_threadsafe(waiter.switch, None)
    except RuntimeError:
        pass  # that loop is closed: its waiter is gone with it


class GreenLock:
    """``_thread.lock`` for green tasks: ``acquire`` switches instead of blocking the thread."""

    __slots__ = ("_locked", "_waiters", "_guard", "__weakref__")
    _locked: bool
    _waiters: collections.deque[tuple[Waiter, Any]]
    _guard: Any

    if sys.version_info < (3, 13):

        def __new__(cls, *args: Any, **kwargs: Any) -> GreenLock:
            # As the standard type before 3.13: locks come from allocate_lock().
            raise TypeError(f"cannot create '{cls.__module__}.{cls.__qualname__}' instances")

    else:

        def __new__(cls) -> GreenLock:
            return _new_lock()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # As the standard lock type: final.
        raise TypeError("type 'treadle.monkey.greenthread.GreenLock' is not an acceptable base type")

    def _setup(self) -> None:
        self._locked = False
        self._waiters = collections.deque()
        self._guard = _real_lock()

    def __repr__(self) -> str:
        state = "locked" if self._locked else "unlocked"
        return f"<{state} treadle.monkey.GreenLock object at {id(self):#x}>"

    def locked(self) -> bool:
        return self._locked

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        if timeout != -1:
            if not isinstance(timeout, (int, float)):
                raise TypeError(f"timeout must be a number, got {type(timeout).__name__}")
            if math.isnan(timeout) or timeout < 0:
                raise ValueError("timeout value must be a non-negative number")
            if timeout > TIMEOUT_MAX:
                raise OverflowError("timeout value is too large")
        with self._guard:
            if not self._locked:
                self._locked = True
                return True
        if not blocking:
            return False
        return self._wait(None if timeout == -1 else float(timeout))

    def _wait(self, timeout: float | None) -> bool:
        if in_hub():
            raise BlockingInHubError(
                "a green lock (threading.Lock under treadle.monkey) is held by a green task and was "
                "acquired from the event loop itself (async code or a callback), which would stop the loop: "
                "use an asyncio lock in async code, or run the code that needs it in a green task"
            )
        loop = get_hub().loop
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            waiter = Waiter()
            entry = (waiter, loop)
            with self._guard:
                if not self._locked:
                    self._locked = True
                    return True
                self._waiters.append(entry)
            timer = None
            if deadline is not None:
                timer = loop.call_later(max(deadline - loop.time(), 0), waiter.switch, _TIMEOUT)
            got = False
            try:
                result = waiter.wait("a lock")
                if result is not _TIMEOUT:
                    with self._guard:
                        if not self._locked:
                            self._locked = True
                            got = True
                if got:
                    return True
                if result is _TIMEOUT:
                    return False
            finally:
                if timer is not None:
                    timer.cancel()
                if not got:
                    self._give_up(entry)

    def _give_up(self, entry: tuple[Waiter, Any]) -> None:
        """A waiter leaves without the lock: if it held the wake-up, pass it on."""
        with self._guard:
            try:
                self._waiters.remove(entry)
                return  # never woken: nothing to pass on
            except ValueError:
                pass
            nxt = self._waiters.popleft() if (self._waiters and not self._locked) else None
        if nxt is not None:
            _wake(*nxt)

    def release(self) -> None:
        with self._guard:
            if not self._locked:
                raise RuntimeError("release unlocked lock")
            self._locked = False
            nxt = self._waiters.popleft() if self._waiters else None
        if nxt is not None:
            _wake(*nxt)

    def _at_fork_reinit(self) -> None:
        self._locked = False
        self._waiters.clear()
        self._guard = _real_lock()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    acquire_lock = acquire
    release_lock = release
    locked_lock = locked


def _new_lock() -> GreenLock:
    lock = object.__new__(GreenLock)
    lock._setup()
    return lock


def allocate_lock() -> GreenLock:
    """``_thread.allocate_lock``: a new green lock."""
    return _new_lock()


# The locks threading.Thread.join() waits on, by green thread, released when it ends.
_sentinels: dict[greenlet, GreenLock] = {}


def _set_sentinel() -> GreenLock:
    lock = _new_lock()
    _sentinels[getcurrent()] = lock
    return lock


# Green threads started by start_new_thread and not yet finished (``_thread._count``).
_live = 0
_live_guard = _real_lock()


def _count() -> int:
    """``_thread._count``: the threads (green ones, once patched) that are still running."""
    return _live


def _run_thread(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    global _live
    try:
        function(*args, **kwargs)
    except (SystemExit, asyncio.CancelledError):
        pass  # the thread ends quietly, as a real one does on SystemExit
    except BaseException:
        # As _thread does for an exception no one catches in a thread.
        sys.unraisablehook(_Unraisable(sys.exc_info(), f"Exception ignored in thread started by {function!r}"))  # type: ignore[arg-type]
    finally:
        with _live_guard:
            _live -= 1
        lock = _sentinels.pop(getcurrent(), None)
        if lock is not None and lock.locked():
            lock.release()


class _Unraisable:
    def __init__(self, info: Any, message: str) -> None:
        self.exc_type, self.exc_value, self.exc_traceback = info
        self.err_msg = message
        self.object = None


def start_new_thread(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> int:
    """``_thread.start_new_thread``: run ``function(*args, **kwargs)`` as a green task; return its ident."""
    if not callable(function):
        raise TypeError("first arg must be callable")
    if not isinstance(args, tuple):
        raise TypeError("2nd arg must be a tuple")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError("optional 3rd arg must be a dictionary")
    task = Greenlet(_run_thread, function, args, kwargs or {})
    _start_counted(task)
    return id(task)


def _start_counted(task: Greenlet) -> None:
    """Start a green thread, counted by ``_count`` until ``_run_thread`` ends (or the start fails)."""
    global _live
    with _live_guard:
        _live += 1
    try:
        task.start()
    except BaseException:
        with _live_guard:
            _live -= 1
        raise


# -- Python 3.13+: joinable threads and their handles ---------------------------------------------


class GreenThreadHandle:
    """``_thread._ThreadHandle`` (3.13+) of a green thread: its ident, whether it ended, ``join``."""

    __slots__ = ("ident", "_done", "_ended", "__weakref__")

    def __init__(self, ident: int | None = None) -> None:
        self.ident = ident
        self._done = False
        self._ended = _new_lock()  # held until the thread ends
        self._ended.acquire()

    def __repr__(self) -> str:
        return f"<treadle.monkey._ThreadHandle object: ident={self.ident}>"

    def is_done(self) -> bool:
        return self._done

    def _set_done(self) -> None:
        if not self._done:
            self._done = True
            self._ended.release()

    def join(self, timeout: float | None = None) -> None:
        if self._done:
            return
        if self.ident == get_ident():
            raise RuntimeError("Cannot join current thread")
        if timeout is None or timeout < 0:
            got = self._ended.acquire()
        else:
            got = self._ended.acquire(timeout=min(timeout, TIMEOUT_MAX))
        if got:
            self._ended.release()


# Handles of the non-daemon green threads still running: interpreter exit waits for them.
_non_daemon: set[GreenThreadHandle] = set()


def make_thread_handle(ident: int) -> GreenThreadHandle:
    """``_thread._make_thread_handle``: a handle for a thread that already runs (a dummy thread)."""
    return GreenThreadHandle(ident)


def _run_joinable(function: Callable[[], Any], handle: GreenThreadHandle) -> None:
    try:
        _run_thread(function, (), {})
    finally:
        handle._set_done()
        _non_daemon.discard(handle)


def start_joinable_thread(
    function: Callable[[], Any], handle: GreenThreadHandle | None = None, daemon: bool = True
) -> GreenThreadHandle:
    """``_thread.start_joinable_thread`` (3.13+): run ``function()`` as a green task; return its handle."""
    if not callable(function):
        raise TypeError("thread function must be callable")
    if handle is None:
        handle = GreenThreadHandle()
    elif not isinstance(handle, GreenThreadHandle):
        raise TypeError(f"'handle' must be a _ThreadHandle, not {type(handle).__name__}")
    elif handle.ident is not None:
        raise RuntimeError("thread already started")
    task = Greenlet(_run_joinable, function, handle)
    handle.ident = id(task)
    if not daemon:
        _non_daemon.add(handle)
    try:
        _start_counted(task)
    except BaseException:
        _non_daemon.discard(handle)
        raise
    return handle


_real_shutdown = getattr(_thread, "_shutdown", None)


def shutdown() -> None:
    """``_thread._shutdown`` (3.13+): at interpreter exit, wait for the non-daemon threads, green then real."""
    while _non_daemon:
        handle = next(iter(_non_daemon))
        handle.join()
        _non_daemon.discard(handle)
    if _real_shutdown is not None:
        _real_shutdown()


_interrupt_main = _thread.interrupt_main


def get_main_thread_ident() -> int:
    """``_thread._get_main_thread_ident`` (3.13+), as ``threading`` calls it to make its main thread.

    That happens at import, in the main greenlet (the OS thread's ident), and
    in a forked child whose fork was called from a green task: that task then
    is the child's main thread, and this is its green ident.
    """
    return get_ident()


def interrupt_main(signum: int = _signal.SIGINT) -> None:
    """``_thread.interrupt_main``: the signal's handler runs in the main thread's main greenlet.

    Called from a green task (a green "thread"), the standard one would run
    the handler in that task, the one running when the interpreter checks for
    signals; for the default SIGINT handler, KeyboardInterrupt is raised in
    the main greenlet instead, where a real thread's call would raise it.
    """
    current = getcurrent()
    root = current
    while root.parent is not None:
        root = root.parent
    if current is root or _get_ident() != _main_ident or _signal.getsignal(signum) is not _signal.default_int_handler:
        _interrupt_main(signum)  # type: ignore[arg-type]
        return
    interrupt(get_hub(), root, KeyboardInterrupt())


_LOCAL_KEY = "_threading_local._localimpl."


def clear_local(local: Any) -> None:
    """Empty a ``_threading_local.local`` for every thread (at exit, while modules still work).

    On 3.13, ``threading`` keeps in such a local, per dummy thread, an object
    whose ``__del__`` forgets the dummy; for the green tasks that never ended
    (and the hub), this runs it before the interpreter tears modules down.
    """
    impl = object.__getattribute__(local, "_local__impl")
    for _, localdict in list(impl.dicts.values()):
        localdict.clear()


def green_exit(task: Greenlet) -> None:
    """Forget the ``threading._DummyThread`` made for a green task that has ended, and its locals.

    A real thread's locals die with it; a green task's ``threading.local``
    values (the pure-Python ``_threading_local``, keyed by the task's dummy
    thread) are dropped here.  On 3.13 one of them holds the dummy thread
    itself, a cycle that would otherwise keep both until exit.
    """
    import threading

    active = threading._active  # type: ignore[attr-defined]
    dummy = active.get(id(task))
    if dummy is None or not isinstance(dummy, threading._DummyThread):  # type: ignore[attr-defined]
        return
    for key, ref in list(vars(dummy).items()):
        if key.startswith(_LOCAL_KEY):
            impl = ref()
            entry = impl.dicts.get(id(dummy)) if impl is not None else None
            if entry is not None:
                entry[1].clear()  # the entry itself goes when the dummy thread is collected
    active.pop(id(task), None)

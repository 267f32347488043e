"""The hub: the greenlet that runs the loop, and the one way green code waits.

Design:

- The hub of a thread is whichever greenlet runs its treadle loop's
  ``run_forever``.  In an async program that is the greenlet that called
  ``run``/``run_until_complete`` (usually the main one).  In a gevent-style
  script whose main greenlet blocks while no loop runs, a hub greenlet is made
  here and runs the loop; the main greenlet then waits like any green task.
- Green code waits in exactly one place, :func:`switch_to_hub`.  The caller first
  arranges its wake-up (a loop callback that calls ``glet.switch(value)`` or
  ``glet.throw(exc)``), then switches to the hub; what the waker sends comes back
  from that call.  Cancellation, the stall report and tracing hook in here.
- Code running *in* the hub (an async task, a loop callback) must never wait this
  way: it would stop the loop.  There :func:`switch_to_hub` raises
  :class:`BlockingInHubError` with the fix in its message.

Owns: the per-thread :class:`Hub` (with its descriptor waits, ``fdwaits``),
:func:`get_hub`, :func:`switch_to_hub`, :func:`in_hub`, :func:`interrupt` (an
exception for a suspended greenlet, delivered now if it waits, else when it
resumes), and the stall report that turns "nothing can ever wake the program"
into :class:`NeverWokenError` listing every waiter and what it waits on.

Never: runs loop callbacks itself or touches the loop's queues; it asks the loop.

Discussion: when a loop was started by ordinary code (``run_until_complete``)
the hub learns which greenlet runs it from the first green operation made there
(an async task calling ``spawn``), and confirms it whenever a green task starts,
which by construction happens in a callback, in the loop's greenlet.

Discussion: a greenlet may be woken by two callbacks in one iteration (its
timeout and its event, say).  Every wait therefore goes through a
:class:`Waiter`, which is disarmed when the wait ends, however it ends; a
late waker finds it disarmed and does nothing, so no greenlet is ever resumed
at a switch point that is not waiting for it.
"""

from __future__ import annotations

import _thread
import asyncio
import contextvars
import sys
import threading
from typing import Any

from greenlet import getcurrent, greenlet

from .._accel import is_extension_file
from .._core import EventLoop, new_event_loop
from .._core.loop import running_loop

_get_ident = _thread.get_ident  # bound now: the monkey patcher makes threading's green

__all__ = [
    "BlockingInHubError",
    "Hub",
    "NeverWokenError",
    "Waiter",
    "cancel_green_tasks",
    "current_hub",
    "get_hub",
    "green_hub",
    "green_hub_or_async",
    "in_hub",
    "switch_to_hub",
]

_FIX = (
    "would stop the event loop: in async code await the async form (for example `await treadle.sleep(...)`, "
    "`await task`), or run blocking code in a green task (`treadle.spawn(fn, ...)`, "
    "`await treadle.run_green(fn, ...)`)"
)


class BlockingInHubError(RuntimeError):
    """A blocking (green) call was made from the hub: an async task or a loop callback."""


class NeverWokenError(RuntimeError):
    """The program waits and nothing left can ever wake it."""


class _LoopStopped:
    """Sent to a waiter when the hub greenlet's loop stops under it."""


def _root(glet: greenlet) -> greenlet:
    while glet.parent is not None:
        glet = glet.parent
    return glet


class Hub:
    """A thread's treadle loop and the greenlet that runs it."""

    __slots__ = ("loop", "glet", "waiters", "tasks", "fdwaits", "pending", "wake_context")

    def __init__(self, loop: EventLoop, glet: greenlet | None) -> None:
        self.loop = loop
        self.fdwaits = FdWaits(loop)  # green waits on descriptors
        # Exceptions to raise in a greenlet when it next resumes from (or
        # enters) a wait: see interrupt().
        self.pending: dict[greenlet, BaseException] = {}
        self.glet = glet  # the greenlet that runs loop.run_forever(), if known
        self.waiters: dict[greenlet, str] = {}  # who waits on what, for the stall report
        self.tasks: set[Any] = set()  # green tasks started and not yet done
        # The context that the green wake-ups and task starts of this hub run
        # in (``loop._call_soon(waiter.switch, (), hub.wake_context)``).  Such a
        # callback only switches to its task, which runs in its own greenlet's
        # context: one empty context spares a copy of the current one each
        # time.  A context can be entered once at a time, process-wide, and a
        # callback stays entered while the task it switched to runs: so one per
        # hub, whose callbacks run one after the other, never one shared by the
        # hubs of several threads.
        self.wake_context = contextvars.Context()
        loop._stall_hook = self._on_stall
        loop._green_fdwaits = self.fdwaits

    def _run(self) -> Any:
        self.loop.run_forever()
        return _LoopStopped

    def start_hub_greenlet(self) -> greenlet:
        """A greenlet that will run the loop; its parent is the thread's main greenlet."""
        glet = greenlet(self._run, parent=_root(getcurrent()))
        self.glet = glet
        return glet

    def _on_stall(self) -> None:
        """The loop would sleep forever: wake a waiter with :class:`NeverWokenError`."""
        if not self.waiters:
            return
        lines = [f"  {describe(g)} waits on {what}" for g, what in self.waiters.items()]
        message = (
            "the program waits and nothing can ever wake it (no ready callback, timer, I/O, thread or "
            "signal is left); waiting:\n" + "\n".join(lines)
        )
        # The main greenlet first: its caller is the one who can handle it.
        target = next((g for g in self.waiters if g.parent is None), next(iter(self.waiters)))
        self.loop.call_soon(throw_into, target, NeverWokenError(message))


def describe(glet: greenlet) -> str:
    name = getattr(glet, "name", None)
    if isinstance(name, str):
        return f"green task {name!r}"
    if glet.parent is None:
        return "the main greenlet"
    return f"greenlet {glet!r}"


def throw_into(glet: greenlet, exc: BaseException) -> None:
    """Loop callback: raise ``exc`` in ``glet`` at its switch point (if it still lives)."""
    if not glet.dead:
        glet.throw(exc)


def interrupt(hub: Hub, glet: greenlet, exc: BaseException) -> None:
    """Raise ``exc`` in ``glet`` (suspended) as soon as possible: now if it waits, else when it resumes.

    A greenlet whose wake-up is already queued resumes from its wait with
    ``exc`` instead of the value; one that waits is woken with it.
    """
    hub.pending[glet] = exc
    if glet in hub.waiters:
        hub.loop.call_soon(_deliver_pending, hub, glet)


def _deliver_pending(hub: Hub, glet: greenlet) -> None:
    exc = hub.pending.pop(glet, None)
    if exc is not None and not glet.dead and glet in hub.waiters:
        glet.throw(exc)


def switch_into(glet: greenlet, value: Any = None) -> None:
    """Loop callback: resume ``glet`` with ``value`` (if it still lives)."""
    if not glet.dead:
        glet.switch(value)


class _ThreadState(threading.local):
    """Per thread: its hub.  None until one is made, as a class default, so that reading it never raises.

    Discussion: ``getattr(threading.local(), "hub", None)`` on a thread without
    a hub builds and drops an AttributeError with a formatted message every
    time; in_hub() runs on every stream read and write, where that was 11% of
    an async echo's instructions.
    """

    hub: Hub | None = None


_local = _ThreadState()

# Compiled, the hub is kept in the thread state's own dictionary instead
# (_core/threadstate.pxd): one dictionary look, several times per green wait.
_COMPILED = is_extension_file(__file__)
_HUB_KEY = sys.intern("treadle.green.hub")


def _thread_hub() -> Hub | None:
    """This thread's hub, None until one is made."""
    if _COMPILED:
        return thread_get(_HUB_KEY)  # type: ignore[name-defined, no-any-return]  # noqa: F821
    return _local.hub


def _set_thread_hub(hub: Hub) -> None:
    if _COMPILED:
        thread_set(_HUB_KEY, hub)  # type: ignore[name-defined]  # noqa: F821
    else:
        _local.hub = hub


def get_hub() -> Hub:
    """The hub of this thread: that of the running treadle loop, or a new one.

    Raises ``RuntimeError`` if the running loop is not treadle's: green tasks
    need treadle's loop (use ``treadle.run`` or ``treadle.install()``).
    """
    hub: Hub | None = _thread_hub()
    if hub is not None and hub.loop._thread_id == _get_ident():
        # Its loop runs in this thread, so it is the running loop.  (Asking
        # asyncio costs a getpid() system call per wait on Python 3.11.)
        return hub
    running = running_loop()
    if running is not None:
        if hub is not None and hub.loop is running:
            return hub
        if not isinstance(running, EventLoop):
            raise RuntimeError(
                f"green tasks need a treadle loop, but the running loop is {type(running).__name__}: "
                "run the program with treadle.run(), or call treadle.install() before asyncio.run()"
            )
        current = getcurrent()
        # Called from the loop's own greenlet (an async task), or from a green
        # task of it, whose parent is the loop's greenlet.
        glet = current.parent if getattr(current, "_treadle_green", False) else current
        hub = Hub(running, glet)
        _set_thread_hub(hub)
        return hub
    if hub is None or hub.loop.is_closed():
        hub = Hub(new_event_loop(), None)
        _set_thread_hub(hub)
    return hub


def current_hub() -> Hub | None:
    """This thread's hub if it has one with an open loop; never makes one."""
    hub: Hub | None = _thread_hub()
    if hub is None or hub.loop.is_closed():
        return None
    return hub


def in_hub() -> bool:
    """True when the current greenlet is the one running the loop (async code, callbacks)."""
    hub: Hub | None = _thread_hub()
    if hub is None or hub.loop._thread_id is None:  # not is_running(): no method call
        return running_loop() is not None and not getattr(getcurrent(), "_treadle_green", False)
    return getcurrent() is hub.glet


def green_hub() -> Hub | None:
    """This thread's hub when the caller is green code under its running loop; None otherwise.

    None in async code and callbacks (the hub's own greenlet), and where no
    loop of this thread runs: the caller then takes the slow path
    (:func:`in_hub`, :func:`get_hub`).  One look for the common case of a
    green task about to wait.
    """
    hub: Hub | None = _thread_hub()
    if hub is not None and hub.loop._thread_id == _get_ident() and getcurrent() is not hub.glet:
        return hub
    return None


def green_hub_or_async() -> Hub | bool:
    """:func:`green_hub` and :func:`in_hub` in one look, for a method that serves both styles.

    The hub for green code under its running loop; True for async code (the
    hub's greenlet: a task or a callback); False for other green code (a plain
    script's main greenlet before anything runs the loop).
    """
    hub: Hub | None = _thread_hub()
    if hub is not None and hub.loop._thread_id == _get_ident():
        return hub if getcurrent() is not hub.glet else True
    return in_hub()


def switch_to_hub(what: str, hub: Hub | None = None) -> Any:
    """Suspend the current greenlet until a waker resumes it; return what the waker sends.

    The caller must already have arranged its wake-up.  ``what`` says what it
    waits on (shown if the program stalls); ``hub``, if the caller has it,
    saves looking it up again.  Raises :class:`BlockingInHubError` when called
    from the hub itself; raises whatever the waker throws in
    (``asyncio.CancelledError``, ``TimeoutError``, :class:`NeverWokenError`...).
    """
    current = getcurrent()
    if getattr(current, "_cancel_requested", False):
        # cancel() was called on this green task while it ran: deliver it here,
        # at its next switch point, as asyncio does for a task at its next await.
        current._cancel_requested = False  # type: ignore[attr-defined]
        raise asyncio.CancelledError(current._cancel_message)  # type: ignore[attr-defined]
    if hub is None:
        hub = get_hub()
    if hub.pending:
        # An exception parked for this greenlet while it ran (a cancel scope
        # cancelled from inside it): this wait is its next switch point.
        exc = hub.pending.pop(current, None)
        if exc is not None:
            raise exc
    if hub.loop._thread_id is not None:  # is_running(), without the method call
        target = hub.glet
        if target is None or current is target:
            raise BlockingInHubError(f"blocking call ({what}) from the hub {_FIX}")
    else:
        if hub.loop.is_closed():
            raise RuntimeError(f"cannot wait on {what}: the hub's event loop is closed")
        # Nothing runs the loop (a plain script's main greenlet, or a raw
        # greenlet): run it in a hub greenlet, as gevent does.
        target = hub.start_hub_greenlet()
        asyncio.set_event_loop(hub.loop)
    hub.waiters[current] = what
    try:
        value = target.switch()
    finally:
        hub.waiters.pop(current, None)
    if hub.pending:
        exc = hub.pending.pop(current, None)
        if exc is not None:
            raise exc
    if value is _LoopStopped:
        raise RuntimeError(f"the event loop stopped while waiting on {what}")
    return value


class Waiter:
    """One wait of one greenlet: wakers call ``switch``/``throw``; only the first counts.

    Create it in the greenlet that will wait, hand its ``switch``/``throw`` to
    the wakers (they run as loop callbacks), then call :meth:`wait`.
    """

    __slots__ = ("glet", "armed")

    def __init__(self) -> None:
        self.glet = getcurrent()
        self.armed = True

    def switch(self, value: Any = None) -> None:
        if self.armed:
            self.armed = False
            self.glet.switch(value)

    def switch_args(self, *args: Any) -> None:
        """A waker for callbacks that pass arguments (future done-callbacks, say)."""
        self.switch(args)

    def throw(self, exc: BaseException) -> None:
        if self.armed:
            self.armed = False
            self.glet.throw(exc)

    def wait(self, what: str, hub: Hub | None = None) -> Any:
        try:
            return switch_to_hub(what, hub)
        finally:
            self.armed = False


async def cancel_green_tasks() -> None:
    """Cancel every green task of the running loop's hub and wait until they are done."""
    hub: Hub | None = _thread_hub()
    if hub is None or hub.loop is not asyncio._get_running_loop():
        return
    while hub.tasks:
        tasks = list(hub.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# Last: it builds on this module's Waiter.  Imported here rather than when the
# first hub is made, because an import inside a wait (a green lock that
# importlib's module lock uses, once threads are patched) could nest.
from .fdwait import FdWaits  # noqa: E402

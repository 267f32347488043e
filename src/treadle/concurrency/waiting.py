"""How the toolkit's blocking methods wait, in both styles, in one queue.

Owns: :class:`WaitQueue`, the FIFO of waiters that a primitive's blocked
callers wait on (green tasks and async tasks in one queue, served in arrival
order); :class:`GreenWaiter`, a green task's entry in it; and :func:`in_async`,
the rule that picks the style: called from the hub (async code) a blocking
method returns an awaitable; from green code it blocks.

An async task's entry is a loop future that it awaits.  A green task's entry
is a :class:`GreenWaiter`: the part of the future's interface that the queue
and the primitives use (``done``, ``cancelled``, ``result``, ``set_result``,
``cancel``, ``get_loop``), whose ``set_result`` schedules the one callback that
switches back to the task.  The same wait through a loop future costs a
future, a done-callback list, and a handle made through the loop's public
``call_soon``.

Never: wakes a waiter twice, or loses a wake-up: a waiter that is cancelled
after it was granted something (the future has a result) gives it back
through the primitive's ``on_abandon`` hook before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from greenlet import getcurrent

from .._core.loop import running_loop
from .._core.loopcore import schedule_soon
from ..green.bridge import green_wait
from ..green.hub import Hub, get_hub, in_hub, switch_to_hub

__all__ = ["GreenWaiter", "WaitQueue", "current_loop", "green_wait", "in_async", "wait_in_queue"]

_PENDING, _DONE, _CANCELLED = 0, 1, 2


def in_async() -> bool:
    """True when the caller is async code (the hub): blocking methods must return awaitables there."""
    return in_hub()


def current_loop() -> asyncio.AbstractEventLoop:
    """The loop a waiter's future belongs to: the running one in async code, the hub's in green code."""
    loop = running_loop()
    if loop is not None and in_hub():
        return loop
    return get_hub().loop


if TYPE_CHECKING:
    from typing import TypeAlias


class GreenWaiter:
    """A green task's entry in a :class:`WaitQueue`: a loop future's part that the queue uses.

    Made in the task that will wait (it remembers the greenlet), then
    :meth:`wait` suspends the task until :meth:`set_result` (which schedules
    the switch back) or until something else resumes it (a cancellation, a
    timeout thrown in): from then on a wake-up still scheduled does nothing.
    """

    __slots__ = ("_hub", "_glet", "_state", "_value")

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._glet: Any = getcurrent()
        self._state = _PENDING
        self._value: Any = None

    def __repr__(self) -> str:
        state = ("pending", "finished", "cancelled")[self._state]
        return f"<GreenWaiter {state} for {self._glet!r}>"

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self) -> Any:
        if self._state == _DONE:
            return self._value
        if self._state == _CANCELLED:
            raise asyncio.CancelledError
        raise asyncio.InvalidStateError("Result is not ready.")

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._hub.loop  # type: ignore[no-any-return]

    def set_result(self, value: Any) -> None:
        """Finish with ``value`` and schedule the task's wake-up (InvalidStateError if already done)."""
        if self._state != _PENDING:
            raise asyncio.InvalidStateError(f"invalid state: {self!r}")
        self._state = _DONE
        self._value = value
        schedule_soon(self._hub.loop, self._wake, (), self._hub.wake_context)

    def cancel(self, msg: Any = None) -> bool:
        """Mark it cancelled if it is pending (True); the waiting task is resumed by whoever cancels it."""
        if self._state != _PENDING:
            return False
        self._state = _CANCELLED
        return True

    def _wake(self) -> None:
        glet = self._glet
        if glet is not None:
            self._glet = None
            glet.switch(self._value)

    def wait(self, what: str) -> Any:
        """Suspend the calling task (the one that made this) until woken; return what it was given."""
        try:
            return switch_to_hub(what, self._hub)
        finally:
            self._glet = None  # left, however: a wake-up still scheduled must not switch in


if TYPE_CHECKING:
    #: An entry's waiter: a loop future (async tasks) or a GreenWaiter (green tasks).
    AnyWaiter: TypeAlias = "asyncio.Future[Any] | GreenWaiter"


def _waiting(fut: AnyWaiter) -> bool:
    """True while ``fut`` still waits (not done): a green waiter's state read as a C field when compiled."""
    if type(fut) is GreenWaiter:
        waiter: GreenWaiter = fut  # type: ignore[assignment]
        return waiter._state == _PENDING
    return not fut.done()


def _complete(fut: AnyWaiter, value: Any) -> None:
    """``fut.set_result(value)``: a green waiter's as a C call when compiled."""
    if type(fut) is GreenWaiter:
        waiter: GreenWaiter = fut  # type: ignore[assignment]
        waiter.set_result(value)
    else:
        fut.set_result(value)


class WaitQueue:
    """The blocked callers of one primitive, oldest first: each a future and who it waits for.

    Compiled, a final extension type (``waiting.pxd``) whose methods the
    primitives call as C.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: collections.deque[tuple[AnyWaiter, Any]] = collections.deque()

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def add(self, who: Any = None, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[Any]:
        """A new waiter at the end of the queue, on behalf of ``who``, on ``loop`` (default: :func:`current_loop`)."""
        fut = (loop if loop is not None else current_loop()).create_future()
        self._entries.append((fut, who))
        return fut

    def add_green(self, who: Any, hub: Hub) -> GreenWaiter:
        """A new waiter for the calling green task at the end of the queue, on behalf of ``who``."""
        waiter = GreenWaiter(hub)
        self._entries.append((waiter, who))
        return waiter

    def waiting_for(self, who: Any) -> bool:
        for fut, entry_who in self._entries:
            if entry_who is who and _waiting(fut):
                return True
        return False

    def discard(self, fut: AnyWaiter) -> None:
        for i, (entry, _) in enumerate(self._entries):
            if entry is fut:
                del self._entries[i]
                return

    def pop_first_live(self) -> tuple[AnyWaiter, Any] | None:
        """Take the oldest waiter that still waits off the queue: (future, who); the caller completes it."""
        entries = self._entries
        while entries:
            entry = entries.popleft()
            if _waiting(entry[0]):
                return entry
        return None

    def put_back(self, entry: tuple[AnyWaiter, Any]) -> None:
        """Return an entry taken by :meth:`pop_first_live` to the head of the queue."""
        self._entries.appendleft(entry)

    def wake_where(self, match: Callable[[Any], bool], value: Any) -> int:
        """Complete with ``value`` every live waiter whose ``who`` matches."""
        woken = 0
        for fut, who in list(self._entries):
            if match(who) and _waiting(fut):
                self.discard(fut)
                _complete(fut, value)
                woken += 1
        return woken

    def wake_first(self, value: Any = True) -> bool:
        """Complete the oldest live waiter with ``value``; False if there is none."""
        entry = self.pop_first_live()
        if entry is None:
            return False
        _complete(entry[0], value)
        return True

    def wake_all(self, value: Any = True) -> int:
        """Complete every live waiter with ``value``, oldest first; how many."""
        entries = self._entries
        woken = 0
        while entries:
            fut = entries.popleft()[0]
            if _waiting(fut):
                _complete(fut, value)  # schedules its wake-up: nothing runs, nothing joins the queue here
                woken += 1
        return woken

    def abandon(self, fut: AnyWaiter, on_abandon: Callable[[Any], None] | None) -> None:
        """The waiter of ``fut`` leaves (cancelled, failed): pass on what it was granted, or drop its entry."""
        if fut.done() and not fut.cancelled():
            if on_abandon is not None:
                on_abandon(fut.result())
        else:
            if not fut.done():
                fut.cancel()
            self.discard(fut)


def wait_in_queue(
    waiters: WaitQueue, waiter: GreenWaiter, what: str, prim: Any, on_abandon: Callable[[Any], None] | None
) -> Any:
    """Green: wait on ``waiter`` (from ``waiters.add_green``) for primitive ``prim``.

    Abandoned after it was granted something: ``on_abandon(value)``, or if that
    is None, ``prim._abandon(value)``.

    A function that, compiled, calls ``GreenWaiter.wait`` and ``switch_to_hub``
    as C functions: each call level between a waiting task's body and its
    switch is C stack that the greenlet saves while it waits.
    """
    try:
        return waiter.wait(what)
    except BaseException:
        waiters.abandon(waiter, on_abandon if on_abandon is not None else prim._abandon)
        raise

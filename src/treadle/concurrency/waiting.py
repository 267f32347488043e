"""How the toolkit's blocking methods wait, in both styles, on one kind of waiter: a loop future.

Owns: :class:`WaitQueue`, the FIFO of futures that a primitive's blocked
callers wait on (green tasks and async tasks in one queue, served in arrival
order), and :func:`in_async`, the rule that picks the style: called from the
hub (async code) a blocking method returns an awaitable; from green code it
blocks, through :func:`treadle.green.bridge.green_wait`.

Never: wakes a waiter twice, or loses a wake-up: a waiter that is cancelled
after it was granted something (the future has a result) gives it back
through the primitive's ``on_abandon`` hook before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

from .._core.loop import running_loop
from ..green.bridge import green_wait
from ..green.hub import get_hub, in_hub

__all__ = ["WaitQueue", "current_loop", "green_wait", "in_async"]


def in_async() -> bool:
    """True when the caller is async code (the hub): blocking methods must return awaitables there."""
    return in_hub()


def current_loop() -> asyncio.AbstractEventLoop:
    """The loop a waiter's future belongs to: the running one in async code, the hub's in green code."""
    loop = running_loop()
    if loop is not None and in_hub():
        return loop
    return get_hub().loop


class WaitQueue:
    """The blocked callers of one primitive, oldest first: each a future and who it waits for."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: collections.deque[tuple[asyncio.Future[Any], Any]] = collections.deque()

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def add(self, who: Any = None, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[Any]:
        """A new waiter at the end of the queue, on behalf of ``who``, on ``loop`` (default: :func:`current_loop`)."""
        fut = (loop if loop is not None else current_loop()).create_future()
        self._entries.append((fut, who))
        return fut

    def waiting_for(self, who: Any) -> bool:
        return any(entry_who is who and not fut.done() for fut, entry_who in self._entries)

    def discard(self, fut: asyncio.Future[Any]) -> None:
        for i, (entry, _) in enumerate(self._entries):
            if entry is fut:
                del self._entries[i]
                return

    def pop_first_live(self) -> tuple[asyncio.Future[Any], Any] | None:
        """Take the oldest waiter that still waits off the queue: (future, who); the caller completes it."""
        while self._entries:
            fut, who = self._entries.popleft()
            if not fut.done():
                return fut, who
        return None

    def put_back(self, entry: tuple[asyncio.Future[Any], Any]) -> None:
        """Return an entry taken by :meth:`pop_first_live` to the head of the queue."""
        self._entries.appendleft(entry)

    def wake_where(self, match: Callable[[Any], bool], value: Any) -> int:
        """Complete with ``value`` every live waiter whose ``who`` matches."""
        woken = 0
        for fut, who in list(self._entries):
            if match(who) and not fut.done():
                self.discard(fut)
                fut.set_result(value)
                woken += 1
        return woken

    def wake_first(self, value: Any = True) -> bool:
        """Complete the oldest live waiter with ``value``; False if there is none."""
        entry = self.pop_first_live()
        if entry is None:
            return False
        entry[0].set_result(value)
        return True

    def wake_all(self, value: Any = True) -> int:
        woken = 0
        while (entry := self.pop_first_live()) is not None:
            entry[0].set_result(value)
            woken += 1
        return woken

    def wait_green(self, fut: asyncio.Future[Any], what: str, on_abandon: Callable[[Any], None] | None) -> Any:
        """Green: wait for ``fut`` (from :meth:`add`); if abandoned after it was granted, ``on_abandon(value)``."""
        try:
            return green_wait(fut, what)
        except BaseException:
            self.abandon(fut, on_abandon)
            raise

    def abandon(self, fut: asyncio.Future[Any], on_abandon: Callable[[Any], None] | None) -> None:
        """The waiter of ``fut`` leaves (cancelled, failed): pass on what it was granted, or drop its entry."""
        if fut.done() and not fut.cancelled():
            if on_abandon is not None:
                on_abandon(fut.result())
        else:
            if not fut.done():
                fut.cancel()
            self.discard(fut)

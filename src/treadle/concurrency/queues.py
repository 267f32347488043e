"""Queues for green and async tasks alike: Queue (FIFO), LifoQueue, PriorityQueue.

A green producer and an async consumer (or any mix) share one queue: ``put``
and ``get`` block a green task and are awaited by an async task.  Waiters are
served in arrival order: an item goes straight to the oldest waiting getter,
and a slot freed by a ``get`` is reserved for the oldest waiting putter, so
nobody overtakes a waiter.  ``task_done``/``join`` and ``shutdown`` follow
``asyncio.Queue`` (3.13) and ``queue.Queue``.

Owns: the queue classes, their exceptions (each is also the standard
library's and asyncio's, so either ``except`` clause catches it) and
``statistics()``.

Never: loses or duplicates an item.  A getter cancelled after an item was
handed to it gives the item back (to the next getter, or to the head of the
queue); a putter cancelled after a slot was reserved for it frees the slot
for the next putter and its item is not put.  Not thread-safe (one loop).
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import queue as _stdqueue
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..green.hub import green_hub_or_async
from ..green.task import check_timeout
from .sync import _TIMED_OUT, Event, _Waitable, start_async_wait
from .waiting import WaitQueue, in_async

__all__ = [
    "LifoQueue",
    "PriorityQueue",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "QueueShutDown",
    "QueueStatistics",
]

T = TypeVar("T")

_ShutDownBases: tuple[type[BaseException], ...] = tuple(
    base for base in (getattr(asyncio, "QueueShutDown", None), getattr(_stdqueue, "ShutDown", None)) if base
) or (Exception,)


class QueueEmpty(asyncio.QueueEmpty, _stdqueue.Empty):
    """``get`` without waiting (or after its timeout) found the queue empty."""


class QueueFull(asyncio.QueueFull, _stdqueue.Full):
    """``put`` without waiting (or after its timeout) found the queue full."""


class QueueShutDown(*_ShutDownBases):  # type: ignore[misc]
    """The queue was shut down: no more ``put``; ``get`` once it is empty (at once if shut down ``immediate``)."""


_SHUT = object()  # what a waiter is woken with when the queue shuts down
_SLOT = object()  # what a putter is woken with: a slot is reserved for it


@dataclass(frozen=True)
class QueueStatistics:
    current_buffer_used: int
    max_buffer_size: int
    tasks_waiting_put: int
    tasks_waiting_get: int
    unfinished_tasks: int


class Queue(_Waitable, Generic[T]):
    """A FIFO queue (``maxsize`` <= 0: unbounded)."""

    __slots__ = (
        "_maxsize",
        "_items",
        "_putters",
        "_reserved",
        "_in_flight",
        "_unfinished",
        "_finished",
        "_shut",
        "_immediate",
    )

    def __init__(self, maxsize: int = 0) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int, got {maxsize!r}")
        super().__init__()  # self._waiters: the getters
        self._maxsize = maxsize
        self._items: Any = self._new_items()
        self._putters = WaitQueue()
        self._reserved = 0  # free slots promised to woken putters that have not run yet
        self._in_flight = 0  # items handed to woken getters that have not run yet (they still take a slot)
        self._unfinished = 0
        self._finished = Event()
        self._finished.set()
        self._shut = False
        self._immediate = False

    # -- the container, overridden by LifoQueue and PriorityQueue ---------------------------------------

    def _new_items(self) -> Any:
        return collections.deque()

    def _push(self, item: T) -> None:
        self._items.append(item)

    def _pop(self) -> T:
        return self._items.popleft()  # type: ignore[no-any-return]

    def _push_back(self, item: T) -> None:
        """An item handed back by a cancelled getter: it goes where it would be taken next."""
        self._items.appendleft(item)

    # -- state --------------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"<treadle.{type(self).__name__} maxsize={self._maxsize} qsize={len(self._items)}, "
            f"{len(self._waiters)} getting, {len(self._putters)} putting{', shut down' if self._shut else ''}>"
        )

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self._maxsize <= len(self._items) + self._reserved + self._in_flight

    def is_shutdown(self) -> bool:
        return self._shut

    def statistics(self) -> QueueStatistics:
        return QueueStatistics(
            current_buffer_used=len(self._items),
            max_buffer_size=self._maxsize,
            tasks_waiting_put=len(self._putters),
            tasks_waiting_get=len(self._waiters),
            unfinished_tasks=self._unfinished,
        )

    # -- put -------------------------------------------------------------------------------------------------

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> Any:
        """Put ``item`` in, waiting while the queue is full; ``QueueFull`` if not ``block`` or after ``timeout``.

        Both styles: blocks a green task; in async code, ``await q.put(item)``.
        """
        timeout = check_timeout(timeout)
        where = green_hub_or_async()
        if where is True:
            return self._put_async(item, block, timeout)
        if self._try_put(item):
            return None
        if not block or timeout == 0:
            raise QueueFull
        self._on_slot(
            item, self._wait_green("Queue.put()", timeout, None, self._putters, self._abandon_slot, where or None)
        )
        return None

    async def _put_async(self, item: T, block: bool, timeout: float | None) -> None:
        if self._try_put(item):
            return
        if not block or timeout == 0:
            raise QueueFull
        self._on_slot(item, await self._wait_put_async(timeout))

    def put_nowait(self, item: T) -> None:
        """Put ``item`` in if there is room (and no putter waits), else ``QueueFull``."""
        if not self._try_put(item):
            raise QueueFull

    def _try_put(self, item: T) -> bool:
        if self._shut:
            raise QueueShutDown("put() on a shut down queue")
        if self._putters or self.full():
            return False
        self._deliver(item)
        return True

    def _deliver(self, item: T) -> None:
        """A new item: straight to the oldest waiting getter, or into the queue."""
        self._unfinished += 1
        self._finished.clear()
        if self._waiters.wake_first(item):
            self._in_flight += 1
        else:
            self._push(item)

    def _on_slot(self, item: T, woken: Any) -> None:
        if woken is _TIMED_OUT:
            raise QueueFull
        if woken is _SHUT:
            raise QueueShutDown("the queue was shut down while put() waited")
        self._reserved -= 1  # the slot reserved for this putter
        if self._shut:
            self._free_slots()
            raise QueueShutDown("the queue was shut down while put() waited")
        self._deliver(item)
        self._free_slots()  # the item may have gone straight to a getter: the slot is free again

    def _wait_put_async(self, timeout: float | None) -> Any:
        return self._wait_async(timeout, None, self._putters, self._abandon_slot)

    def _abandon_slot(self, woken: Any) -> None:
        if woken is _SLOT:
            self._reserved -= 1  # a cancelled putter's slot goes to the next one
            self._free_slots()

    def _free_slots(self) -> None:
        """Reserve the free slots for the oldest waiting putters and wake them."""
        if self._shut:
            return
        while self._putters and (
            self._maxsize <= 0 or len(self._items) + self._reserved + self._in_flight < self._maxsize
        ):
            if not self._putters.wake_first(_SLOT):
                break
            self._reserved += 1

    # -- get -------------------------------------------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take the next item, waiting while the queue is empty; ``QueueEmpty`` if not ``block`` or after ``timeout``.

        Both styles: blocks a green task; in async code, ``await q.get()``.
        """
        timeout = check_timeout(timeout)
        where = green_hub_or_async()
        if where is True:
            return self._get_async(block, timeout)
        found, item = self._try_get()
        if found:
            return item
        if not block or timeout == 0:
            raise QueueEmpty
        return self._on_item(self._wait_green("Queue.get()", timeout, hub=where or None))

    async def _get_async(self, block: bool, timeout: float | None) -> T:
        found, item = self._try_get()
        if found:
            return item
        if not block or timeout == 0:
            raise QueueEmpty
        # _wait_async, inline: one coroutine less per wait.
        waiters = self._waiters
        fut, timer = start_async_wait(waiters, None, timeout)
        try:
            woken = await fut
        except BaseException:
            waiters.abandon(fut, self._abandon)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        return self._on_item(woken)

    def get_nowait(self) -> T:
        """The next item if there is one, else ``QueueEmpty``."""
        found, item = self._try_get()
        if not found:
            raise QueueEmpty
        return item

    def _try_get(self) -> tuple[bool, Any]:
        if self._items and not self._waiters:
            item = self._pop()
            self._free_slots()
            return True, item
        if self._shut:
            raise QueueShutDown("get() on a shut down, empty queue")
        return False, None

    def _on_item(self, woken: Any) -> T:
        if woken is _TIMED_OUT:
            raise QueueEmpty
        if woken is _SHUT:
            raise QueueShutDown("the queue was shut down while get() waited")
        self._in_flight -= 1  # this getter has its item: its slot is free
        self._free_slots()
        return woken  # type: ignore[no-any-return]

    def _abandon(self, item: Any) -> None:
        # A getter that was handed ``item`` left before it ran: the next getter
        # gets it, or it goes back to the head of the queue.
        if item is _TIMED_OUT or item is _SHUT:
            return
        if self._immediate:  # shut down at once meanwhile: dropped, as the items in the queue were
            self._in_flight -= 1
            self.task_done()
            return
        if not self._waiters.wake_first(item):  # else still in flight, to the next getter
            self._in_flight -= 1
            self._push_back(item)

    # -- task_done, join, shutdown -----------------------------------------------------------------------

    def task_done(self) -> None:
        """One item taken earlier is processed; ``join`` returns when every item put is."""
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            self._finished.set()

    def join(self) -> Any:
        """Wait until every item put has been processed (``task_done``). Both styles."""
        if in_async():
            return self._join_async()
        self._finished.wait()
        return None

    async def _join_async(self) -> None:
        await self._finished.wait()

    def shutdown(self, immediate: bool = False) -> None:
        """No more ``put``; ``get`` raises ``QueueShutDown`` once the queue is empty.

        With ``immediate``, the items left are dropped (counted as done for
        ``join``) and every ``get`` raises at once.  Waiting putters (and, when
        nothing is left to get, getters) are woken with ``QueueShutDown``.
        """
        self._shut = True
        if immediate:
            self._immediate = True
            while self._items:
                self._pop()
                self.task_done()
        self._putters.wake_all(_SHUT)
        if not self._items:
            self._waiters.wake_all(_SHUT)


class LifoQueue(Queue[T]):
    """A last-in, first-out queue."""

    __slots__ = ()

    def _new_items(self) -> Any:
        return []

    def _pop(self) -> T:
        return self._items.pop()  # type: ignore[no-any-return]

    def _push_back(self, item: T) -> None:
        self._items.append(item)


class PriorityQueue(Queue[T]):
    """A queue that gives the smallest item first (``(priority, data)`` tuples, say)."""

    __slots__ = ()

    def _new_items(self) -> Any:
        return []

    def _push(self, item: T) -> None:
        heapq.heappush(self._items, item)

    def _pop(self) -> T:
        return heapq.heappop(self._items)  # type: ignore[no-any-return]

    def _push_back(self, item: T) -> None:
        heapq.heappush(self._items, item)

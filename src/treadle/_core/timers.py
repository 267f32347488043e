"""The timer queue: a binary heap of timer handles ordered by (deadline, order).

Owns: the heap, the count of cancelled timers still in it, and the sequence
numbers that keep timers due at the same instant in scheduling order.

Never: runs a callback or reads the clock.  The loop asks for the next deadline
and hands over the current time; the queue moves due handles to the ready queue.

Discussion: cancelling a timer is O(1); the handle stays in the heap, marked
cancelled (lazy deletion).  When cancelled entries are more than half of a heap
of at least ``_COMPACT_MIN`` entries, the heap is rebuilt without them in O(n),
so the cost is amortised over the cancellations that made it necessary and a
program that schedules and cancels millions of timeouts keeps a small heap.
Entries are ``(when, seq, handle)`` tuples so that heap comparisons stay in C.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from .handles import TimerHandle, timer_cancelled, timer_unschedule

__all__ = ["TimerQueue"]

_COMPACT_MIN = 100
# deque.append, unbound: a call of it looks nothing up, where ready.append(x)
# looks the method up and makes a bound method first, on every call.
_append = deque.append


class TimerQueue:
    __slots__ = ("_heap", "_ncancelled", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._ncancelled = 0
        self._seq = 0

    def __len__(self) -> int:
        """Live (not cancelled) timers."""
        return len(self._heap) - self._ncancelled

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def push(self, handle: TimerHandle) -> None:
        handle._scheduled = True
        heapq.heappush(self._heap, (handle._when, handle._seq, handle))

    def on_cancel(self, handle: TimerHandle) -> None:
        """Count a cancelled handle that is still in the heap; compact if worth it."""
        self._ncancelled += 1
        heap = self._heap
        if len(heap) >= _COMPACT_MIN and self._ncancelled * 2 > len(heap):
            live = []
            for entry in heap:
                h = entry[2]
                if timer_cancelled(h):
                    timer_unschedule(h)
                else:
                    live.append(entry)
            heapq.heapify(live)
            self._heap = live
            self._ncancelled = 0

    def next_deadline(self) -> float | None:
        """The deadline of the earliest live timer, or None if there is none."""
        heap = self._heap
        while heap:
            handle = heap[0][2]
            if not timer_cancelled(handle):
                return heap[0][0]
            heapq.heappop(heap)
            timer_unschedule(handle)
            self._ncancelled -= 1
        return None

    def pop_due(self, end: float, ready: deque[Any]) -> None:
        """Move every live timer due at or before ``end`` to ``ready``, in order."""
        heap = self._heap
        while heap and heap[0][0] <= end:
            handle = heapq.heappop(heap)[2]
            timer_unschedule(handle)
            if timer_cancelled(handle):
                self._ncancelled -= 1
            else:
                _append(ready, handle)

    def clear(self) -> None:
        for entry in self._heap:
            timer_unschedule(entry[2])
        self._heap = []
        self._ncancelled = 0

    def handles(self) -> list[TimerHandle]:
        """The live handles, earliest first (for introspection and tests)."""
        return [e[2] for e in sorted(self._heap) if not e[2]._cancelled]

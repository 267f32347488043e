"""gevent's ``Group`` and ``Pool``: sets of green tasks joined and killed together, and bounded concurrency.

``Group`` tracks the green tasks spawned through it (or added to it) until
they end; ``Pool(size)`` is a group that never runs more than ``size`` at once:
its ``spawn`` waits for a free slot.  Both have gevent's ``spawn``, ``map``,
``imap``, ``imap_unordered``, ``apply``, ``join`` and ``kill``.  These are the
green API: their blocking methods block a green task (from async code they
raise ``BlockingInHubError``; there, use ``asyncio.TaskGroup`` or
``asyncio.gather``).

Owns: :class:`Group` and :class:`Pool`.

Never: loses a task's failure: ``map`` and ``imap`` raise the first error
they reach, and a task that fails with nobody asking is reported as any green
task is.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..green.hub import BlockingInHubError
from ..green.task import Greenlet, joinall, killall
from .queues import Queue
from .sync import Semaphore
from .waiting import in_async

__all__ = ["Group", "Pool"]


class Group:
    """A set of green tasks: those spawned through it, or added, until each ends."""

    def __init__(self, *tasks: Greenlet) -> None:
        self.greenlets: set[Greenlet] = set()
        for task in tasks:
            self.add(task)

    def __repr__(self) -> str:
        return f"<treadle.{type(self).__name__} {len(self.greenlets)} tasks>"

    def __len__(self) -> int:
        return len(self.greenlets)

    def __contains__(self, task: object) -> bool:
        return task in self.greenlets

    def __iter__(self) -> Iterator[Greenlet]:
        return iter(list(self.greenlets))

    def add(self, task: Greenlet) -> None:
        """Track ``task`` until it ends."""
        if not isinstance(task, Greenlet):
            raise TypeError(f"{type(self).__name__}.add() takes a green task (treadle.Greenlet), got {task!r}")
        if task in self.greenlets:
            return
        self.greenlets.add(task)
        task.add_done_callback(self.discard)

    def discard(self, task: Any) -> None:
        self.greenlets.discard(task)

    def spawn(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Greenlet:
        """Start ``fn(*args, **kwargs)`` as a green task of this group."""
        task = Greenlet(fn, *args, **kwargs)
        self.start(task)
        return task

    def start(self, task: Greenlet) -> None:
        """Add the unstarted ``task`` and start it."""
        self.add(task)
        task.start()

    def full(self) -> bool:
        return False

    def wait_available(self, timeout: float | None = None) -> int | None:
        """A group is never full: returns at once."""
        return None

    def join(self, timeout: float | None = None, raise_error: bool = False) -> bool:
        """Wait until every task of the group has ended (or ``timeout``); True if they all have."""
        while self.greenlets:
            tasks = list(self.greenlets)
            done = joinall(tasks, timeout=timeout, raise_error=raise_error)
            self.greenlets.difference_update(done)  # (their done callbacks may not have run yet)
            if len(done) < len(tasks):
                return False  # timed out
        return True

    def kill(self, exception: Any = None, block: bool = True, timeout: float | None = None) -> None:
        """Kill every task of the group (cancel it, or raise ``exception`` in it)."""
        tasks = list(self.greenlets)
        if exception is None:
            killall(tasks, block=block, timeout=timeout)
        else:
            killall(tasks, exception, block=block, timeout=timeout)
        self.greenlets.difference_update(t for t in tasks if t.done())

    def killone(self, task: Greenlet, exception: Any = None, block: bool = True, timeout: float | None = None) -> None:
        if task in self.greenlets:
            if exception is None:
                task.kill(block=block, timeout=timeout)
            else:
                task.kill(exception, block=block, timeout=timeout)

    def apply(self, fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        """``fn(*args, **kwargs)`` in a task of this group; its result (or its error)."""
        return self.spawn(fn, *args, **(kwargs or {})).get()

    def map(self, fn: Callable[..., Any], iterable: Iterable[Any]) -> list[Any]:
        """``[fn(x) for x in iterable]``, each in a task of this group; the results in order."""
        return list(self.imap(fn, iterable))

    def imap(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]:
        """The results of ``fn(*args)`` for ``args`` in ``zip(*iterables)``, in order, as they come."""
        pending: collections.deque[Greenlet] = collections.deque()
        try:
            for args in zip(*iterables, strict=False):
                pending.append(self.spawn(fn, *args))
                while pending and pending[0].done():
                    yield pending.popleft().get()
            while pending:
                yield pending.popleft().get()
        finally:
            if pending:  # the caller stopped early (or a task failed): the rest are not wanted
                killall(list(pending), block=False)

    def imap_unordered(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]:
        """The results of ``fn(*args)`` for ``args`` in ``zip(*iterables)``, in the order they are ready."""
        finished: Queue[Any] = Queue()
        started: list[Greenlet] = []

        def feed() -> None:
            try:
                for args in zip(*iterables, strict=False):
                    task = self.spawn(fn, *args)
                    started.append(task)
                    task.add_done_callback(finished.put_nowait)
            finally:
                finished.put_nowait(_FED)

        feeder = Greenlet(feed)
        feeder.start()
        fed = False
        taken = 0
        try:
            while not (fed and taken == len(started)):
                item = finished.get()
                if item is _FED:
                    fed = True
                    continue
                taken += 1
                yield item.get()
            feeder.get()  # an error from the iterables
        finally:
            if not feeder.done():
                feeder.kill(block=False)
            left = [t for t in started if not t.done()]
            if left:
                killall(left, block=False)


_FED = object()  # the feeder of imap_unordered has started every task


class Pool(Group):
    """A group that runs at most ``size`` tasks at once: ``spawn`` waits for a free slot."""

    def __init__(self, size: int | None = None) -> None:
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
            raise TypeError(f"Pool size must be an int or None, got {size!r}")
        if size is not None and size < 1:
            raise ValueError(f"Pool size must be at least 1, got {size}")
        super().__init__()
        self.size = size
        self._slots = Semaphore(size) if size is not None else None

    def __repr__(self) -> str:
        return f"<treadle.Pool {len(self.greenlets)}/{self.size} tasks>"

    def full(self) -> bool:
        return self._slots is not None and self._slots.locked()

    def free_count(self) -> int | float:
        if self._slots is None:
            return float("inf")
        return self._slots.value

    def wait_available(self, timeout: float | None = None) -> int | None:
        """Wait until a slot is free (or ``timeout``); the number of free slots."""
        if self._slots is None:
            return None
        if self._slots.acquire(timeout=timeout):
            self._slots.release()
        return self._slots.value

    def start(self, task: Greenlet) -> None:
        if self._slots is not None:
            if not in_async():
                self._slots.acquire()  # a switch point while the pool is full
            elif not self._slots.acquire_nowait():
                raise BlockingInHubError(
                    "Pool.spawn() on a full pool would wait, which async code cannot do here: "
                    "spawn from a green task, or bound async work with treadle.Semaphore / CapacityLimiter"
                )
            task.add_done_callback(lambda _: self._slots.release())  # type: ignore[union-attr]
        super().start(task)

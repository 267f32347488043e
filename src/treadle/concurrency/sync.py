"""Synchronization for green and async tasks alike: Event, Lock, RLock, Semaphore, Condition, CapacityLimiter.

One object serves both styles ("one name, both styles"): a blocking method
called from green code blocks that green task; called from async code it
returns an awaitable (``await lock.acquire()``, ``async with lock``).  Green
and async tasks queue on the same object, and are served in arrival order:
a lock, a semaphore unit or a token is handed directly to the oldest waiter,
so a newcomer never overtakes it.

Owns: the primitives and their ``statistics()``.

Never: blocks the loop (a blocking method called from a loop callback, or a
plain ``with`` in async code, raises ``BlockingInHubError`` naming the fix),
or loses a hand-off: a waiter cancelled (or timed out) just after it was
handed the lock gives it to the next one.  Not thread-safe: use them from the
tasks of one loop (a green task and an async task of the same loop may share
them); ``treadle.to_thread`` and the monkey patcher's green locks are the way
across OS threads.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from greenlet import getcurrent

from .._core.loop import running_loop
from ..green.hub import BlockingInHubError, Hub, get_hub, green_hub_or_async
from ..green.task import check_timeout
from .waiting import WaitQueue, current_loop, in_async, wait_in_queue

if TYPE_CHECKING:
    from .waiting import AnyWaiter

__all__ = [
    "BoundedSemaphore",
    "CapacityLimiter",
    "CapacityLimiterStatistics",
    "Condition",
    "ConditionStatistics",
    "Event",
    "EventStatistics",
    "Lock",
    "LockStatistics",
    "RLock",
    "Semaphore",
    "SemaphoreStatistics",
]

_TIMED_OUT = object()


def _current_task() -> Any:
    """Who is calling: the async task, or the green task (greenlet)."""
    if in_async():
        task = asyncio.current_task()
        if task is None:
            raise BlockingInHubError(
                "a treadle primitive was used from a loop callback, outside any task: call it from a task"
            )
        return task
    return getcurrent()


def _no_plain_with(name: str) -> None:
    if in_async():
        raise BlockingInHubError(f"`with {name}` in async code would block the event loop: use `async with`")


def start_async_wait(waiters: WaitQueue, who: Any, timeout: float | None) -> tuple[Any, Any]:
    """Queue a future of the running loop on ``waiters``: the future, and the timer that ends its wait (or None).

    The caller awaits the future; if that raises, it calls
    ``waiters.abandon(fut, ...)``; either way it cancels the timer.
    """
    loop = running_loop()  # async code: the running loop (current_loop() would ask again); no getpid()
    fut = waiters.add(who, loop)
    timer = loop.call_later(timeout, _time_out, waiters, fut) if timeout is not None else None
    return fut, timer


def _time_out(waiters: WaitQueue, fut: AnyWaiter) -> None:
    """Timer callback: a waiter's timeout passed; it leaves the queue and wakes with ``_TIMED_OUT``."""
    if not fut.done():
        waiters.discard(fut)
        fut.set_result(_TIMED_OUT)


def _no_abandon(value: Any) -> None:
    """The abandon hook of a queue that has none."""


def _queue_and_wait_green(
    waiters: WaitQueue,
    prim: _Waitable,
    on_abandon: Callable[[Any], None] | None,
    what: str,
    timeout: float | None,
    who: Any,
    hub: Hub | None,
) -> Any:
    """Green: queue on ``waiters`` and wait; ``_TIMED_OUT`` after ``timeout`` (see ``_Waitable._wait_green``).

    ``on_abandon`` None: ``prim._abandon``, looked up only if the waiter
    abandons, so that no bound method lives as long as the wait.  A function
    that, compiled, the primitives call as C (``_Waitable._take``): fewer call
    levels on the stack that a waiting task saves.
    """
    waiter = waiters.add_green(who, hub if hub is not None else get_hub())
    timer = waiter.get_loop().call_later(timeout, _time_out, waiters, waiter) if timeout is not None else None
    try:
        return wait_in_queue(waiters, waiter, what, prim, on_abandon)
    finally:
        if timer is not None:
            timer.cancel()


class _Waitable:
    """The shared waiting logic: a WaitQueue, timeouts, and the two styles.

    :meth:`_take` is the one shape of every blocking method: ``_try(who)``
    takes what is asked for if it can (True), else the caller queues and
    waits; woken, it has it, unless its timeout passed.  In async code all
    of it runs when the returned coroutine first runs, so a task cancelled
    before that never leaves a waiter behind.  Compiled, an extension type
    (``sync.pxd``): ``_take`` and ``_try`` are C methods that a subclass can
    still override.
    """

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters = WaitQueue()

    def _try(self, who: Any) -> bool:
        """Take what the primitive gives, on behalf of ``who``, if it can now: True; else False (the caller waits)."""
        raise NotImplementedError

    def _take(self, who: Any, what: str, blocking: bool = True, timeout: float | None = None) -> Any:
        """Take (``_try``), or wait in the queue until given: True; False if not ``blocking`` or after ``timeout``.

        Green code: blocks and returns that.  Async code: a coroutine of it.
        ``what`` names the wait if the program stalls.
        """
        where = green_hub_or_async()
        if where is True:
            return _take_async(self, who, blocking, timeout)
        if self._try(who):
            return True
        if not blocking or timeout == 0:
            return False
        return _queue_and_wait_green(self._waiters, self, None, what, timeout, who, where or None) is not _TIMED_OUT

    def _wait_green(
        self,
        what: str,
        timeout: float | None,
        who: Any = None,
        waiters: WaitQueue | None = None,
        on_abandon: Callable[[Any], None] | None = None,
        hub: Hub | None = None,
    ) -> Any:
        """Green: queue on ``waiters`` (default: the primitive's own) and wait; ``_TIMED_OUT`` after ``timeout``.

        ``hub``: the caller's hub if it has it (from ``green_hub()``).
        """
        if waiters is None:
            return _queue_and_wait_green(self._waiters, self, None, what, timeout, who, hub)
        return _queue_and_wait_green(waiters, self, on_abandon or _no_abandon, what, timeout, who, hub)

    async def _wait_async(
        self,
        timeout: float | None,
        who: Any = None,
        waiters: WaitQueue | None = None,
        on_abandon: Callable[[Any], None] | None = None,
    ) -> Any:
        """Async: as :meth:`_wait_green`, in one coroutine (the await and the abandon in it: no nested coroutine)."""
        if waiters is None:
            waiters, on_abandon = self._waiters, self._abandon
        fut, timer = start_async_wait(waiters, who, timeout)
        try:
            return await fut
        except BaseException:
            waiters.abandon(fut, on_abandon)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _abandon(self, value: Any) -> None:
        """A waiter that was handed ``value`` left before it could use it (cancelled): pass it on."""


async def _take_async(prim: _Waitable, who: Any, blocking: bool, timeout: float | None) -> bool:
    """``_Waitable._take`` in async code: the coroutine it returns."""
    if prim._try(who):
        return True
    if not blocking or timeout == 0:
        return False
    # _wait_async, inline: one coroutine less per wait.
    waiters = prim._waiters
    fut, timer = start_async_wait(waiters, who, timeout)
    try:
        woken = await fut
    except BaseException:
        waiters.abandon(fut, prim._abandon)
        raise
    finally:
        if timer is not None:
            timer.cancel()
    return woken is not _TIMED_OUT


class _Acquirable(_Waitable):
    """``with`` (green) and ``async with`` (async) around ``acquire``/``release``."""

    __slots__ = ()
    _what = "lock"  # as the error for a plain ``with`` in async code names it

    def acquire(self) -> Any:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        _no_plain_with(self._what)
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def __aenter__(self) -> Any:
        return await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


# -- Event ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventStatistics:
    tasks_waiting: int


class Event(_Waitable):
    """A flag that tasks wait for: ``set()`` wakes every waiter; ``wait()`` returns at once while it is set."""

    __slots__ = ("_flag",)

    def __init__(self) -> None:
        super().__init__()
        self._flag = False

    def __repr__(self) -> str:
        return f"<treadle.Event {'set' if self._flag else 'unset'}, {len(self._waiters)} waiting>"

    def is_set(self) -> bool:
        return self._flag

    def _try(self, who: Any) -> bool:
        return self._flag

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            self._waiters.wake_all(True)

    def clear(self) -> None:
        self._flag = False

    def wait(self, timeout: float | None = None) -> Any:
        """Wait until the flag is set: True; False if ``timeout`` (s) passed first. Both styles."""
        timeout = check_timeout(timeout)
        return self._take(None, "Event.wait()", True, timeout)

    def statistics(self) -> EventStatistics:
        return EventStatistics(tasks_waiting=len(self._waiters))


# -- Lock and RLock ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockStatistics:
    locked: bool
    owner: Any
    tasks_waiting: int


class Lock(_Acquirable):
    """A mutual-exclusion lock owned by the task that acquired it; waiters get it in arrival order."""

    __slots__ = ("_owner",)

    def __init__(self) -> None:
        super().__init__()
        self._owner: Any = None

    def __repr__(self) -> str:
        state = "locked" if self._owner is not None else "unlocked"
        return f"<treadle.Lock {state}, {len(self._waiters)} waiting>"

    def locked(self) -> bool:
        return self._owner is not None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> Any:
        """Take the lock: True; False if not ``blocking`` and it is held, or after ``timeout`` (s). Both styles."""
        return self._acquire_as(_current_task(), blocking, check_timeout(timeout))

    def _acquire_as(self, me: Any, blocking: bool = True, timeout: float | None = None) -> Any:
        """Acquire on behalf of ``me`` (worked out when the caller called, not when a coroutine runs)."""
        self._check_reentry(me)
        return self._take(me, "Lock.acquire()", blocking, timeout)

    def _check_reentry(self, me: Any) -> None:
        if self._owner is me:
            raise RuntimeError("this task already holds the lock (use RLock to acquire it again)")

    def _try(self, me: Any) -> bool:
        if self._owner is None and not self._waiters:
            self._owner = me
            return True
        return False

    def acquire_nowait(self) -> bool:
        """Take the lock if it is free (and nobody waits): True, else False. Never blocks."""
        me = _current_task()
        self._check_reentry(me)
        return self._try(me)

    def release(self) -> None:
        """Give the lock up (only its owner may); the oldest waiter gets it."""
        if self._owner is None:
            raise RuntimeError("release of an unlocked lock")
        if self._owner is not _current_task():
            raise RuntimeError("the lock is released by a task that does not hold it")
        self._hand_off()

    def _hand_off(self) -> None:
        entry = self._waiters.pop_first_live()
        if entry is None:
            self._owner = None
        else:
            self._owner = entry[1]  # the waiter owns it from now on, before it even runs
            entry[0].set_result(True)

    def _abandon(self, value: Any) -> None:
        if value is not _TIMED_OUT:
            self._hand_off()  # handed to a waiter that was cancelled before it ran

    def statistics(self) -> LockStatistics:
        return LockStatistics(locked=self.locked(), owner=self._owner, tasks_waiting=len(self._waiters))


class RLock(Lock):
    """A lock its owner may acquire again; it is free once released as many times as acquired."""

    __slots__ = ("_count",)

    def __init__(self) -> None:
        super().__init__()
        self._count = 0

    def _check_reentry(self, me: Any) -> None:
        pass  # allowed

    def _try(self, me: Any) -> bool:
        if self._owner is me:
            self._count += 1
            return True
        if super()._try(me):
            self._count = 1
            return True
        return False

    def _hand_off(self) -> None:
        super()._hand_off()
        if self._owner is not None:
            self._count = 1  # the new owner's first acquisition

    def release(self) -> None:
        if self._owner is None:
            raise RuntimeError("release of an unlocked lock")
        if self._owner is not _current_task():
            raise RuntimeError("the lock is released by a task that does not hold it")
        self._count -= 1
        if self._count == 0:
            self._hand_off()


# -- Semaphores ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SemaphoreStatistics:
    value: int
    tasks_waiting: int


class Semaphore(_Acquirable):
    """A counter of units: ``acquire`` takes one (waiting while none is left), ``release`` gives one back."""

    __slots__ = ("_value",)
    _what = "semaphore"

    def __init__(self, value: int = 1) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"Semaphore value must be an int, got {value!r}")
        if value < 0:
            raise ValueError(f"Semaphore value must be >= 0, got {value}")
        super().__init__()
        self._value = value

    def __repr__(self) -> str:
        return f"<treadle.{type(self).__name__} value={self._value}, {len(self._waiters)} waiting>"

    @property
    def value(self) -> int:
        return self._value

    def locked(self) -> bool:
        return self._value == 0

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> Any:
        """Take a unit: True; False if not ``blocking`` and none is left, or after ``timeout`` (s). Both styles."""
        timeout = check_timeout(timeout)
        return self._take(None, f"{type(self).__name__}.acquire()", blocking, timeout)

    def acquire_nowait(self) -> bool:
        return self._try(None)

    def _try(self, who: Any) -> bool:
        if self._value > 0 and not self._waiters:
            self._value -= 1
            return True
        return False

    def release(self) -> None:
        """Give a unit back: to the oldest waiter if there is one."""
        if not self._waiters.wake_first(True):
            self._value += 1

    def _abandon(self, value: Any) -> None:
        if value is not _TIMED_OUT:
            self.release()

    def statistics(self) -> SemaphoreStatistics:
        return SemaphoreStatistics(value=self._value, tasks_waiting=len(self._waiters))


class BoundedSemaphore(Semaphore):
    """A semaphore whose ``release`` raises ``ValueError`` above its initial value."""

    __slots__ = ("_initial",)

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._initial = value

    def release(self) -> None:
        if self._value >= self._initial and not self._waiters:
            raise ValueError("BoundedSemaphore released too many times")
        super().release()


# -- Condition -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConditionStatistics:
    tasks_waiting: int
    lock_statistics: LockStatistics


class Condition(_Acquirable):
    """Wait until notified, with a lock held around the check (``threading.Condition`` for tasks)."""

    __slots__ = ("_lock",)
    _what = "condition"

    def __init__(self, lock: Lock | None = None) -> None:
        if lock is not None and not isinstance(lock, Lock):
            raise TypeError(f"Condition lock must be a treadle Lock or RLock, got {lock!r}")
        super().__init__()
        self._lock = lock if lock is not None else Lock()

    def __repr__(self) -> str:
        return f"<treadle.Condition {self._lock!r}, {len(self._waiters)} waiting>"

    def locked(self) -> bool:
        return self._lock.locked()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> Any:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> Any:
        """Release the lock, wait for a notification, take the lock back: True; False after ``timeout``.

        The lock is taken back however the wait ends (cancelled too), as
        ``asyncio.Condition`` and ``threading.Condition`` do, and on behalf of
        the task that called (even if an ``asyncio.wait_for`` runs the wait
        in a task of its own).  Both styles.
        """
        timeout = check_timeout(timeout)
        me = _current_task()
        self._check_owner(me, "wait")
        if in_async():
            return self._wait_async_relock(me, timeout)
        saved = self._release_all()
        try:
            result = self._wait_green("Condition.wait()", timeout)
        finally:
            self._relock_green(me, saved)
        return result is not _TIMED_OUT

    async def _wait_async_relock(self, me: Any, timeout: float | None) -> bool:
        saved = self._release_all()
        try:
            result = await self._wait_async(timeout)
        finally:
            await self._relock_async(me, saved)
        return result is not _TIMED_OUT

    def _check_owner(self, me: Any, what: str) -> None:
        if self._lock._owner is not me:
            raise RuntimeError(f"Condition.{what}() needs the lock: acquire it first")

    def _release_all(self) -> int:
        """Release the lock fully (an RLock may be held several times); the count to restore."""
        lock = self._lock
        count = 1
        if isinstance(lock, RLock):
            count, lock._count = lock._count, 1
        lock._hand_off()
        return count

    def _restore(self, count: int) -> None:
        if isinstance(self._lock, RLock):
            self._lock._count = count

    def _relock_green(self, me: Any, count: int) -> None:
        cancelled: BaseException | None = None
        while True:
            try:
                self._lock._acquire_as(me)
                break
            except BaseException as exc:  # cancelled again: the lock first, then the cancellation
                cancelled = exc
        self._restore(count)
        if cancelled is not None:
            raise cancelled

    async def _relock_async(self, me: Any, count: int) -> None:
        cancelled: BaseException | None = None
        while True:
            try:
                await self._lock._acquire_as(me)
                break
            except asyncio.CancelledError as exc:
                cancelled = exc
        self._restore(count)
        if cancelled is not None:
            raise cancelled

    def _abandon(self, value: Any) -> None:
        if value is not _TIMED_OUT:
            self._waiters.wake_first(True)  # a notified waiter left: the notification goes to the next

    def wait_for(self, predicate: Any, timeout: float | None = None) -> Any:
        """Wait until ``predicate()`` is true (checked with the lock held); its last value. Both styles."""
        timeout = check_timeout(timeout)
        me = _current_task()
        self._check_owner(me, "wait_for")
        if in_async():
            return self._wait_for_async(me, predicate, timeout)
        loop = current_loop()
        deadline = None if timeout is None else loop.time() + timeout
        result = predicate()
        while not result:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            saved = self._release_all()
            try:
                self._wait_green("Condition.wait_for()", remaining)
            finally:
                self._relock_green(me, saved)
            result = predicate()
        return result

    async def _wait_for_async(self, me: Any, predicate: Any, timeout: float | None) -> Any:
        loop = current_loop()
        deadline = None if timeout is None else loop.time() + timeout
        result = predicate()
        while not result:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            await self._wait_async_relock(me, remaining)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters (the oldest first); the caller must hold the lock."""
        self._check_owner(_current_task(), "notify")
        for _ in range(n):
            if not self._waiters.wake_first(True):
                break

    def notify_all(self) -> None:
        self._check_owner(_current_task(), "notify_all")
        self._waiters.wake_all(True)

    def statistics(self) -> ConditionStatistics:
        return ConditionStatistics(tasks_waiting=len(self._waiters), lock_statistics=self._lock.statistics())


# -- CapacityLimiter -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapacityLimiterStatistics:
    borrowed_tokens: int
    total_tokens: float
    borrowers: tuple[Any, ...]
    tasks_waiting: int


class CapacityLimiter(_Acquirable):
    """At most ``total_tokens`` borrowers at once, each holding one token (trio's and anyio's limiter)."""

    __slots__ = ("_total", "_borrowers")
    _what = "limiter"

    def __init__(self, total_tokens: float) -> None:
        super().__init__()
        self._total = self._check_total(total_tokens)
        self._borrowers: set[Any] = set()

    @staticmethod
    def _check_total(total: Any) -> float:
        if isinstance(total, bool) or not isinstance(total, (int, float)):
            raise TypeError(f"total_tokens must be an int or math.inf, got {total!r}")
        if not isinstance(total, int) and total != math.inf:
            raise TypeError(f"total_tokens must be an int or math.inf, got {total!r}")
        if total < 1:
            raise ValueError(f"total_tokens must be >= 1, got {total!r}")
        return total

    def __repr__(self) -> str:
        return f"<treadle.CapacityLimiter {len(self._borrowers)}/{self._total} borrowed, {len(self._waiters)} waiting>"

    @property
    def total_tokens(self) -> float:
        return self._total

    @total_tokens.setter
    def total_tokens(self, value: float) -> None:
        self._total = self._check_total(value)
        self._grant_waiting()

    @property
    def borrowed_tokens(self) -> int:
        return len(self._borrowers)

    @property
    def available_tokens(self) -> float:
        return self._total - len(self._borrowers)

    def acquire(self) -> Any:
        """Borrow a token for the current task, waiting while none is free. Both styles."""
        return self.acquire_on_behalf_of(_current_task())

    def acquire_nowait(self) -> bool:
        return self.acquire_on_behalf_of_nowait(_current_task())

    def acquire_on_behalf_of(self, borrower: Any) -> Any:
        """Borrow a token for ``borrower`` (any object), waiting while none is free. Both styles."""
        if borrower in self._borrowers or self._waiters.waiting_for(borrower):
            raise RuntimeError(f"{borrower!r} already holds (or waits for) one of this CapacityLimiter's tokens")
        taken = self._take(borrower, "CapacityLimiter.acquire()")
        return _returning_none(taken) if in_async() else None

    def acquire_on_behalf_of_nowait(self, borrower: Any) -> bool:
        if borrower in self._borrowers or self._waiters.waiting_for(borrower):
            raise RuntimeError(f"{borrower!r} already holds (or waits for) one of this CapacityLimiter's tokens")
        return self._try(borrower)

    def _try(self, borrower: Any) -> bool:
        if len(self._borrowers) < self._total and not self._waiters:
            self._borrowers.add(borrower)
            return True
        return False

    def release(self) -> None:
        self.release_on_behalf_of(_current_task())

    def release_on_behalf_of(self, borrower: Any) -> None:
        if borrower not in self._borrowers:
            raise RuntimeError(f"{borrower!r} does not hold a token of this CapacityLimiter")
        self._borrowers.discard(borrower)
        self._grant_waiting()

    def _grant_waiting(self) -> None:
        while len(self._borrowers) < self._total:
            entry = self._waiters.pop_first_live()
            if entry is None:
                break
            self._borrowers.add(entry[1])  # borrowed from now on, before the waiter even runs
            entry[0].set_result(entry[1])

    def _abandon(self, borrower: Any) -> None:
        if borrower is not _TIMED_OUT and borrower in self._borrowers:
            self.release_on_behalf_of(borrower)

    def statistics(self) -> CapacityLimiterStatistics:
        return CapacityLimiterStatistics(
            borrowed_tokens=len(self._borrowers),
            total_tokens=self._total,
            borrowers=tuple(self._borrowers),
            tasks_waiting=len(self._waiters),
        )


# -- helpers ---------------------------------------------------------------------------------------------


async def _returning_none(aw: Any) -> None:
    await aw

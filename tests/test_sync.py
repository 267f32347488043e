"""The synchronization primitives: Event, Lock, RLock, Semaphore, BoundedSemaphore, Condition, CapacityLimiter.

One object serves both styles: a green task blocks in the same method that an
async task awaits, and both kinds queue on it in arrival order.  Most tests run
in three styles: only green workers, only async workers, and both sharing one
object ("mixed"); the driver is a green main (``treadle.run(main)``) that starts
the workers, lets the loop run until they wait, and joins them.  The few
timeouts used are the ones whose expiry is the point: those tests run on the
treadle pytest plugin's autojump clock (``@pytest.mark.treadle``, the test body
as the green main or the async main), so each timeout expires at once and at
its exact loop time.  Everything else waits on the state of the primitive
itself (``statistics()``), never on real time.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable
from typing import Any

import pytest

import treadle
from treadle.testing import MockClock

from .styles import CANCELS, OTHER, STYLES, Pair, asettle, cancel, kinds, results, settle, start

PRIMITIVES: dict[str, Callable[[], Any]] = {
    "Lock": treadle.Lock,
    "Semaphore": lambda: treadle.Semaphore(1),
    "CapacityLimiter": lambda: treadle.CapacityLimiter(1),
}

BOUNDED: dict[str, tuple[Callable[[], Any], int, int]] = {  # name: (factory, most inside at once, workers)
    "Lock": (treadle.Lock, 1, 20),
    "Semaphore": (lambda: treadle.Semaphore(2), 2, 12),
    "CapacityLimiter": (lambda: treadle.CapacityLimiter(3), 3, 12),
}


# -- helpers ---------------------------------------------------------------------------------------------


def guarded(prim: Any, enter: Callable[..., Any], leave: Callable[[Any], Any] = id, switches: int = 1) -> Pair:
    """Worker bodies of both styles: hold ``prim`` (``with`` / ``async with``) across ``switches`` switch points,
    calling ``enter(*args)`` once inside and ``leave(what enter returned)`` just before letting go."""

    def green(*args: Any) -> None:
        with prim:
            token = enter(*args)
            for _ in range(switches):
                treadle.sleep(0)
            leave(token)

    async def coro(*args: Any) -> None:
        async with prim:
            token = enter(*args)
            for _ in range(switches):
                await asyncio.sleep(0)
            leave(token)

    return green, coro


def me() -> Any:
    """The calling task: the asyncio task in async code, the green task in green code."""
    return asyncio.current_task() or treadle.getcurrent()


def holds(prim: Any, units: int) -> bool:
    """Whether the calling task holds ``prim`` (of ``units`` units), as far as its statistics() tell."""
    stats = prim.statistics()
    if isinstance(prim, treadle.Lock):
        return stats.locked and stats.owner is me()
    if isinstance(prim, treadle.Semaphore):
        return stats.value < units
    return me() in stats.borrowers and stats.borrowed_tokens <= units


def is_free(prim: Any, units: int = 1) -> bool:
    """Nobody holds or waits for ``prim``: a Lock unlocked, a Semaphore back to ``units``, no token borrowed."""
    stats = prim.statistics()
    if isinstance(prim, treadle.Lock):
        held = stats.locked or stats.owner is not None
    elif isinstance(prim, treadle.Semaphore):
        held = stats.value != units
    else:
        held = stats.borrowed_tokens != 0 or stats.borrowers != ()
    return not held and stats.tasks_waiting == 0


# -- Event ------------------------------------------------------------------------------------------------


@pytest.mark.treadle
@pytest.mark.parametrize("style", STYLES)
def test_event_set_wakes_every_waiter_of_both_styles(style: str, autojump_clock: MockClock) -> None:
    """set() wakes every waiter of either style; wait() on a set event is True at once; wait(timeout) False (after
    exactly that long); clear()."""
    now = autojump_clock.current_time
    ev = treadle.Event()
    assert ev.wait(0.05) is False and ev.wait(0) is False and ev.statistics().tasks_waiting == 0
    assert now() == 0.05

    async def coro() -> Any:
        return await ev.wait()

    tasks = [start(kind, (ev.wait, coro)) for kind in kinds(style, 6)]
    settle(lambda: ev.statistics().tasks_waiting == 6)
    assert not any(task.done() for task in tasks)
    ev.set()
    assert ev.statistics().tasks_waiting == 0 and ev.is_set()
    log: list[str] = []
    treadle.spawn(log.append, "ran")
    assert ev.wait() is True and ev.wait(0) is True and log == []  # no switch: the spawned task has not run
    assert results(tasks) == [True] * 6 and now() == 0.05
    ev.clear()
    assert not ev.is_set() and ev.wait(timeout=0.05) is False and now() == 0.1


@pytest.mark.treadle
async def test_event_async_wait_is_awaitable_and_set_from_async_wakes_green_waiters(autojump_clock: MockClock) -> None:
    """Async: wait() is an awaitable (True at once when set, False after a timeout); set() wakes green waiters too."""
    now = autojump_clock.current_time
    ev = treadle.Event()
    pending = ev.wait(0.05)
    assert inspect.isawaitable(pending) and await pending is False and now() == 0.05
    green, task = treadle.spawn(ev.wait), asyncio.create_task(ev.wait())
    await asettle(lambda: ev.statistics().tasks_waiting == 2)
    ev.set()
    assert await asyncio.gather(green, task) == [True, True]
    log: list[str] = []
    asyncio.get_running_loop().call_soon(log.append, "ran")
    assert await ev.wait() is True and log == []  # no suspension
    ev.clear()
    assert await ev.wait(timeout=0.05) is False and ev.statistics().tasks_waiting == 0 and now() == 0.1


class _CountingEvent(treadle.Event):
    """A user's subclass: its own attribute, and ``set`` and ``_try`` overridden."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0
        self.tries = 0

    def set(self) -> None:
        self.sets += 1
        super().set()

    def _try(self, who: Any) -> bool:
        self.tries += 1
        return super()._try(who)


class _CountingLock(treadle.Lock):
    __slots__ = ("acquired",)

    def __init__(self) -> None:
        super().__init__()
        self.acquired = 0

    def _try(self, me: Any) -> bool:
        taken = super()._try(me)
        self.acquired += taken
        return taken


@pytest.mark.parametrize("style", ["green", "async"])
def test_subclasses_of_the_primitives_keep_their_overrides(style: str) -> None:
    """Event and the others are extension types when compiled: a Python subclass's methods are still the ones called."""
    ev, lock = _CountingEvent(), _CountingLock()

    async def async_wait() -> Any:
        async with lock:
            return await ev.wait()

    def green_wait() -> Any:
        with lock:
            return ev.wait()

    def main() -> Any:
        waiter = start(style, (green_wait, async_wait))
        settle(lambda: ev.statistics().tasks_waiting == 1)
        assert ev.tries == 1 and lock.acquired == 1 and lock.locked()
        ev.set()
        assert results([waiter]) == [True]
        return ev.sets, ev.tries, lock.acquired, lock.locked()

    assert treadle.run(main) == (1, 1, 1, False)
    ev.x = 1  # type: ignore[attr-defined]  # a subclass without __slots__ has a __dict__
    with pytest.raises(AttributeError):
        lock.x = 1  # type: ignore[attr-defined]


# -- Lock -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_at_most_n_inside_and_no_lost_update(name: str, style: str) -> None:
    """Lock (20 tasks: 10 green + 10 async when mixed), Semaphore(2) and CapacityLimiter(3) (12 tasks): never
    more than N inside at once, N do get in; under the lock a counter incremented across switch points loses nothing."""

    def main() -> None:
        factory, most, workers = BOUNDED[name]
        prim = factory()
        inside = [0, 0]  # now, most at once
        counter = [0]

        def read() -> int:
            inside[0] += 1
            inside[1] = max(inside)
            assert holds(prim, most)
            return counter[0]

        def write(value: int) -> None:
            counter[0] = value + 1
            inside[0] -= 1

        results([start(kind, guarded(prim, read, write, switches=2)) for kind in kinds(style, workers)])
        assert inside == [0, most] and is_free(prim, most)
        if most == 1:
            assert counter[0] == workers

    treadle.run(main)


@pytest.mark.parametrize("style", STYLES)
def test_lock_waiters_are_served_in_arrival_order(style: str) -> None:
    """Waiters get the lock in the order they came, across styles; a newcomer after the release does not overtake."""

    def main() -> None:
        lock = treadle.Lock()
        order: list[int] = []
        pair = guarded(lock, order.append)
        assert lock.acquire() is True
        tasks = []
        for i, kind in enumerate(kinds(style, 6)):
            tasks.append(start(kind, pair, i))
            settle(lambda n=i + 1: lock.statistics().tasks_waiting == n)
        stats = lock.statistics()
        assert stats.locked and stats.owner is treadle.getcurrent() and stats.tasks_waiting == 6
        lock.release()
        assert lock.locked() and lock.acquire_nowait() is False  # handed to the oldest waiter
        tasks.append(start(kinds(style, 2)[1], pair, 6))
        results(tasks)
        assert order == list(range(7))

    treadle.run(main)


@pytest.mark.treadle
def test_lock_misuse_non_blocking_and_timed_acquires_and_statistics(autojump_clock: MockClock) -> None:
    """While a task holds the lock, acquire(blocking=False) and acquire(timeout) by others give False, in both
    styles (the timed ones after exactly their timeout, side by side); releasing it unlocked or from another task,
    or acquiring it again, is a RuntimeError.  A green main, then an async main."""

    def green_other(lock: treadle.Lock) -> tuple[bool, ...]:
        with pytest.raises(RuntimeError, match="does not hold"):
            lock.release()
        return lock.acquire(blocking=False), lock.acquire(timeout=0.05), lock.acquire(timeout=0)

    async def async_other(lock: treadle.Lock) -> tuple[bool, ...]:
        with pytest.raises(RuntimeError, match="does not hold"):
            lock.release()
        return await lock.acquire(blocking=False), await lock.acquire(timeout=0.05), await lock.acquire(timeout=0)

    def check_held(lock: treadle.Lock) -> list[Any]:
        stats = lock.statistics()
        assert (stats.locked, stats.owner, stats.tasks_waiting) == (True, me(), 0)
        for blocking in (True, False):
            with pytest.raises(RuntimeError, match="already holds"):
                lock.acquire(blocking)  # raised by the call in async code too
        return [start(kind, (green_other, async_other), lock) for kind in ("green", "async")]

    def main() -> None:
        lock = treadle.Lock()
        with pytest.raises(RuntimeError, match="unlocked"):
            lock.release()
        with lock:
            assert results(check_held(lock)) == [(False, False, False)] * 2
            assert lock.statistics().tasks_waiting == 0 and lock.statistics().owner is me()
        with pytest.raises(RuntimeError, match="unlocked"):
            lock.release()
        assert autojump_clock.current_time() == 0.05

    async def amain() -> None:
        lock = treadle.Lock()
        with pytest.raises(treadle.BlockingInHubError, match="async with"):
            with lock:
                pass
        async with lock:
            assert await asyncio.gather(*check_held(lock)) == [(False, False, False)] * 2
            assert lock.statistics().tasks_waiting == 0 and lock.statistics().owner is me()
        with pytest.raises(RuntimeError, match="unlocked"):
            lock.release()
        assert autojump_clock.current_time() == 0.1

    main()
    treadle.await_(amain())


# -- hand-off under cancellation ---------------------------------------------------------------------


@pytest.mark.parametrize("when", ["cancel-after-release", "cancel-before-release"])
@pytest.mark.parametrize("how", CANCELS)
@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_waiter_cancelled_at_the_hand_off_passes_it_on(name: str, how: str, when: str) -> None:
    """A holds; B and C (the other style) wait; A releases and B is cancelled before it runs: C gets it, none lost."""

    async def main() -> None:
        prim = PRIMITIVES[name]()
        log: list[str] = []
        pair = guarded(prim, log.append)
        await prim.acquire()
        b_kind = "async" if how == "async-cancel" else "green"
        b = start(b_kind, pair, "B")
        await asettle(lambda: prim.statistics().tasks_waiting == 1)
        c = start(OTHER[b_kind], pair, "C")
        await asettle(lambda: prim.statistics().tasks_waiting == 2)
        if when == "cancel-before-release":
            cancel(b, how)
        prim.release()
        if when == "cancel-after-release":
            cancel(b, how)
        await asyncio.wait_for(c, 10)
        await asyncio.gather(b, return_exceptions=True)
        assert b.cancelled()
        # A green task's cancellation comes by a callback queued after the wake-up it was just
        # given: then B takes the lock, is cancelled inside it at its switch point, and lets go.
        assert log == (["B", "C"] if b_kind == "green" and when == "cancel-after-release" else ["C"])
        assert is_free(prim)

    treadle.run(main())


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_async_waiter_cancelled_before_its_first_step_leaves_no_ghost(name: str) -> None:
    """asyncio.wait_for(prim.acquire(), 0) on a held primitive times out; the next release must not be lost."""

    async def main() -> None:
        prim = PRIMITIVES[name]()
        await prim.acquire()

        async def try_at_once() -> None:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(prim.acquire(), 0)

        await asyncio.create_task(try_at_once())
        prim.release()
        await asyncio.sleep(0)
        assert prim.statistics().tasks_waiting == 0
        assert prim.acquire_nowait() is True  # free for whoever comes next

    treadle.run(main())


# -- RLock ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("contender", ["green", "async"])
@pytest.mark.parametrize("owner", ["green", "async"])
def test_rlock_reentry_and_others_wait_for_the_full_release(owner: str, contender: str) -> None:
    """The owner acquires three times (acquire, with, non-blocking); a contender gets it after three releases."""

    def green_owner(rlock: treadle.RLock, log: list[str]) -> None:
        assert rlock.acquire() is True
        with rlock:
            assert rlock.acquire(blocking=False) is True
            settle(lambda: rlock.statistics().tasks_waiting == 1)
            rlock.release()
        for _ in range(10):
            treadle.sleep(0)
        log.append(f"still mine: {rlock.statistics().owner is me()}")
        rlock.release()

    async def async_owner(rlock: treadle.RLock, log: list[str]) -> None:
        assert await rlock.acquire() is True
        async with rlock:
            assert await rlock.acquire(blocking=False) is True
            await asettle(lambda: rlock.statistics().tasks_waiting == 1)
            rlock.release()
        for _ in range(10):
            await asyncio.sleep(0)
        log.append(f"still mine: {rlock.statistics().owner is me()}")
        rlock.release()

    def main() -> None:
        rlock = treadle.RLock()
        log: list[str] = []
        first = start(owner, (green_owner, async_owner), rlock, log)
        settle(rlock.locked)
        second = start(
            contender, guarded(rlock, lambda: log.append(f"contender owns it: {rlock.statistics().owner is me()}"))
        )
        results([first, second])
        assert log == ["still mine: True", "contender owns it: True"] and not rlock.locked()
        with pytest.raises(RuntimeError):
            rlock.release()

    treadle.run(main)


def test_rlock_reentry_checks_the_timeout_too() -> None:
    """Bad timeouts fail at the call even when the owner re-enters."""

    def main() -> None:
        rlock = treadle.RLock()
        with rlock:
            with pytest.raises(ValueError):
                rlock.acquire(timeout=-1)
            with pytest.raises(TypeError):
                rlock.acquire(timeout="x")

    treadle.run(main)


# -- Semaphore and BoundedSemaphore --------------------------------------------------------------------------


@pytest.mark.treadle
def test_semaphore_arguments_bounded_over_release_and_non_blocking_acquire(autojump_clock: MockClock) -> None:
    """Semaphore(-1) ValueError, Semaphore("2") TypeError; BoundedSemaphore over-release ValueError; at zero,
    acquire(blocking=False) and acquire(timeout) give False in both styles (the timed one after exactly its
    timeout); `with sem` in async code is an error.  A green main, then an async main."""
    with pytest.raises(ValueError):
        treadle.Semaphore(-1)
    for bad in ("2", 1.0, True):
        with pytest.raises(TypeError):
            treadle.BoundedSemaphore(bad)  # type: ignore[arg-type]

    def main() -> None:
        sem = treadle.BoundedSemaphore(1)
        assert sem.acquire() is True and sem.value == 0 and sem.locked()
        assert sem.acquire(blocking=False) is False and sem.acquire(timeout=0.05) is False
        assert autojump_clock.current_time() == 0.05
        sem.release()
        with pytest.raises(ValueError, match="too many"):
            sem.release()
        plain = treadle.Semaphore(0)
        plain.release()
        assert sem.value == 1 and plain.value == 1

    async def amain() -> None:
        sem = treadle.BoundedSemaphore(1)
        with pytest.raises(treadle.BlockingInHubError):
            with sem:
                pass
        async with sem:
            assert await sem.acquire(blocking=False) is False and await sem.acquire(timeout=0.05) is False
            stats = sem.statistics()
            assert (stats.value, stats.tasks_waiting) == (0, 0)
            assert autojump_clock.current_time() == 0.1
        with pytest.raises(ValueError, match="too many"):
            sem.release()

    main()
    treadle.await_(amain())


# -- Condition -------------------------------------------------------------------------------------------


def cond_worker(cond: treadle.Condition, until: Callable[[], Any], act: Callable[[], Any], times: int) -> Pair:
    """Worker bodies of both styles: ``times`` times, under the lock, wait_for(until), act(), notify_all()."""

    def green() -> None:
        for _ in range(times):
            with cond:
                assert cond.wait_for(until)
                act()
                cond.notify_all()

    async def coro() -> None:
        for _ in range(times):
            async with cond:
                assert await cond.wait_for(until)
                act()
                cond.notify_all()

    return green, coro


def cond_waiter(cond: treadle.Condition, woke: list[Any]) -> Pair:
    """Worker bodies of both styles: wait() once under the lock, then log the argument; if cancelled in wait(),
    log whether the lock is held again, and by this task, when the CancelledError arrives."""

    def cancelled() -> None:
        woke.append(("cancelled", cond.locked(), cond.statistics().lock_statistics.owner is me()))

    def green(who: Any) -> None:
        with cond:
            try:
                assert cond.wait() is True
            except asyncio.CancelledError:
                cancelled()
                raise
            woke.append(who)

    async def coro(who: Any) -> None:
        async with cond:
            try:
                assert await cond.wait() is True
            except asyncio.CancelledError:
                cancelled()
                raise
            woke.append(who)

    return green, coro


@pytest.mark.parametrize("consumer", ["green", "async"])
@pytest.mark.parametrize("producer", ["green", "async"])
def test_condition_producer_consumer_with_wait_for(producer: str, consumer: str) -> None:
    """A one-slot buffer: the producer waits for it to be empty, the consumer for an item, each with wait_for."""

    def main() -> None:
        cond = treadle.Condition()
        slot: list[int] = []
        got: list[int] = []
        items = iter(range(5))
        c = start(consumer, cond_worker(cond, lambda: slot, lambda: got.append(slot.pop()), 5))
        p = start(producer, cond_worker(cond, lambda: not slot, lambda: slot.append(next(items)), 5))
        results([c, p])
        assert got == [0, 1, 2, 3, 4] and not cond.locked()

    treadle.run(main)


@pytest.mark.parametrize("style", STYLES)
def test_condition_notify_wakes_the_oldest_n_and_notify_all_the_rest(style: str) -> None:
    """notify(2) wakes the two oldest waiters, notify() the next, notify_all() the rest; notify needs the lock."""

    def main() -> None:
        cond = treadle.Condition()
        woke: list[int] = []
        tasks = []
        for i, kind in enumerate(kinds(style, 5)):
            tasks.append(start(kind, cond_waiter(cond, woke), i))
            settle(lambda n=i + 1: cond.statistics().tasks_waiting == n)
        for notify in (cond.notify, cond.notify_all):
            with pytest.raises(RuntimeError, match="needs the lock"):
                notify()
        with cond:
            cond.notify(2)
        settle(lambda: len(woke) == 2)
        for _ in range(10):
            treadle.sleep(0)
        assert woke == [0, 1] and cond.statistics().tasks_waiting == 3
        with cond:
            cond.notify()
        settle(lambda: len(woke) == 3)
        assert woke == [0, 1, 2] and cond.statistics().tasks_waiting == 2
        with cond:
            cond.notify_all()
        results(tasks)
        assert woke == [0, 1, 2, 3, 4] and cond.statistics().tasks_waiting == 0

    treadle.run(main)


@pytest.mark.treadle
def test_condition_wait_needs_the_lock_and_a_timeout_gives_it_back(autojump_clock: MockClock) -> None:
    """wait() without the lock is a RuntimeError at the call; wait(timeout) and wait_for(p, timeout) give up
    (after exactly their timeout) with the lock held again; in async code `with cond` is a BlockingInHubError.
    Both styles: a green main, then an async main."""
    now = autojump_clock.current_time

    def main() -> None:
        cond = treadle.Condition()
        with pytest.raises(RuntimeError, match="needs the lock"):
            cond.wait()
        with cond:
            assert cond.wait(0.05) is False and cond.statistics().lock_statistics.owner is me() and now() == 0.05
            assert cond.wait_for(lambda: 0, timeout=0.05) == 0 and now() == 0.1
            assert cond.statistics().lock_statistics.owner is me() and cond.statistics().tasks_waiting == 0
        assert not cond.locked()

    async def amain() -> None:
        cond = treadle.Condition()
        with pytest.raises(RuntimeError, match="needs the lock"):
            cond.wait()
        with pytest.raises(treadle.BlockingInHubError):
            with cond:
                pass
        async with cond:
            assert await cond.wait(0.05) is False and cond.statistics().lock_statistics.owner is me()
            assert await cond.wait_for(lambda: 0, timeout=0.05) == 0 and now() == 0.2
            assert cond.statistics().lock_statistics.owner is me() and cond.statistics().tasks_waiting == 0
        assert not cond.locked()

    main()
    treadle.await_(amain())
    with pytest.raises(TypeError):
        treadle.Condition(asyncio.Lock())  # type: ignore[arg-type]


@pytest.mark.parametrize("how", CANCELS)
def test_condition_waiter_cancelled_in_wait_takes_the_lock_back_first(how: str) -> None:
    """A waiter cancelled in wait() (and again while it takes the lock back) holds the lock again when the
    CancelledError reaches its except block."""

    async def main() -> None:
        cond = treadle.Condition()
        seen: list[Any] = []
        waiter = start("async" if how == "async-cancel" else "green", cond_waiter(cond, seen), "woken")
        await asettle(lambda: cond.statistics().tasks_waiting == 1)
        async with cond:
            for _ in range(2):  # the second time, while it waits to take the lock back
                cancel(waiter, how)
                for _ in range(10):
                    await asyncio.sleep(0)
                assert seen == [] and not waiter.done()  # it waits for the lock that main holds
        await asyncio.gather(waiter, return_exceptions=True)
        assert waiter.cancelled() and seen == [("cancelled", True, True)]
        assert not cond.locked() and cond.statistics().tasks_waiting == 0

    treadle.run(main())


@pytest.mark.parametrize("owner", ["green", "async"])
def test_condition_over_an_rlock_held_twice_releases_fully_and_restores_the_count(owner: str) -> None:
    """wait() on an RLock held twice frees it for another task (of the other style), then restores both levels."""

    def green_owner(rlock: treadle.RLock, cond: treadle.Condition, log: list[str]) -> None:
        rlock.acquire()
        rlock.acquire()
        assert cond.wait() is True and rlock.statistics().owner is me()
        rlock.release()
        log.append(f"held after one release: {rlock.locked()}")
        rlock.release()

    async def async_owner(rlock: treadle.RLock, cond: treadle.Condition, log: list[str]) -> None:
        await rlock.acquire()
        await rlock.acquire()
        assert await cond.wait() is True and rlock.statistics().owner is me()
        rlock.release()
        log.append(f"held after one release: {rlock.locked()}")
        rlock.release()

    def main() -> None:
        rlock = treadle.RLock()
        cond = treadle.Condition(rlock)
        log: list[str] = []
        first = start(owner, (green_owner, async_owner), rlock, cond, log)
        settle(lambda: cond.statistics().tasks_waiting == 1)
        assert not rlock.locked()
        second = start(OTHER[owner], cond_worker(cond, lambda: True, lambda: log.append("other has it"), 1))
        results([first, second])
        assert log == ["other has it", "held after one release: True"] and not rlock.locked()

    treadle.run(main)


@pytest.mark.treadle
async def test_condition_wait_under_asyncio_wait_for_gives_the_lock_back_to_the_caller(
    autojump_clock: MockClock,
) -> None:
    """asyncio.wait_for(cond.wait(), t), the asyncio idiom for a timed wait: the caller holds the lock afterwards."""
    cond = treadle.Condition()
    await cond.acquire()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cond.wait(), 0.05)
    assert cond.statistics().lock_statistics.owner is asyncio.current_task() and autojump_clock.current_time() == 0.05
    cond.release()


@pytest.mark.parametrize("how", ["async-cancel", "green-cancel"])
def test_condition_notify_is_not_lost_when_the_notified_waiter_is_cancelled(how: str) -> None:
    """notify(1) with two waiters, and the first cancelled before it runs: the second is woken instead."""

    async def main() -> None:
        cond = treadle.Condition()
        woke: list[str] = []
        kind = "async" if how == "async-cancel" else "green"
        first = start(kind, cond_waiter(cond, woke), "first")
        await asettle(lambda: cond.statistics().tasks_waiting == 1)
        second = start(OTHER[kind], cond_waiter(cond, woke), "second")
        await asettle(lambda: cond.statistics().tasks_waiting == 2)
        async with cond:
            if kind == "green":  # a green cancellation comes by a callback: queue it before the wake-up
                first.cancel()
                cond.notify(1)
            else:
                cond.notify(1)
                first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        try:
            await asettle(lambda: "second" in woke)
        finally:
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)

    treadle.run(main())


# -- CapacityLimiter -------------------------------------------------------------------------------------


def test_limiter_misuse_and_borrowing_on_behalf_of_an_object() -> None:
    """Borrowing twice, or releasing without a token, is a RuntimeError (green and async tasks alike); any object
    can borrow a token; `with limiter` in async code is a BlockingInHubError."""

    def release_unborrowed() -> None:
        with pytest.raises(RuntimeError, match="does not hold"):
            limiter.release()

    async def async_release_unborrowed() -> None:
        release_unborrowed()

    def main() -> None:
        assert limiter.acquire() is None
        for borrow_again in (limiter.acquire, limiter.acquire_nowait):
            with pytest.raises(RuntimeError, match="already holds"):
                borrow_again()
        limiter.acquire_on_behalf_of(token)
        stats = limiter.statistics()
        assert stats.borrowed_tokens == 2 and set(stats.borrowers) == {me(), token} and limiter.available_tokens == 0
        results([start(kind, (release_unborrowed, async_release_unborrowed)) for kind in ("green", "async")])
        limiter.release_on_behalf_of(token)
        with pytest.raises(RuntimeError, match="does not hold"):
            limiter.release_on_behalf_of(token)
        limiter.release()

    async def amain() -> None:
        with pytest.raises(treadle.BlockingInHubError):
            with limiter:
                pass
        async with limiter:
            with pytest.raises(RuntimeError, match="already holds"):
                await limiter.acquire()
            waiter = asyncio.create_task(limiter.acquire_on_behalf_of(token))
            await asettle(lambda: limiter.statistics().tasks_waiting == 1)
        assert await waiter is None and limiter.statistics().borrowers == (token,)
        limiter.release_on_behalf_of(token)

    token = object()
    limiter = treadle.CapacityLimiter(2)
    treadle.run(main)
    assert is_free(limiter)
    limiter = treadle.CapacityLimiter(1)
    treadle.run(amain())
    assert is_free(limiter)


def test_limiter_raising_total_tokens_wakes_waiters() -> None:
    """Raising total_tokens hands the new tokens to the oldest waiters, green and async alike."""

    def main() -> None:
        limiter = treadle.CapacityLimiter(1)
        done = treadle.Event()
        got: list[int] = []

        def green(i: int) -> None:
            with limiter:
                got.append(i)
                done.wait()

        async def coro(i: int) -> None:
            async with limiter:
                got.append(i)
                await done.wait()

        limiter.acquire_on_behalf_of("driver")
        tasks = []
        for i, kind in enumerate(kinds("mixed", 4)):
            tasks.append(start(kind, (green, coro), i))
            settle(lambda n=i + 1: limiter.statistics().tasks_waiting == n)
        limiter.total_tokens = 3
        settle(lambda: len(got) == 2)
        assert got == [0, 1] and limiter.statistics().tasks_waiting == 2 and limiter.borrowed_tokens == 3
        limiter.total_tokens = math.inf
        settle(lambda: len(got) == 4)
        assert got == [0, 1, 2, 3] and limiter.statistics().tasks_waiting == 0 and limiter.borrowed_tokens == 5
        done.set()
        results(tasks)
        limiter.release_on_behalf_of("driver")
        assert is_free(limiter) and limiter.statistics().total_tokens == math.inf

    treadle.run(main)


@pytest.mark.parametrize(("total", "error"), [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("x", TypeError)])
def test_limiter_bad_total_tokens(total: Any, error: type[Exception]) -> None:
    """total_tokens must be an int >= 1 or math.inf, at construction and when set."""
    with pytest.raises(error):
        treadle.CapacityLimiter(total)
    limiter = treadle.CapacityLimiter(2)
    with pytest.raises(error):
        limiter.total_tokens = total
    assert limiter.total_tokens == 2


# -- bad timeouts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "error"), [(-1, ValueError), (math.nan, ValueError), ("x", TypeError), (True, TypeError)]
)
@pytest.mark.parametrize("style", ["green", "async"])
def test_bad_timeouts_fail_at_the_call(style: str, timeout: Any, error: type[Exception]) -> None:
    """A negative or NaN timeout is a ValueError, a non-number a TypeError, raised by the call (not the await)."""

    def check(cond: treadle.Condition) -> None:
        calls: dict[str, Callable[[Any], Any]] = {
            "Event.wait": lambda t: treadle.Event().wait(t),
            "Lock.acquire": lambda t: treadle.Lock().acquire(timeout=t),
            "RLock.acquire": lambda t: treadle.RLock().acquire(timeout=t),
            "Semaphore.acquire": lambda t: treadle.Semaphore(0).acquire(timeout=t),
            "BoundedSemaphore.acquire": lambda t: treadle.BoundedSemaphore(1).acquire(True, t),
            "Condition.wait": lambda t: cond.wait(t),  # the caller holds cond's lock
            "Condition.wait_for": lambda t: cond.wait_for(bool, t),
        }
        for name, call in calls.items():
            with pytest.raises(error, match="timeout"):
                call(timeout)
                pytest.fail(f"{name} accepted timeout={timeout!r}")
        assert cond.locked() and cond.statistics().tasks_waiting == 0

    def main() -> None:
        with cond:
            check(cond)

    async def amain() -> None:
        async with cond:
            check(cond)

    cond = treadle.Condition()
    treadle.run(main if style == "green" else amain())

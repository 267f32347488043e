"""A green task's place in a primitive's queue: ``GreenWaiter``.

Green tasks wait on Event, Lock, Semaphore, Condition and the queues through a
:class:`treadle.concurrency.waiting.GreenWaiter` (async tasks through a loop
future, in the same queue).  These tests check what the primitives' own tests
do not reach: the future-like interface the queue relies on, that a wake-up
scheduled for a task that was resumed by something else (a cancellation)
never switches into it later, and that a woken task runs in its own context.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

import treadle
from treadle.concurrency.waiting import GreenWaiter
from treadle.green.hub import get_hub

_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("_VAR", default="unset")


def test_a_green_waiter_has_the_future_interface_the_queue_uses() -> None:
    def main() -> list[Any]:
        hub = get_hub()
        seen: list[Any] = []
        waiter = GreenWaiter(hub)
        assert waiter.get_loop() is hub.loop
        assert not waiter.done() and not waiter.cancelled()
        assert "pending" in repr(waiter)
        with pytest.raises(asyncio.InvalidStateError):
            waiter.result()
        waiter.set_result("value")
        assert waiter.done() and waiter.result() == "value"
        with pytest.raises(asyncio.InvalidStateError):
            waiter.set_result("again")
        assert waiter.cancel() is False
        seen.append(waiter.wait("the test's waiter"))  # the scheduled wake-up brings the value

        other = GreenWaiter(hub)
        assert other.cancel() is True and other.cancel() is False
        assert other.cancelled() and other.done()
        with pytest.raises(asyncio.CancelledError):
            other.result()
        return seen

    assert treadle.run(main) == ["value"]


def test_a_wake_up_for_a_task_resumed_by_a_cancellation_never_switches_in_later() -> None:
    def main() -> list[Any]:
        loop = get_hub().loop
        event = treadle.Event()
        log: list[Any] = []

        def waiter() -> None:
            try:
                event.wait()
                log.append("woken")
            except asyncio.CancelledError:
                log.append("cancelled")
                start = loop.time()
                log.append(treadle.sleep(0.05, "slept"))
                log.append(loop.time() - start >= 0.05)

        task = treadle.spawn(waiter)
        treadle.sleep(0)
        assert event.statistics().tasks_waiting == 1
        # The cancellation is thrown in first; the wake-up that set() schedules
        # comes after it, when the task already sleeps on something else.
        task.cancel()
        event.set()
        task.join()
        return log

    assert treadle.run(main) == ["cancelled", "slept", True]


def test_a_woken_task_runs_in_its_own_context() -> None:
    def main() -> list[str]:
        event = treadle.Event()
        seen: list[str] = []

        def waiter(name: str) -> None:
            _VAR.set(name)
            event.wait()
            seen.append(_VAR.get())

        tasks = [treadle.spawn(waiter, n) for n in ("first", "second")]
        treadle.sleep(0)
        _VAR.set("setter")
        event.set()
        treadle.joinall(tasks)
        seen.append(_VAR.get())
        return seen

    assert treadle.run(main) == ["first", "second", "setter"]


def test_green_and_async_waiters_are_served_in_arrival_order_and_leave_no_entry() -> None:
    async def async_waiter(lock: treadle.Lock, order: list[str], name: str) -> None:
        async with lock:
            order.append(name)

    def green_waiter(lock: treadle.Lock, order: list[str], name: str) -> None:
        with lock:
            order.append(name)

    def main() -> list[str]:
        lock = treadle.Lock()
        order: list[str] = []
        lock.acquire()
        tasks = []
        for i in range(6):
            name = f"{'green' if i % 2 == 0 else 'async'}{i}"
            if i % 2 == 0:
                tasks.append(treadle.spawn(green_waiter, lock, order, name))
            else:
                tasks.append(get_hub().loop.create_task(async_waiter(lock, order, name)))
            treadle.sleep(0)  # each queues before the next starts
        assert lock.statistics().tasks_waiting == 6
        lock.release()
        for task in tasks:
            treadle.await_(task) if isinstance(task, asyncio.Task) else task.join()
        assert len(lock._waiters) == 0
        return order

    assert treadle.run(main) == ["green0", "async1", "green2", "async3", "green4", "async5"]


def test_a_queue_entry_of_a_green_task_that_timed_out_is_gone() -> None:
    def main() -> tuple[bool, int]:
        event = treadle.Event()
        got = event.wait(timeout=0.01)
        return got, len(event._waiters)

    assert treadle.run(main) == (False, 0)


def test_green_hub_or_async_tells_the_three_places_apart() -> None:
    from greenlet import greenlet

    from treadle.green.hub import green_hub_or_async

    seen: dict[str, Any] = {}

    async def in_async_code() -> None:
        seen["async"] = green_hub_or_async()

    def main() -> None:
        seen["green"] = green_hub_or_async()
        seen["hub"] = get_hub()
        treadle.await_(get_hub().loop.create_task(in_async_code()))

    seen["plain"] = greenlet(green_hub_or_async).switch()  # no loop runs in this thread yet
    treadle.run(main)
    assert seen["plain"] is False
    assert seen["green"] is seen["hub"]
    assert seen["async"] is True

"""One hub per thread: where ``get_hub``/``current_hub`` find it, in each thread and after a thread ends.

Compiled, the hub is kept in the thread state's dictionary; as Python, in a
``threading.local``.  Both must give each thread its own hub, let green tasks
of two threads' loops run at once without crossing, and leave a new thread
without a hub.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import treadle
from treadle.green.hub import current_hub, get_hub


def _run_in_thread(target: Any) -> Any:
    """``target()`` in a new thread; its result, or its exception raised here."""
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["result"] = target()
        except BaseException as exc:  # handed to the test's thread
            box["error"] = exc

    thread = threading.Thread(target=body, daemon=True)  # a thread that hangs must not hold the run open
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    if "error" in box:
        raise box["error"]
    return box["result"]


def test_each_thread_has_its_own_hub_and_loop() -> None:
    ready = threading.Barrier(2, timeout=10)

    def program(name: str) -> tuple[int, int, list[str]]:
        def main() -> tuple[int, int, list[str]]:
            hub = get_hub()
            assert hub.loop is asyncio.get_running_loop()
            order: list[str] = []

            def worker(i: int) -> None:
                treadle.sleep(0.01)
                assert get_hub() is hub  # a green task of this thread sees this thread's hub
                order.append(f"{name}{i}")

            ready.wait()  # both threads' loops run at once from here
            treadle.joinall([treadle.spawn(worker, i) for i in range(3)])
            return id(hub), id(hub.loop), order

        return treadle.run(main)  # type: ignore[no-any-return]

    results: dict[str, Any] = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, program(n))) for n in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["a", "b"]
    (hub_a, loop_a, order_a), (hub_b, loop_b, order_b) = results["a"], results["b"]
    assert hub_a != hub_b and loop_a != loop_b
    assert sorted(order_a) == ["a0", "a1", "a2"] and sorted(order_b) == ["b0", "b1", "b2"]


def test_a_new_thread_starts_without_a_hub() -> None:
    def make_one() -> int:
        hub = get_hub()  # no loop runs here: the hub gets a new one
        assert current_hub() is hub
        hub.loop.close()
        assert current_hub() is None  # its loop is closed
        return id(hub)

    def look() -> Any:
        return current_hub()

    first = _run_in_thread(make_one)
    assert isinstance(first, int)
    # A thread started after the first one ended (its identifier may be reused).
    assert _run_in_thread(look) is None


def test_the_main_thread_keeps_its_hub_while_others_make_theirs() -> None:
    def make_and_close() -> int:
        hub = get_hub()
        hub.loop.close()
        return id(hub)

    def main() -> None:
        hub = get_hub()
        other = _run_in_thread(make_and_close)
        assert other != id(hub)
        assert get_hub() is hub and current_hub() is hub

    treadle.run(main)


def test_wake_ups_in_one_thread_while_another_threads_task_runs() -> None:
    """A hub's wake-up callback stays entered in its context while the task it woke runs.

    Thread A's task is woken and then blocks its whole thread; meanwhile thread B starts a
    green task and wakes one through an Event.  Each hub runs its wake-ups and starts in a
    context of its own: one context shared by every hub could not be entered by B's while
    A's is, and B's tasks would never start or wake ("cannot enter context").
    """
    a_woken, b_done = threading.Event(), threading.Event()

    def thread_a() -> str:
        def task_a() -> str:
            treadle.sleep(0)  # woken by thread A's hub, whose callback is still entered below
            a_woken.set()
            assert b_done.wait(30)  # blocks thread A (not a green wait) until B is through
            return "a"

        return treadle.run(lambda: treadle.spawn(task_a).get())  # type: ignore[no-any-return]

    def thread_b() -> tuple[list[Any], list[dict[str, Any]]]:
        assert a_woken.wait(30)

        def main() -> list[Any]:
            asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
            started = treadle.spawn(lambda: "started")
            event = treadle.Event()
            setter = treadle.spawn(event.set)
            done = treadle.joinall([started, setter], timeout=5)
            return [[t.get() for t in done], event.wait(timeout=5)]

        errors: list[dict[str, Any]] = []
        try:
            return treadle.run(main), errors
        finally:
            b_done.set()

    box: dict[str, Any] = {}
    other = threading.Thread(target=lambda: box.__setitem__("a", thread_a()), daemon=True)
    other.start()
    try:
        results, errors = _run_in_thread(thread_b)
    finally:
        b_done.set()
        other.join(30)
    assert not other.is_alive() and box["a"] == "a"
    assert errors == []
    assert results == [["started", None], True]

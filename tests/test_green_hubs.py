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

    thread = threading.Thread(target=body)
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

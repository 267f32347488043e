"""gevent's Group and Pool on treadle: spawn, map, imap, imap_unordered, apply, join, kill, bounded concurrency.

Each test runs a green main (``treadle.run(main)``).  Concurrency is observed
through a counter of tasks inside the work function, never through time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import treadle


class Inside:
    """Counts the tasks inside a work function, and the most seen at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def work(self, x: int, switches: int = 3) -> int:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            for _ in range(switches + x % 3):
                treadle.sleep(0)
        finally:
            self.now -= 1
        return x * x


def test_pool_map_and_imap_keep_order_and_never_run_more_than_size() -> None:
    inside = Inside()

    def main() -> tuple[Any, ...]:
        pool = treadle.Pool(3)
        mapped = pool.map(inside.work, range(20))
        most_map = inside.most
        inside.most = 0
        imapped = list(pool.imap(inside.work, range(20)))
        return mapped, most_map, imapped, inside.most, len(pool)

    mapped, most_map, imapped, most_imap, left = treadle.run(main)
    assert mapped == imapped == [x * x for x in range(20)]
    assert most_map == most_imap == 3
    assert left == 0


def test_imap_takes_several_iterables_like_map() -> None:
    def main() -> list[int]:
        return list(treadle.Pool(2).imap(pow, [2, 3, 4], [3, 2, 1]))

    assert treadle.run(main) == [8, 9, 4]


def test_imap_unordered_yields_every_result_once_in_the_order_they_finish() -> None:
    def work(x: int) -> int:
        for _ in range(10 - x):  # the later ones finish first
            treadle.sleep(0)
        return x

    def main() -> tuple[list[int], int]:
        pool = treadle.Pool(10)
        results = list(pool.imap_unordered(work, range(10)))
        return results, len(pool)

    results, left = treadle.run(main)
    assert sorted(results) == list(range(10))
    assert results != list(range(10))  # completion order, not submission order
    assert left == 0


def test_a_failure_in_map_or_imap_is_raised_and_the_rest_are_stopped() -> None:
    finished: list[int] = []

    def work(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        for _ in range(20):
            treadle.sleep(0)
        finished.append(x)
        return x

    def main() -> tuple[str, int]:
        pool = treadle.Pool(4)
        with pytest.raises(ValueError, match="two"):
            pool.map(work, range(8))
        pool.join()
        return "raised", len(pool)

    assert treadle.run(main) == ("raised", 0)
    assert len(finished) < 7  # the tasks still pending when the error came were stopped


def test_breaking_out_of_imap_early_stops_the_tasks_left() -> None:
    started: list[int] = []

    def work(x: int) -> int:
        started.append(x)
        treadle.sleep(0.5)
        return x

    def main() -> int:
        pool = treadle.Pool(2)
        for _ in pool.imap(work, range(6)):
            break
        pool.join(timeout=5)
        return len(pool)

    assert treadle.run(main) == 0
    assert len(started) < 6


def test_pool_spawn_waits_for_a_free_slot_and_free_count_full_wait_available() -> None:
    def main() -> list[Any]:
        pool = treadle.Pool(2)
        release = treadle.Event()
        seen: list[Any] = [pool.free_count(), pool.full()]
        a = pool.spawn(release.wait)
        b = pool.spawn(release.wait)
        seen += [pool.free_count(), pool.full(), pool.wait_available(timeout=0.05)]
        third = treadle.spawn(pool.spawn, treadle.sleep, 0)  # blocks until a slot frees
        treadle.sleep(0.05)
        seen.append(third.done())
        release.set()
        third.get().join()
        treadle.joinall([a, b])
        seen += [pool.join(), pool.free_count(), pool.full()]
        return seen

    assert treadle.run(main) == [2, False, 0, True, 0, False, True, 2, False]


def test_group_join_kill_add_discard_and_apply() -> None:
    def main() -> list[Any]:
        group = treadle.Group()
        for _ in range(4):
            group.spawn(treadle.sleep, 0.01)
        seen: list[Any] = [len(group), group.join(), len(group)]
        sleeper = group.spawn(treadle.sleep, 30)
        seen.append(group.join(timeout=0.05))  # times out
        group.kill()
        seen += [len(group), sleeper.cancelled()]
        outside = treadle.spawn(treadle.sleep, 0)
        group.add(outside)
        seen.append(outside in group)
        outside.join()
        seen.append(group.join())
        seen.append(group.apply(pow, (2, 10)))
        seen.append(group.full())
        return seen

    assert treadle.run(main) == [4, True, 0, False, 0, True, True, True, 1024, False]


def test_kill_with_an_exception_raises_it_in_each_task() -> None:
    caught: list[str] = []

    def work() -> None:
        try:
            treadle.sleep(30)
        except LookupError as exc:
            caught.append(str(exc))

    def main() -> int:
        group = treadle.Group()
        for _ in range(3):
            group.spawn(work)
        treadle.sleep(0)
        group.kill(LookupError("stop"))
        return len(group)

    assert treadle.run(main) == 0
    assert caught == ["stop"] * 3


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        treadle.Pool(0)
    with pytest.raises(TypeError):
        treadle.Pool("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="green task"):
        treadle.Group().add(object())  # type: ignore[arg-type]


def test_blocking_pool_calls_from_async_code_raise_blocking_in_hub_error() -> None:
    async def main() -> None:
        pool = treadle.Pool(1)
        pool.spawn(treadle.sleep, 0.05)  # a free slot: does not block
        assert pool.full()
        with pytest.raises(treadle.BlockingInHubError, match="full pool"):
            pool.spawn(treadle.sleep, 0)
        with pytest.raises(treadle.BlockingInHubError):
            pool.join()
        await asyncio.sleep(0.1)
        assert not pool.full()

    treadle.run(main())

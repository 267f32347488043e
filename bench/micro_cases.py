"""The loop micro-benchmarks themselves: one function per (case, runtime), each timing one sample.

Owns: what each case does on each runtime and what it measures.  The runtimes
are ``treadle`` (asyncio code on treadle's loop, with treadle's primitives),
``treadle-green`` (green tasks), ``asyncio``, ``uvloop``, ``gevent`` and
``trio``; a case has a function for each runtime that has the concept.  Every
function takes ``n`` (the number of operations or tasks) and returns one
number: operations per second for a rate, or a cost per task (bytes, CPU µs).

Never: runs two runtimes in one process (bench/micro.py starts a process per
runtime, and one per memory sample), or checks a speed: a wrong result (a lost
wake-up, a task that did not run) raises instead of giving a number.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

Sample = Callable[[int], float]


def _loop_factory(runtime: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if runtime == "treadle":
        import treadle

        return treadle.new_event_loop
    if runtime == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if runtime == "asyncio":
        return asyncio.new_event_loop
    raise ValueError(f"{runtime!r} has no asyncio loop")


def _on_loop(runtime: str, fn: Callable[[asyncio.AbstractEventLoop, int], float]) -> Sample:
    """A sample of ``fn(loop, n)`` on a new loop of ``runtime``, closed afterwards."""

    def sample(n: int) -> float:
        loop = _loop_factory(runtime)()
        try:
            return fn(loop, n)
        finally:
            loop.close()

    return sample


def _in_async(runtime: str, fn: Callable[[int], Awaitable[float]]) -> Sample:
    """A sample of coroutine ``fn(n)`` run to completion on a new loop of ``runtime``."""
    return _on_loop(runtime, lambda loop, n: loop.run_until_complete(fn(n)))


def _rss() -> int:
    """Resident memory of this process, bytes (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _delays(n: int) -> list[float]:
    rng = random.Random(20240601)
    return [rng.random() for _ in range(n)]


def _check(what: str, got: int, want: int) -> None:
    if got != want:
        raise RuntimeError(f"{what}: {got} instead of {want}")


# -- loop callbacks and timers (asyncio loops, gevent's hub loop) ----------------------------------


def _call_soon(loop: asyncio.AbstractEventLoop, n: int) -> float:
    done = loop.create_future()
    count = [0]

    def cb() -> None:
        count[0] += 1
        if count[0] == n:
            done.set_result(None)

    t0 = time.perf_counter()
    for _ in range(n):
        loop.call_soon(cb)
    loop.run_until_complete(done)
    return n / (time.perf_counter() - t0)


def _call_soon_threadsafe(loop: asyncio.AbstractEventLoop, n: int) -> float:
    done = loop.create_future()
    count = [0]

    def cb() -> None:
        count[0] += 1
        if count[0] == n:
            done.set_result(None)

    def producer() -> None:
        for _ in range(n):
            loop.call_soon_threadsafe(cb)

    t0 = time.perf_counter()
    thread = threading.Thread(target=producer)
    thread.start()
    loop.run_until_complete(done)
    thread.join()
    return n / (time.perf_counter() - t0)


def _timers(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """Schedule n timers (distinct deadlines), cancel them all, run one iteration."""

    def cb() -> None:
        raise AssertionError("a cancelled timer ran")

    t0 = time.perf_counter()
    handles = [loop.call_later(10.0 + i * 1e-6, cb) for i in range(n)]
    for h in handles:
        h.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    return n / (time.perf_counter() - t0)


def _gevent_call_soon(n: int) -> float:
    import gevent.event

    loop = gevent.get_hub().loop
    done = gevent.event.Event()
    count = [0]

    def cb() -> None:
        count[0] += 1
        if count[0] == n:
            done.set()

    t0 = time.perf_counter()
    for _ in range(n):
        loop.run_callback(cb)
    done.wait()
    return n / (time.perf_counter() - t0)


def _gevent_call_soon_threadsafe(n: int) -> float:
    import gevent.event

    loop = gevent.get_hub().loop
    done = gevent.event.Event()
    count = [0]

    def cb() -> None:
        count[0] += 1
        if count[0] == n:
            done.set()

    def producer() -> None:
        for _ in range(n):
            loop.run_callback_threadsafe(cb)

    t0 = time.perf_counter()
    thread = threading.Thread(target=producer)
    thread.start()
    # With a timeout: gevent's hub counts only its timer as a reason to wait (the
    # thread-safe wake-up is not one), and would otherwise raise LoopExit at once.
    if not done.wait(60):
        raise RuntimeError("call_soon_threadsafe: the callbacks did not all run within 60 s")
    thread.join()
    return n / (time.perf_counter() - t0)


def _trio_call_soon_threadsafe(n: int) -> float:
    """trio's one way in from another thread: ``TrioToken.run_sync_soon`` (it has no same-thread call_soon)."""
    import trio
    import trio.lowlevel

    async def main() -> float:
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        count = [0]

        def cb() -> None:
            count[0] += 1
            if count[0] == n:
                done.set()

        def producer() -> None:
            for _ in range(n):
                token.run_sync_soon(cb)

        t0 = time.perf_counter()
        thread = threading.Thread(target=producer)
        thread.start()
        await done.wait()
        rate = n / (time.perf_counter() - t0)
        thread.join()
        return rate

    return trio.run(main)


def _gevent_timers(n: int) -> float:
    import gevent

    loop = gevent.get_hub().loop

    def cb() -> None:
        raise AssertionError("a cancelled timer ran")

    t0 = time.perf_counter()
    timers = []
    for i in range(n):
        t = loop.timer(10.0 + i * 1e-6)
        t.start(cb)
        timers.append(t)
    for t in timers:
        t.close()
    gevent.sleep(0)
    return n / (time.perf_counter() - t0)


# -- sleep(0) ---------------------------------------------------------------------------------------


async def _sleep0(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await asyncio.sleep(0)
    return n / (time.perf_counter() - t0)


def _trio_sleep0(n: int) -> float:
    import trio

    async def main() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            await trio.sleep(0)
        return n / (time.perf_counter() - t0)

    return trio.run(main)


def _green_sleep0(sleep: Callable[[float], Any]) -> Sample:
    def sample(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            sleep(0)
        return n / (time.perf_counter() - t0)

    return sample


# -- spawning and joining tasks ----------------------------------------------------------------------


async def _spawn_join(n: int) -> float:
    loop = asyncio.get_running_loop()
    ran = [0]

    async def child() -> None:
        ran[0] += 1

    t0 = time.perf_counter()
    await asyncio.gather(*[loop.create_task(child()) for _ in range(n)])
    rate = n / (time.perf_counter() - t0)
    _check("tasks run", ran[0], n)
    return rate


def _trio_spawn_join(n: int) -> float:
    import trio

    ran = [0]

    async def child() -> None:
        ran[0] += 1

    async def main() -> float:
        t0 = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(child)
        return n / (time.perf_counter() - t0)

    rate = trio.run(main)
    _check("tasks run", ran[0], n)
    return rate


def _green_spawn_join(spawn: Callable[..., Any], joinall: Callable[[list[Any]], Any]) -> Sample:
    def sample(n: int) -> float:
        ran = [0]

        def child() -> None:
            ran[0] += 1

        t0 = time.perf_counter()
        joinall([spawn(child) for _ in range(n)])
        rate = n / (time.perf_counter() - t0)
        _check("tasks run", ran[0], n)
        return rate

    return sample


# -- ping-pong between two tasks ---------------------------------------------------------------------


def _async_event_pingpong(make: Callable[[], Any]) -> Callable[[int], Awaitable[float]]:
    async def run(n: int) -> float:
        ping, pong = make(), make()

        async def ponger() -> None:
            for _ in range(n):
                await ping.wait()
                ping.clear()
                pong.set()

        task = asyncio.get_running_loop().create_task(ponger())
        t0 = time.perf_counter()
        for _ in range(n):
            ping.set()
            await pong.wait()
            pong.clear()
        await task
        return n / (time.perf_counter() - t0)

    return run


def _async_queue_pingpong(make: Callable[[], Any]) -> Callable[[int], Awaitable[float]]:
    async def run(n: int) -> float:
        there, back = make(), make()

        async def ponger() -> None:
            for _ in range(n):
                await back.put(await there.get())

        task = asyncio.get_running_loop().create_task(ponger())
        t0 = time.perf_counter()
        for i in range(n):
            await there.put(i)
            _check("item back", await back.get(), i)
        await task
        return n / (time.perf_counter() - t0)

    return run


def _trio_event_pingpong(n: int) -> float:
    """trio's Event cannot be cleared: each side replaces the one it waited on, where the others clear it."""
    import trio

    async def main() -> float:
        ping, pong = [trio.Event()], [trio.Event()]

        async def ponger() -> None:
            for _ in range(n):
                await ping[0].wait()
                ping[0] = trio.Event()
                pong[0].set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ponger)
            t0 = time.perf_counter()
            for _ in range(n):
                ping[0].set()
                await pong[0].wait()
                pong[0] = trio.Event()
        return n / (time.perf_counter() - t0)

    return trio.run(main)


def _trio_queue_pingpong(n: int) -> float:
    """trio's queue is a memory channel; unbounded here, as the asyncio.Queue of the other runtimes."""
    import math

    import trio

    async def main() -> float:
        there_send, there_recv = trio.open_memory_channel[int](math.inf)
        back_send, back_recv = trio.open_memory_channel[int](math.inf)

        async def ponger() -> None:
            for _ in range(n):
                await back_send.send(await there_recv.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ponger)
            t0 = time.perf_counter()
            for i in range(n):
                await there_send.send(i)
                _check("item back", await back_recv.receive(), i)
        return n / (time.perf_counter() - t0)

    return trio.run(main)


def _green_event_pingpong(make: Callable[[], Any], spawn: Callable[..., Any]) -> Sample:
    def sample(n: int) -> float:
        ping, pong = make(), make()

        def ponger() -> None:
            for _ in range(n):
                ping.wait()
                ping.clear()
                pong.set()

        task = spawn(ponger)
        t0 = time.perf_counter()
        for _ in range(n):
            ping.set()
            pong.wait()
            pong.clear()
        task.join()
        return n / (time.perf_counter() - t0)

    return sample


def _green_queue_pingpong(make: Callable[[], Any], spawn: Callable[..., Any]) -> Sample:
    def sample(n: int) -> float:
        there, back = make(), make()

        def ponger() -> None:
            for _ in range(n):
                back.put(there.get())

        task = spawn(ponger)
        t0 = time.perf_counter()
        for i in range(n):
            there.put(i)
            _check("item back", back.get(), i)
        task.join()
        return n / (time.perf_counter() - t0)

    return sample


# -- memory per idle task (each sample in a fresh process) -------------------------------------------


async def _async_idle_memory(n: int) -> float:
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()

    async def idle() -> None:
        await gate

    gc.collect()
    before = _rss()
    tasks = [loop.create_task(idle()) for _ in range(n)]
    await asyncio.sleep(0)  # every task has run up to its wait
    gc.collect()
    used = _rss() - before
    gate.set_result(None)
    await asyncio.gather(*tasks)
    return used / n


def _trio_idle_memory(n: int) -> float:
    import trio
    import trio.testing

    async def main() -> float:
        gate = trio.Event()
        gc.collect()
        before = _rss()
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(gate.wait)
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            used = _rss() - before
            gate.set()
        return used / n

    return trio.run(main)


def _green_idle_memory(
    make_event: Callable[[], Any], spawn: Callable[..., Any], joinall: Callable[[list[Any]], Any], sleep: Any
) -> Sample:
    def sample(n: int) -> float:
        gate = make_event()
        gc.collect()
        before = _rss()
        tasks = [spawn(gate.wait) for _ in range(n)]
        sleep(0)  # every task has run up to its wait
        gc.collect()
        used = _rss() - before
        gate.set()
        joinall(tasks)
        return used / n

    return sample


# -- 100,000 tasks each sleeping a random time below 1 s: CPU µs per task ---------------------------


async def _async_random_sleeps(n: int) -> float:
    delays = _delays(n)
    cpu0 = time.process_time()
    await asyncio.gather(*(asyncio.sleep(d) for d in delays))
    return (time.process_time() - cpu0) / n * 1e6


def _trio_random_sleeps(n: int) -> float:
    import trio

    delays = _delays(n)

    async def main() -> float:
        cpu0 = time.process_time()
        async with trio.open_nursery() as nursery:
            for d in delays:
                nursery.start_soon(trio.sleep, d)
        return (time.process_time() - cpu0) / n * 1e6

    return trio.run(main)


def _green_random_sleeps(spawn: Callable[..., Any], joinall: Callable[[list[Any]], Any], sleep: Any) -> Sample:
    def sample(n: int) -> float:
        delays = _delays(n)
        cpu0 = time.process_time()
        joinall([spawn(sleep, d) for d in delays])
        return (time.process_time() - cpu0) / n * 1e6

    return sample


# -- the table of cases ------------------------------------------------------------------------------


class Case:
    """One micro-benchmark: its name, unit, size, and a sample function per runtime."""

    __slots__ = ("name", "unit", "higher_is_better", "n", "fresh_process", "quick", "runtimes")

    def __init__(
        self,
        name: str,
        unit: str,
        n: int,
        runtimes: dict[str, Callable[[], Sample]],
        *,
        higher_is_better: bool = True,
        fresh_process: bool = False,
        quick: bool = False,
    ) -> None:
        self.name = name
        self.unit = unit
        self.n = n
        self.runtimes = runtimes  # the first is treadle's; each value builds the sample function
        self.higher_is_better = higher_is_better
        self.fresh_process = fresh_process  # one sample per process (memory)
        self.quick = quick  # part of QUICK=1


def _treadle() -> Any:
    import treadle

    return treadle


def _gevent() -> Any:
    import gevent
    import gevent.event
    import gevent.queue

    return gevent


def _asyncio_cases(fn: Callable[[int], Awaitable[float]]) -> dict[str, Callable[[], Sample]]:
    return {rt: functools.partial(_in_async, rt, fn) for rt in ("treadle", "asyncio", "uvloop")}


def _loop_cases(fn: Callable[[asyncio.AbstractEventLoop, int], float]) -> dict[str, Callable[[], Sample]]:
    return {rt: functools.partial(_on_loop, rt, fn) for rt in ("treadle", "asyncio", "uvloop")}


def _primitive_cases(
    pingpong: Callable[[Callable[[], Any]], Callable[[int], Awaitable[float]]], name: str
) -> dict[str, Callable[[], Sample]]:
    """treadle's primitive on treadle's loop; asyncio's on asyncio and uvloop."""
    return {
        "treadle": lambda: _in_async("treadle", pingpong(getattr(_treadle(), name))),
        "asyncio": lambda: _in_async("asyncio", pingpong(getattr(asyncio, name))),
        "uvloop": lambda: _in_async("uvloop", pingpong(getattr(asyncio, name))),
    }


CASES: list[Case] = [
    Case(
        "call_soon",
        "calls/s",
        200_000,
        {**_loop_cases(_call_soon), "gevent": lambda: _gevent_call_soon},
        quick=True,
    ),
    Case(
        "call_soon_threadsafe",
        "calls/s",
        100_000,
        {
            **_loop_cases(_call_soon_threadsafe),
            "gevent": lambda: _gevent_call_soon_threadsafe,
            "trio": lambda: _trio_call_soon_threadsafe,
        },
    ),
    Case(
        "timer schedule + cancel",
        "timers/s",
        100_000,
        {**_loop_cases(_timers), "gevent": lambda: _gevent_timers},
        quick=True,
    ),
    Case(
        "sleep(0), async",
        "switches/s",
        100_000,
        {**_asyncio_cases(_sleep0), "trio": lambda: _trio_sleep0},
        quick=True,
    ),
    Case(
        "sleep(0), green",
        "switches/s",
        100_000,
        {
            "treadle-green": lambda: _green_sleep0(_treadle().sleep),
            "gevent": lambda: _green_sleep0(_gevent().sleep),
        },
        quick=True,
    ),
    Case(
        "spawn + join tasks, async",
        "tasks/s",
        100_000,
        {**_asyncio_cases(_spawn_join), "trio": lambda: _trio_spawn_join},
        quick=True,
    ),
    Case(
        "spawn + join tasks, green",
        "tasks/s",
        100_000,
        {
            "treadle-green": lambda: _green_spawn_join(_treadle().spawn, _treadle().joinall),
            "gevent": lambda: _green_spawn_join(_gevent().spawn, _gevent().joinall),
        },
        quick=True,
    ),
    Case(
        "Event ping-pong, async",
        "round trips/s",
        50_000,
        {**_primitive_cases(_async_event_pingpong, "Event"), "trio": lambda: _trio_event_pingpong},
    ),
    Case(
        "Event ping-pong, green",
        "round trips/s",
        50_000,
        {
            "treadle-green": lambda: _green_event_pingpong(_treadle().Event, _treadle().spawn),
            "gevent": lambda: _green_event_pingpong(_gevent().event.Event, _gevent().spawn),
        },
    ),
    Case(
        "Queue ping-pong, async",
        "round trips/s",
        50_000,
        {**_primitive_cases(_async_queue_pingpong, "Queue"), "trio": lambda: _trio_queue_pingpong},
    ),
    Case(
        "Queue ping-pong, green",
        "round trips/s",
        50_000,
        {
            "treadle-green": lambda: _green_queue_pingpong(_treadle().Queue, _treadle().spawn),
            "gevent": lambda: _green_queue_pingpong(_gevent().queue.Queue, _gevent().spawn),
        },
    ),
    Case(
        "memory per idle task, async",
        "bytes/task",
        100_000,
        {**_asyncio_cases(_async_idle_memory), "trio": lambda: _trio_idle_memory},
        higher_is_better=False,
        fresh_process=True,
    ),
    Case(
        "memory per idle task, green",
        "bytes/task",
        100_000,
        {
            "treadle-green": lambda: _green_idle_memory(
                _treadle().Event, _treadle().spawn, _treadle().joinall, _treadle().sleep
            ),
            "gevent": lambda: _green_idle_memory(
                _gevent().event.Event, _gevent().spawn, _gevent().joinall, _gevent().sleep
            ),
        },
        higher_is_better=False,
        fresh_process=True,
    ),
    Case(
        "tasks sleeping a random time < 1 s, async",
        "CPU µs/task",
        100_000,
        {**_asyncio_cases(_async_random_sleeps), "trio": lambda: _trio_random_sleeps},
        higher_is_better=False,
    ),
    Case(
        "tasks sleeping a random time < 1 s, green",
        "CPU µs/task",
        100_000,
        {
            "treadle-green": lambda: _green_random_sleeps(_treadle().spawn, _treadle().joinall, _treadle().sleep),
            "gevent": lambda: _green_random_sleeps(_gevent().spawn, _gevent().joinall, _gevent().sleep),
        },
        higher_is_better=False,
    ),
]

BY_NAME = {case.name: case for case in CASES}

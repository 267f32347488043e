"""Loop micro-benchmarks: treadle against stock asyncio (and uvloop when installed).

Run: ``.venv/bin/python bench/micro.py [--quick]``.  Prints a table of operations
per second for each loop, the median of several repetitions, and treadle's ratio
to each peer.  A benchmark prints; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import treadle  # noqa: E402


def _loops() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "treadle": treadle.new_event_loop,
        "asyncio": asyncio.new_event_loop,
    }
    try:
        import uvloop  # type: ignore[import-not-found]

        loops["uvloop"] = uvloop.new_event_loop
    except ImportError:
        pass
    return loops


def bench_call_soon(loop: asyncio.AbstractEventLoop, n: int) -> float:
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


def bench_call_soon_threadsafe(loop: asyncio.AbstractEventLoop, n: int) -> float:
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


def bench_timers(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """Schedule n timers, cancel them all, then run one iteration."""

    def cb() -> None:
        pass

    t0 = time.perf_counter()
    handles = [loop.call_later(10.0 + i * 1e-6, cb) for i in range(n)]
    for h in handles:
        h.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    return n / (time.perf_counter() - t0)


def bench_sleep0(loop: asyncio.AbstractEventLoop, n: int) -> float:
    async def main() -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    t0 = time.perf_counter()
    loop.run_until_complete(main())
    return n / (time.perf_counter() - t0)


def bench_tasks(loop: asyncio.AbstractEventLoop, n: int) -> float:
    async def child() -> None:
        pass

    async def main() -> None:
        await asyncio.gather(*[loop.create_task(child()) for _ in range(n)])

    t0 = time.perf_counter()
    loop.run_until_complete(main())
    return n / (time.perf_counter() - t0)


CASES: dict[str, tuple[Callable[[asyncio.AbstractEventLoop, int], float], int]] = {
    "call_soon": (bench_call_soon, 200_000),
    "call_soon_threadsafe": (bench_call_soon_threadsafe, 100_000),
    "timer schedule+cancel": (bench_timers, 100_000),
    "sleep(0)": (bench_sleep0, 100_000),
    "spawn+join async tasks": (bench_tasks, 100_000),
}


def main() -> None:
    faulthandler.dump_traceback_later(25, exit=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer operations and repetitions")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    loops = _loops()
    names = list(loops)
    header = f"{'case':24}" + "".join(f"{n + ' ops/s':>18}" for n in names)
    header += "".join(f"{'vs ' + n:>12}" for n in names[1:])
    print(header)
    for case, (fn, n) in CASES.items():
        if args.quick:
            n //= 10
        rates = {}
        for name, factory in loops.items():
            samples = []
            for _ in range(repeat):
                loop = factory()
                try:
                    samples.append(fn(loop, n))
                finally:
                    loop.close()
            rates[name] = statistics.median(samples)
        row = f"{case:24}" + "".join(f"{rates[n]:>18,.0f}" for n in names)
        row += "".join(f"{rates['treadle'] / rates[n]:>11.2f}x" for n in names[1:])
        print(row)


if __name__ == "__main__":
    main()

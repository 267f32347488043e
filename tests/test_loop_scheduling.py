"""Scheduling and lifecycle of the event loop, on treadle's loop and on stock asyncio.

Covers ``call_soon``/``call_later``/``call_at``/``call_soon_threadsafe``, the
timer heap, ``run_forever``/``stop``/``run_until_complete``/``close``, tasks and
futures, the task factory, the exception handler, debug mode, executors and
signal handlers.  Every test runs on both loops (the ``loop`` fixture); where
asyncio documents a behaviour as undefined or where treadle documents a
stricter one, the test asserts each kind's behaviour explicitly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest

Run = Callable[..., Any]

# A hang guard, not a speed requirement: each test that waits for something to
# happen on the loop also schedules a timer this far out, and fails if that
# timer is what woke the loop up.
GUARD = 5.0


def _noop(*args: Any) -> None:
    pass


def _timer_heap_size(loop: asyncio.AbstractEventLoop, loop_kind: str) -> int:
    """Entries (live and cancelled) in the loop's timer heap."""
    if loop_kind == "treadle":
        return len(loop._timers._heap)  # type: ignore[attr-defined]
    return len(loop._scheduled)  # type: ignore[attr-defined]


@pytest.fixture
def run_guarded(loop: asyncio.AbstractEventLoop) -> Run:
    """Run a coroutine on ``loop`` with a hang guard that must not be what ends the wait.

    For tests where other threads or signals wake the loop: if the loop slept
    in poll although it had been woken, only the guard timer gets it going
    again, and the test fails even if the result was there by then.
    """

    def _run(coro: Coroutine[Any, Any, Any], guard: float = GUARD) -> Any:
        fired: list[bool] = []
        task = loop.create_task(coro)

        def on_guard() -> None:
            fired.append(True)
            task.cancel()

        handle = loop.call_later(guard, on_guard)
        try:
            result = loop.run_until_complete(task)
        except asyncio.CancelledError:
            if not fired:
                raise
            result = None
        finally:
            handle.cancel()
        if fired:
            pytest.fail(f"still waiting after {guard} s: only the guard timer woke the loop up (lost wake-up?)")
        return result

    return _run


@pytest.fixture
def sigusr1() -> Iterator[signal.Signals]:
    """SIGUSR1, with its disposition restored after the test whatever the loop did."""
    old = signal.getsignal(signal.SIGUSR1)
    try:
        yield signal.SIGUSR1
    finally:
        signal.signal(signal.SIGUSR1, old)


# -- call_soon ----------------------------------------------------------------------


def test_call_soon_runs_callbacks_in_fifo_order(loop: asyncio.AbstractEventLoop) -> None:
    out: list[int] = []
    for i in range(1000):
        loop.call_soon(out.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == list(range(1000))


def test_call_soon_passes_positional_args(loop: asyncio.AbstractEventLoop) -> None:
    out: list[tuple[Any, ...]] = []

    def record(*args: Any) -> None:
        out.append(args)

    sentinel = object()
    loop.call_soon(record)
    loop.call_soon(record, 1, "two", None, sentinel)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == [(), (1, "two", None, sentinel)]


def test_callbacks_scheduled_by_a_callback_run_after_the_queued_ones(loop: asyncio.AbstractEventLoop) -> None:
    out: list[str] = []

    def first() -> None:
        out.append("first")
        loop.call_soon(out.append, "scheduled by first")

    loop.call_soon(first)
    loop.call_soon(out.append, "second")
    loop.call_soon(loop.call_soon, loop.stop)
    loop.run_forever()
    assert out == ["first", "second", "scheduled by first"]


def test_call_soon_context_kwarg(loop: asyncio.AbstractEventLoop) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="default")
    seen: list[str] = []

    def look_and_set() -> None:
        seen.append(var.get())
        var.set("changed by callback")

    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")
    handle = loop.call_soon(look_and_set, context=ctx)
    if hasattr(handle, "get_context"):  # asyncio.Handle.get_context() is Python 3.12+
        assert handle.get_context() is ctx

    # Without context=, the callback runs in a copy of the caller's context.
    token = var.set("caller")
    try:
        loop.call_soon(look_and_set)
    finally:
        var.reset(token)
    loop.call_soon(loop.stop)
    loop.run_forever()

    assert seen == ["in ctx", "caller"]
    assert ctx[var] == "changed by callback"  # ran inside ctx itself
    assert var.get() == "default"  # the copy's change did not leak back


def test_call_soon_handle_cancel(loop: asyncio.AbstractEventLoop) -> None:
    out: list[str] = []
    h1 = loop.call_soon(out.append, "cancelled before run")
    assert isinstance(h1, asyncio.Handle)
    assert not h1.cancelled()
    h1.cancel()
    h1.cancel()  # idempotent
    assert h1.cancelled()

    # A callback cancels one that is already in the same batch of ready callbacks.
    def cancel_next() -> None:
        out.append("canceller")
        h3.cancel()

    loop.call_soon(cancel_next)
    h3 = loop.call_soon(out.append, "cancelled by an earlier callback")
    loop.call_soon(out.append, "kept")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["canceller", "kept"]
    assert h3.cancelled()


# -- call_later / call_at -------------------------------------------------------------


def test_call_later_runs_timers_in_deadline_order(loop: asyncio.AbstractEventLoop) -> None:
    out: list[float] = []
    delays = [0.05, 0.01, 0.04, 0.0, 0.03, 0.02, 0.045, 0.015]

    def fire(delay: float) -> None:
        out.append(delay)
        if len(out) == len(delays):
            loop.stop()

    for d in delays:
        loop.call_later(d, fire, d)
    guard = loop.call_later(GUARD, loop.stop)
    loop.run_forever()
    guard.cancel()
    assert out == sorted(delays)


def test_call_at_same_deadline_runs_in_scheduling_order(loop: asyncio.AbstractEventLoop, loop_kind: str) -> None:
    out: list[int] = []
    n = 200
    when = loop.time() + 0.01

    def fire(i: int) -> None:
        out.append(i)
        if len(out) == n:
            loop.stop()

    # Interleave with earlier and later timers so the heap really reorders things.
    for i in range(n):
        loop.call_at(when, fire, i)
        loop.call_at(when + 1 + i, _noop).cancel()
        loop.call_at(when - 0.005, _noop)
    guard = loop.call_later(GUARD, loop.stop)
    loop.run_forever()
    guard.cancel()
    if loop_kind == "treadle":
        # treadle documents that timers due at the same instant run in the
        # order they were scheduled (TimerHandle has a sequence number).
        assert out == list(range(n))
    else:
        # asyncio documents the order of timers with equal deadlines as
        # undefined ("it is undefined which will be called first"): all run.
        assert sorted(out) == list(range(n))


def test_timer_cancel(loop: asyncio.AbstractEventLoop) -> None:
    out: list[str] = []
    h = loop.call_later(0.01, out.append, "cancelled")
    h2 = loop.call_at(loop.time() + 0.01, out.append, "cancelled too")
    kept = loop.call_later(0.02, out.append, "kept")
    h.cancel()
    h2.cancel()
    assert h.cancelled() and h2.cancelled() and not kept.cancelled()
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert out == ["kept"]
    kept.cancel()  # cancelling a timer that already ran is harmless
    h.cancel()


def test_timer_cancelled_by_a_callback_in_the_same_iteration(loop: asyncio.AbstractEventLoop) -> None:
    out: list[str] = []
    when = loop.time() + 0.01

    def canceller() -> None:
        out.append("canceller")
        victim.cancel()

    loop.call_at(when, canceller)
    victim = loop.call_at(when, out.append, "victim")
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    assert out == ["canceller"]


def test_timer_handle_when(loop: asyncio.AbstractEventLoop) -> None:
    before = loop.time()
    h = loop.call_later(10, _noop)
    after = loop.time()
    assert isinstance(h, asyncio.TimerHandle)
    assert before + 10 <= h.when() <= after + 10
    at = loop.call_at(before + 5, _noop)
    assert at.when() == before + 5
    assert at < h and h > at
    h.cancel()
    at.cancel()


def test_call_later_fires_no_earlier_than_its_delay(loop: asyncio.AbstractEventLoop) -> None:
    fired: list[float] = []
    start = loop.time()
    h = loop.call_later(0.1, lambda: (fired.append(loop.time()), loop.stop()))
    guard = loop.call_later(GUARD, loop.stop)
    loop.run_forever()
    guard.cancel()
    assert len(fired) == 1
    assert fired[0] >= h.when() - 1e-6
    assert fired[0] - start >= 0.1 - 1e-6


def test_negative_delay_and_past_deadline_run_in_the_next_iteration(loop: asyncio.AbstractEventLoop) -> None:
    out: list[str] = []
    loop.call_later(-5, out.append, "negative delay")
    loop.call_at(loop.time() - 100, out.append, "past deadline")
    loop.call_later(0, out.append, "zero delay")
    # stop() before run_forever(): the loop runs exactly one iteration, which
    # must include every timer that is already due.
    loop.stop()
    loop.run_forever()
    assert sorted(out) == ["negative delay", "past deadline", "zero delay"]
    assert out[:2] == ["past deadline", "negative delay"]  # earliest deadline first


# -- call_soon_threadsafe ---------------------------------------------------------------


def test_call_soon_threadsafe_from_many_threads_loses_nothing(loop: asyncio.AbstractEventLoop) -> None:
    nthreads, per_thread = 8, 2000
    total = nthreads * per_thread
    received: list[tuple[int, int]] = []
    done = loop.create_future()
    guard_fired: list[bool] = []

    def deliver(thread_no: int, i: int) -> None:
        received.append((thread_no, i))
        if len(received) == total:
            done.set_result(None)

    start = threading.Barrier(nthreads)

    def worker(thread_no: int) -> None:
        start.wait()
        for i in range(per_thread):
            loop.call_soon_threadsafe(deliver, thread_no, i)
            if i % 50 == 0:
                # Let the loop drain and go back to sleeping in poll, so that
                # the wake-ups race with the loop going idle.
                time.sleep(0.0005)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(nthreads)]
    guard = loop.call_later(GUARD, guard_fired.append, True)
    for t in threads:
        t.start()
    try:
        loop.run_until_complete(done)
    finally:
        for t in threads:
            t.join()
        guard.cancel()
    assert len(received) == total
    # Nothing lost or duplicated, and each thread's callbacks ran in its order.
    for n in range(nthreads):
        assert [i for (tn, i) in received if tn == n] == list(range(per_thread))
    # Every call_soon_threadsafe must wake the loop: if the loop stayed asleep
    # in poll with callbacks queued, only the guard timer got it going again.
    assert not guard_fired, "the loop slept with callbacks queued until the guard timer woke it (lost wake-up)"


def test_call_soon_threadsafe_wakes_a_loop_blocked_in_poll(loop: asyncio.AbstractEventLoop) -> None:
    rounds = 20
    ran_in: list[int] = []
    guard_fired: list[bool] = []
    loop_thread = threading.get_ident()

    def poster() -> None:
        for _ in range(rounds):
            # Give the loop time to go to sleep in poll (nothing else is due),
            # then wake it from this thread.
            time.sleep(0.01)
            loop.call_soon_threadsafe(lambda: (ran_in.append(threading.get_ident()), loop.stop()))
            stopped.wait(GUARD)
            stopped.clear()

    stopped = threading.Event()
    t = threading.Thread(target=poster)
    t.start()
    try:
        for _ in range(rounds):
            guard = loop.call_later(GUARD, lambda: (guard_fired.append(True), loop.stop()))
            loop.run_forever()
            guard.cancel()
            stopped.set()
            if guard_fired:
                break
    finally:
        stopped.set()
        t.join()
    assert not guard_fired, "call_soon_threadsafe did not wake the loop from poll"
    assert ran_in == [loop_thread] * rounds


def test_call_soon_threadsafe_returns_handle_that_can_be_cancelled(loop: asyncio.AbstractEventLoop) -> None:
    out: list[str] = []
    result: list[asyncio.Handle] = []

    def other_thread() -> None:
        result.append(loop.call_soon_threadsafe(out.append, "cancelled"))
        loop.call_soon_threadsafe(out.append, "kept")

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    result[0].cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["kept"]


def test_time_is_monotonic(loop: asyncio.AbstractEventLoop) -> None:
    values = [loop.time() for _ in range(10_000)]
    assert values == sorted(values)
    t0 = loop.time()
    time.sleep(0.02)
    assert loop.time() - t0 >= 0.02 - 1e-6
    assert isinstance(loop.time(), float)


# -- the timer heap -------------------------------------------------------------------------


def test_timer_heap_stress_cancel_all_but_a_few(loop: asyncio.AbstractEventLoop, loop_kind: str) -> None:
    n = 200_000
    survivors = {0, 1234, 99_999, 150_001, n - 1}
    fired: list[int] = []
    done = loop.create_future()

    def fire(i: int) -> None:
        fired.append(i)
        if len(fired) == len(survivors):
            done.set_result(None)

    # Deadlines spread over 50 ms; the heap order is unrelated to i.
    handles = [loop.call_later(0.01 + (i * 7919 % 1000) * 0.00005, fire, i) for i in range(n)]
    for i, h in enumerate(handles):
        if i not in survivors:
            h.cancel()
    if loop_kind == "treadle":
        # treadle compacts the heap as cancellations pile up (timers.py).
        assert _timer_heap_size(loop, loop_kind) < 200
    expected_order = [i for _, i in sorted((handles[i].when(), i) for i in survivors)]
    del handles
    guard = loop.call_later(GUARD, done.cancel)
    loop.run_until_complete(done)
    guard.cancel()
    assert fired == expected_order
    # After running, the heap holds nothing but the (cancelled) guard, at most.
    assert _timer_heap_size(loop, loop_kind) <= 1


def test_timer_heap_stays_compact_across_many_cancel_rounds(
    loop: asyncio.AbstractEventLoop, loop_kind: str, run: Run
) -> None:
    """A program that keeps scheduling and cancelling timeouts keeps a small heap.

    Each round schedules 400 long timeouts and cancels them all (like 400
    operations that finished before their timeout); then 1 live and 399
    cancelled timers are left in the heap, which must be compacted: more than
    half of a heap of at least 100 entries is cancelled (the rule in
    treadle's timers.py, and asyncio's too).
    """

    async def main() -> int:
        for _ in range(300):
            hs = [loop.call_later(3600, _noop) for _ in range(400)]
            for h in hs:
                h.cancel()
            await asyncio.sleep(0)
        keep = loop.call_later(3600, _noop)
        hs = [loop.call_later(3600 + i, _noop) for i in range(399)]
        for h in hs:
            h.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        size = _timer_heap_size(loop, loop_kind)
        keep.cancel()
        return size

    size = run(main())
    # At most 2 live timers: ``keep`` and run()'s own wait_for timeout.
    assert size < 100, f"{size} entries left in the timer heap with at most 2 live timers"


def test_timer_queue_counts_live_timers_after_compaction(loop: asyncio.AbstractEventLoop, loop_kind: str) -> None:
    """The count of cancelled timers in the heap stays exact across a compaction.

    100 timers are scheduled and all cancelled; the 51st cancellation makes
    more than half of the heap cancelled, which compacts it.  Then the loop
    runs until a later timer: every cancelled timer is dropped on the way,
    so no timer at all is left.  Checked through each loop's internals:
    treadle's ``TimerQueue.__len__`` is documented as the number of live
    (not cancelled) timers; asyncio keeps ``_timer_cancelled_count``.
    """
    handles = [loop.call_later(0.001 + i * 0.0001, _noop) for i in range(100)]
    for h in handles:
        h.cancel()
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert _timer_heap_size(loop, loop_kind) == 0
    if loop_kind == "treadle":
        timers = loop._timers  # type: ignore[attr-defined]
        assert timers._ncancelled == 0, "cancelled-timer count out of step with the heap"
        assert len(timers) == 0, f"TimerQueue reports {len(timers)} live timers in an empty heap"
    else:
        assert loop._timer_cancelled_count == 0  # type: ignore[attr-defined]


# -- run_forever / stop / run_until_complete / close -----------------------------------------


def test_stop_from_a_callback_and_run_forever_again(loop: asyncio.AbstractEventLoop) -> None:
    out: list[int] = []
    loop.call_soon(out.append, 1)
    loop.call_soon(loop.stop)
    loop.call_soon(out.append, 2)  # same iteration as stop(): still runs
    loop.run_forever()
    assert out == [1, 2]
    assert not loop.is_running()

    loop.call_later(0.01, out.append, 3)
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert out == [1, 2, 3]

    # A callback scheduled after stop() in the stopping iteration waits for the next run.
    loop.call_soon(lambda: (loop.stop(), loop.call_soon(out.append, 5)))
    loop.run_forever()
    assert out == [1, 2, 3]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == [1, 2, 3, 5]


def test_stop_before_run_forever_runs_one_iteration(loop: asyncio.AbstractEventLoop) -> None:
    out: list[str] = []
    loop.call_soon(out.append, "ready")
    loop.call_soon(loop.call_soon, out.append, "next iteration")
    loop.stop()
    loop.run_forever()
    assert out == ["ready"]
    assert not loop.is_running()


def test_run_until_complete_with_future_and_coroutine(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.call_later(0.01, fut.set_result, 42)
    assert loop.run_until_complete(fut) == 42

    async def coro() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert loop.run_until_complete(coro()) == "done"

    async def failing() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        loop.run_until_complete(failing())

    # A task can be passed as well; the result is the task's.
    task = loop.create_task(coro())
    assert loop.run_until_complete(task) == "done"
    assert not loop.is_running()


def test_nested_run_until_complete_and_run_forever_raise(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    errors: list[BaseException] = []

    async def main() -> None:
        inner = asyncio.sleep(0)
        try:
            loop.run_until_complete(inner)
        except RuntimeError as exc:
            errors.append(exc)
        finally:
            inner.close()
        try:
            loop.run_forever()
        except RuntimeError as exc:
            errors.append(exc)

    run(main())
    assert len(errors) == 2
    assert all(isinstance(e, RuntimeError) for e in errors)
    # The loop is still usable afterwards.
    assert run(asyncio.sleep(0, "ok")) == "ok"


def test_close_while_running_raises_then_close_twice(loop: asyncio.AbstractEventLoop) -> None:
    errors: list[BaseException] = []

    def try_close() -> None:
        try:
            loop.close()
        except RuntimeError as exc:
            errors.append(exc)
        loop.stop()

    loop.call_soon(try_close)
    loop.run_forever()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert not loop.is_closed()

    loop.close()
    assert loop.is_closed()
    loop.close()  # a second close is a no-op
    assert loop.is_closed()
    with pytest.raises(RuntimeError):
        loop.call_soon(_noop)
    with pytest.raises(RuntimeError):
        loop.call_later(1, _noop)
    with pytest.raises(RuntimeError):
        loop.run_forever()


def test_is_running_and_is_closed(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[tuple[bool, bool]] = []
    assert not loop.is_running() and not loop.is_closed()
    loop.call_soon(lambda: seen.append((loop.is_running(), loop.is_closed())))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [(True, False)]
    assert not loop.is_running()
    loop.close()
    assert loop.is_closed() and not loop.is_running()


def test_get_running_loop_returns_the_loop(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
        return asyncio.get_running_loop(), asyncio.get_event_loop()

    seen: list[asyncio.AbstractEventLoop] = []
    loop.call_soon(lambda: seen.append(asyncio.get_running_loop()))
    running, current = run(main())
    assert running is loop and current is loop
    assert seen == [loop]
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_shutdown_asyncgens_finalizes_suspended_async_generators(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    events: list[str] = []

    async def agen() -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            events.append(f"finalized in {asyncio.get_running_loop() is loop}")

    gens: list[AsyncIterator[int]] = []

    async def start() -> int:
        g = agen()
        gens.append(g)  # keep it alive: only shutdown_asyncgens may finalize it
        return await g.__anext__()

    assert run(start()) == 0
    assert events == []
    run(loop.shutdown_asyncgens())
    assert events == ["finalized in True"]


def test_shutdown_default_executor(loop: asyncio.AbstractEventLoop, run_guarded: Run) -> None:
    def where() -> threading.Thread:
        return threading.current_thread()

    async def main() -> threading.Thread:
        return await loop.run_in_executor(None, where)

    worker = run_guarded(main())
    assert worker is not threading.current_thread()
    run_guarded(loop.shutdown_default_executor())
    # shutdown_default_executor waits for the executor's threads.
    assert not worker.is_alive()

    async def again() -> None:
        await loop.run_in_executor(None, where)

    with pytest.raises(RuntimeError):
        run_guarded(again())


# -- futures, tasks and the task factory ----------------------------------------------------


def test_create_future(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    fut = loop.create_future()
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop
    assert not fut.done()
    loop.call_soon(fut.set_result, "value")
    assert run(asyncio.shield(fut)) == "value"


def test_create_task_source_traceback_ends_at_the_caller(loop: asyncio.AbstractEventLoop) -> None:
    """In debug mode a task remembers where it was made: the last frame is the caller of create_task."""
    loop.set_debug(True)

    async def child() -> None:
        pass

    def make_it() -> asyncio.Task[None]:
        return loop.create_task(child())

    task = make_it()
    stack = task._source_traceback  # type: ignore[attr-defined]
    assert stack[-1].name == "make_it" and stack[-1].filename == __file__
    loop.run_until_complete(task)


def test_create_task_name_context_and_type(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="default")

    async def read_var() -> str:
        await asyncio.sleep(0)
        return var.get()

    async def main() -> None:
        task = loop.create_task(read_var(), name="my-task")
        assert type(task) is asyncio.Task
        assert task.get_name() == "my-task"
        assert task.get_loop() is loop
        assert await task == "default"

        unnamed = loop.create_task(read_var())
        assert unnamed.get_name().startswith("Task-")
        await unnamed

        ctx = contextvars.copy_context()
        ctx.run(var.set, "from ctx")
        with_ctx = loop.create_task(read_var(), context=ctx)
        assert await with_ctx == "from ctx"

    run(main())
    # The C-accelerated Task, not the pure-Python fallback.
    c_task = getattr(asyncio.tasks, "_CTask", None)
    if c_task is not None:
        assert asyncio.Task is c_task


def test_task_factory(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    assert loop.get_task_factory() is None
    made: list[asyncio.Task[Any]] = []

    def factory(lp: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=lp, **kwargs)
        made.append(task)
        return task

    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def child() -> int:
        return 5

    async def main() -> int:
        return await loop.create_task(child(), name="via-factory")

    assert run(main()) == 5
    assert any(t.get_name() == "via-factory" for t in made)

    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    count = len(made)
    assert run(main()) == 5
    assert len(made) == count

    with pytest.raises(TypeError):
        loop.set_task_factory(42)  # type: ignore[arg-type]


def test_eager_task_factory(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    eager = getattr(asyncio, "eager_task_factory", None)
    if eager is None:
        pytest.skip("asyncio.eager_task_factory needs Python 3.12+")
    steps: list[str] = []

    async def child() -> int:
        steps.append("child ran")
        return 7

    async def suspending() -> int:
        steps.append("suspending started")
        await asyncio.sleep(0)
        steps.append("suspending resumed")
        return 8

    async def main() -> tuple[int, int]:
        loop.set_task_factory(eager)
        try:
            t = loop.create_task(child())
            # An eager task runs synchronously up to its first suspension.
            steps.append("after create_task")
            assert t.done()
            s = loop.create_task(suspending())
            steps.append("after second create_task")
            assert not s.done()
            return await t, await s
        finally:
            loop.set_task_factory(None)

    assert loop.get_task_factory() is None
    assert run(main()) == (7, 8)
    assert steps == [
        "child ran",
        "after create_task",
        "suspending started",
        "after second create_task",
        "suspending resumed",
    ]


# -- the exception handler -------------------------------------------------------------------


def test_exception_handler_api(loop: asyncio.AbstractEventLoop) -> None:
    assert loop.get_exception_handler() is None
    calls: list[dict[str, Any]] = []

    def handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        assert lp is loop
        calls.append(context)

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.call_exception_handler({"message": "hello"})
    assert calls == [{"message": "hello"}]

    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None
    with pytest.raises(TypeError):
        loop.set_exception_handler("not callable")  # type: ignore[arg-type]


def test_raising_callback_is_reported_and_the_loop_keeps_running(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[dict[str, Any]] = []
    out: list[str] = []
    loop.set_exception_handler(lambda lp, ctx: calls.append(ctx))

    def bad() -> None:
        raise ZeroDivisionError("bad callback")

    bad_handle = loop.call_soon(bad)
    loop.call_soon(out.append, "after bad")
    bad_timer = loop.call_later(0.01, bad)
    loop.call_later(0.02, out.append, "after bad timer")
    loop.call_later(0.03, loop.stop)
    loop.run_forever()

    assert out == ["after bad", "after bad timer"]
    assert len(calls) == 2
    for ctx, handle in zip(calls, [bad_handle, bad_timer], strict=True):
        assert isinstance(ctx["exception"], ZeroDivisionError)
        assert ctx["message"].startswith("Exception in callback")
        assert ctx["handle"] is handle


def test_default_exception_handler_logs(loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        loop.call_soon(lambda: 1 / 0)
        loop.call_soon(loop.stop)
        loop.run_forever()
        loop.default_exception_handler({"message": "explicit message"})
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Exception in callback") for m in messages)
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
    assert "explicit message" in messages


def test_exception_handler_that_raises_is_logged_and_loop_keeps_running(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_handler(lp: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        raise RuntimeError("handler is broken")

    out: list[str] = []
    loop.set_exception_handler(broken_handler)
    with caplog.at_level(logging.ERROR):
        loop.call_soon(lambda: 1 / 0)
        loop.call_soon(out.append, "still running")
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert out == ["still running"]
    assert any("Unhandled error in exception handler" in r.getMessage() for r in caplog.records)


def test_systemexit_from_callback_propagates_and_loop_is_reusable(loop: asyncio.AbstractEventLoop) -> None:
    def leave() -> None:
        raise SystemExit(3)

    loop.call_soon(leave)
    with pytest.raises(SystemExit):
        loop.run_forever()
    assert not loop.is_running()
    out: list[str] = []
    loop.call_soon(out.append, "again")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["again"]


# -- debug mode ----------------------------------------------------------------------------


def test_debug_mode_logs_slow_callbacks(
    loop: asyncio.AbstractEventLoop, loop_kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    logger_name = "treadle" if loop_kind == "treadle" else "asyncio"
    assert not loop.get_debug()
    loop.set_debug(True)
    assert loop.get_debug()
    loop.slow_callback_duration = 0.01

    def slow_callback() -> None:
        time.sleep(0.05)

    with caplog.at_level(logging.WARNING, logger=logger_name):
        loop.call_soon(slow_callback)
        loop.call_soon(loop.stop)
        loop.run_forever()
    slow = [
        r
        for r in caplog.records
        if r.name == logger_name and r.getMessage().startswith("Executing") and " took " in r.getMessage()
    ]
    assert len(slow) == 1, [(r.name, r.getMessage()) for r in caplog.records]
    assert slow[0].levelno == logging.WARNING
    assert "slow_callback" in slow[0].getMessage()


def test_debug_mode_rejects_call_soon_from_another_thread(loop: asyncio.AbstractEventLoop, run_guarded: Run) -> None:
    loop.set_debug(True)
    caught: list[BaseException] = []
    out: list[str] = []

    def other_thread() -> None:
        try:
            loop.call_soon(out.append, "call_soon")
        except RuntimeError as exc:
            caught.append(exc)
        try:
            loop.call_later(0, out.append, "call_later")
        except RuntimeError as exc:
            caught.append(exc)
        loop.call_soon_threadsafe(out.append, "threadsafe")

    async def main() -> None:
        t = threading.Thread(target=other_thread)
        t.start()
        while t.is_alive():
            await asyncio.sleep(0.001)
        t.join()
        for _ in range(10):
            await asyncio.sleep(0)

    run_guarded(main())
    assert len(caught) == 2 and all(isinstance(e, RuntimeError) for e in caught)
    assert out == ["threadsafe"]


# -- executors --------------------------------------------------------------------------------


def test_run_in_executor_with_a_thread_pool(loop: asyncio.AbstractEventLoop, run_guarded: Run) -> None:
    def work(a: int, b: int) -> tuple[int, str]:
        return a + b, threading.current_thread().name

    def fail() -> None:
        raise KeyError("in executor")

    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="custom-pool") as pool:

        async def main() -> list[tuple[int, str]]:
            results = await asyncio.gather(*(loop.run_in_executor(pool, work, i, 1) for i in range(20)))
            with pytest.raises(KeyError):
                await loop.run_in_executor(pool, fail)
            return results

        results = run_guarded(main())
    assert [r[0] for r in results] == list(range(1, 21))
    assert all(name.startswith("custom-pool") for _, name in results)


def test_set_default_executor(loop: asyncio.AbstractEventLoop, run_guarded: Run) -> None:
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="default-pool")
    try:
        loop.set_default_executor(pool)

        async def main() -> str:
            return await loop.run_in_executor(None, lambda: threading.current_thread().name)

        assert run_guarded(main()).startswith("default-pool")
    finally:
        run_guarded(loop.shutdown_default_executor())
        pool.shutdown(wait=True)

    class NotAThreadPool(concurrent.futures.Executor):
        pass

    # Python 3.11 turned the deprecation of non-ThreadPoolExecutor executors into a TypeError.
    with pytest.raises(TypeError):
        loop.set_default_executor(NotAThreadPool())


# -- signals -------------------------------------------------------------------------------------


def test_signal_handler_runs_on_the_loop(
    loop: asyncio.AbstractEventLoop, run_guarded: Run, sigusr1: signal.Signals
) -> None:
    calls: list[tuple[str, int, bool]] = []

    async def main() -> None:
        got = [loop.create_future() for _ in range(2)]

        def on_signal(tag: str) -> None:
            calls.append((tag, threading.get_ident(), asyncio.get_running_loop() is loop))
            next(f for f in got if not f.done()).set_result(None)

        loop.add_signal_handler(sigusr1, on_signal, "usr1")
        os.kill(os.getpid(), sigusr1)
        await got[0]
        # Also from another thread while the loop sleeps in poll.
        t = threading.Timer(0.02, os.kill, (os.getpid(), sigusr1))
        t.start()
        try:
            await got[1]
        finally:
            t.join()

    run_guarded(main())
    assert calls == [("usr1", threading.get_ident(), True)] * 2
    assert loop.remove_signal_handler(sigusr1) is True
    assert loop.remove_signal_handler(sigusr1) is False
    assert signal.getsignal(sigusr1) == signal.SIG_DFL


def test_add_signal_handler_replaces_previous_handler(
    loop: asyncio.AbstractEventLoop, run: Run, sigusr1: signal.Signals
) -> None:
    calls: list[str] = []

    async def main() -> None:
        got = loop.create_future()
        loop.add_signal_handler(sigusr1, calls.append, "first")
        loop.add_signal_handler(sigusr1, lambda: (calls.append("second"), got.set_result(None)))
        os.kill(os.getpid(), sigusr1)
        await got

    run(main())
    assert calls == ["second"]
    assert loop.remove_signal_handler(sigusr1)


def test_signal_received_while_not_running_is_handled_when_the_loop_runs(
    loop: asyncio.AbstractEventLoop, sigusr1: signal.Signals
) -> None:
    calls: list[str] = []
    loop.add_signal_handler(sigusr1, lambda: (calls.append("handled"), loop.stop()))
    os.kill(os.getpid(), sigusr1)
    assert calls == []  # the handler only ever runs on the loop
    guard = loop.call_later(GUARD, loop.stop)
    loop.run_forever()
    guard.cancel()
    assert calls == ["handled"]
    assert loop.remove_signal_handler(sigusr1)


def test_remove_sigint_handler_restores_keyboard_interrupt(loop: asyncio.AbstractEventLoop) -> None:
    old = signal.getsignal(signal.SIGINT)
    try:
        loop.add_signal_handler(signal.SIGINT, _noop)
        assert loop.remove_signal_handler(signal.SIGINT) is True
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, old)


def test_add_signal_handler_outside_the_main_thread_raises(
    loop: asyncio.AbstractEventLoop, sigusr1: signal.Signals
) -> None:
    caught: list[BaseException] = []

    def other_thread() -> None:
        try:
            loop.add_signal_handler(sigusr1, _noop)
        except BaseException as exc:
            caught.append(exc)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert len(caught) == 1 and isinstance(caught[0], RuntimeError), caught
    assert signal.getsignal(sigusr1) == signal.SIG_DFL
    assert loop.remove_signal_handler(sigusr1) is False


def test_close_removes_signal_handlers(loop: asyncio.AbstractEventLoop, sigusr1: signal.Signals) -> None:
    loop.add_signal_handler(sigusr1, _noop)
    assert signal.getsignal(sigusr1) != signal.SIG_DFL
    loop.close()
    assert signal.getsignal(sigusr1) == signal.SIG_DFL
    # The wake-up fd no longer points at the closed loop's socket.
    assert signal.set_wakeup_fd(-1) == -1


def test_add_signal_handler_errors(loop: asyncio.AbstractEventLoop, sigusr1: signal.Signals) -> None:
    with pytest.raises(ValueError):
        loop.add_signal_handler(signal.NSIG + 10, _noop)
    with pytest.raises(ValueError):
        loop.add_signal_handler(0, _noop)
    with pytest.raises(TypeError):
        loop.add_signal_handler("SIGUSR1", _noop)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        loop.add_signal_handler(1.5, _noop)  # type: ignore[arg-type]

    async def coro_fn() -> None:
        pass

    with pytest.raises(TypeError):
        loop.add_signal_handler(sigusr1, coro_fn)
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGKILL, _noop)
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGSTOP, _noop)
    # None of these left a handler or a wake-up fd behind.
    assert signal.getsignal(sigusr1) == signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1

    assert loop.remove_signal_handler(sigusr1) is False
    with pytest.raises(ValueError):
        loop.remove_signal_handler(signal.NSIG + 10)
    with pytest.raises(TypeError):
        loop.remove_signal_handler("SIGUSR1")  # type: ignore[arg-type]


def test_a_forked_child_leaves_the_parents_loop_able_to_wake(
    loop: asyncio.AbstractEventLoop, run: Callable[..., Any]
) -> None:
    """The child shares the parent's epoll instance: it must not unregister the parent's wake-up pipe."""

    async def main() -> str:
        pid = os.fork()
        if pid == 0:
            os._exit(0)  # the at-fork handlers have run in the child
        os.waitpid(pid, 0)
        # A result from a thread arrives through the wake-up pipe; the only
        # other way the loop could wake is the guard timer, 5 s away.
        start = time.monotonic()
        result = await loop.run_in_executor(None, lambda: "from a thread")
        return f"{result} after {time.monotonic() - start:.1f}"

    result, _, took = run(main(), timeout=5.0).partition(" after ")
    assert result == "from a thread"
    assert float(took) < 2.5, f"woken only by the guard timer, after {took} s"

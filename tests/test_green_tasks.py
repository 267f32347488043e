"""Green tasks: gevent's interface, the asyncio future protocol, the bridges, cancellation and misuse.

Every test runs its program with ``treadle.run`` (a plain function runs as the green
task "main"; a coroutine as an async main), on a fresh loop each time.  Green code
waits on futures of the running loop (``treadle.await_(fut)``) rather than on real
time, so nothing here depends on the machine's speed; the few timeouts used are
the ones whose expiry is the point (a ``join``/``get``/``joinall`` that must give up).
Behaviour of a plain script's top level is tested in subprocesses.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import inspect
import math
import random
import subprocess
import sys
import textwrap
import traceback
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import greenlet
import pytest

import treadle

# -- helpers ---------------------------------------------------------------------------


def new_future() -> asyncio.Future[Any]:
    """A future of the running loop (green code and async code both see the running loop)."""
    return asyncio.get_running_loop().create_future()


def record_errors() -> list[dict[str, Any]]:
    """Install an exception handler on the running loop that records each context; return the list."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    return errors


def blocker(fut: asyncio.Future[Any], log: list[str] | None = None) -> Any:
    """A green task body: wait for ``fut``; log what ended the wait."""
    try:
        return treadle.await_(fut)
    except BaseException as exc:
        if log is not None:
            log.append(f"raised {type(exc).__name__}")
        raise
    finally:
        if log is not None:
            log.append("finally")


def failing_function(message: str) -> None:
    raise KeyError(message)


def run_script(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, encoding="utf-8", timeout=60, cwd=tmp_path
    )


# -- spawn, spawn_later, getcurrent, name ----------------------------------------------


def test_spawn_is_not_a_switch_point_and_the_task_runs_at_the_next_one() -> None:
    def main() -> None:
        log: list[Any] = []
        g = treadle.spawn(lambda *a, **k: log.append((a, k)), 1, 2, key="v")
        assert isinstance(g, treadle.Greenlet)
        assert log == [] and not g.ready() and not g.started
        g.join()
        assert log == [((1, 2), {"key": "v"})]
        assert g.ready() and g.successful() and g.value is None and g.dead

    treadle.run(main)


def test_spawned_tasks_start_in_spawn_order() -> None:
    def main() -> list[int]:
        order: list[int] = []
        tasks = [treadle.spawn(order.append, i) for i in range(10)]
        treadle.joinall(tasks)
        return order

    assert treadle.run(main) == list(range(10))


def test_spawn_later_starts_the_task_after_the_delay() -> None:
    def main() -> None:
        loop = asyncio.get_running_loop()
        events: list[tuple[str, float]] = []
        t0 = loop.time()
        late = treadle.spawn_later(0.05, lambda: events.append(("late", loop.time())))
        soon = treadle.spawn(lambda: events.append(("soon", loop.time())))
        treadle.sleep(0)
        assert [name for name, _ in events] == ["soon"]
        assert soon.ready() and not late.started and not late.ready()
        late.join()
        assert [name for name, _ in events] == ["soon", "late"]
        assert events[1][1] - t0 >= 0.045
        assert late.successful()

    treadle.run(main)


def test_spawn_later_task_can_be_cancelled_before_it_starts() -> None:
    def main() -> None:
        ran: list[int] = []
        late = treadle.spawn_later(30, ran.append, 1)
        assert late.cancel() is True
        assert late.cancelled() and late.ready()
        treadle.sleep(0)
        assert ran == []

    treadle.run(main)


def test_getcurrent_is_the_running_green_task() -> None:
    def child() -> Any:
        return treadle.getcurrent()

    def main() -> None:
        me = treadle.getcurrent()
        assert isinstance(me, treadle.Greenlet) and me.name == "main"
        g = treadle.spawn(child)
        assert g.get() is g
        assert treadle.getcurrent() is me

    treadle.run(main)


def test_names_are_distinct_by_default_and_settable() -> None:
    def main() -> None:
        a, b = treadle.spawn(lambda: None), treadle.spawn(lambda: None)
        assert a.name != b.name
        assert a.name.startswith("Greenlet-") and b.name.startswith("Greenlet-")
        a.name = "worker"
        assert a.name == "worker" and "worker" in repr(a)
        treadle.joinall([a, b])
        assert "worker" in repr(a)
        # The task's own state is in slots; attributes of a user's own still work.
        a.request_id = 42
        assert a.request_id == 42 and a.__dict__ == {"request_id": 42}
        assert asyncio.isfuture(a)

    treadle.run(main)


# -- join, get, ready, successful, value, exception ------------------------------------


def test_a_subclass_of_greenlet_keeps_its_own_attributes_and_overrides() -> None:
    """gevent's habit: subclass Greenlet, keep state on the task, override methods; weak references work."""

    class Tagged(treadle.Greenlet):
        def __init__(self, tag: str) -> None:
            super().__init__(self.work)
            self.tag = tag  # an attribute of the subclass's own, in the instance dictionary
            self.log: list[str] = []

        def work(self) -> str:
            self.log.append("work")
            return f"{self.tag}: {self.name}"

        def start(self) -> Tagged:
            self.log.append("start")
            return super().start()  # type: ignore[return-value]

    def main() -> None:
        task = Tagged("mine").start()
        ref = weakref.ref(task)
        task.name = "tagged"
        assert task.get() == "mine: tagged"
        assert task.log == ["start", "work"] and task.__dict__["tag"] == "mine"
        assert isinstance(task, greenlet.greenlet) and ref() is task
        assert treadle.joinall([Tagged(str(i)).start() for i in range(3)])[2].get().startswith("2: Greenlet-")

    treadle.run(main)


def test_a_finished_task_in_a_cycle_through_its_own_state_is_collected() -> None:
    """The collector sees every field of a task: its result, its arguments, its callbacks."""
    refs: list[weakref.ref[treadle.Greenlet]] = []

    def main() -> None:
        returns_itself = treadle.spawn(greenlet.getcurrent)  # its result is the task
        holder: list[Any] = []
        in_its_args = treadle.spawn(holder.append, 1)
        holder.append(in_its_args)  # the task's callable holds the task
        treadle.joinall([returns_itself, in_its_args])
        assert returns_itself.get() is returns_itself
        unfinished = treadle.Greenlet(lambda: None)
        unfinished.add_done_callback(lambda _: unfinished)  # a callback that holds its task
        refs.extend(weakref.ref(t) for t in (returns_itself, in_its_args, unfinished))

    treadle.run(main)
    gc.collect()
    assert [ref() for ref in refs] == [None, None, None]


def test_join_returns_none_and_join_with_timeout_gives_up() -> None:
    def main() -> None:
        fut = new_future()
        g = treadle.spawn(blocker, fut)
        assert g.join(timeout=0) is None and not g.ready()
        assert g.join(timeout=0.01) is None and not g.ready()
        fut.set_result(7)
        assert g.join() is None
        assert g.ready() and g.value == 7
        assert g.join(timeout=0) is None  # a done task: at once

    treadle.run(main)


def test_get_returns_the_value_blocking_or_not() -> None:
    def main() -> None:
        fut = new_future()
        g = treadle.spawn(blocker, fut)
        with pytest.raises(TimeoutError):
            g.get(block=False)
        with pytest.raises(TimeoutError):
            g.get(timeout=0.01)
        assert not g.ready()
        fut.set_result("v")
        assert g.get() == "v"
        assert g.get(block=False) == "v"

    treadle.run(main)


def test_state_of_a_successful_task() -> None:
    def main() -> None:
        g = treadle.spawn(lambda: 5)
        assert not g.ready() and not g.successful() and g.value is None
        assert not g.exception  # gevent style: falsy while not failed
        with pytest.raises(asyncio.InvalidStateError):
            g.exception()  # asyncio style: not done yet
        with pytest.raises(asyncio.InvalidStateError):
            g.result()
        g.join()
        assert g.ready() and g.done() and g.successful() and not g.cancelled()
        assert g.value == 5 and g.result() == 5 and g.get() == 5
        assert not g.exception and g.exception() is None

    treadle.run(main)


def test_state_of_a_failed_task_both_exception_styles() -> None:
    def main() -> None:
        g = treadle.spawn(failing_function, "bad")
        g.join()
        assert g.ready() and not g.successful() and not g.cancelled()
        assert g.value is None
        assert g.exception  # gevent style: truthy
        assert "bad" in str(g.exception)
        exc = g.exception()  # asyncio style
        assert isinstance(exc, KeyError) and exc.args == ("bad",)
        with pytest.raises(KeyError, match="bad"):
            g.result()
        with pytest.raises(KeyError, match="bad"):
            g.get()

    treadle.run(main)


def test_get_reraises_the_failure_with_the_failing_functions_frame() -> None:
    def main() -> None:
        g = treadle.spawn(failing_function, "deep")
        with pytest.raises(KeyError) as info:
            g.get()
        frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
        assert "failing_function" in frames, frames

    treadle.run(main)


def test_awaiting_a_failed_task_reraises_with_the_failing_functions_frame() -> None:
    async def main() -> None:
        g = treadle.spawn(failing_function, "awaited")
        with pytest.raises(KeyError) as info:
            await g
        frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
        assert "failing_function" in frames, frames

    treadle.run(main())


# -- kill and killall ------------------------------------------------------------------


def test_kill_cancels_by_default_and_the_finally_runs() -> None:
    def main() -> None:
        log: list[str] = []
        g = treadle.spawn(blocker, new_future(), log)
        treadle.sleep(0)
        assert g.started and not g.ready()
        assert g.kill() is None
        assert log == ["raised CancelledError", "finally"]
        assert g.ready() and g.cancelled() and not g.successful() and g.dead
        with pytest.raises(asyncio.CancelledError):
            g.get()
        with pytest.raises(asyncio.CancelledError):
            g.exception()

    treadle.run(main)


@pytest.mark.parametrize("exception", [ValueError, ValueError("given")], ids=["class", "instance"])
def test_kill_with_an_exception_ends_the_task_with_it(exception: Any) -> None:
    def main() -> None:
        log: list[str] = []
        g = treadle.spawn(blocker, new_future(), log)
        treadle.sleep(0)
        g.kill(exception)
        assert log == ["raised ValueError", "finally"]
        assert g.ready() and not g.cancelled() and not g.successful()
        assert isinstance(g.exception(), ValueError)
        if isinstance(exception, BaseException):
            assert g.exception() is exception

    treadle.run(main)


def test_kill_without_block_returns_before_the_task_ends() -> None:
    def main() -> None:
        log: list[str] = []
        g = treadle.spawn(blocker, new_future(), log)
        treadle.sleep(0)
        g.kill(block=False)
        assert log == [] and not g.ready()
        g.join()
        assert log == ["raised CancelledError", "finally"] and g.cancelled()

    treadle.run(main)


def test_kill_with_timeout_gives_up_on_a_task_that_ignores_it() -> None:
    def stubborn(first: asyncio.Future[Any], second: asyncio.Future[Any]) -> str:
        try:
            treadle.await_(first)
        except asyncio.CancelledError:
            return str(treadle.await_(second))
        return "not killed"

    def main() -> None:
        first, second = new_future(), new_future()
        g = treadle.spawn(stubborn, first, second)
        treadle.sleep(0)
        g.kill(timeout=0.01)
        assert not g.ready()
        second.set_result("went on")
        assert g.get() == "went on"
        # A task that catches the cancellation and goes on is not cancelled.
        assert g.successful() and not g.cancelled()

    treadle.run(main)


def test_kill_of_a_task_not_started_yet_means_it_never_runs() -> None:
    def main() -> None:
        ran: list[int] = []
        g = treadle.spawn(ran.append, 1)
        g.kill()
        assert g.ready() and g.cancelled()
        treadle.sleep(0)
        treadle.sleep(0)
        assert ran == []

    treadle.run(main)


def test_kill_of_a_finished_task_does_nothing() -> None:
    def main() -> None:
        g = treadle.spawn(lambda: "done")
        g.join()
        g.kill()
        g.kill(ValueError)
        assert g.successful() and g.value == "done"

    treadle.run(main)


def test_kill_rejects_what_is_not_an_exception() -> None:
    def main() -> None:
        g = treadle.spawn(blocker, new_future())
        with pytest.raises(TypeError):
            g.kill(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            g.kill(int)  # type: ignore[arg-type]
        g.kill()

    treadle.run(main)


def test_killall_kills_every_task_and_waits() -> None:
    def main() -> None:
        logs: list[list[str]] = [[] for _ in range(5)]
        tasks = [treadle.spawn(blocker, new_future(), log) for log in logs]
        treadle.sleep(0)
        assert treadle.killall(tasks) is None
        assert all(t.cancelled() for t in tasks)
        assert logs == [["raised CancelledError", "finally"]] * 5

    treadle.run(main)


def test_killall_without_block_and_with_an_exception() -> None:
    def main() -> None:
        logs: list[list[str]] = [[] for _ in range(3)]
        tasks = [treadle.spawn(blocker, new_future(), log) for log in logs]
        treadle.sleep(0)
        treadle.killall(tasks, exception=ValueError, block=False)
        assert not any(t.ready() for t in tasks)
        assert treadle.joinall(tasks) == tasks
        assert all(isinstance(t.exception(), ValueError) for t in tasks)
        assert logs == [["raised ValueError", "finally"]] * 3

    treadle.run(main)


def test_killall_also_cancels_asyncio_tasks() -> None:
    def main() -> None:
        fut = new_future()
        green = treadle.spawn(blocker, new_future())
        task = asyncio.get_running_loop().create_task(asyncio.sleep(30))
        treadle.sleep(0)
        treadle.killall([green, task, fut])
        assert green.cancelled() and task.cancelled() and fut.cancelled()

    treadle.run(main)


# -- joinall -----------------------------------------------------------------------------


def test_joinall_waits_for_all_and_returns_them_in_order() -> None:
    def main() -> None:
        futs = [new_future() for _ in range(3)]
        tasks = [treadle.spawn(blocker, f) for f in futs]
        for i, f in reversed(list(enumerate(futs))):
            f.set_result(i)
        done = treadle.joinall(tasks)
        assert done == tasks
        assert [t.value for t in done] == [0, 1, 2]
        assert treadle.joinall([]) == []

    treadle.run(main)


def test_joinall_with_count_returns_when_that_many_are_done() -> None:
    def main() -> None:
        futs = [new_future() for _ in range(3)]
        tasks = [treadle.spawn(blocker, f) for f in futs]
        futs[1].set_result("b")
        done = treadle.joinall(tasks, count=1)
        assert done == [tasks[1]]
        assert not tasks[0].ready() and not tasks[2].ready()
        assert treadle.joinall(tasks, count=0) == [tasks[1]]
        futs[2].set_result("c")
        assert treadle.joinall(tasks, count=2) == [tasks[1], tasks[2]]
        futs[0].set_result("a")
        assert treadle.joinall(tasks, count=10) == tasks

    treadle.run(main)


def test_joinall_with_timeout_returns_the_ones_done() -> None:
    def main() -> None:
        fut = new_future()
        quick = treadle.spawn(lambda: "quick")
        slow = treadle.spawn(blocker, fut)
        assert treadle.joinall([quick, slow], timeout=0.01) == [quick]
        assert treadle.joinall([slow, quick], timeout=0.01) == [quick]
        others = [treadle.spawn(blocker, fut) for _ in range(3)]
        assert treadle.joinall([*others, slow, quick], timeout=0.01) == [quick]
        assert treadle.joinall([slow], timeout=0) == []
        fut.set_result(None)
        assert treadle.joinall([quick, slow], timeout=30) == [quick, slow]

    treadle.run(main)


def test_joinall_raise_error_reraises_the_failure() -> None:
    def fail_when(fut: asyncio.Future[Any]) -> None:
        treadle.await_(fut)
        raise KeyError("joined")

    def main() -> None:
        errors = record_errors()
        fut = new_future()
        tasks = [treadle.spawn(lambda: "ok"), treadle.spawn(fail_when, fut)]
        treadle.sleep(0)
        fut.set_result(None)
        with pytest.raises(KeyError, match="joined"):
            treadle.joinall(tasks, raise_error=True)
        # Without raise_error the failed task is just returned.
        assert treadle.joinall(tasks) == tasks
        assert isinstance(tasks[1].exception(), KeyError)
        assert errors == []  # someone waited for it: not reported as unhandled

    treadle.run(main)


def test_joinall_accepts_asyncio_tasks_and_futures() -> None:
    async def coro() -> str:
        await asyncio.sleep(0)
        return "coro"

    def main() -> None:
        fut = new_future()
        task = asyncio.get_running_loop().create_task(coro())
        green = treadle.spawn(lambda: "green")
        asyncio.get_running_loop().call_soon(fut.set_result, "fut")
        assert treadle.joinall([green, task, fut]) == [green, task, fut]
        assert [green.value, task.result(), fut.result()] == ["green", "coro", "fut"]

    treadle.run(main)


# -- bad input -----------------------------------------------------------------------------


def test_spawn_of_a_non_callable_is_a_type_error() -> None:
    def main() -> None:
        with pytest.raises(TypeError):
            treadle.spawn(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            treadle.spawn_later(0, "not callable")  # type: ignore[arg-type]

    treadle.run(main)


def test_spawn_of_a_coroutine_function_is_a_type_error_naming_create_task() -> None:
    async def coroutine_function() -> None:
        pass

    def main() -> None:
        with pytest.raises(TypeError, match="create_task"):
            treadle.spawn(coroutine_function)
        # Wrapped or marked, it is still told apart from a plain function.
        with pytest.raises(TypeError, match="create_task"):
            treadle.spawn(functools.partial(coroutine_function))
        with pytest.raises(TypeError, match="create_task"):
            treadle.Greenlet(Holder().method)
        if hasattr(inspect, "markcoroutinefunction"):  # Python 3.12+

            def marked() -> Any:
                return coroutine_function()

            inspect.markcoroutinefunction(marked)
            with pytest.raises(TypeError, match="create_task"):
                treadle.spawn(marked)

        def plain_with_an_attribute() -> str:
            return "plain"

        plain_with_an_attribute.note = "an attribute of its own"  # type: ignore[attr-defined]
        assert treadle.spawn(plain_with_an_attribute).get() == "plain"

    class Holder:
        async def method(self) -> None:
            pass

    treadle.run(main)


def test_spawn_of_a_wrapped_generator_function_runs_a_generator_task() -> None:
    def counting(n: int) -> Any:
        total = 0
        for i in range(n):
            yield  # a bare yield: one trip through the loop
            total += i
        return total

    def main() -> None:
        assert treadle.spawn(counting, 4).get() == 6
        assert treadle.spawn(functools.partial(counting, 5)).get() == 10

    treadle.run(main)


def test_joinall_and_killall_of_non_tasks_are_type_errors() -> None:
    def main() -> None:
        g = treadle.spawn(lambda: None)
        with pytest.raises(TypeError):
            treadle.joinall([g, 1])
        with pytest.raises(TypeError):
            treadle.joinall("abc")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            treadle.joinall(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            treadle.killall([lambda: None])
        g.join()

    treadle.run(main)


@pytest.mark.parametrize("finished", [False, True], ids=["pending", "finished"])
def test_joinall_and_killall_of_a_single_task_instead_of_a_list_are_type_errors(finished: bool) -> None:
    """gevent's classic slip, ``joinall(g)`` for ``joinall([g])``: a TypeError, not a silent or odd outcome."""

    def main() -> None:
        fut = new_future()
        g = treadle.spawn(blocker, fut)
        if finished:
            fut.set_result(None)
            g.join()
        with pytest.raises(TypeError):
            treadle.joinall(g)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            treadle.killall(g)  # type: ignore[arg-type]
        fut.cancel()
        g.join()

    treadle.run(main)


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, -math.inf])
def test_negative_or_nan_timeouts_are_value_errors(bad: float) -> None:
    def main() -> None:
        fut = new_future()
        g = treadle.spawn(blocker, fut)
        calls: list[Callable[[], Any]] = [
            lambda: g.join(bad),
            lambda: g.join(timeout=bad),
            lambda: g.get(timeout=bad),
            lambda: g.kill(timeout=bad),
            lambda: treadle.joinall([g], timeout=bad),
            lambda: treadle.killall([g], timeout=bad),
            lambda: treadle.sleep(bad),
            lambda: treadle.spawn_later(bad, lambda: None),
        ]
        for call in calls:
            with pytest.raises(ValueError):
                call()
        assert not g.ready()  # nothing was done by the rejected calls
        fut.set_result(None)
        g.join()

    treadle.run(main)


def test_joinall_negative_count_is_a_value_error() -> None:
    def main() -> None:
        with pytest.raises(ValueError):
            treadle.joinall([treadle.spawn(lambda: None)], count=-1)

    treadle.run(main)


def test_non_numeric_timeouts_are_type_errors() -> None:
    def main() -> None:
        g = treadle.spawn(lambda: None)
        with pytest.raises(TypeError):
            g.join("1")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            treadle.sleep("1")  # type: ignore[arg-type]
        g.join()

    treadle.run(main)


# -- the future interface ------------------------------------------------------------------


def test_async_code_awaits_a_green_task() -> None:
    def green(x: int) -> int:
        treadle.sleep(0)
        return 2 * x

    async def main() -> tuple[int, bool]:
        g = treadle.spawn(green, 21)
        assert asyncio.isfuture(g) and g.get_loop() is asyncio.get_running_loop()
        return await g, g.done()

    assert treadle.run(main()) == (42, True)


def test_gather_accepts_green_tasks() -> None:
    async def coro() -> str:
        await asyncio.sleep(0)
        return "async"

    async def main() -> list[Any]:
        return await asyncio.gather(treadle.spawn(lambda: "green"), coro(), treadle.spawn(treadle.sleep, 0, "slept"))

    assert treadle.run(main()) == ["green", "async", "slept"]


def test_gather_with_return_exceptions_collects_a_green_failure() -> None:
    async def main() -> list[Any]:
        return await asyncio.gather(
            treadle.spawn(failing_function, "g"), treadle.spawn(lambda: 1), return_exceptions=True
        )

    first, second = treadle.run(main())
    assert isinstance(first, KeyError) and second == 1


@pytest.mark.parametrize("return_exceptions", [False, True])
def test_gather_of_a_green_task_cancelled_elsewhere(return_exceptions: bool) -> None:
    """A child cancelled by someone else: gather raises CancelledError (or returns it), as for an asyncio task."""

    async def main() -> None:
        errors = record_errors()
        g = treadle.spawn(blocker, new_future())
        gathered = asyncio.gather(g, asyncio.sleep(0, "other"), return_exceptions=return_exceptions)
        await asyncio.sleep(0)
        g.cancel()
        for _ in range(20):  # a few loop iterations are enough; never wait on a gather that cannot finish
            await asyncio.sleep(0)
        assert g.cancelled()
        assert errors == []
        assert gathered.done()
        if return_exceptions:
            first, second = gathered.result()
            assert isinstance(first, asyncio.CancelledError) and second == "other"
        else:
            with pytest.raises(asyncio.CancelledError):
                gathered.result()

    treadle.run(main())


def test_asyncio_wait_returns_the_green_tasks_in_its_sets() -> None:
    async def main() -> None:
        fut = new_future()
        quick = treadle.spawn(lambda: "quick")
        slow = treadle.spawn(blocker, fut)
        done, pending = await asyncio.wait({quick, slow}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {quick} and pending == {slow}
        assert next(iter(done)) is quick
        fut.set_result("slow")
        done, pending = await asyncio.wait([quick, slow])
        assert done == {quick, slow} and pending == set()
        assert all(isinstance(t, treadle.Greenlet) for t in done)

    treadle.run(main())


def test_asyncio_wait_for_a_green_task() -> None:
    async def main() -> None:
        assert await asyncio.wait_for(treadle.spawn(lambda: "in time"), timeout=30) == "in time"
        log: list[str] = []
        slow = treadle.spawn(blocker, new_future(), log)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow, timeout=0.01)
        # wait_for cancelled the green task and waited for it to end.
        assert slow.cancelled()
        assert log == ["raised CancelledError", "finally"]

    treadle.run(main())


def test_add_done_callback_is_called_once_on_the_loop() -> None:
    async def main() -> None:
        fut = new_future()
        g = treadle.spawn(blocker, fut)
        calls: list[Any] = []
        g.add_done_callback(calls.append)
        await asyncio.sleep(0)
        assert calls == []
        fut.set_result(1)
        await asyncio.wait([g])
        await asyncio.sleep(0)
        assert calls == [g]
        # On a done task: called soon, not at once.
        g.add_done_callback(calls.append)
        assert calls == [g]
        await asyncio.sleep(0)
        assert calls == [g, g]

    treadle.run(main())


def test_add_done_callback_runs_in_the_given_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def main() -> None:
        ctx = contextvars.copy_context()
        ctx.run(var.set, "in ctx")
        seen: list[str] = []
        g = treadle.spawn(lambda: None)
        g.add_done_callback(lambda _: seen.append(var.get()), context=ctx)
        await g
        await asyncio.sleep(0)
        assert seen == ["in ctx"]

    treadle.run(main())


def test_remove_done_callback() -> None:
    async def main() -> None:
        fut = new_future()
        g = treadle.spawn(blocker, fut)
        calls: list[str] = []

        def first(_: Any) -> None:
            calls.append("first")

        def second(_: Any) -> None:
            calls.append("second")

        g.add_done_callback(first)
        g.add_done_callback(second)
        g.add_done_callback(first)
        assert g.remove_done_callback(first) == 2
        assert g.remove_done_callback(first) == 0
        fut.set_result(None)
        await g
        await asyncio.sleep(0)
        assert calls == ["second"]

    treadle.run(main())


def test_cancel_of_a_task_not_started_yet() -> None:
    async def main() -> None:
        ran: list[str] = []
        calls: list[Any] = []
        g = treadle.spawn(ran.append, "ran")
        g.add_done_callback(calls.append)
        assert g.cancel() is True
        assert g.cancelled() and g.done()
        with pytest.raises(asyncio.CancelledError):
            await g
        with pytest.raises(asyncio.CancelledError):
            g.result()
        with pytest.raises(asyncio.CancelledError):
            g.exception()
        await asyncio.sleep(0)
        assert ran == [] and calls == [g]
        assert g.cancel() is False  # already done

    treadle.run(main())


def test_cancel_of_a_sleeping_task_raises_cancelled_error_inside_it() -> None:
    def sleeper(log: list[str]) -> None:
        try:
            treadle.sleep(30)
        except asyncio.CancelledError as exc:
            log.append(f"cancelled {exc.args}")
            raise
        finally:
            log.append("finally")

    async def main() -> None:
        log: list[str] = []
        g = treadle.spawn(sleeper, log)
        await asyncio.sleep(0)
        assert g.started and not g.done()
        assert g.cancel("stop") is True
        await asyncio.wait([g])
        assert g.cancelled() and not g.successful()
        assert log == ["cancelled ('stop',)", "finally"]
        with pytest.raises(asyncio.CancelledError):
            await g
        assert g.cancel() is False

    treadle.run(main())


def test_cancel_of_a_task_by_itself_is_delivered_at_its_next_switch_point() -> None:
    def self_cancelling(log: list[str]) -> None:
        assert treadle.getcurrent().cancel() is True
        log.append("still running")
        try:
            treadle.sleep(0)
        except asyncio.CancelledError:
            log.append("cancelled at the switch point")
            raise

    async def main() -> None:
        log: list[str] = []
        g = treadle.spawn(self_cancelling, log)
        await asyncio.wait([g])
        assert g.cancelled()
        assert log == ["still running", "cancelled at the switch point"]

    treadle.run(main())


def test_cancelling_an_async_task_that_awaits_a_green_task_cancels_the_green_task() -> None:
    async def main() -> None:
        log: list[str] = []
        g = treadle.spawn(blocker, new_future(), log)

        async def awaiter() -> Any:
            return await g

        t = asyncio.get_running_loop().create_task(awaiter())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        await asyncio.wait([g])
        assert t.cancelled() and g.cancelled()
        assert log == ["raised CancelledError", "finally"]

    treadle.run(main())


def test_cancelling_a_green_task_that_awaits_an_async_task_cancels_the_async_task() -> None:
    async def main() -> None:
        log: list[str] = []

        async def inner() -> None:
            try:
                await asyncio.sleep(30)
            finally:
                log.append("inner finally")

        t = asyncio.get_running_loop().create_task(inner())
        g = treadle.spawn(treadle.await_, t)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not g.done() and not t.done()
        g.cancel()
        await asyncio.wait([g, t])
        assert g.cancelled() and t.cancelled()
        assert log == ["inner finally"]

    treadle.run(main())


def test_cancellation_crosses_async_green_async() -> None:
    """async outer -> green middle -> async inner: cancel the outer, all three end cancelled."""

    async def main() -> None:
        log: list[str] = []

        async def inner() -> None:
            try:
                await new_future()
            finally:
                log.append("inner")

        def middle() -> None:
            try:
                treadle.await_(inner())
            finally:
                log.append("middle")

        async def outer() -> None:
            try:
                await treadle.spawn(middle)
            finally:
                log.append("outer")

        t = asyncio.get_running_loop().create_task(outer())
        for _ in range(5):
            await asyncio.sleep(0)
        assert log == []
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert t.cancelled()
        assert sorted(log) == ["inner", "middle", "outer"]
        assert log[-1] == "outer"

    treadle.run(main())


def test_cancellation_crosses_green_async_green() -> None:
    """green outer -> async middle -> green inner: cancel the outer, all three end cancelled."""

    async def main() -> None:
        log: list[str] = []
        tasks: dict[str, Any] = {}

        def inner() -> None:
            try:
                treadle.await_(new_future())
            finally:
                log.append("inner")

        async def middle() -> None:
            tasks["inner"] = treadle.spawn(inner)
            try:
                await tasks["inner"]
            finally:
                log.append("middle")

        def outer() -> None:
            tasks["middle"] = asyncio.get_running_loop().create_task(middle())
            try:
                treadle.await_(tasks["middle"])
            finally:
                log.append("outer")

        g = treadle.spawn(outer)
        for _ in range(5):
            await asyncio.sleep(0)
        assert log == []
        g.cancel()
        await asyncio.wait([g])
        await asyncio.wait([tasks["middle"], tasks["inner"]])
        assert g.cancelled() and tasks["middle"].cancelled() and tasks["inner"].cancelled()
        assert sorted(log) == ["inner", "middle", "outer"]

    treadle.run(main())


def test_cancelling_the_innermost_ends_the_chain_cancelled_both_ways() -> None:
    """A cancellation at the bottom of a chain comes up through the green and the async awaiters."""

    async def main() -> None:
        bottom = new_future()

        def green_mid() -> Any:
            return treadle.await_(bottom)

        async def async_top() -> Any:
            return await treadle.spawn(green_mid)

        top = asyncio.get_running_loop().create_task(async_top())
        for _ in range(5):
            await asyncio.sleep(0)
        bottom.cancel()
        with pytest.raises(asyncio.CancelledError):
            await top
        assert top.cancelled()

        inner = asyncio.get_running_loop().create_task(asyncio.sleep(30))
        g = treadle.spawn(treadle.await_, inner)
        await asyncio.sleep(0)
        inner.cancel()
        await asyncio.wait([g])
        assert g.cancelled()

    treadle.run(main())


def test_cancelling_a_task_blocked_in_join_leaves_the_joined_task_running() -> None:
    def main() -> None:
        fut = new_future()
        target = treadle.spawn(blocker, fut)
        joiner = treadle.spawn(target.join)
        treadle.sleep(0)
        joiner.kill()
        assert joiner.cancelled() and not target.ready()
        fut.set_result("still fine")
        assert target.get() == "still fine"

    treadle.run(main)


def test_await_of_a_coroutine_that_completed_keeps_its_result_when_a_cancel_arrives() -> None:
    """As ``await coro`` does: a cancel requested while the coroutine finishes does not discard its result.

    The coroutine cancels the awaiting task just before it returns.  In asyncio, ``await coro()``
    still returns the value and the cancellation comes at the task's next suspension point; a
    green task's ``treadle.await_(coro())`` must do the same, or a caller cannot tell whether the
    coroutine's effect (an item put on a queue, a row written) happened.
    """

    async def main() -> None:
        log: list[str] = []
        holder: dict[str, Any] = {}

        async def finishing() -> str:
            await asyncio.sleep(0)
            holder["task"].cancel()
            return "result"

        async def async_side() -> None:
            log.append(f"async got {await finishing()!r}")
            await asyncio.sleep(0)

        def green_side() -> None:
            log.append(f"green got {treadle.await_(finishing())!r}")
            treadle.sleep(0)

        holder["task"] = asyncio.get_running_loop().create_task(async_side())
        await asyncio.wait([holder["task"]])
        holder["task"] = treadle.spawn(green_side)
        await asyncio.wait([holder["task"]])
        assert holder["task"].cancelled()
        assert log == ["async got 'result'", "green got 'result'"]

    treadle.run(main())


# -- treadle.run, run_green, sleep, await_ -------------------------------------------------


def test_run_a_function_returns_its_result_on_a_fresh_treadle_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    def main(a: int, b: int) -> int:
        loops.append(asyncio.get_running_loop())
        treadle.sleep(0)
        return a + b

    assert treadle.run(main, 1, 2) == 3
    assert treadle.run(main, 3, 4) == 7
    assert all(isinstance(lp, treadle.EventLoop) for lp in loops)
    assert loops[0] is not loops[1]
    assert loops[0].is_closed() and loops[1].is_closed()


def test_run_cancels_the_green_tasks_left_when_main_returns() -> None:
    """``treadle.run`` "cancels the tasks left", green ones too: their ``finally`` runs before run returns."""
    log: list[str] = []
    left: list[treadle.Greenlet] = []

    def lingering(name: str) -> None:
        try:
            treadle.sleep(30)
        except BaseException as exc:
            log.append(f"{name} {type(exc).__name__}")
            raise
        finally:
            log.append(f"{name} finally")

    def main() -> str:
        left.append(treadle.spawn(lingering, "green main"))
        treadle.sleep(0)
        return "done"

    async def amain() -> str:
        left.append(treadle.spawn(lingering, "async main"))
        await asyncio.sleep(0)
        return "done"

    assert treadle.run(main) == "done"
    assert treadle.run(amain()) == "done"
    assert log == [
        "green main CancelledError",
        "green main finally",
        "async main CancelledError",
        "async main finally",
    ]
    assert all(g.cancelled() and g.dead for g in left)


def test_run_a_function_reraises_its_exception() -> None:
    with pytest.raises(KeyError, match="from main"):
        treadle.run(failing_function, "from main")


def test_run_a_generator_function() -> None:
    def gen(x: int) -> Any:
        y = yield asyncio.sleep(0, x + 1)
        z = yield treadle.spawn(lambda: y * 10)
        yield
        return z

    assert treadle.run(gen, 1) == 20


def test_run_a_generator_object() -> None:
    def gen(x: int) -> Any:
        y = yield asyncio.sleep(0, x + 1)
        return y

    assert treadle.run(gen(1)) == 2


def test_run_from_green_code_waits_on_the_running_loop() -> None:
    async def coro() -> str:
        await asyncio.sleep(0)
        return "coro"

    def inner(x: int) -> tuple[int, asyncio.AbstractEventLoop]:
        treadle.sleep(0)
        return x, asyncio.get_running_loop()

    def main() -> None:
        loop = asyncio.get_running_loop()
        assert treadle.run(inner, 5) == (5, loop)
        assert treadle.run(coro()) == "coro"

    treadle.run(main)


def test_run_from_async_code_is_a_runtime_error() -> None:
    async def coro() -> None:
        pass

    async def main() -> None:
        c = coro()
        with pytest.raises(RuntimeError, match="await"):
            treadle.run(c)
        assert c.cr_frame is None  # closed, so no "never awaited" warning

    treadle.run(main())


def test_run_rejects_a_coroutine_function_and_non_callables() -> None:
    async def coroutine_function() -> None:
        pass

    with pytest.raises(TypeError):
        treadle.run(coroutine_function)
    with pytest.raises(TypeError):
        treadle.run(42)  # type: ignore[call-overload]


def test_run_green_from_async_code() -> None:
    def blocking(a: int, *, b: int) -> tuple[int, bool]:
        treadle.sleep(0)
        return a + b, isinstance(treadle.getcurrent(), treadle.Greenlet)

    async def main() -> tuple[int, bool]:
        return await treadle.run_green(blocking, 1, b=2)

    assert treadle.run(main()) == (3, True)


def test_run_green_cancelled_cancels_the_green_task() -> None:
    async def main() -> None:
        log: list[str] = []
        t = asyncio.get_running_loop().create_task(treadle.run_green(blocker, new_future(), log))
        for _ in range(3):
            await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert log == ["raised CancelledError", "finally"]

    treadle.run(main())


def test_sleep_in_async_code_is_awaitable() -> None:
    async def main() -> Any:
        first = await treadle.sleep(0.01)
        return first, await treadle.sleep(0, "result")

    assert treadle.run(main()) == (None, "result")


def test_sleep_in_async_code_rejects_bad_seconds_at_the_call() -> None:
    async def main() -> None:
        with pytest.raises(ValueError):
            treadle.sleep(-1)
        with pytest.raises(ValueError):
            treadle.sleep(math.nan)
        with pytest.raises(TypeError):
            treadle.sleep("0")  # type: ignore[arg-type]

    treadle.run(main())


def test_sleep_in_green_code_blocks_the_task_and_returns_result() -> None:
    def main() -> Any:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        first = treadle.sleep(0.01)
        assert loop.time() - t0 >= 0.009
        return first, treadle.sleep(0, "result")

    assert treadle.run(main) == (None, "result")


def test_sleep_zero_lets_every_other_ready_task_run_once() -> None:
    def worker(name: str, log: list[str]) -> None:
        for i in range(3):
            log.append(f"{name}{i}")
            treadle.sleep(0)

    def main() -> list[str]:
        log: list[str] = []
        treadle.joinall([treadle.spawn(worker, n, log) for n in "abc"])
        return log

    assert treadle.run(main) == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]


def test_await_from_green_code_returns_results_and_raises_errors() -> None:
    async def coro(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    async def bad() -> None:
        raise KeyError("async")

    def main() -> None:
        loop = asyncio.get_running_loop()
        assert treadle.await_(coro(2)) == 4
        task = loop.create_task(coro(3))
        assert treadle.await_(task) == 6
        assert treadle.await_(task) == 6  # already done
        assert treadle.await_(treadle.spawn(lambda: "green")) == "green"
        fut = new_future()
        loop.call_soon(fut.set_result, "fut")
        assert treadle.await_(fut) == "fut"
        with pytest.raises(KeyError, match="async"):
            treadle.await_(bad())

    treadle.run(main)


def test_generator_task_has_the_gevent_interface_and_is_cancelled_at_its_yield() -> None:
    def gen(fut: asyncio.Future[Any], log: list[str]) -> Any:
        try:
            try:
                yield 42  # not awaitable: a TypeError is thrown in at the yield
            except TypeError as exc:
                log.append(f"TypeError: {'awaitable' in str(exc)}")
            x = yield fut
            return x
        except asyncio.CancelledError:
            log.append("cancelled at the yield")
            raise
        finally:
            log.append("finally")

    def main() -> None:
        log: list[str] = []
        fut = new_future()
        t = treadle.spawn(gen, fut, log)
        assert isinstance(t, treadle.GeneratorTask) and isinstance(t, asyncio.Task)
        assert not t.ready() and not t.successful() and t.value is None
        with pytest.raises(TimeoutError):
            t.get(timeout=0.01)
        with pytest.raises(TimeoutError):
            t.get(block=False)
        fut.set_result(5)
        assert t.join() is None
        assert t.ready() and t.successful() and t.value == 5 and t.get() == 5
        assert log == ["TypeError: True", "finally"]

        log.clear()
        t2 = treadle.spawn(gen, new_future(), log)
        treadle.sleep(0)
        treadle.sleep(0)
        t2.cancel()
        t2.join()
        assert t2.cancelled() and not t2.successful() and t2.value is None
        assert log == ["TypeError: True", "cancelled at the yield", "finally"]
        with pytest.raises(ValueError):
            t2.join(timeout=-1)

    treadle.run(main)


# -- blocking from the hub -----------------------------------------------------------------


def test_blocking_calls_from_async_code_raise_blocking_in_hub_error() -> None:
    def gen() -> Any:
        yield
        return "gen"

    async def coro() -> None:
        pass

    async def main() -> None:
        fut = new_future()
        g = treadle.spawn(blocker, fut)
        gt = treadle.spawn(gen)
        assert isinstance(gt, treadle.GeneratorTask)
        c = coro()
        calls: dict[str, Callable[[], Any]] = {
            "Greenlet.join": lambda: g.join(),
            "Greenlet.get": lambda: g.get(),
            "joinall": lambda: treadle.joinall([g]),
            "await_ coroutine": lambda: treadle.await_(c),
            "await_ future": lambda: treadle.await_(fut),
            "GeneratorTask.join": lambda: gt.join(),
        }
        for what, call in calls.items():
            with pytest.raises(treadle.BlockingInHubError) as info:
                call()
            assert isinstance(info.value, RuntimeError)
            assert "await" in str(info.value), (what, str(info.value))
        assert c.cr_frame is None  # await_ closed the coroutine it could not wait for
        assert not g.done()
        fut.set_result("fine")
        assert await g == "fine"
        assert await gt == "gen"

    treadle.run(main())


def test_blocking_call_from_a_loop_callback_raises_blocking_in_hub_error() -> None:
    def main() -> None:
        loop = asyncio.get_running_loop()
        fut = new_future()
        g = treadle.spawn(blocker, fut)
        outcome = new_future()

        def callback() -> None:
            try:
                g.join()
            except BaseException as exc:
                outcome.set_result(exc)
            else:
                outcome.set_result(None)

        loop.call_soon(callback)
        exc = treadle.await_(outcome)
        assert isinstance(exc, treadle.BlockingInHubError) and "await" in str(exc)
        fut.set_result(None)
        g.join()

    treadle.run(main)


# -- never hang silently -----------------------------------------------------------------


def test_script_main_greenlet_waiting_forever_gets_never_woken_error(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import asyncio

        import treadle


        async def forever():
            await asyncio.get_running_loop().create_future()


        try:
            treadle.await_(forever())
        except treadle.NeverWokenError as exc:
            print("caught:", exc)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("caught:")
    assert "main greenlet" in proc.stdout
    assert "forever" in proc.stdout  # what it waits on


def test_script_never_woken_error_lists_every_waiter(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import asyncio

        import treadle


        def stuck():
            treadle.await_(asyncio.get_running_loop().create_future())


        g = treadle.spawn(stuck)
        g.name = "stuck-task"
        g.join()
        """,
    )
    assert proc.returncode == 1
    assert "NeverWokenError" in proc.stderr
    assert "main greenlet" in proc.stderr
    assert "stuck-task" in proc.stderr


def test_run_never_woken_error_names_the_green_main() -> None:
    def main() -> None:
        treadle.await_(new_future())

    with pytest.raises(treadle.NeverWokenError) as info:
        treadle.run(main)
    assert "'main'" in str(info.value)


# -- unobserved failures -------------------------------------------------------------------


def test_failure_nobody_waits_for_goes_to_the_loop_exception_handler() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        reported = new_future()
        contexts: list[dict[str, Any]] = []

        def handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            contexts.append(context)
            if not reported.done():
                reported.set_result(None)

        loop.set_exception_handler(handler)
        g = treadle.spawn(failing_function, "unobserved")
        g.name = "lonely"
        await asyncio.wait_for(reported, 30)
        await asyncio.sleep(0)
        assert len(contexts) == 1
        assert isinstance(contexts[0]["exception"], KeyError)
        assert contexts[0]["exception"].args == ("unobserved",)
        assert "lonely" in contexts[0]["message"]

    treadle.run(main())


def test_failure_someone_waits_for_is_not_reported() -> None:
    def main() -> None:
        errors = record_errors()
        g = treadle.spawn(failing_function, "observed")
        g.join()
        assert isinstance(g.exception(), KeyError)
        del g
        gc.collect()
        treadle.sleep(0)
        assert errors == []

    treadle.run(main)


def test_cancelled_task_is_not_reported() -> None:
    def main() -> None:
        errors = record_errors()
        g = treadle.spawn(blocker, new_future())
        treadle.sleep(0)
        g.kill(block=False)
        treadle.sleep(0)
        treadle.sleep(0)
        assert g.cancelled()
        assert errors == []

    treadle.run(main)


# -- green producer, async consumer ----------------------------------------------------------


def test_green_producer_async_consumer_exchange_100000_items() -> None:
    n = 100_000

    def producer(q: asyncio.Queue[int | None]) -> int:
        for i in range(n):
            treadle.await_(q.put(i))
        treadle.await_(q.put(None))
        return n

    async def main() -> None:
        errors = record_errors()
        q: asyncio.Queue[int | None] = asyncio.Queue(maxsize=64)
        prod = treadle.spawn(producer, q)
        got: list[int] = []
        while (item := await q.get()) is not None:
            got.append(item)
        assert await prod == n
        assert got == list(range(n))  # nothing lost, nothing reordered
        assert errors == []

    treadle.run(main())


def test_cancelling_the_async_consumer_ends_the_green_producer_cleanly() -> None:
    state: dict[str, Any] = {}

    def producer(q: asyncio.Queue[int]) -> None:
        sent = 0
        try:
            while True:
                treadle.await_(q.put(sent))
                sent += 1
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise
        finally:
            state["sent"] = sent

    async def main() -> None:
        errors = record_errors()
        q: asyncio.Queue[int] = asyncio.Queue(maxsize=16)
        got: list[int] = []
        reached = asyncio.Event()

        async def consume() -> None:
            while True:
                got.append(await q.get())
                if len(got) == 1000:
                    reached.set()

        prod = treadle.spawn(producer, q)

        async def consumer_main() -> None:
            # The consumer runs the green producer and its consuming loop together.
            await asyncio.gather(prod, consume())

        consumer = asyncio.get_running_loop().create_task(consumer_main())
        await reached.wait()
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        await asyncio.wait([prod])
        assert prod.cancelled() and state["cancelled"] is True
        # Nothing lost or reordered: what was sent is what was consumed, then what is still queued.
        queued = [q.get_nowait() for _ in range(q.qsize())]
        assert len(got) >= 1000
        assert got + queued == list(range(len(got) + len(queued)))
        await asyncio.sleep(0)
        assert errors == []
        # And the producer knows exactly what it sent: a put that raised CancelledError did not put.
        assert state["sent"] == len(got) + len(queued), (state["sent"], len(got), len(queued))

    treadle.run(main())


# -- stress ------------------------------------------------------------------------------------


def test_100000_sleeping_green_tasks_finish_and_are_freed() -> None:
    n = 100_000
    sample: list[weakref.ref[treadle.Greenlet]] = []
    rng = random.Random(1234)

    def main() -> int:
        errors = record_errors()
        tasks = [treadle.spawn(treadle.sleep, rng.random() * 0.5, i) for i in range(n)]
        for t in tasks:
            t.name = "stress"
        sample.extend(weakref.ref(t) for t in tasks[:: n // 100])
        treadle.sleep(0)
        assert sum(1 for t in tasks if t.started and not t.dead) == n  # all alive at once
        done = treadle.joinall(tasks)
        assert len(done) == n
        assert all(t.successful() for t in tasks)
        assert [t.value for t in tasks[:5]] == [0, 1, 2, 3, 4]
        assert errors == []
        return n

    assert treadle.run(main) == n
    gc.collect()
    assert len(sample) == 100
    assert [ref() for ref in sample if ref() is not None] == []
    # None of the 100,000 is kept alive by the hub, the loop or a callback.
    assert not any(isinstance(obj, treadle.Greenlet) and obj.name == "stress" for obj in gc.get_objects())

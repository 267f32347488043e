"""treadle's loop as a class: its hot state (``LoopCore``) under ``BaseEventLoop``, and subclasses of it.

The loop derives from ``loopcore.LoopCore`` (an extension type when compiled,
whose fields are the hot state) and from asyncio's ``BaseEventLoop``.  These
tests check what that must not change for a user: the loop is a
``BaseEventLoop``, ``BaseEventLoop``'s own methods write the state the
iteration reads, a subclass can override the scheduling methods and add
attributes, and a dropped loop is collected.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

import treadle
from treadle._core.eventloop import EventLoop
from treadle._core.loopcore import LoopCore


def test_the_loop_is_a_base_event_loop_over_the_core() -> None:
    loop = treadle.new_event_loop()
    try:
        assert isinstance(loop, asyncio.BaseEventLoop)
        assert isinstance(loop, LoopCore)
        mro = type(loop).__mro__
        assert mro.index(LoopCore) < mro.index(asyncio.BaseEventLoop)
    finally:
        loop.close()


def test_base_event_loop_methods_write_the_state_the_iteration_reads() -> None:
    loop = treadle.new_event_loop()
    try:
        loop.set_debug(True)  # BaseEventLoop.set_debug writes _debug
        assert loop.get_debug() is True
        assert loop._debug is True

        async def made_in_debug() -> Any:
            running = asyncio.get_running_loop()
            handle = running.call_soon(lambda: None)
            future = running.create_future()  # asyncio's C Future asks loop.get_debug()
            return handle._source_traceback, future._source_traceback  # type: ignore[attr-defined]

        handle_tb, future_tb = loop.run_until_complete(made_in_debug())
        assert handle_tb and future_tb  # made in debug mode: each has its traceback
        loop.set_debug(False)
        assert loop.run_until_complete(made_in_debug()) == (None, None)

        ran: list[int] = []
        loop.call_soon(ran.append, 1)
        loop.call_soon(loop.stop)  # BaseEventLoop.stop writes _stopping, which ends the run
        loop.call_soon(ran.append, 2)
        loop.call_soon(ran.append, 3)  # queued after stop(): still runs in the same iteration
        loop.run_forever()
        assert ran == [1, 2, 3]
        assert loop._stopping is False  # reset for the next run
    finally:
        loop.close()
    assert loop.is_closed() and loop._closed is True
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(print)


class _CountingLoop(EventLoop):
    """A user's subclass: its own attribute, and call_soon and call_later overridden."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled: list[str] = []

    def call_soon(self, callback: Any, *args: Any, context: Any = None) -> Any:  # type: ignore[override]
        self.scheduled.append("soon")
        return super().call_soon(callback, *args, context=context)

    def call_later(self, delay: float, callback: Any, *args: Any, context: Any = None) -> Any:  # type: ignore[override]
        self.scheduled.append("later")
        return super().call_later(delay, callback, *args, context=context)


def test_a_subclass_overrides_the_scheduling_methods() -> None:
    loop = _CountingLoop()
    try:

        async def main() -> int:
            await asyncio.sleep(0.001)  # call_later, then a future's wake-up (call_soon)
            return 7

        assert loop.run_until_complete(main()) == 7
        assert "later" in loop.scheduled
        assert "soon" in loop.scheduled
        assert loop.__dict__["scheduled"] is loop.scheduled
    finally:
        loop.close()


class _SlottedLoop(EventLoop):
    __slots__ = ("extra",)
    extra: int


def test_a_subclass_with_slots_works() -> None:
    loop = _SlottedLoop()
    try:
        loop.extra = 3
        assert loop.run_until_complete(asyncio.sleep(0, result=loop.extra)) == 3
    finally:
        loop.close()


def _closed_loop_in_cycles() -> weakref.ref[asyncio.AbstractEventLoop]:
    loop = treadle.new_event_loop()
    loop.run_until_complete(asyncio.sleep(0))
    # Cycles through the core's fields, which close() leaves in place: the
    # collector must see them (the extension type's traversal).
    loop.set_task_factory(lambda lp, coro: asyncio.Task(coro, loop=loop))
    loop._stall_hook = loop.stop  # type: ignore[attr-defined]
    loop.close()
    return weakref.ref(loop)


def test_a_dropped_loop_is_collected() -> None:
    ref = _closed_loop_in_cycles()
    gc.collect()
    assert ref() is None

"""The handles that treadle's loop makes and runs on its hot path.

Compiled, the loop makes its handles and runs them by reaching their slots
directly (``treadle._core.handles``: ``new_handle``, ``new_timer``,
``run_ready``).  These tests check that such a handle is the same object as
one made by the class's constructor, that running it keeps the asyncio
semantics (context, exceptions, a callback that cancels its own handle), that
no reference is leaked or dropped, and that objects which only look like
handles still run.  The suite runs in both forms, so each test holds for the
pure Python path too.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import sys
import weakref
from typing import Any

import pytest

import treadle
from treadle._core import handles, new_event_loop
from treadle._core.handles import Handle, TimerHandle

_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("_VAR", default="unset")


@pytest.fixture
def loop() -> Any:
    lp = new_event_loop()
    try:
        yield lp
    finally:
        lp.close()


def _slots(handle: asyncio.Handle) -> dict[str, Any]:
    names = {n for cls in type(handle).__mro__ for n in getattr(cls, "__slots__", ()) if n != "__weakref__"}
    return {n: getattr(handle, n) for n in sorted(names)}


def _noop(*args: Any) -> None:
    pass


def test_the_compiled_core_reaches_the_slots_directly() -> None:
    # A silent fallback to the ordinary path would still pass every other test.
    assert handles.uses_slot_offsets() is treadle.compiled
    assert handles.uses_own_traverse() is treadle.compiled
    assert handles.uses_own_dealloc() is treadle.compiled


@pytest.mark.parametrize("debug", [False, True])
def test_a_loop_handle_has_the_slots_its_constructor_sets(loop: Any, debug: bool) -> None:
    loop.set_debug(debug)
    context = contextvars.copy_context()
    made = loop.call_soon(_noop, 1, "two", context=context)
    built = Handle(_noop, (1, "two"), loop, context)
    assert type(made) is Handle
    made_slots, built_slots = _slots(made), _slots(built)
    if debug:  # each stack ends where it was taken
        assert made_slots.pop("_source_traceback") and built_slots.pop("_source_traceback")
    assert made_slots == built_slots
    assert made.get_context() is context
    made_repr, built_repr = (repr(h).partition(" created at ")[0] for h in (made, built))  # where each was made
    assert made_repr == built_repr and made_repr.startswith("<Handle _noop(")
    made.cancel()
    assert made.cancelled() and made._callback is None and made._args is None


@pytest.mark.parametrize("debug", [False, True])
def test_a_loop_timer_has_the_slots_its_constructor_sets(loop: Any, debug: bool) -> None:
    loop.set_debug(debug)
    context = contextvars.copy_context()
    made = loop.call_at(loop.time() + 60, _noop, 3, context=context)
    built = TimerHandle(made.when(), made._seq, _noop, (3,), loop, context)
    built._scheduled = True
    assert type(made) is TimerHandle
    made_slots, built_slots = _slots(made), _slots(built)
    if debug:
        assert made_slots.pop("_source_traceback") and built_slots.pop("_source_traceback")
    assert made_slots == built_slots
    made.cancel()
    assert made.cancelled()
    assert loop._timers.handles() == []


def test_a_handle_without_a_context_gets_a_copy_of_the_current_one(loop: Any) -> None:
    seen: list[str] = []
    token = _VAR.set("at call_soon")
    try:
        handle = loop.call_soon(lambda: seen.append(_VAR.get()))
    finally:
        _VAR.reset(token)
    assert handle.get_context() is not contextvars.copy_context()
    assert handle.get_context()[_VAR] == "at call_soon"
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["at call_soon"]


def test_a_callback_runs_in_its_context_and_its_changes_stay_there(loop: Any) -> None:
    context = contextvars.copy_context()
    seen: list[str] = []

    def first() -> None:
        seen.append(_VAR.get())
        _VAR.set("set by first")

    def second() -> None:
        seen.append(_VAR.get())

    loop.call_soon(first, context=context)
    loop.call_soon(second, context=context)
    loop.call_soon(second)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["unset", "set by first", "unset"]
    assert context[_VAR] == "set by first"


def test_a_context_that_is_already_entered_is_reported_not_run(loop: Any, caplog: pytest.LogCaptureFixture) -> None:
    context = contextvars.copy_context()
    ran: list[bool] = []
    loop.call_soon(lambda: ran.append(True), context=context)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        context.run(loop.run_forever)  # the handle's context is the one running the loop
    assert ran == []
    # Reported through the loop's exception handler (from 3.12 asyncio runs the
    # handler in the handle's context too, which fails the same way: logged).
    assert "already entered" in caplog.text
    loop.call_soon(lambda: ran.append(True), context=context)
    loop.call_soon(loop.stop)
    loop.run_forever()  # the loop goes on, and the context can be entered again
    assert ran == [True]


def test_a_callback_that_cancels_its_own_handle_finishes(loop: Any) -> None:
    done: list[Any] = []

    def callback(*args: Any) -> None:
        handle.cancel()  # drops the handle's references to this function and args
        gc.collect()
        done.append(args)

    handle = loop.call_soon(callback, object(), [1, 2])
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(done) == 1 and done[0][1] == [1, 2]
    assert handle.cancelled() and handle._callback is None


def test_a_handle_cancelled_before_its_turn_does_not_run(loop: Any) -> None:
    ran: list[str] = []
    loop.call_soon(lambda: later.cancel())
    later = loop.call_soon(ran.append, "later")
    timer = loop.call_later(0, ran.append, "timer")
    loop.call_soon(timer.cancel)
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == []


def test_running_handles_keeps_every_reference_count(loop: Any) -> None:
    def callback(arg: object) -> None:
        pass

    arg, context = object(), contextvars.copy_context()
    before = (sys.getrefcount(callback), sys.getrefcount(arg), sys.getrefcount(context))
    for _ in range(100):
        loop.call_soon(callback, arg, context=context)
        loop.call_later(0, callback, arg, context=context)
    loop.call_later(0, loop.stop)
    loop.run_forever()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert (sys.getrefcount(callback), sys.getrefcount(arg), sys.getrefcount(context)) == before


class _Holder:
    handle: Any = None

    def callback(self) -> None:
        pass


def test_a_handle_in_a_reference_cycle_is_collected(loop: Any) -> None:
    holder = _Holder()
    holder.handle = loop.call_soon(holder.callback)  # handle -> bound method -> holder -> handle
    ref = weakref.ref(holder.handle)
    loop.call_soon(loop.stop)
    loop.run_forever()
    del holder
    gc.collect()
    assert ref() is None


class _SlottedTimer(TimerHandle):
    __slots__ = ("extra",)


class _DictHandle(Handle):
    pass


def _make(kind: str, loop: Any, callback: Any, args: tuple[Any, ...], context: Any) -> Any:
    if kind == "handle":
        return loop.call_soon(callback, *args, context=context)
    if kind == "timer":
        return loop.call_later(60, callback, *args, context=context)
    if kind == "slotted subclass":
        return _SlottedTimer(loop.time() + 60, 0, callback, args, loop, context)
    return _DictHandle(callback, args, loop, context)


_CYCLES = [
    (kind, through)
    for kind in ("handle", "timer", "slotted subclass", "dict subclass")
    for through in ("callback", "args", "context", "own attribute")
    if through != "own attribute" or "subclass" in kind  # the loop's own classes take no attribute, as asyncio's
]


@pytest.mark.parametrize(("kind", "through"), _CYCLES)
def test_the_collector_sees_every_reference_a_handle_holds(loop: Any, kind: str, through: str) -> None:
    """A cycle through any slot (asyncio's, treadle's, a subclass's or its __dict__) is found and collected."""

    class Node:
        handle: Any = None

        def method(self) -> None:
            pass

    node = Node()
    context = contextvars.copy_context()
    callback: Any = node.method if through == "callback" else _noop
    args: tuple[Any, ...] = (node,) if through == "args" else ()
    if through == "context":
        context.run(_VAR.set, node)  # type: ignore[arg-type]
    handle = _make(kind, loop, callback, args, context)
    held = {"callback": callback, "args": handle._args, "context": context}.get(through)
    if through == "own attribute":
        handle.extra = held = node
    if kind != "dict subclass" or through != "own attribute":  # 3.13 reports no instance attribute here
        assert any(o is held for o in gc.get_referents(handle))  # what the collector's traverse reports
    node.handle = handle  # the cycle: handle -> ... -> node -> handle
    ref = weakref.ref(node)
    del node, handle, callback, args, context, held
    loop._timers.clear()  # the loop's own references
    loop._ready.clear()
    gc.collect()
    assert ref() is None


class _FinalizedHandle(Handle):
    __slots__ = ("extra",)
    finalized: list[str] = []

    def __del__(self) -> None:
        _FinalizedHandle.finalized.append(type(self.extra).__name__)


@pytest.mark.parametrize("kind", ["handle", "timer", "slotted subclass", "dict subclass", "subclass with __del__"])
def test_a_freed_handle_releases_everything_it_holds(loop: Any, kind: str) -> None:
    """Freeing a handle (ours, or a subclass's, whose own deallocator runs first) drops every reference it holds.

    Its callback, arguments, context, a subclass's slot or attribute and its class each get their
    reference back, a weak reference to it is called back, and a subclass's finalizer runs once.
    """

    class Marker:
        pass

    def callback(arg: object) -> None:
        pass

    arg, extra, context = Marker(), Marker(), contextvars.copy_context()
    if kind == "subclass with __del__":
        handle: Any = _FinalizedHandle(callback, (arg,), loop, context)
        _FinalizedHandle.finalized.clear()
    else:
        handle = _make(kind, loop, callback, (arg,), context)
    if "subclass" in kind:
        handle.extra = extra
    loop._timers.clear()  # the loop's own references
    loop._ready.clear()
    cls = type(handle)
    before = [sys.getrefcount(o) for o in (callback, arg, extra, context, cls)]
    called: list[str] = []
    ref = weakref.ref(handle, lambda _: called.append("weakref"))
    del handle
    assert ref() is None and called == ["weakref"]
    after = [sys.getrefcount(o) for o in (callback, arg, extra, context, cls)]
    held = [1, 1, 1 if "subclass" in kind else 0, 1, 1]  # what the handle held of each
    assert [b - a for b, a in zip(before, after, strict=True)] == held
    if kind == "subclass with __del__":
        assert _FinalizedHandle.finalized == ["Marker"]  # it saw its slot before the slots were cleared


def test_a_long_chain_of_handles_is_freed_without_exhausting_the_stack(loop: Any) -> None:
    """Each handle holds the next as its argument: freeing the first frees them all, level by level."""
    head: Any = None
    for _ in range(200_000):
        head = Handle(_noop, (head,), loop, None)
    ref = weakref.ref(head)
    del head
    assert ref() is None


def test_cancel_drops_the_callback_and_a_cancelled_timer_leaves_the_heap_when_it_compacts(loop: Any) -> None:
    def callback(arg: object) -> None:
        raise AssertionError("a cancelled callback ran")

    arg = object()
    before = (sys.getrefcount(callback), sys.getrefcount(arg))
    timers = [loop.call_later(60 + i, callback, arg) for i in range(300)]
    soon = loop.call_soon(callback, arg)
    soon.cancel()
    soon.cancel()  # twice: nothing more
    assert soon.cancelled() and soon._callback is None and soon._args is None
    for timer in timers[:151]:
        timer.cancel()
    # More than half cancelled: the heap was rebuilt without them, each marked as out of it.
    assert len(loop._timers._heap) == 149 and len(loop._timers) == 149
    assert all(not t._scheduled and t.cancelled() for t in timers[:151])
    assert all(t._scheduled and not t.cancelled() for t in timers[151:])
    for timer in timers[151:]:
        timer.cancel()
        timer.cancel()
    assert len(loop._timers) == 0
    assert (sys.getrefcount(callback), sys.getrefcount(arg)) == before
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_a_raising_callback_is_reported_with_its_handle(loop: Any) -> None:
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    def boom() -> None:
        raise ValueError("boom")

    handle = loop.call_soon(boom)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert [type(e["exception"]) for e in errors] == [ValueError]
    assert errors[0]["handle"] is handle and "boom" in errors[0]["message"]


def test_keyboard_interrupt_from_a_callback_leaves_the_loop(loop: Any) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    loop.call_soon(loop.stop)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert not loop.is_running()


def test_objects_that_only_look_like_handles_still_run(loop: Any) -> None:
    ran: list[Any] = []
    # asyncio's own handle, and one of treadle's whose arguments are not a tuple.
    loop._add_callback(asyncio.Handle(ran.append, ("asyncio's",), loop))
    odd = Handle(ran.append, ["list args"], loop)  # type: ignore[arg-type]
    loop._add_callback(odd)
    odd_context = Handle(ran.append, ("no context",), loop)
    odd_context._context = None  # type: ignore[assignment]
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
    loop._add_callback(odd_context)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == ["asyncio's", "list args"]
    # asyncio's Handle._run on a None context: an AttributeError, reported.
    assert [type(e["exception"]) for e in errors] == [AttributeError]
    assert errors[0]["handle"] is odd_context

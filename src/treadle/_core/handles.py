"""Callback handles: what ``call_soon``, ``call_later`` and ``add_reader`` return.

Owns: :class:`Handle` (a callback, its arguments and its context, run once by the
loop) and :class:`TimerHandle` (the same with a deadline and a sequence number
that keeps timers due at the same instant in the order they were scheduled).

Never: touches the ready queue, the timer heap or the poller.  A handle only
knows how to run itself and how to mark itself cancelled; the loop owns where
it is queued.  Both classes have the attributes and methods of
``asyncio.Handle``/``asyncio.TimerHandle`` so that code written for asyncio's
handles (``cancel()``, ``cancelled()``, ``when()``, ``get_context()``) works.

Also owns the loop's hot path for its own handles: :func:`new_handle` and
:func:`new_timer` (make one, as the classes' constructors do),
:func:`run_ready` (run one unless it was cancelled), ``cancel()`` and the
timer queue's reads and writes of a timer's state (:func:`timer_cancelled`,
:func:`timer_unschedule`).

Discussion: handles are the most allocated objects of the loop, so they use
``__slots__`` and keep ``_run`` short; the slow path (formatting the callback
for an error report) lives in :func:`_report`.

The classes must stay subclasses of asyncio's (code checks ``isinstance``), so
they are Python classes, not extension types, and every attribute access on
them is a generic lookup: making a handle through ``Handle(...)`` costs more
than the rest of ``call_soon`` together.  Compiled, the three hot-path
functions instead read and write the handle's slots at the offsets that the
interpreter's own slot descriptors report (``handles.pxd``), found and checked
once at import: a handle made that way is the same object, with the same
slots set, as one made by ``__init__``.  If the descriptors are not the plain
object slots expected, or the module runs as Python, the functions take the
ordinary path.  Compiled, the two classes also get a traverse function for the
cyclic garbage collector that visits the same slots from one array of offsets
(Python's own walks every class's member table on each call; a collection
traverses every handle alive).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
from asyncio import format_helpers
from collections.abc import Callable
from typing import Any

from .._accel import is_extension_file

__all__ = ["Handle", "TimerHandle", "new_handle", "new_timer", "run_ready", "timer_cancelled", "timer_unschedule"]

_CORE_DIR = os.path.dirname(os.path.abspath(__file__))
_copy_context = contextvars.copy_context  # one global lookup per handle instead of two


def _caller_stack() -> Any:
    """The stack (debug mode's ``_source_traceback``) from the first frame outside ``_core``.

    Discussion: a compiled module's functions have no frames, so counting
    frames up from here (``sys._getframe(n)``) would point at different code
    compiled and not.  Skipping every frame of ``_core``'s files instead gives
    the same stack in both forms: it ends at the code that called the loop.
    Compiled, there may be no Python frame at all (a green task's callback,
    scheduled from the hub greenlet): the stack is then empty.
    """
    try:
        frame: Any = sys._getframe(0)
    except ValueError:  # no Python frame at all: compiled code called by the compiled loop
        return []
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _CORE_DIR:
        frame = frame.f_back
    return format_helpers.extract_stack(frame)


def _format_callback(callback: Any, args: Any, loop: Any) -> str:
    """A callback and its arguments as asyncio's handles show them (from 3.13: the arguments in debug mode only)."""
    if sys.version_info >= (3, 13):
        return format_helpers._format_callback_source(callback, args, debug=loop.get_debug())  # type: ignore[call-arg, no-any-return]
    return format_helpers._format_callback_source(callback, args)  # type: ignore[no-any-return]


class Handle(asyncio.Handle):
    """A callback scheduled on the loop; ``cancel()`` stops it from running.

    A subclass of ``asyncio.Handle`` (it uses the same slots), so that code that
    checks for asyncio's handle types accepts treadle's.
    """

    __slots__ = ()

    def __init__(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: Any,
        context: contextvars.Context | None = None,
    ) -> None:
        if context is None:
            context = _copy_context()
        self._context = context
        self._loop = loop
        self._callback: Callable[..., object] | None = callback
        self._args = args
        self._cancelled = False
        self._repr: str | None = None
        if loop._debug:
            self._source_traceback: Any = _caller_stack()
        else:
            self._source_traceback = None

    def _repr_info(self) -> list[str]:
        info = [type(self).__name__]
        if self._cancelled:
            info.append("cancelled")
        if self._callback is not None:
            info.append(_format_callback(self._callback, self._args, self._loop))
        if self._source_traceback:
            frame = self._source_traceback[-1]
            info.append(f"created at {frame[0]}:{frame[1]}")
        return info

    def __repr__(self) -> str:
        if self._repr is not None:
            return self._repr
        return "<{}>".format(" ".join(self._repr_info()))

    def get_context(self) -> contextvars.Context:
        return self._context

    def cancel(self) -> None:
        if _FAST and _c_is_ours(self):  # type: ignore[name-defined]  # noqa: F821
            _cancel_ours(self)
            return
        if not self._cancelled:
            self._cancelled = True
            if self._loop._debug:
                # Keep the callback in the repr so that a slow-callback warning
                # can still name it after the references are dropped.
                self._repr = repr(self)
            self._callback = None
            self._args = None  # type: ignore[assignment]

    def cancelled(self) -> bool:
        return self._cancelled

    def _run(self) -> None:
        try:
            self._context.run(self._callback, *self._args)  # type: ignore[arg-type, misc]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            _report(self, exc)


def _report(handle: Handle, exc: BaseException) -> None:
    """Send the exception raised by ``handle``'s callback to the loop's handler."""
    cb = _format_callback(handle._callback, handle._args, handle._loop)
    context: dict[str, Any] = {
        "message": f"Exception in callback {cb}",
        "exception": exc,
        "handle": handle,
    }
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


class TimerHandle(Handle, asyncio.TimerHandle):
    """A callback due at a loop time; ordered by (deadline, scheduling order)."""

    __slots__ = ("_seq",)

    def __init__(  # type: ignore[override]
        self,
        when: float,
        seq: int,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: Any,
        context: contextvars.Context | None = None,
    ) -> None:
        # Handle.__init__ inlined: timers are created on every timeout and sleep.
        self._context = context if context is not None else _copy_context()
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        if loop._debug:
            self._source_traceback = _caller_stack()
        else:
            self._source_traceback = None
        self._when = when
        self._seq = seq
        self._scheduled = False

    def _repr_info(self) -> list[str]:
        info = super()._repr_info()
        info.insert(2 if self._cancelled else 1, f"when={self._when}")
        return info

    def __hash__(self) -> int:
        return hash((self._when, self._seq))

    def __lt__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            if self._when == other._when:
                return self._seq < other._seq
            return self._when < other._when
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return self is other or self.__lt__(other)
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return other.__lt__(self)
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return self is other or other.__lt__(self)
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return self is other
        return NotImplemented

    def when(self) -> float:
        """The loop time (``loop.time()``) at which the callback is due."""
        return self._when

    def cancel(self) -> None:
        if _FAST and _c_is_ours(self):  # type: ignore[name-defined]  # noqa: F821
            _cancel_ours(self)
            return
        if not self._cancelled:
            scheduled = self._scheduled
            # Mark it cancelled first: on_cancel may compact the heap, which
            # must see this handle as cancelled to drop it.
            Handle.cancel(self)
            if scheduled:
                self._loop._timers.on_cancel(self)


# Compiled, this module is an extension module (its __file__ says so) and the
# C helpers declared in handles.pxd exist; as Python, they are never looked up.
_COMPILED = is_extension_file(__file__)
_FAST = _COMPILED and _c_slots_init(Handle, TimerHandle) == 1  # type: ignore[name-defined]  # noqa: F821
# The collector's traverse of the two classes, from the offsets of their object slots.
_OWN_TRAVERSE = _FAST and _c_traverse_init() == 1  # type: ignore[name-defined]  # noqa: F821
# And their deallocator, from the same offsets.
_OWN_DEALLOC = _OWN_TRAVERSE and _c_dealloc_init() == 1  # type: ignore[name-defined]  # noqa: F821


def uses_slot_offsets() -> bool:
    """True if the hot path reaches the handles' slots directly (compiled, and the slots are as expected)."""
    return _FAST


def uses_own_traverse() -> bool:
    """True if the collector traverses the handles through the compiled module's function (one array of offsets)."""
    return _OWN_TRAVERSE


def uses_own_dealloc() -> bool:
    """True if the handles are freed through the compiled module's function (the same offsets)."""
    return _OWN_DEALLOC


def new_handle(
    callback: Callable[..., object],
    args: tuple[Any, ...],
    loop: Any,
    context: contextvars.Context | None,
    debug: bool,
) -> Handle:
    """``Handle(callback, args, loop, context)``: the loop's way to make one; ``debug``: the loop's ``_debug``."""
    if _FAST:
        traceback = _caller_stack() if debug else None
        return _c_new_handle(callback, args, loop, context, traceback)  # type: ignore[name-defined, no-any-return]  # noqa: F821
    return Handle(callback, args, loop, context)


def new_timer(
    when: float,
    seq: int,
    callback: Callable[..., object],
    args: tuple[Any, ...],
    loop: Any,
    context: contextvars.Context | None,
    debug: bool,
) -> TimerHandle:
    """``TimerHandle(when, seq, callback, args, loop, context)``, marked scheduled: the loop pushes it on its heap.

    ``debug``: the loop's ``_debug``, read by the caller (a C field of the loop's).
    """
    if _FAST:
        traceback = _caller_stack() if debug else None
        return _c_new_timer(when, seq, callback, args, loop, context, traceback)  # type: ignore[name-defined, no-any-return]  # noqa: F821
    timer = TimerHandle(when, seq, callback, args, loop, context)
    timer._scheduled = True
    return timer


def run_ready(handle: Any) -> None:
    """Run a handle taken off the ready queue, unless it was cancelled.

    Any object with asyncio's handle interface works (``_cancelled``,
    ``_run()``); treadle's own handles take the compiled path.
    """
    if _FAST and _c_is_ours(handle):  # type: ignore[name-defined]  # noqa: F821
        if _c_cancelled(handle):  # type: ignore[name-defined]  # noqa: F821
            return
        try:
            _c_call(handle)  # type: ignore[name-defined]  # noqa: F821
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            _report(handle, exc)
    elif not handle._cancelled:
        handle._run()


def _cancel_ours(handle: Any) -> None:
    """``cancel()`` of a handle or timer of this module's two classes, on its slots (compiled only).

    The same steps as the methods: cancelled first (compacting the timer
    heap must see it cancelled), the repr kept in debug mode, the callback
    and its arguments dropped, a scheduled timer counted by its queue.
    """
    if _c_cancelled(handle):  # type: ignore[name-defined]  # noqa: F821
        return
    loop = _c_loop(handle)  # type: ignore[name-defined]  # noqa: F821
    scheduled = _c_is_timer(handle) and _c_scheduled(handle)  # type: ignore[name-defined]  # noqa: F821
    _c_set_cancelled(handle)  # type: ignore[name-defined]  # noqa: F821
    if loop._debug:
        # Keep the callback in the repr so that a slow-callback warning
        # can still name it after the references are dropped.
        handle._repr = repr(handle)
    _c_drop_callback(handle)  # type: ignore[name-defined]  # noqa: F821
    if scheduled:
        loop._timers.on_cancel(handle)


def timer_cancelled(timer: Any) -> bool:
    """``timer._cancelled``, read from its slot if it is one of this module's (compiled)."""
    if _FAST and _c_is_ours(timer):  # type: ignore[name-defined]  # noqa: F821
        return _c_cancelled(timer)  # type: ignore[name-defined, no-any-return]  # noqa: F821
    return timer._cancelled  # type: ignore[no-any-return]


def timer_unschedule(timer: Any) -> None:
    """``timer._scheduled = False`` (it left the timer heap), on its slot if it is one of this module's (compiled)."""
    if _FAST and _c_is_timer(timer):  # type: ignore[name-defined]  # noqa: F821
        _c_set_unscheduled(timer)  # type: ignore[name-defined]  # noqa: F821
    else:
        timer._scheduled = False

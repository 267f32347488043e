"""Cancel scopes and timeouts for green and async tasks alike.

Owns: :class:`CancelScope` (a deadline, ``shield``, ``cancel()``,
``cancel_called``, ``cancelled_caught``), :func:`move_on_after`,
:func:`move_on_at`, :func:`fail_after`, :func:`fail_at`, :func:`with_timeout`
and :func:`current_effective_deadline`, and the per-task stack of scopes.

Never: lets a cancellation leak out of a scope that caught it, nor swallows one
it did not cause.  A scope is a plain ``with`` in both styles; entering it
never blocks and never switches.

Discussion: a scope works on the task that entered it, its *host*: an asyncio
task in async code, the current greenlet in green code.  Cancelling the scope
(its deadline passes, or ``cancel()`` is called) delivers one
``asyncio.CancelledError`` to the host at its next switch point: through
``Task.cancel()`` for an async host, through :func:`treadle.green.hub.interrupt`
for a green one.  Each delivery is counted, as ``asyncio.timeout`` counts
(``Task.cancelling()``/``uncancel()``; green hosts keep the same count here),
and at its exit the scope takes back its own count: the ``CancelledError`` is
the scope's own, and swallowed, only when no other cancellation (another
scope's, or a plain ``task.cancel()``) is left.  That is what lets scopes nest
in any order: an outer deadline that passes while an inner scope runs goes
through the inner scope untouched and is caught by the outer one.

Discussion: delivery is edge-triggered, as ``asyncio.timeout``'s: a scope
cancels its host once.  Code that catches the ``CancelledError`` inside the
scope (to clean up, say) can go on awaiting, as it can under
``asyncio.timeout``; trio would cancel it again at every switch point.  We
keep asyncio's rule because code written for asyncio counts on it; the
scope still reports ``cancelled_caught`` only if the error reached its exit.

Discussion: a ``shield`` holds back the cancellation of every scope around it
while the host runs inside it; such a scope stays *pending* and is delivered
when the shield is left (or lowered).  A shield does not stop ``task.cancel()``
itself, the task-level asyncio API, which always goes through (as with
anyio's scopes on asyncio).

Discussion: a host is never cancelled while it runs (a scope cancelled from
inside its own task, or entered with its deadline already past, is delivered
by a loop callback, after the task's current step).  So on every Python
version the one ``CancelledError`` lands at the first switch point inside the
scope, a scope left before that callback runs leaves nothing behind, and a
shield entered before that switch point holds it back.  A green host that is
suspended but not waiting (it switched to another greenlet itself) has its
exception parked until its next wait, and taken back if the scope is left
first.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from greenlet import getcurrent, greenlet

from ..green.bridge import await_
from ..green.hub import Hub, get_hub, interrupt
from ..green.task import check_timeout
from .waiting import current_loop, in_async

__all__ = [
    "CancelScope",
    "current_effective_deadline",
    "fail_after",
    "fail_at",
    "move_on_after",
    "move_on_at",
    "with_timeout",
]

_NEW, _ACTIVE, _EXITED = 0, 1, 2


class _HostState:
    """The scopes a host is inside (its innermost one), and a green host's scope cancellations."""

    __slots__ = ("innermost", "cancels", "parked")

    def __init__(self) -> None:
        self.innermost: CancelScope | None = None
        self.cancels = 0  # green hosts only: deliveries not yet taken back
        self.parked: BaseException | None = None  # green hosts only: the CancelledError last parked for it


# host (an asyncio task or a greenlet) -> its state, while it is inside a scope.
_hosts: dict[Any, _HostState] = {}


def _current_host() -> Any:
    if in_async():
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a cancel scope must be entered in a task (async or green), not in a loop callback")
        return task
    return getcurrent()


def _cancelling(host: Any, state: _HostState) -> int:
    """How many cancellations are requested of ``host`` and not taken back (asyncio's ``cancelling()``)."""
    if isinstance(host, greenlet):
        return state.cancels + getattr(host, "_num_cancels_requested", 0)
    return int(host.cancelling())


def _check_deadline(deadline: float) -> float:
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        raise TypeError(f"deadline must be a loop time (a number, math.inf for none), got {type(deadline).__name__}")
    if math.isnan(deadline):
        raise ValueError("deadline must not be NaN")
    return float(deadline)


def _check_shield(shield: bool) -> bool:
    if not isinstance(shield, bool):
        raise TypeError(f"shield must be True or False, got {shield!r}")
    return shield


def _check_seconds(seconds: float | None) -> float:
    """A relative timeout: a non-negative number of seconds; None (as everywhere in treadle) means none."""
    checked = check_timeout(seconds, "seconds")
    return math.inf if checked is None else checked


def _now() -> float:
    return current_loop().time()


class CancelScope:
    """A region of code that can be cancelled, by ``cancel()`` or when its deadline passes.

    ``with CancelScope(deadline=..., shield=...) as scope:`` in green and
    async code alike.  When the scope is cancelled, the task running in it
    gets ``asyncio.CancelledError`` at its next switch point; if that error
    reaches the end of the ``with`` block, the scope swallows it and sets
    ``cancelled_caught``.  ``deadline`` is a loop time (``loop.time()``);
    ``math.inf`` means none.  ``shield=True`` protects the block from the
    cancellation of the scopes around it until it is left.

    A scope is entered once, by one task, and must be left in that task.
    Not thread-safe: cancel it from the loop's thread (``from_thread.run_sync``
    leads there).
    """

    __slots__ = (
        "_deadline",
        "_relative",
        "_shield",
        "_state",
        "_host",
        "_host_state",
        "_parent",
        "_loop",
        "_hub",
        "_timer",
        "_cancel_called",
        "_delivered",
        "_cancelling",
        "_cancelled_caught",
    )

    def __init__(self, *, deadline: float = math.inf, shield: bool = False) -> None:
        self._deadline = _check_deadline(deadline)
        self._relative: float | None = None  # seconds from entry, for move_on_after/fail_after
        self._shield = _check_shield(shield)
        self._state = _NEW
        self._host: Any = None
        self._host_state: _HostState | None = None
        self._parent: CancelScope | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hub: Hub | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._cancel_called = False
        self._delivered = False
        self._cancelling = 0
        self._cancelled_caught = False

    def __repr__(self) -> str:
        state = ("new", "active", "exited")[self._state]
        parts = [state]
        if self._deadline != math.inf:
            parts.append(f"deadline={self._deadline:.3f}")
        elif self._relative is not None:
            parts.append(f"after {self._relative:g}s")
        if self._shield:
            parts.append("shielded")
        if self._cancel_called:
            parts.append("cancel called")
        return f"<treadle.CancelScope {', '.join(parts)}>"

    # -- properties ----------------------------------------------------------------

    @property
    def deadline(self) -> float:
        """The loop time at which the scope cancels itself (``math.inf``: never); settable."""
        if self._state == _NEW and self._relative is not None:
            return _now() + self._relative  # what it would be if entered now
        return self._deadline

    @deadline.setter
    def deadline(self, value: float) -> None:
        self._deadline = _check_deadline(value)
        self._relative = None
        if self._state == _ACTIVE:
            self._arm_timer()

    @property
    def shield(self) -> bool:
        """True while the scope holds back the cancellation of the scopes around it; settable."""
        return self._shield

    @shield.setter
    def shield(self, value: bool) -> None:
        was, self._shield = self._shield, _check_shield(value)
        if was and not value and self._state == _ACTIVE:
            self._deliver_pending_outside(self)

    @property
    def cancel_called(self) -> bool:
        """True once ``cancel()`` was called or the deadline passed."""
        return self._cancel_called

    @property
    def cancelled_caught(self) -> bool:
        """True if the scope swallowed its own cancellation at its exit."""
        return self._cancelled_caught

    # -- entering and leaving ---------------------------------------------------------

    def __enter__(self) -> CancelScope:
        if self._state != _NEW:
            raise RuntimeError(f"{self!r} was already entered: a cancel scope can be used only once")
        host = _current_host()
        if isinstance(host, greenlet):
            self._hub = hub = get_hub()
            self._loop = hub.loop
        else:
            self._loop = host.get_loop()
        state = _hosts.get(host)
        if state is None:
            state = _hosts[host] = _HostState()
        self._host = host
        self._host_state = state
        self._parent = state.innermost
        state.innermost = self
        self._cancelling = _cancelling(host, state)
        self._state = _ACTIVE
        if self._relative is not None:
            self._deadline = self._loop.time() + self._relative
        if self._cancel_called:
            self._deliver()
        elif self._deadline != math.inf:
            self._arm_timer()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        host, state = self._host, self._host_state
        if self._state != _ACTIVE or state is None:
            raise RuntimeError(f"{self!r} is not active: it cannot be left")
        if state.innermost is not self:
            raise RuntimeError(f"{self!r} was left before the scope inside it ({state.innermost!r}): scopes must nest")
        if _current_host() is not host:
            raise RuntimeError(f"{self!r} was entered by {host!r} and must be left by it")
        self._state = _EXITED
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        state.innermost = self._parent
        swallow = False
        if self._delivered:
            if isinstance(host, greenlet):
                state.cancels -= 1
                if state.cancels == 0:
                    self._withdraw_green()
            else:
                host.uncancel()
            swallow = (
                exc_type is not None
                and issubclass(exc_type, asyncio.CancelledError)
                and _cancelling(host, state) <= self._cancelling
            )
        if state.innermost is None:
            del _hosts[host]
        elif self._shield:
            self._deliver_pending_outside(self)
        self._host = self._host_state = None
        if swallow:
            self._cancelled_caught = True
            self._on_caught(exc)
            return True
        return False

    def _on_caught(self, exc: BaseException | None) -> None:
        """Called when the scope swallows its own cancellation (fail_after raises here)."""

    # -- cancelling --------------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel the scope: the task in it gets ``CancelledError`` at its next switch point.

        Not a switch point; idempotent; a scope not yet entered is cancelled as
        soon as it is entered, and one already left is not affected.
        """
        if self._cancel_called:
            return
        self._cancel_called = True
        if self._state == _ACTIVE:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._deliver()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._cancel_called or self._deadline == math.inf:
            return
        assert self._loop is not None
        if self._deadline <= self._loop.time():
            # Already past: cancelled now, as by cancel(), so that the first
            # switch point raises (a timer would fire after the ready callbacks,
            # so a sleep(0) would get through).
            self._expire()
            return
        self._timer = self._loop.call_at(self._deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if not self._cancel_called:
            self._cancel_called = True
            self._deliver()

    def _shielded_from_here(self) -> bool:
        """True if a shield inside this scope (not this scope's own) holds back its cancellation."""
        state = self._host_state
        scope = state.innermost if state is not None else None
        while scope is not None and scope is not self:
            if scope._shield:
                return True
            scope = scope._parent
        return False

    def _deliver(self) -> None:
        """Cancel the host now (or once it is suspended), unless a shield inside holds it back."""
        if self._state != _ACTIVE or self._delivered or self._shielded_from_here():
            return
        host = self._host
        if host is getcurrent() or host is asyncio.current_task(self._loop):
            # Never cancel a running task: an asyncio task because on Python
            # < 3.13 uncancel() could not take back the flag, either kind
            # because a shield it enters before its next switch point must
            # hold this back.  Deliver once it is suspended.
            assert self._loop is not None
            self._loop.call_soon(self._deliver_later)
        elif isinstance(host, greenlet):
            state = self._host_state
            assert state is not None and self._hub is not None
            self._delivered = True
            state.cancels += 1
            if host not in self._hub.pending:
                # One parked CancelledError stands for every scope that cancels
                # before the host next waits, as one Task.cancel() does.
                state.parked = asyncio.CancelledError(f"cancelled by {self!r}")
                interrupt(self._hub, host, state.parked)
        else:
            self._delivered = True
            host.cancel(f"cancelled by {self!r}")

    def _deliver_later(self) -> None:
        if self._state == _ACTIVE and not self._delivered and self._cancel_called:
            self._deliver()

    def _withdraw_green(self) -> None:
        """Nobody wants the host cancelled any more: take back a CancelledError still parked for it."""
        hub, host, state = self._hub, self._host, self._host_state
        assert hub is not None and state is not None
        if state.parked is not None and hub.pending.get(host) is state.parked:
            del hub.pending[host]
        state.parked = None

    @staticmethod
    def _deliver_pending_outside(scope: CancelScope) -> None:
        """A shield was left or lowered: deliver the cancelled scopes it held back, up to the next shield."""
        outer = scope._parent
        while outer is not None:
            if outer._cancel_called and not outer._delivered:
                outer._deliver()
            if outer._shield:
                break
            outer = outer._parent


# -- timeouts ----------------------------------------------------------------------------------------


class _FailScope(CancelScope):
    """A scope that turns its own cancellation into ``TimeoutError``."""

    __slots__ = ()

    def _on_caught(self, exc: BaseException | None) -> None:
        raise TimeoutError(f"the block did not finish before its deadline ({self!r})") from exc


def move_on_at(deadline: float, *, shield: bool = False) -> CancelScope:
    """A scope cancelled at loop time ``deadline``; the block is abandoned silently (check ``cancelled_caught``)."""
    return CancelScope(deadline=deadline, shield=shield)


def move_on_after(seconds: float | None, *, shield: bool = False) -> CancelScope:
    """A scope cancelled ``seconds`` after it is entered (None: never); the block is abandoned silently."""
    scope = CancelScope(shield=shield)
    scope._relative = _check_seconds(seconds)
    return scope


def fail_at(deadline: float, *, shield: bool = False) -> CancelScope:
    """A scope cancelled at loop time ``deadline``; then ``TimeoutError`` is raised at its exit."""
    return _FailScope(deadline=deadline, shield=shield)


def fail_after(seconds: float | None, *, shield: bool = False) -> CancelScope:
    """A scope cancelled ``seconds`` after it is entered (None: never); then ``TimeoutError`` is raised at its exit."""
    scope = _FailScope(shield=shield)
    scope._relative = _check_seconds(seconds)
    return scope


_NO_VALUE: Any = object()


def with_timeout(seconds: float | None, fn: Callable[..., Any], /, *args: Any, timeout_value: Any = _NO_VALUE) -> Any:
    """Call ``fn(*args)``, giving up after ``seconds`` (None: never): ``TimeoutError``, or ``timeout_value`` if given.

    In green code this blocks and returns the result (``fn`` may be a plain
    function, or a coroutine function, whose coroutine is awaited).  In async
    code it returns an awaitable: ``await with_timeout(5, fetch, url)``, with
    ``fn`` a coroutine function or a function returning an awaitable.
    """
    seconds = _check_seconds(seconds)
    if not callable(fn):
        raise TypeError(f"with_timeout() needs a callable, got {fn!r}")
    if in_async():
        return _with_timeout_async(seconds, fn, args, timeout_value)
    scope = fail_after(seconds)
    try:
        with scope:
            result = fn(*args)
            if asyncio.iscoroutine(result) or asyncio.isfuture(result):
                result = await_(result)
            return result
    except TimeoutError:
        if timeout_value is _NO_VALUE or not scope.cancelled_caught:
            raise
        return timeout_value


async def _with_timeout_async(seconds: float, fn: Callable[..., Any], args: tuple[Any, ...], timeout_value: Any) -> Any:
    scope = fail_after(seconds)
    try:
        with scope:
            result = fn(*args)
            if not hasattr(result, "__await__"):
                raise TypeError(
                    f"with_timeout() in async code needs a coroutine function (or one returning an awaitable), "
                    f"but {getattr(fn, '__qualname__', fn)!r} returned {type(result).__name__}: "
                    "run blocking code in a green task or with treadle.to_thread"
                )
            return await result
    except TimeoutError:
        if timeout_value is _NO_VALUE or not scope.cancelled_caught:
            raise
        return timeout_value


def current_effective_deadline() -> float:
    """The earliest deadline of the scopes the current task is in, up to the first shield; ``math.inf`` if none."""
    state = _hosts.get(_current_host())
    deadline = math.inf
    scope = state.innermost if state is not None else None
    while scope is not None:
        if scope._cancel_called:
            return -math.inf
        deadline = min(deadline, scope._deadline)
        if scope._shield:
            break
        scope = scope._parent
    return deadline

"""Green ``select.select``, ``select.poll`` and a green ``selectors`` selector.

Owns: cooperative versions of the readiness APIs.  Each asks the kernel first
without waiting (the original call with a zero timeout); only if nothing is
ready does the green task register the descriptors with the loop and switch
to the hub until one is ready or the timeout passes, then ask again.

Never: blocks the loop's thread, or leaves a registration behind after the
call returns.  A descriptor that the loop itself watches (a transport's
socket) must not be passed here: the loop has one reader and one writer per
descriptor, and this call would take its place until it returns.
"""

from __future__ import annotations

import math
import select as _stdselect
import selectors as _stdselectors
from collections.abc import Iterable
from typing import Any

from .._core.poller import fileobj_to_fd as fd_of
from ..green.hub import get_hub

__all__ = ["GreenSelector", "poll", "select"]

_select = _stdselect.select
_poll = _stdselect.poll
_POLLIN = _stdselect.POLLIN | _stdselect.POLLPRI
_POLLOUT = _stdselect.POLLOUT


def _wait_any(readers: Iterable[int], writers: Iterable[int], timeout: float | None, what: str) -> None:
    """Switch to the hub until one of the descriptors is ready or ``timeout`` (s) passes."""
    get_hub().fdwaits.wait(list(dict.fromkeys(readers)), list(dict.fromkeys(writers)), timeout, what)


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a float or None")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError("timeout must be non-negative")
    return float(timeout)


def select(rlist: Any, wlist: Any, xlist: Any, timeout: Any = None) -> tuple[list[Any], list[Any], list[Any]]:
    """``select.select`` that waits on the hub."""
    timeout = _check_timeout(timeout)
    # The lists as given to the first (non-waiting) call, as the standard one
    # sees them; only iterators are turned into lists first, to be read twice.
    rlist, wlist, xlist = (x if isinstance(x, (list, tuple)) else list(x) for x in (rlist, wlist, xlist))
    ready = _select(rlist, wlist, xlist, 0)
    if ready[0] or ready[1] or ready[2] or timeout == 0:
        return ready
    _wait_any((fd_of(f) for f in list(rlist) + list(xlist)), (fd_of(f) for f in wlist), timeout, "select()")
    return _select(rlist, wlist, xlist, 0)


class _GreenPoll:
    """A ``select.poll()`` object whose ``poll`` waits on the hub (timeout in milliseconds)."""

    __slots__ = ("_poll", "_fds")
    _poll: Any
    _fds: dict[int, int]

    def __new__(cls, *args: Any, **kwargs: Any) -> _GreenPoll:
        # As the standard type: instances come from select.poll() only.
        raise TypeError(f"cannot create '{cls.__module__}.{cls.__qualname__}' instances")

    @classmethod
    def _make(cls) -> _GreenPoll:
        self = object.__new__(cls)
        self._poll = _poll()
        self._fds = {}
        return self

    def register(self, fd: Any, eventmask: int = _POLLIN | _POLLOUT) -> None:
        fd = fd_of(fd)
        self._poll.register(fd, eventmask)
        self._fds[fd] = eventmask

    def modify(self, fd: Any, eventmask: int) -> None:
        fd = fd_of(fd)
        self._poll.modify(fd, eventmask)
        self._fds[fd] = eventmask

    def unregister(self, fd: Any) -> None:
        fd = fd_of(fd)
        self._poll.unregister(fd)
        del self._fds[fd]

    def poll(self, timeout: Any = None) -> list[tuple[int, int]]:
        if timeout is not None:
            if not isinstance(timeout, (int, float)):
                raise TypeError("timeout must be an integer or None")
            if timeout < 0:
                timeout = None
        ready = self._poll.poll(0)
        if ready or timeout == 0:
            return ready  # type: ignore[no-any-return]
        readers = [fd for fd, mask in self._fds.items() if mask & _POLLIN]
        writers = [fd for fd, mask in self._fds.items() if mask & _POLLOUT]
        _wait_any(readers, writers, None if timeout is None else timeout / 1000.0, "poll()")
        return self._poll.poll(0)  # type: ignore[no-any-return]


def poll() -> _GreenPoll:
    """``select.poll()``: a polling object whose ``poll`` waits on the hub."""
    return _GreenPoll._make()


class GreenSelector(_stdselectors.PollSelector):
    """``selectors.PollSelector`` whose ``select`` waits on the hub (the patched ``DefaultSelector``)."""

    def select(self, timeout: float | None = None) -> list[tuple[_stdselectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        keys = list(self.get_map().values())
        readers = [k.fd for k in keys if k.events & _stdselectors.EVENT_READ]
        writers = [k.fd for k in keys if k.events & _stdselectors.EVENT_WRITE]
        if readers or writers:
            _wait_any(readers, writers, timeout, "selector.select()")
        elif timeout is not None:
            from ..green.bridge import sleep

            sleep(timeout)
        return super().select(0)

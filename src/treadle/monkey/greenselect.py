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
from collections.abc import Iterable, Mapping
from typing import Any

from .._core.poller import fileobj_to_fd as fd_of
from ..green.hub import Waiter, get_hub

__all__ = ["GreenSelector", "poll", "select"]

_select = _stdselect.select
_poll = _stdselect.poll
_POLLIN = _stdselect.POLLIN | _stdselect.POLLPRI
_POLLOUT = _stdselect.POLLOUT


def _wait_any(readers: Iterable[int], writers: Iterable[int], timeout: float | None, what: str) -> None:
    """Switch to the hub until one of the descriptors is ready or ``timeout`` (s) passes."""
    loop = get_hub().loop
    waiter = Waiter()
    readers = list(dict.fromkeys(readers))
    writers = list(dict.fromkeys(writers))
    added_r: list[int] = []
    added_w: list[int] = []
    timer = None
    try:
        for fd in readers:
            loop._add_reader(fd, waiter.switch)
            added_r.append(fd)
        for fd in writers:
            loop._add_writer(fd, waiter.switch)
            added_w.append(fd)
        if timeout is not None:
            timer = loop.call_later(timeout, waiter.switch)
        waiter.wait(what)
    finally:
        if timer is not None:
            timer.cancel()
        if not loop.is_closed():
            for fd in added_r:
                loop._remove_reader(fd)
            for fd in added_w:
                loop._remove_writer(fd)


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a float or None")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError("timeout must be non-negative")
    return float(timeout)


def select(
    rlist: Iterable[Any], wlist: Iterable[Any], xlist: Iterable[Any], timeout: Any = None
) -> tuple[list[Any], list[Any], list[Any]]:
    """``select.select`` that waits on the hub."""
    timeout = _check_timeout(timeout)
    rlist, wlist, xlist = list(rlist), list(wlist), list(xlist)
    ready = _select(rlist, wlist, xlist, 0)
    if ready[0] or ready[1] or ready[2] or timeout == 0:
        return ready
    _wait_any((fd_of(f) for f in rlist + xlist), (fd_of(f) for f in wlist), timeout, "select()")
    return _select(rlist, wlist, xlist, 0)


class poll:  # noqa: N801 - the standard name
    """``select.poll()`` whose ``poll`` waits on the hub (timeout in milliseconds)."""

    def __init__(self) -> None:
        self._poll = _poll()
        self._fds: dict[int, int] = {}

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
            return ready
        readers = [fd for fd, mask in self._fds.items() if mask & _POLLIN]
        writers = [fd for fd, mask in self._fds.items() if mask & _POLLOUT]
        _wait_any(readers, writers, None if timeout is None else timeout / 1000.0, "poll()")
        return self._poll.poll(0)


class GreenSelector(_stdselectors.BaseSelector):
    """A ``selectors`` selector whose ``select`` waits on the hub (the patched ``DefaultSelector``)."""

    def __init__(self) -> None:
        self._keys: dict[int, _stdselectors.SelectorKey] = {}
        self._poll = _poll()

    def register(self, fileobj: Any, events: int, data: Any = None) -> _stdselectors.SelectorKey:
        if not events or events & ~(_stdselectors.EVENT_READ | _stdselectors.EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")
        fd = fd_of(fileobj)
        if fd in self._keys:
            raise KeyError(f"{fileobj!r} (FD {fd}) is already registered")
        key = _stdselectors.SelectorKey(fileobj, fd, events, data)
        mask = (_POLLIN if events & _stdselectors.EVENT_READ else 0) | (
            _POLLOUT if events & _stdselectors.EVENT_WRITE else 0
        )
        self._poll.register(fd, mask)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> _stdselectors.SelectorKey:
        fd = self._fd_for(fileobj)
        try:
            key = self._keys.pop(fd)
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        try:
            self._poll.unregister(fd)
        except (KeyError, OSError):
            pass
        return key

    def _fd_for(self, fileobj: Any) -> int:
        try:
            return fd_of(fileobj)
        except ValueError:
            for key in self._keys.values():
                if key.fileobj is fileobj:
                    return key.fd
            raise

    def select(self, timeout: float | None = None) -> list[tuple[_stdselectors.SelectorKey, int]]:
        if timeout is not None:
            timeout = max(timeout, 0.0)
        ready = self._poll.poll(0)
        if not ready and timeout != 0 and self._keys:
            readers = [k.fd for k in self._keys.values() if k.events & _stdselectors.EVENT_READ]
            writers = [k.fd for k in self._keys.values() if k.events & _stdselectors.EVENT_WRITE]
            _wait_any(readers, writers, timeout, "selector.select()")
            ready = self._poll.poll(0)
        elif not ready and timeout != 0 and timeout is not None:
            from ..green.bridge import sleep

            sleep(timeout)
        result = []
        for fd, mask in ready:
            key = self._keys.get(fd)
            if key is None:
                continue
            events = 0
            if mask & (_POLLIN | _stdselect.POLLHUP | _stdselect.POLLERR):
                events |= _stdselectors.EVENT_READ
            if mask & (_POLLOUT | _stdselect.POLLHUP | _stdselect.POLLERR):
                events |= _stdselectors.EVENT_WRITE
            events &= key.events
            if events:
                result.append((key, events))
        return result

    def get_key(self, fileobj: Any) -> _stdselectors.SelectorKey:
        try:
            return self._keys[self._fd_for(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None

    def get_map(self) -> Mapping[Any, _stdselectors.SelectorKey]:
        return dict(self._keys)

    def close(self) -> None:
        self._keys.clear()

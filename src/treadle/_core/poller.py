"""The poller: Linux epoll, and which callback waits on which file descriptor.

Owns: the epoll object and the map from a file descriptor to its reader and
writer handles (at most one of each, as in asyncio).

Never: runs a callback.  ``poll`` only appends the handles of ready descriptors
to the ready queue that the loop passes in; the loop runs them.  It never
closes a descriptor it did not create, and it never keeps a descriptor that was
closed behind its back registered (``EBADF``/``ENOENT`` on modify are taken as
"already gone"; an event from a registration that outlived its descriptor
number, because a dup kept the file open, moves the poller to a new epoll
instance).  A handle that replaces another tells the kernel again (``_rearm``):
the green sockets keep registrations between waits, and the number may name
another file by then.

Discussion: epoll is level-triggered here, like asyncio's selector, so a
callback that reads only part of the available data is called again on the
next iteration.  Errors and hang-ups (``EPOLLERR``/``EPOLLHUP``) wake both the
reader and the writer, so each gets to see the error from its own system call.
"""

from __future__ import annotations

import select
import selectors
from collections import deque
from typing import Any

from .._accel import is_extension_file
from .handles import Handle

__all__ = ["Poller", "fileobj_to_fd"]

_epoll = select.epoll  # bound now: the monkey patcher removes select.epoll
_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_READ_MASK = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP | select.EPOLLRDHUP
_WRITE_MASK = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP

# Compiled, this module is an extension module and poll() calls epoll_wait
# itself (the C helpers in poller.pxd); as Python, select.epoll.poll does.
_COMPILED = is_extension_file(__file__)
# deque.append, unbound: a call of it looks nothing up, where ready.append(x)
# looks the method up and makes a bound method first, on every call.
_append = deque.append


def fileobj_to_fd(fileobj: Any) -> int:
    """The descriptor of an int or an object with ``fileno()``; ValueError if invalid."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class _Entry:
    __slots__ = ("reader", "writer", "mask")

    def __init__(self) -> None:
        self.reader: Handle | None = None
        self.writer: Handle | None = None
        self.mask = 0


class Poller:
    __slots__ = ("_epoll", "_epfd", "_events", "_fds", "_maxevents", "polls")

    def __init__(self, maxevents: int = 1024) -> None:
        """``maxevents``: how many events one poll takes at first; it doubles whenever a poll fills it."""
        if maxevents < 1:
            raise ValueError(f"maxevents must be at least 1, got {maxevents}")
        self._epoll: select.epoll | None = _epoll()
        self._epfd = self._epoll.fileno()
        self._fds: dict[int, _Entry] = {}
        self._maxevents = maxevents
        # Compiled: the array that epoll_wait fills (struct epoll_event[_maxevents]).
        self._events: bytearray | None = _c_events_buffer(self._maxevents) if _COMPILED else None  # type: ignore[name-defined]  # noqa: F821
        # How many polls so far: a wait that began after the latest poll knows
        # that what that poll reported may predate it (sockops' kept readers).
        self.polls = 0

    def fileno(self) -> int:
        assert self._epoll is not None
        return self._epoll.fileno()

    def renew(self) -> Poller:
        """This poller on a new epoll instance, with the same registrations; the old one is closed.

        For a forked child, whose epoll descriptor is shared with the parent:
        the old instance is closed, never modified.
        """
        self._rebuild()
        return self

    def _rebuild(self) -> None:
        epoll = _epoll()
        for fd, entry in list(self._fds.items()):
            try:
                epoll.register(fd, entry.mask)
            except OSError:
                del self._fds[fd]  # closed in the meantime
        if self._epoll is not None:
            self._epoll.close()
        self._epoll = epoll
        self._epfd = epoll.fileno()

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
            self._epfd = -1
        self._fds.clear()

    def __len__(self) -> int:
        return len(self._fds)

    def get(self, fd: int) -> tuple[Handle | None, Handle | None]:
        entry = self._fds.get(fd)
        if entry is None:
            return None, None
        return entry.reader, entry.writer

    def registrations(self) -> list[tuple[int, Handle | None, Handle | None]]:
        """Every registered descriptor with its reader and writer handles."""
        return [(fd, entry.reader, entry.writer) for fd, entry in self._fds.items()]

    def get_key(self, fd: int) -> selectors.SelectorKey:
        """A ``selectors``-style key for ``fd`` (KeyError if not registered).

        Lets code written for asyncio's selector loop (transport reprs,
        diagnostics) ask what a descriptor is polled for.
        """
        entry = self._fds[fd]
        events = (selectors.EVENT_READ if entry.reader is not None else 0) | (
            selectors.EVENT_WRITE if entry.writer is not None else 0
        )
        return selectors.SelectorKey(fd, fd, events, (entry.reader, entry.writer))

    def _update(self, fd: int, entry: _Entry, mask: int) -> None:
        assert self._epoll is not None
        old = entry.mask
        if mask == old:
            return
        if old == 0:
            # Raises for a closed descriptor (EBADF) or a regular file (EPERM)
            # before any state changes, so the caller sees the error.
            self._epoll.register(fd, mask)
            self._fds[fd] = entry
        elif mask == 0:
            del self._fds[fd]
            try:
                self._epoll.unregister(fd)
            except OSError:
                pass  # closed behind our back: the kernel already dropped it
        else:
            try:
                self._epoll.modify(fd, mask)
            except FileNotFoundError:
                self._epoll.register(fd, mask)
        entry.mask = mask

    def _rearm(self, fd: int, entry: _Entry, mask: int) -> None:
        """Tell the kernel ``mask`` for ``fd`` even if the entry already has it.

        For a handle that replaces another one: the registration may have been
        kept for a socket that was closed since (without ``close()``, by the
        garbage collector), and ``fd`` may now be another file, which the
        kernel has never heard of.  ``modify`` fails on it (ENOENT): register.
        """
        assert self._epoll is not None
        try:
            self._epoll.modify(fd, mask)
        except FileNotFoundError:
            self._epoll.register(fd, mask)
        self._fds[fd] = entry
        entry.mask = mask

    def set_reader(self, fd: int, handle: Handle) -> None:
        entry = self._fds.get(fd)
        if entry is None:
            entry = _Entry()
            self._update(fd, entry, _EPOLLIN)
        elif entry.reader is not None:
            self._rearm(fd, entry, entry.mask | _EPOLLIN)
        else:
            self._update(fd, entry, entry.mask | _EPOLLIN)
        old, entry.reader = entry.reader, handle
        if old is not None:
            old.cancel()

    def set_writer(self, fd: int, handle: Handle) -> None:
        entry = self._fds.get(fd)
        if entry is None:
            entry = _Entry()
            self._update(fd, entry, _EPOLLOUT)
        elif entry.writer is not None:
            self._rearm(fd, entry, entry.mask | _EPOLLOUT)
        else:
            self._update(fd, entry, entry.mask | _EPOLLOUT)
        old, entry.writer = entry.writer, handle
        if old is not None:
            old.cancel()

    def remove_reader(self, fd: int) -> bool:
        entry = self._fds.get(fd)
        if entry is None or entry.reader is None:
            return False
        handle, entry.reader = entry.reader, None
        self._update(fd, entry, entry.mask & ~_EPOLLIN)
        handle.cancel()
        return True

    def remove_writer(self, fd: int) -> bool:
        entry = self._fds.get(fd)
        if entry is None or entry.writer is None:
            return False
        handle, entry.writer = entry.writer, None
        self._update(fd, entry, entry.mask & ~_EPOLLOUT)
        handle.cancel()
        return True

    def poll(self, timeout: float, ready: deque[Any]) -> int:
        """Wait up to ``timeout`` seconds (-1: forever); queue the ready handles.

        Returns the number of events.  A signal that interrupts the wait (its
        Python handler has run by then) counts as a poll with no events.
        ValueError once the poller is closed.
        """
        if self._epoll is None:
            raise ValueError("poll() on a closed Poller")
        self.polls += 1
        stale = False
        if _COMPILED:
            # Straight into this poller's array: no list of tuples per poll,
            # and the GIL is only released when the poll may wait.
            events = self._events
            n = _c_epoll_wait(self._epfd, events, timeout)  # type: ignore[name-defined]  # noqa: F821
            for i in range(n):
                if not self._queue(_c_event_fd(events, i), _c_event_mask(events, i), ready):  # type: ignore[name-defined]  # noqa: F821
                    stale = True
        else:
            try:
                polled = self._epoll.poll(timeout, self._maxevents)
            except InterruptedError:
                return 0
            for fd, ev in polled:
                if not self._queue(fd, ev, ready):
                    stale = True
            n = len(polled)
        if n == self._maxevents:
            self._maxevents *= 2
            if _COMPILED:
                self._events = _c_events_buffer(self._maxevents)  # type: ignore[name-defined]  # noqa: F821
        if stale:
            # An event for a descriptor this poller no longer watches: its
            # unregistration failed because the number was closed while
            # another descriptor (a dup, a forked child's copy) kept the file
            # open, and epoll keeps a registration for as long as the file
            # lives.  It cannot be removed by number any more, and as the
            # poll is level-triggered it would wake every iteration: move to
            # a new epoll instance with only the live registrations.
            self._rebuild()
        return n

    def _queue(self, fd: int, ev: int, ready: deque[Any]) -> bool:
        """Queue the handles that event mask ``ev`` on ``fd`` wakes; False if nothing watches ``fd``."""
        entry = self._fds.get(fd)
        if entry is None:
            return False
        if ev & _READ_MASK:
            reader = entry.reader
            if reader is not None:
                if reader._cancelled:
                    self.remove_reader(fd)
                else:
                    _append(ready, reader)
        if ev & _WRITE_MASK:
            writer = entry.writer
            if writer is not None:
                if writer._cancelled:
                    self.remove_writer(fd)
                else:
                    _append(ready, writer)
        return True

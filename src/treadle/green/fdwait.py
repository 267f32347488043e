"""Green tasks waiting on descriptors: many waiters per descriptor over the loop's one slot.

The loop keeps one reader and one writer per descriptor (asyncio's rule).
Green code needs more: two tasks may ``select()`` on the same pipe, or one
task waits in ``select()`` while another reads the socket.  An
:class:`FdWaits` (one per hub) holds, per descriptor and direction, the list
of green waiters, registers the loop's slot while the list is not empty, and
wakes every waiter of the list when the descriptor is ready.  Each waiter
then retries its own non-blocking call; the ones that lose the race wait
again.

Owns: the registrations that green waits make with the loop, and
:meth:`FdWaits.forget`, which a closing socket calls so that its waiters get
the error at once and no registration outlives the descriptor.

Never: reads or writes a descriptor, or wakes a waiter twice (every wait goes
through a :class:`~treadle.green.hub.Waiter`).  A descriptor watched by a
transport or by ``loop.add_reader`` must not be waited on here: the loop's
slot is taken over for the time of the wait.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .hub import Waiter

if TYPE_CHECKING:
    from .._core import EventLoop
    from .._core.handles import Handle

__all__ = ["FdWaits"]


class _TimedOut:
    """Sent to a waiter whose timeout passed (when no exception was asked for)."""


class _Watch:
    """The green waiters of one descriptor, and the loop handles registered for them."""

    __slots__ = ("fd", "readers", "writers", "read_handle", "write_handle")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.readers: list[Waiter] = []
        self.writers: list[Waiter] = []
        self.read_handle: Handle | None = None
        self.write_handle: Handle | None = None


class FdWaits:
    """The descriptor waits of one hub's green tasks."""

    __slots__ = ("_loop", "_watches")

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop
        self._watches: dict[int, _Watch] = {}

    def wait(
        self,
        reads: list[int],
        writes: list[int],
        timeout: float | None,
        what: str,
        timeout_error: BaseException | None = None,
    ) -> bool:
        """Switch to the hub until one descriptor is ready; False when ``timeout`` (s) passed first.

        With ``timeout_error`` the timeout raises it instead of returning False.
        """
        loop = self._loop
        waiter = Waiter()
        joined: list[tuple[_Watch, bool]] = []
        timer = None
        try:
            for fd in reads:
                joined.append((self._join(fd, False, waiter), False))
            for fd in writes:
                joined.append((self._join(fd, True, waiter), True))
            if timeout is not None:
                if timeout_error is not None:
                    timer = loop.call_later(timeout, waiter.throw, timeout_error)
                else:
                    timer = loop.call_later(timeout, waiter.switch, _TimedOut)
            return waiter.wait(what) is not _TimedOut
        finally:
            if timer is not None:
                timer.cancel()
            for watch, write in joined:
                self._leave(watch, write, waiter)

    def waiting(self, fd: int) -> bool:
        """True if a green task waits on ``fd``."""
        return fd in self._watches

    def forget(self, fd: int, error: BaseException) -> None:
        """``fd`` is about to be closed: drop its registrations and raise ``error`` in its waiters."""
        watch = self._watches.pop(fd, None)
        if watch is None:
            return
        self._unregister(watch, False)
        self._unregister(watch, True)
        waiters = watch.readers + watch.writers
        watch.readers.clear()
        watch.writers.clear()
        for waiter in waiters:
            self._loop.call_soon(waiter.throw, error)

    # -- internals ----------------------------------------------------------------

    def _join(self, fd: int, write: bool, waiter: Waiter) -> _Watch:
        watch = self._watches.get(fd)
        if watch is None:
            watch = self._watches[fd] = _Watch(fd)
        waiters = watch.writers if write else watch.readers
        if not waiters:
            if write:
                watch.write_handle = self._loop._add_writer(fd, self._ready, watch, True)
            else:
                watch.read_handle = self._loop._add_reader(fd, self._ready, watch, False)
        waiters.append(waiter)
        return watch

    def _ready(self, watch: _Watch, write: bool) -> None:
        # Each woken waiter leaves the list itself (``wait``'s finally); a
        # copy, because a woken task runs before the next one is woken.
        for waiter in list(watch.writers if write else watch.readers):
            waiter.switch(None)

    def _leave(self, watch: _Watch, write: bool, waiter: Waiter) -> None:
        waiters = watch.writers if write else watch.readers
        try:
            waiters.remove(waiter)
        except ValueError:
            return  # forgotten (the descriptor was closed)
        if not waiters:
            self._unregister(watch, write)
            if not watch.readers and not watch.writers and self._watches.get(watch.fd) is watch:
                del self._watches[watch.fd]

    def _unregister(self, watch: _Watch, write: bool) -> None:
        handle = watch.write_handle if write else watch.read_handle
        if handle is None:
            return
        if write:
            watch.write_handle = None
        else:
            watch.read_handle = None
        loop = self._loop
        if loop.is_closed():
            return
        # Only if the slot is still ours (the loop's add_reader may have taken it).
        reader, writer = loop._poller.get(watch.fd)
        if (writer if write else reader) is handle:
            if write:
                loop._remove_writer(watch.fd)
            else:
                loop._remove_reader(watch.fd)

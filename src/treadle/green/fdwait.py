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

Discussion: kept registrations.  A green socket waits, is woken, reads, writes
and waits again: removing its descriptor from epoll after each wait and adding
it back before the next would cost two ``epoll_ctl`` calls per round trip.  So
a wait made for a socket (``owner``: the socket's ``_waits`` object, alive and
owning the descriptor until the socket is closed) keeps the loop's handle when
its last waiter leaves, as libev does.  The next wait of the same owner finds it
registered.  A kept registration ends when:

- it becomes ready with nobody waiting (``_ready`` drops it: no wake-up per
  iteration for a socket nobody reads);
- the socket is closed (``forget``, from the socket's ``close()``/``detach()``);
- another owner, or a raw descriptor wait, joins the descriptor: its number may
  name another file by now (the old socket collected without ``close()``), so
  the old registration is dropped and the new wait registers afresh.  The loop's
  ``add_reader``/``add_writer`` replacing it tells the kernel again too
  (``Poller._rearm``).

Kept registrations cannot wake any task, so the loop's stall check leaves them
out (``kept_count``, ``holds_idle``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .hub import Waiter

if TYPE_CHECKING:
    from .._core import EventLoop
    from .._core.handles import Handle

__all__ = ["FdWaits"]


class _TimedOut:
    """Sent to a waiter whose timeout passed (when no exception was asked for)."""


class _Watch:
    """The green waiters of one descriptor, and the loop handles registered for them."""

    __slots__ = ("fd", "readers", "writers", "read_handle", "write_handle", "owner", "kept")

    def __init__(self, fd: int, owner: object) -> None:
        self.fd = fd
        self.readers: list[Waiter] = []
        self.writers: list[Waiter] = []
        self.read_handle: Handle | None = None
        self.write_handle: Handle | None = None
        # The socket (its ``_waits`` object) whose waits may keep the
        # registrations between two waits; None for raw descriptors.
        self.owner = owner
        self.kept = False  # registered with no waiter: counted in FdWaits._kept


class FdWaits:
    """The descriptor waits of one hub's green tasks."""

    __slots__ = ("_loop", "_watches", "_kept")

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop
        self._watches: dict[int, _Watch] = {}
        self._kept = 0  # watches registered with the loop that no task waits on

    def wait(
        self,
        reads: list[int],
        writes: list[int],
        timeout: float | None,
        what: str,
        timeout_error: BaseException | None = None,
        owner: object = None,
    ) -> bool:
        """Switch to the hub until one descriptor is ready; False when ``timeout`` (s) passed first.

        With ``timeout_error`` the timeout raises it instead of returning False.
        ``owner``: the object that owns the descriptors for as long as it is
        alive (a green socket's ``_waits``); its registrations are kept between
        two of its waits (see the module's discussion).  None: a raw descriptor,
        registered for this wait only.
        """
        waiter = Waiter()
        joined: list[tuple[_Watch, bool]] = []
        timer = None
        try:
            for fd in reads:
                joined.append((self._join(fd, False, waiter, owner), False))
            for fd in writes:
                joined.append((self._join(fd, True, waiter, owner), True))
            timer = self._arm(waiter, timeout, timeout_error)
            return waiter.wait(what) is not _TimedOut
        finally:
            if timer is not None:
                timer.cancel()
            for watch, write in joined:
                self._leave(watch, write, waiter)

    def wait_one(
        self,
        fd: int,
        write: bool,
        timeout: float | None,
        what: str,
        timeout_error: BaseException | None = None,
        owner: object = None,
    ) -> bool:
        """:meth:`wait` for one descriptor, readable (writable if ``write``): a green socket's wait."""
        waiter = Waiter()
        watch = self._join(fd, write, waiter, owner)
        timer = None
        try:
            timer = self._arm(waiter, timeout, timeout_error)
            return waiter.wait(what) is not _TimedOut
        finally:
            if timer is not None:
                timer.cancel()
            self._leave(watch, write, waiter)

    def waiting(self, fd: int) -> bool:
        """True if a green task waits on ``fd``, or a registration is kept for it."""
        return fd in self._watches

    def kept_count(self) -> int:
        """How many descriptors stay registered with no task waiting on them (at most: see holds_idle)."""
        return self._kept

    def holds_idle(self, fd: int, handle: Handle) -> bool:
        """True if ``handle`` is one of this hub's registrations for ``fd`` that no task waits on."""
        watch = self._watches.get(fd)
        if watch is None:
            return False
        if handle is watch.read_handle:
            return not watch.readers
        if handle is watch.write_handle:
            return not watch.writers
        return False

    def forget(self, fd: int, error: BaseException) -> None:
        """``fd`` is about to be closed: drop its registrations and raise ``error`` in its waiters."""
        watch = self._watches.pop(fd, None)
        if watch is None:
            return
        self._set_kept(watch, False)
        self._unregister(watch, False)
        self._unregister(watch, True)
        waiters = watch.readers + watch.writers
        watch.readers.clear()
        watch.writers.clear()
        for waiter in waiters:
            self._loop.call_soon(waiter.throw, error)

    # -- internals ----------------------------------------------------------------

    def _arm(self, waiter: Waiter, timeout: float | None, timeout_error: BaseException | None) -> Any:
        """The timer that ends ``waiter``'s wait after ``timeout`` (raising ``timeout_error`` if given); None."""
        if timeout is None:
            return None
        if timeout_error is not None:
            return self._loop.call_later(timeout, waiter.throw, timeout_error)
        return self._loop.call_later(timeout, waiter.switch, _TimedOut)

    def _set_kept(self, watch: _Watch, kept: bool) -> None:
        if watch.kept != kept:
            watch.kept = kept
            self._kept += 1 if kept else -1

    def _join(self, fd: int, write: bool, waiter: Waiter, owner: object) -> _Watch:
        watch = self._watches.get(fd)
        if watch is None:
            watch = self._watches[fd] = _Watch(fd, owner)
        elif watch.owner is not owner or owner is None:
            # Registrations kept for another owner: this descriptor number may
            # name another file now (the old socket closed without close()).
            # Drop them; the wait below registers afresh.
            if not watch.readers:
                self._unregister(watch, False)
            if not watch.writers:
                self._unregister(watch, True)
            watch.owner = owner
        self._set_kept(watch, False)
        if write:
            handle = watch.write_handle
            if handle is None or handle._cancelled:
                watch.write_handle = self._loop._add_writer(fd, self._ready, watch, True)
            watch.writers.append(waiter)
        else:
            handle = watch.read_handle
            if handle is None or handle._cancelled:
                watch.read_handle = self._loop._add_reader(fd, self._ready, watch, False)
            watch.readers.append(waiter)
        return watch

    def _ready(self, watch: _Watch, write: bool) -> None:
        waiters = watch.writers if write else watch.readers
        if not waiters:
            # Ready with nobody waiting: a registration kept after the last
            # wait.  Now it costs a wake-up per iteration: drop it.
            self._unregister(watch, write)
            self._drop_if_unused(watch)
            return
        # Each woken waiter leaves the list itself (``wait``'s finally); a
        # copy, because a woken task runs before the next one is woken.
        for waiter in list(waiters):
            waiter.switch(None)

    def _leave(self, watch: _Watch, write: bool, waiter: Waiter) -> None:
        waiters = watch.writers if write else watch.readers
        try:
            waiters.remove(waiter)
        except ValueError:
            return  # forgotten (the descriptor was closed)
        if waiters:
            return
        if watch.owner is None or self._watches.get(watch.fd) is not watch:
            self._unregister(watch, write)
            self._drop_if_unused(watch)
        elif not watch.readers and not watch.writers:
            self._set_kept(watch, True)

    def _drop_if_unused(self, watch: _Watch) -> None:
        if watch.readers or watch.writers:
            return
        if watch.read_handle is None and watch.write_handle is None:
            self._set_kept(watch, False)
            if self._watches.get(watch.fd) is watch:
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

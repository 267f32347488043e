"""A green socket keeps its registration with the loop between two waits, and never a stale one.

A green socket that waits to read, is woken, reads and waits again (an echo
server's loop) keeps its descriptor registered with the epoll instance between
the two waits, instead of removing and adding it each time: two system calls
fewer per round trip.  What these tests hold to:

- a descriptor number reused by a new file, after its old socket was collected
  without ``close()``, is registered again by whoever waits on it next: a new
  green socket, a raw ``wait_readable``, or the loop's own ``add_reader``;
- a kept registration that becomes ready with nobody waiting is dropped (no
  wake-up per iteration for a socket nobody reads), and ``close()`` drops it;
- kept registrations do not hide a stall: a program that waits on nothing
  still gets ``NeverWokenError``.

Each test is a green ``main`` run by ``treadle.run``; the sockets are real
Unix socket pairs.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest

import treadle
import treadle.socket as gsocket
from treadle.green.hub import get_hub
from treadle.net.greensocket import wait_readable


def _recv_after_a_wait(sock: gsocket.socket, peer: gsocket.socket, data: bytes) -> None:
    """``sock.recv`` that has to wait: the peer sends only once the reader is parked."""
    treadle.spawn(peer.sendall, data)
    assert sock.recv(len(data)) == data


def _pair_with(fd: int) -> tuple[gsocket.socket, gsocket.socket]:
    """A new socket pair, the first of which has descriptor number ``fd`` (the lowest free one)."""
    a, b = gsocket.socketpair()
    if b.fileno() == fd:
        a, b = b, a
    assert a.fileno() == fd, "the freed descriptor number was not reused: the test would prove nothing"
    return a, b


def _registered(fd: int) -> tuple[Any, Any]:
    reader, writer = get_hub().loop._poller.get(fd)
    return reader, writer


def test_the_registration_is_kept_between_two_waits_of_one_socket() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        with a, b:
            _recv_after_a_wait(a, b, b"one")
            kept, _ = _registered(a.fileno())
            assert kept is not None
            assert get_hub().fdwaits.kept_count() == 1
            _recv_after_a_wait(a, b, b"two")
            assert _registered(a.fileno())[0] is kept  # the same registration served the second wait

    treadle.run(main)


@pytest.mark.parametrize("who", ["green socket", "raw wait_readable", "loop add_reader"])
def test_a_reused_descriptor_number_is_registered_afresh(who: str) -> None:
    # The old socket is collected without close() and its number reused by a
    # new file in the same turn of the green task, with no loop iteration in
    # between: the epoll registration died with the old file, and the wait on
    # the new one must not take the kept one for its own.
    def main() -> None:
        a, b = gsocket.socketpair()
        _recv_after_a_wait(a, b, b"x")
        fd = a.fileno()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            del a  # the last reference: the descriptor is closed without close()
            gc.collect()
        new, peer = _pair_with(fd)
        with new, peer:
            treadle.spawn(peer.sendall, b"y")
            if who == "green socket":
                new.settimeout(5)
                assert new.recv(1) == b"y"
            elif who == "raw wait_readable":
                wait_readable(fd, timeout=5)
                assert new.recv(1) == b"y"
            else:
                loop = get_hub().loop
                ready = loop.create_future()
                loop.add_reader(fd, lambda: ready.done() or ready.set_result(new.recv(1)))
                try:
                    assert treadle.await_(asyncio.wait_for(ready, 5)) == b"y"
                finally:
                    loop.remove_reader(fd)
        b.close()

    treadle.run(main)


def test_a_kept_registration_that_becomes_ready_with_nobody_waiting_is_dropped() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        with a, b:
            _recv_after_a_wait(a, b, b"x")
            b.sendall(b"unread")  # ready, and nobody reads
            treadle.sleep(0.05)
            assert _registered(a.fileno()) == (None, None)
            assert get_hub().fdwaits.kept_count() == 0
            assert a.recv(6) == b"unread"  # the data waited in the socket
            _recv_after_a_wait(a, b, b"again")  # and a new wait registers again

    treadle.run(main)


def test_close_drops_a_kept_registration() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        _recv_after_a_wait(a, b, b"x")
        fd = a.fileno()
        a.close()
        b.close()
        assert _registered(fd) == (None, None)
        assert get_hub().fdwaits.kept_count() == 0
        assert not get_hub().fdwaits.waiting(fd)

    treadle.run(main)


def test_kept_registrations_do_not_hide_a_stall() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        with a, b:
            _recv_after_a_wait(a, b, b"x")
            _recv_after_a_wait(b, a, b"y")
            assert get_hub().fdwaits.kept_count() == 2
            treadle.await_(asyncio.get_running_loop().create_future())  # nothing can ever complete it

    with pytest.raises(treadle.NeverWokenError):
        treadle.run(main)


def test_a_socket_wait_is_named_by_its_descriptor() -> None:
    """The stall report's "readable fd N" / "writable fd N", made once per socket, follow the descriptor."""

    def waits_named(sock: gsocket.socket, peer: gsocket.socket) -> None:
        reader = treadle.spawn(sock.recv, 1)
        treadle.sleep(0)  # the reader waits now
        assert f"readable fd {sock.fileno()}" in get_hub().waiters.values()
        peer.sendall(b"x")
        assert reader.get() == b"x"
        assert f"readable fd {sock.fileno()}" not in get_hub().waiters.values()

    def main() -> None:
        a, b = gsocket.socketpair()
        with b:
            waits_named(a, b)
            waits_named(a, b)  # the second wait of the same socket: the same name
            a.close()
            c, d = gsocket.socketpair()  # may reuse a's descriptor number
            with c, d:
                waits_named(c, d)
                waits_named(d, c)

    treadle.run(main)

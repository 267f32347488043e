"""The ``sock_*`` reads keep a socket's reader registered between waits, and never a stale one.

A ``sock_recv`` (or ``sock_recv_into``, ``sock_recvfrom``, ``sock_accept``)
that has to wait leaves its reader registered with epoll afterwards, for the
next read of the same socket object: two ``epoll_ctl`` calls fewer per read
that waits.  These tests hold it to the rest of asyncio's behaviour:

- a socket closed with ``sock.close()`` (which the loop does not see) whose
  descriptor number a new socket takes: the new socket's reads are registered
  afresh, and so are ``add_reader`` and a transport on it;
- ``add_reader``/``remove_reader`` see no reader of their own (``remove_reader``
  returns False, as asyncio's);
- a kept reader that fires with nobody reading is dropped;
- kept readers do not hide a stall, and a transport that took one over is
  counted as a reason to wait.

treadle only: stock asyncio removes its reader after each wait.  The sockets
are real Unix socket pairs.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import treadle
from treadle._core import new_event_loop


@pytest.fixture
def loop() -> Iterator[Any]:
    loop = new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


async def _recv_after_a_wait(loop: Any, sock: socket.socket, peer: socket.socket, data: bytes) -> None:
    """``sock_recv`` that has to wait: the peer sends once the read is parked."""
    reading = loop.create_task(loop.sock_recv(sock, len(data)))
    await asyncio.sleep(0)
    assert not reading.done()
    peer.send(data)
    assert await asyncio.wait_for(reading, 5) == data


def test_the_reader_is_kept_between_two_reads_of_one_socket(loop: Any) -> None:
    async def main() -> None:
        a, b = _pair()
        with a, b:
            await _recv_after_a_wait(loop, a, b, b"one")
            kept, _ = loop._poller.get(a.fileno())
            assert kept is not None
            await _recv_after_a_wait(loop, a, b, b"two")
            assert loop._poller.get(a.fileno())[0] is kept  # the same registration served the second read

    loop.run_until_complete(main())


@pytest.mark.parametrize("who", ["sock_recv", "add_reader", "transport"])
def test_a_descriptor_number_reused_after_close_is_registered_afresh(loop: Any, who: str) -> None:
    async def main() -> None:
        a, b = _pair()
        await _recv_after_a_wait(loop, a, b, b"x")
        fd = a.fileno()
        a.close()  # the loop does not see it: the kept reader stays behind
        b.close()
        new, peer = _pair()
        if peer.fileno() == fd:
            new, peer = peer, new
        assert new.fileno() == fd, "the freed descriptor number was not reused: the test would prove nothing"
        with new, peer:
            loop.call_later(0.01, peer.send, b"y")
            if who == "sock_recv":
                assert await asyncio.wait_for(loop.sock_recv(new, 1), 5) == b"y"
            elif who == "add_reader":
                ready = loop.create_future()
                loop.add_reader(fd, lambda: ready.done() or ready.set_result(new.recv(1)))
                try:
                    assert await asyncio.wait_for(ready, 5) == b"y"
                finally:
                    assert loop.remove_reader(fd) is True
            else:
                got = loop.create_future()

                class Proto(asyncio.Protocol):
                    def data_received(self, data: bytes) -> None:
                        got.set_result(data)

                transport, _ = await loop.create_connection(Proto, sock=new)
                try:
                    assert await asyncio.wait_for(got, 5) == b"y"
                finally:
                    transport.close()
                    await asyncio.sleep(0)

    loop.run_until_complete(main())


def test_add_reader_and_remove_reader_do_not_see_a_kept_reader(loop: Any) -> None:
    async def main() -> None:
        a, b = _pair()
        with a, b:
            await _recv_after_a_wait(loop, a, b, b"x")
            assert loop.remove_reader(a) is False  # no reader of the caller's, as on asyncio
            assert loop._poller.get(a.fileno()) == (None, None)
            fired = loop.create_future()
            loop.add_reader(a, lambda: fired.done() or fired.set_result(a.recv(1)))
            b.send(b"z")
            assert await asyncio.wait_for(fired, 5) == b"z"
            assert loop.remove_reader(a) is True
            await _recv_after_a_wait(loop, a, b, b"again")  # and sock_recv registers again

    loop.run_until_complete(main())


def test_a_kept_reader_that_fires_with_nobody_reading_is_dropped(loop: Any) -> None:
    async def main() -> None:
        a, b = _pair()
        with a, b:
            await _recv_after_a_wait(loop, a, b, b"x")
            b.send(b"unread")
            await asyncio.sleep(0.05)
            assert loop._poller.get(a.fileno()) == (None, None)
            assert loop._kept_idle == 0
            assert await loop.sock_recv(a, 6) == b"unread"

    loop.run_until_complete(main())


def test_kept_readers_do_not_hide_a_stall() -> None:
    def main() -> None:
        loop = asyncio.get_event_loop()
        a, b = _pair()
        with a, b:
            treadle.await_(_recv_after_a_wait(loop, a, b, b"x"))
            treadle.await_(_recv_after_a_wait(loop, b, a, b"y"))
            treadle.await_(loop.create_future())  # nothing can ever complete it

    with pytest.raises(treadle.NeverWokenError):
        treadle.run(main)


def test_a_transport_that_took_over_a_kept_reader_counts_as_a_reason_to_wait(loop: Any) -> None:
    async def main() -> None:
        a, b = _pair()
        with b:
            await _recv_after_a_wait(loop, a, b, b"x")
            before = loop._wanted_registrations()  # the wake-up pipe only: the kept reader is idle
            transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
            await asyncio.sleep(0)  # the transport starts reading
            assert loop._wanted_registrations() == before + 1
            transport.close()
            await asyncio.sleep(0)
        assert before == 1

    loop.run_until_complete(main())


def test_a_kept_reader_does_not_wake_a_read_for_readiness_the_last_read_took(loop: Any) -> None:
    # The task that a kept reader wakes resumes on the next iteration, after
    # that iteration's poll reported the socket readable again (its data not
    # read yet).  That report must not wake the task's next read: each read
    # that waits calls recv() once before and once after its one wait.
    class CountingSocket(socket.socket):
        would_block = 0

        def recv(self, n: int, flags: int = 0) -> bytes:
            try:
                return super().recv(n, flags)
            except BlockingIOError:
                self.would_block += 1
                raise

    a0, b0 = socket.socketpair()
    server, client = CountingSocket(fileno=a0.detach()), CountingSocket(fileno=b0.detach())
    server.setblocking(False)
    client.setblocking(False)
    rounds = 50

    async def serve() -> None:
        while data := await loop.sock_recv(server, 65536):
            await loop.sock_sendall(server, data)

    async def main() -> None:
        serving = loop.create_task(serve())
        for _ in range(rounds):
            await loop.sock_sendall(client, b"x" * 100)
            got = 0
            while got < 100:
                got += len(await loop.sock_recv(client, 65536))
        client.shutdown(socket.SHUT_WR)
        await asyncio.wait_for(serving, 5)

    with server, client:
        loop.run_until_complete(main())
        assert client.would_block == rounds  # one per echo (a woken read for nothing would make two)
        assert rounds <= server.would_block <= rounds + 1  # and maybe one before the end of the stream

"""A stream transport's state: kept in its ``_StreamIO``, still read and written by its old names.

``SocketTransport`` keeps what a read and a write touch (the socket, the
protocol, the write buffer, the lost-connection count, EOF, the sendfile
waiter) in a ``_StreamIO`` (C fields when compiled); its attributes of the same
names are properties over it, because asyncio's own code and the transport's
cold paths use them.  These tests check that both views agree over a real
connection's life, and that a transport whose construction failed goes away
without an error from ``__del__``.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
from typing import Any

import treadle
from treadle._core.transports import SocketTransport


class _Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.lost = asyncio.get_running_loop().create_future()
        self.paused = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def pause_writing(self) -> None:
        self.paused += 1

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


async def _state_over_a_connection() -> None:
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        connecting = asyncio.ensure_future(loop.create_connection(_Recorder, "127.0.0.1", listener.getsockname()[1]))
        peer, _ = await loop.sock_accept(listener)
        transport, protocol = await connecting
    with peer:
        assert isinstance(transport, SocketTransport)
        io = transport._io
        assert transport._sock is io.sock
        assert transport._sock.fileno() == transport.get_extra_info("socket").fileno()
        assert transport._protocol is io.protocol is protocol
        assert transport.get_protocol() is protocol
        assert transport._conn_lost == 0 and transport._eof is False

        # The peer does not read: what the kernel does not take is buffered,
        # and both views count it.
        transport._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport.set_write_buffer_limits(high=1)
        chunk = b"x" * 65536
        for _ in range(64):
            transport.write(chunk)
            if transport.get_write_buffer_size():
                break
        buffered = transport.get_write_buffer_size()
        assert buffered > 0
        assert transport._buffer_size == io.buffer_size == buffered
        assert sum(len(part) for part in transport._buffer) == buffered
        assert protocol.paused == 1  # asyncio's flow control read the state through the properties

        transport.abort()
        assert await protocol.lost is None
        assert transport._sock is None and io.sock is None
        assert transport._protocol is None
        assert transport._conn_lost == io.conn_lost == 1
        assert transport.get_write_buffer_size() == 0


def test_the_old_names_read_and_write_the_hot_state() -> None:
    loop = treadle.new_event_loop()
    try:
        loop.run_until_complete(_state_over_a_connection())
    finally:
        loop.close()


def test_a_transport_whose_construction_failed_goes_away_quietly() -> None:
    unraisable: list[Any] = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    a, b = socket.socketpair()
    try:
        try:
            SocketTransport(object(), a, asyncio.Protocol())  # not a loop: fails at once
        except AttributeError:
            pass
        else:
            raise AssertionError("a transport on something that is not a loop was made")
        gc.collect()
    finally:
        sys.unraisablehook = old_hook
        a.close()
        b.close()
    assert unraisable == []

"""Transports and servers: TCP, Unix, UDP, pipes, sendfile, flow control, streams.

Every test runs on treadle's loop and on stock asyncio (see ``conftest.py``);
where the two differ by design the test says so and asserts each kind.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import hashlib
import os
import socket
import struct
import sys
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import treadle

from .conftest import ipv6_loopback_available

Run = Callable[..., Any]


def _payload(seed: int, size: int) -> bytes:
    """Deterministic bytes that differ with the seed and with the position."""
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest()
    reps = size // len(block) + 1
    data = bytearray(block * reps)[:size]
    # Stamp the position every 4 KiB so that reordered or duplicated blocks show.
    for pos in range(0, size - 8, 4096):
        data[pos : pos + 8] = struct.pack(">Q", pos ^ seed)
    return bytes(data)


def _closed_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


class EchoServer(asyncio.Protocol):
    """Writes back what it receives; closes (after flushing) when the client half-closes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False  # the transport closes itself once the echoed data is flushed


class Collector(asyncio.Protocol):
    """Collects data; ``eof`` resolves on EOF, ``lost`` on connection_lost."""

    def __init__(self, keep_open_on_eof: bool = True) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.events: list[str] = []
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.paused = False
        self.resumed = asyncio.Event()
        self.pause_count = 0
        self.resume_count = 0
        self.keep_open_on_eof = keep_open_on_eof
        self._want: tuple[int, asyncio.Future[None]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        assert not self.eof.done(), "data after EOF"
        self.data += data
        if self._want is not None and len(self.data) >= self._want[0] and not self._want[1].done():
            self._want[1].set_result(None)

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.eof.set_result(None)
        return self.keep_open_on_eof

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        if not self.eof.done():
            self.eof.set_result(None)
        self.lost.set_result(exc)

    def pause_writing(self) -> None:
        assert not self.paused
        self.paused = True
        self.pause_count += 1
        self.resumed.clear()

    def resume_writing(self) -> None:
        assert self.paused
        self.paused = False
        self.resume_count += 1
        self.resumed.set()

    async def wait_for_bytes(self, n: int, timeout: float = 10) -> bytes:
        if len(self.data) < n:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._want = (n, fut)
            try:
                await asyncio.wait_for(fut, timeout)
            finally:
                self._want = None
        return bytes(self.data[:n])


async def _recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    chunks = []
    got = 0
    while got < n:
        data = await loop.sock_recv(sock, min(n - got, 1 << 20))
        assert data, f"EOF after {got} of {n} bytes"
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def _small_sndbuf(transport: asyncio.BaseTransport) -> None:
    """Shrink the kernel send buffer so that writes to a peer that does not read get buffered soon."""
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)


def _listener(rcvbuf: int | None = None) -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setblocking(False)
    if rcvbuf is not None:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    return srv


# -- TCP ------------------------------------------------------------------------------------------


def test_tcp_echo_many_concurrent_clients(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    nclients = 200
    size = 8 * 1024 + 123

    async def client(port: int, i: int) -> None:
        payload = _payload(i, size)
        transport, proto = await loop.create_connection(Collector, "127.0.0.1", port)
        try:
            transport.write(payload[: size // 2])
            transport.write(memoryview(payload)[size // 2 :])
            transport.write_eof()
            await asyncio.wait_for(proto.eof, 20)
            assert bytes(proto.data) == payload, f"client {i}: echo differs"
        finally:
            transport.close()
        await asyncio.wait_for(proto.lost, 5)

    async def main() -> None:
        server = await loop.create_server(EchoServer, "127.0.0.1", 0, backlog=nclients)
        try:
            assert server.is_serving()
            assert len(server.sockets) == 1
            port = server.sockets[0].getsockname()[1]
            await asyncio.wait_for(asyncio.gather(*(client(port, i) for i in range(nclients))), 25)
        finally:
            server.close()
            await server.wait_closed()
        assert not server.is_serving()

    run(main())


def test_data_received_chunks_are_bytes_that_later_reads_leave_alone(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    # treadle's transports read into one buffer per loop and copy out: each
    # chunk handed to data_received must be its own bytes object, unchanged
    # by the reads that follow (on this connection and on another one).
    class Keeper(asyncio.Protocol):
        def __init__(self) -> None:
            self.chunks: list[bytes] = []
            self.got = asyncio.Event()

        def data_received(self, data: bytes) -> None:
            self.chunks.append(data)
            self.got.set()

    async def main() -> None:
        lsock = _listener()
        keepers = [Keeper(), Keeper()]
        made = iter(keepers)
        server = await loop.create_server(lambda: next(made), sock=lsock)
        port = lsock.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in keepers]
        try:
            for i in range(20):
                for c, (client, keeper) in enumerate(zip(clients, keepers, strict=True)):
                    keeper.got.clear()
                    client.sendall(_payload(i * 2 + c, 700 + i))
                    await asyncio.wait_for(keeper.got.wait(), 5)
                    # One sendall, read whole or in pieces: wait for all of it.
                    while sum(map(len, keeper.chunks)) < sum(700 + j for j in range(i + 1)):
                        keeper.got.clear()
                        await asyncio.wait_for(keeper.got.wait(), 5)
            for c, keeper in enumerate(keepers):
                assert all(type(chunk) is bytes for chunk in keeper.chunks)
                assert b"".join(keeper.chunks) == b"".join(_payload(i * 2 + c, 700 + i) for i in range(20))
        finally:
            for client in clients:
                client.close()
            server.close()
            await server.wait_closed()

    run(main())


def test_create_connection_refused(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    port = _closed_port()
    with pytest.raises(ConnectionRefusedError):
        run(loop.create_connection(asyncio.Protocol, "127.0.0.1", port))


def test_create_connection_with_sock(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        server = await loop.create_server(EchoServer, "127.0.0.1", 0)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        await loop.sock_connect(sock, server.sockets[0].getsockname())
        transport, proto = await loop.create_connection(Collector, sock=sock)
        try:
            transport.write(b"through a given socket")
            transport.write_eof()
            await asyncio.wait_for(proto.eof, 5)
            assert bytes(proto.data) == b"through a given socket"
        finally:
            transport.close()
            server.close()
            await server.wait_closed()

    run(main())


def test_happy_eyeballs_localhost(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    if not ipv6_loopback_available():
        pytest.skip("IPv6 loopback (::1) is not available")

    async def listen_both() -> tuple[int, list[asyncio.AbstractServer]]:
        # One port on both 127.0.0.1 and ::1 (retry if the v6 side of a port is taken).
        for _ in range(50):
            v4 = await loop.create_server(EchoServer, "127.0.0.1", 0)
            port = v4.sockets[0].getsockname()[1]
            try:
                v6 = await loop.create_server(EchoServer, "::1", port)
            except OSError as exc:
                v4.close()
                await v4.wait_closed()
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return port, [v4, v6]
        pytest.fail("no port free on both 127.0.0.1 and ::1")

    async def main() -> None:
        port, servers = await listen_both()
        try:
            seen = set()
            for interleave in (None, 1):
                for i in range(5):
                    transport, proto = await asyncio.wait_for(
                        loop.create_connection(
                            Collector, host="localhost", port=port, happy_eyeballs_delay=0.1, interleave=interleave
                        ),
                        10,
                    )
                    try:
                        peer = transport.get_extra_info("peername")
                        assert peer[0] in ("127.0.0.1", "::1")
                        assert peer[1] == port
                        seen.add(peer[0])
                        payload = _payload(i, 1000)
                        transport.write(payload)
                        transport.write_eof()
                        await asyncio.wait_for(proto.eof, 5)
                        assert bytes(proto.data) == payload
                    finally:
                        transport.close()
            assert seen
            # Only the families localhost resolves to can be reached.
            resolved = {info[4][0] for info in socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM)}
            assert seen <= resolved
        finally:
            for server in servers:
                server.close()
                await server.wait_closed()

    run(main())


def test_happy_eyeballs_ipv6_literal(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    if not ipv6_loopback_available():
        pytest.skip("IPv6 loopback (::1) is not available")

    async def main() -> None:
        server = await loop.create_server(EchoServer, "::1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            transport, proto = await asyncio.wait_for(
                loop.create_connection(Collector, "::1", port, happy_eyeballs_delay=0.1), 10
            )
            try:
                assert transport.get_extra_info("peername")[:2] == ("::1", port)
                assert transport.get_extra_info("socket").family == socket.AF_INET6
                transport.write(b"v6")
                transport.write_eof()
                await asyncio.wait_for(proto.eof, 5)
                assert bytes(proto.data) == b"v6"
            finally:
                transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_happy_eyeballs_refused(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    port = _closed_port()
    with pytest.raises(OSError) as info:
        run(loop.create_connection(asyncio.Protocol, "localhost", port, happy_eyeballs_delay=0.05))
    assert info.value.errno == errno.ECONNREFUSED or "Multiple exceptions" in str(info.value)


def test_create_server_reuse_port(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT")

    async def main() -> None:
        s1 = await loop.create_server(EchoServer, "127.0.0.1", 0, reuse_port=True)
        port = s1.sockets[0].getsockname()[1]
        s2 = await loop.create_server(EchoServer, "127.0.0.1", port, reuse_port=True)
        try:
            assert s2.sockets[0].getsockname() == ("127.0.0.1", port)
            for sock in (s1.sockets[0], s2.sockets[0]):
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0

            async def echo_once(i: int) -> None:
                transport, proto = await loop.create_connection(Collector, "127.0.0.1", port)
                try:
                    transport.write(_payload(i, 500))
                    transport.write_eof()
                    await asyncio.wait_for(proto.eof, 5)
                    assert bytes(proto.data) == _payload(i, 500)
                finally:
                    transport.close()

            await asyncio.gather(*(echo_once(i) for i in range(20)))
            # With one of the two closed, the other still serves the port.
            s1.close()
            await s1.wait_closed()
            await asyncio.gather(*(echo_once(i) for i in range(5)))
        finally:
            s1.close()
            s2.close()
            await s2.wait_closed()

    run(main())


def test_create_server_without_reuse_port_conflicts(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        s1 = await loop.create_server(EchoServer, "127.0.0.1", 0)
        try:
            port = s1.sockets[0].getsockname()[1]
            with pytest.raises(OSError) as info:
                await loop.create_server(EchoServer, "127.0.0.1", port)
            assert info.value.errno == errno.EADDRINUSE
        finally:
            s1.close()
            await s1.wait_closed()

    run(main())


def test_backlog_queue_drained(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    backlog = 8
    server = run(loop.create_server(EchoServer, "127.0.0.1", 0, backlog=backlog))
    addr = server.sockets[0].getsockname()
    # Connect while the loop is not running: the connections wait in the
    # listening socket's queue (the kernel completes the handshake) until the
    # loop accepts them all.
    clients = [socket.create_connection(addr, timeout=5) for _ in range(backlog)]

    async def main() -> None:
        try:
            for i, c in enumerate(clients):
                c.setblocking(False)
                await loop.sock_sendall(c, b"client %d" % i)
                c.shutdown(socket.SHUT_WR)
            for i, c in enumerate(clients):
                data = b""
                for _ in range(100):
                    chunk = await asyncio.wait_for(loop.sock_recv(c, 100), 5)
                    if not chunk:
                        break
                    data += chunk
                assert data == b"client %d" % i
        finally:
            server.close()
            await server.wait_closed()
            for c in clients:
                c.close()

    run(main())


def test_server_start_serving_false_then_serve_forever(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        server = await loop.create_server(EchoServer, "127.0.0.1", 0, start_serving=False)
        try:
            assert not server.is_serving()
            assert server.get_loop() is loop
            sockets = server.sockets
            assert len(sockets) == 1
            addr = sockets[0].getsockname()
            assert addr[0] == "127.0.0.1" and addr[1] > 0
            # Bound, not listening: a connection is refused.
            with pytest.raises(ConnectionRefusedError):
                await loop.create_connection(asyncio.Protocol, *addr)

            await server.start_serving()
            assert server.is_serving()
            await server.start_serving()  # a second call is harmless
            transport, proto = await loop.create_connection(Collector, *addr)
            transport.write(b"served")
            transport.write_eof()
            await asyncio.wait_for(proto.eof, 5)
            assert bytes(proto.data) == b"served"
            transport.close()

            forever = asyncio.ensure_future(server.serve_forever())
            await asyncio.sleep(0.01)
            assert not forever.done()
            assert server.is_serving()
            transport, proto = await loop.create_connection(Collector, *addr)
            transport.write(b"forever")
            transport.write_eof()
            await asyncio.wait_for(proto.eof, 5)
            assert bytes(proto.data) == b"forever"
            transport.close()

            server.close()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(forever, 5)
            await asyncio.wait_for(server.wait_closed(), 5)
            assert not server.is_serving()
            assert server.sockets == ()
            with pytest.raises(ConnectionRefusedError):
                await loop.create_connection(asyncio.Protocol, *addr)
        finally:
            server.close()

    run(main())


def test_serve_forever_cancelled_closes_server(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        server = await loop.create_server(EchoServer, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        forever = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0.01)
        forever.cancel()
        with pytest.raises(asyncio.CancelledError):
            await forever
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, *addr)

    run(main())


def test_server_async_context_manager(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        server = await loop.create_server(EchoServer, "127.0.0.1", 0)
        async with server:
            addr = server.sockets[0].getsockname()
            transport, proto = await loop.create_connection(Collector, *addr)
            transport.write(b"ctx")
            transport.write_eof()
            await asyncio.wait_for(proto.eof, 5)
            assert bytes(proto.data) == b"ctx"
            transport.close()
        assert not server.is_serving()

    run(main())


def test_create_server_multiple_hosts(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        hosts = ["127.0.0.1"] + (["::1"] if ipv6_loopback_available() else [])
        server = await loop.create_server(EchoServer, hosts, 0)
        try:
            assert {s.getsockname()[0] for s in server.sockets} == set(hosts)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                transport, proto = await loop.create_connection(Collector, host, port)
                transport.write(host.encode())
                transport.write_eof()
                await asyncio.wait_for(proto.eof, 5)
                assert bytes(proto.data) == host.encode()
                transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


# -- Unix sockets ------------------------------------------------------------------------------------


def test_unix_echo(loop: asyncio.AbstractEventLoop, run: Run, tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")

    async def main() -> None:
        server = await loop.create_unix_server(EchoServer, path)
        try:
            assert server.sockets[0].getsockname() == path
            assert os.path.exists(path)

            async def one(i: int) -> None:
                payload = _payload(i, 64 * 1024 + i)
                transport, proto = await loop.create_unix_connection(Collector, path)
                try:
                    assert transport.get_extra_info("peername") == path
                    assert transport.get_extra_info("socket").family == socket.AF_UNIX
                    transport.write(payload)
                    transport.write_eof()
                    await asyncio.wait_for(proto.eof, 10)
                    assert bytes(proto.data) == payload
                finally:
                    transport.close()

            await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(20))), 20)
        finally:
            server.close()
            await server.wait_closed()

        # A stale socket file left at the path is replaced by a new server.
        server = await loop.create_unix_server(EchoServer, path)
        try:
            transport, proto = await loop.create_unix_connection(Collector, path)
            transport.write(b"again")
            transport.write_eof()
            await asyncio.wait_for(proto.eof, 5)
            assert bytes(proto.data) == b"again"
            transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_unix_connection_refused_and_missing(loop: asyncio.AbstractEventLoop, run: Run, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.sock")
    with pytest.raises(FileNotFoundError):
        run(loop.create_unix_connection(asyncio.Protocol, missing))

    # A socket file with nobody listening on it: refused.
    stale = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    with pytest.raises(ConnectionRefusedError):
        run(loop.create_unix_connection(asyncio.Protocol, stale))


def test_unix_server_with_sock_and_start_serving_false(
    loop: asyncio.AbstractEventLoop, run: Run, tmp_path: Path
) -> None:
    path = str(tmp_path / "given.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)

    async def main() -> None:
        server = await loop.create_unix_server(EchoServer, sock=sock, start_serving=False)
        try:
            assert not server.is_serving()
            await server.start_serving()
            assert server.is_serving()
            csock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            csock.setblocking(False)
            await loop.sock_connect(csock, path)
            transport, proto = await loop.create_unix_connection(Collector, sock=csock)
            transport.write(b"via sock")
            transport.write_eof()
            await asyncio.wait_for(proto.eof, 5)
            assert bytes(proto.data) == b"via sock"
            transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_unix_server_pathlike_and_abstract(loop: asyncio.AbstractEventLoop, run: Run, tmp_path: Path) -> None:
    abstract = "\0treadle-test-" + os.urandom(8).hex()

    async def echo_through(connect: Any) -> None:
        transport, proto = await connect()
        transport.write(b"ping")
        transport.write_eof()
        await asyncio.wait_for(proto.eof, 5)
        assert bytes(proto.data) == b"ping"
        transport.close()

    async def main() -> None:
        path = tmp_path / "pathlike.sock"
        server = await loop.create_unix_server(EchoServer, path)  # a pathlib.Path
        try:
            assert server.sockets[0].getsockname() == str(path)
            await echo_through(lambda: loop.create_unix_connection(Collector, path))
        finally:
            server.close()
            await server.wait_closed()

        server = await loop.create_unix_server(EchoServer, abstract)
        try:
            assert server.sockets[0].getsockname() == abstract.encode()
            await echo_through(lambda: loop.create_unix_connection(Collector, abstract))
        finally:
            server.close()
            await server.wait_closed()

    run(main())


# -- connect_accepted_socket -----------------------------------------------------------------------------


def test_connect_accepted_socket(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    lsock = socket.create_server(("127.0.0.1", 0))
    csock = socket.create_connection(lsock.getsockname())
    ssock, _ = lsock.accept()
    lsock.close()
    csock.setblocking(False)

    async def main() -> None:
        transport, proto = await loop.connect_accepted_socket(EchoServer, ssock)
        try:
            assert isinstance(proto, EchoServer)
            assert proto.transport is transport
            assert transport.get_extra_info("peername") == csock.getsockname()
            assert transport.get_extra_info("sockname") == csock.getpeername()
            payload = _payload(7, 300_000)
            sender = asyncio.ensure_future(loop.sock_sendall(csock, payload))
            echoed = await asyncio.wait_for(_recv_exactly(loop, csock, len(payload)), 10)
            await sender
            assert echoed == payload
            csock.shutdown(socket.SHUT_WR)
            assert await asyncio.wait_for(loop.sock_recv(csock, 10), 5) == b""
        finally:
            transport.close()
            csock.close()

    run(main())


def test_connect_accepted_socket_rejects_datagram(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(ValueError):
            run(loop.connect_accepted_socket(asyncio.Protocol, sock))
    finally:
        sock.close()


# -- UDP ------------------------------------------------------------------------------------------------


class DatagramCollector(asyncio.DatagramProtocol):
    def __init__(self, echo: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.echo = echo
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[tuple[bytes, Any]] = []
        self.errors: list[Exception] = []
        self.got = asyncio.Event()
        self.error = asyncio.Event()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (Stock asyncio 3.11's datagram transport does not subclass asyncio.DatagramTransport.)
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((data, addr))
        self.got.set()
        if self.echo:
            assert self.transport is not None
            self.transport.sendto(data.upper(), addr)

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.error.set()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


async def _wait_datagrams(proto: DatagramCollector, n: int, timeout: float = 5) -> None:
    async def _wait() -> None:
        while len(proto.received) < n:
            proto.got.clear()
            await proto.got.wait()

    await asyncio.wait_for(_wait(), timeout)


def test_udp_round_trip(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        s_tr, s_proto = await loop.create_datagram_endpoint(
            lambda: DatagramCollector(echo=True), local_addr=("127.0.0.1", 0)
        )
        server_addr = s_tr.get_extra_info("sockname")
        c_tr, c_proto = await loop.create_datagram_endpoint(DatagramCollector, remote_addr=server_addr)
        try:
            assert c_tr.get_extra_info("peername") == server_addr
            client_addr = c_tr.get_extra_info("sockname")
            messages = [f"message {i} ".encode() * (i + 1) for i in range(50)]
            for msg in messages:
                c_tr.sendto(msg)
            await _wait_datagrams(c_proto, len(messages))
            assert sorted(d for d, _ in c_proto.received) == sorted(m.upper() for m in messages)
            assert all(addr == server_addr for _, addr in c_proto.received)
            assert sorted(d for d, _ in s_proto.received) == sorted(messages)
            assert all(addr == client_addr for _, addr in s_proto.received)
            assert not c_proto.errors and not s_proto.errors

            # A connected endpoint refuses another destination.
            with pytest.raises(ValueError):
                c_tr.sendto(b"x", ("127.0.0.1", 9))
            # ...but accepts its own peer address spelled out.
            c_tr.sendto(b"explicit", server_addr)
            await _wait_datagrams(c_proto, len(messages) + 1)
            assert c_proto.received[-1][0] == b"EXPLICIT"
            assert c_tr.get_write_buffer_size() == 0
        finally:
            c_tr.close()
            s_tr.close()
        assert await asyncio.wait_for(c_proto.lost, 5) is None
        assert await asyncio.wait_for(s_proto.lost, 5) is None
        assert c_tr.is_closing()

    run(main())


def test_udp_unconnected_sendto(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        a_tr, a_proto = await loop.create_datagram_endpoint(DatagramCollector, local_addr=("127.0.0.1", 0))
        b_tr, b_proto = await loop.create_datagram_endpoint(DatagramCollector, local_addr=("127.0.0.1", 0))
        try:
            a_addr = a_tr.get_extra_info("sockname")
            b_addr = b_tr.get_extra_info("sockname")
            assert a_tr.get_extra_info("peername") is None
            a_tr.sendto(b"a to b", b_addr)
            b_tr.sendto(bytearray(b"b to a"), a_addr)
            await _wait_datagrams(a_proto, 1)
            await _wait_datagrams(b_proto, 1)
            assert a_proto.received == [(b"b to a", b_addr)]
            assert b_proto.received == [(b"a to b", a_addr)]
            # A large datagram arrives whole.
            big = _payload(3, 60_000)
            a_tr.sendto(big, b_addr)
            await _wait_datagrams(b_proto, 2)
            assert b_proto.received[1] == (big, a_addr)
        finally:
            a_tr.close()
            b_tr.close()

    run(main())


def test_udp_error_received_on_connected_socket(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    port = _closed_port(socket.SOCK_DGRAM)

    async def main() -> None:
        tr, proto = await loop.create_datagram_endpoint(DatagramCollector, remote_addr=("127.0.0.1", port))
        try:
            for _ in range(50):
                tr.sendto(b"anyone there?")
                try:
                    await asyncio.wait_for(proto.error.wait(), 0.1)
                    break
                except TimeoutError:
                    pass
            assert proto.errors, "error_received() was never called"
            assert isinstance(proto.errors[0], ConnectionRefusedError)
            assert not proto.received
            # The transport stays usable after error_received.
            assert not tr.is_closing()
        finally:
            tr.close()
        assert await asyncio.wait_for(proto.lost, 5) is None

    run(main())


def test_udp_unix_datagram(loop: asyncio.AbstractEventLoop, run: Run, tmp_path: Path) -> None:
    a_path = str(tmp_path / "a.dgram")
    b_path = str(tmp_path / "b.dgram")

    async def main() -> None:
        a_tr, a_proto = await loop.create_datagram_endpoint(
            lambda: DatagramCollector(echo=True), local_addr=a_path, family=socket.AF_UNIX
        )
        b_tr, b_proto = await loop.create_datagram_endpoint(
            DatagramCollector, local_addr=b_path, remote_addr=a_path, family=socket.AF_UNIX
        )
        try:
            b_tr.sendto(b"over unix")
            await _wait_datagrams(b_proto, 1)
            assert b_proto.received == [(b"OVER UNIX", a_path)]
            assert a_proto.received == [(b"over unix", b_path)]
        finally:
            a_tr.close()
            b_tr.close()

    run(main())


# -- pipes ------------------------------------------------------------------------------------------------


class PipeReader(asyncio.Protocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.data = bytearray()
        self.eof = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.events: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> None:
        self.events.append("eof")
        self.eof.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


class PipeWriter(asyncio.BaseProtocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.paused = 0
        self.resumed = 0

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.resumed += 1

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


def test_pipes_write_to_read(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    rfd, wfd = os.pipe()
    payload = _payload(11, 1024 * 1024 + 5)

    async def main() -> None:
        r_tr, r_proto = await loop.connect_read_pipe(PipeReader, open(rfd, "rb", buffering=0))
        w_tr, w_proto = await loop.connect_write_pipe(PipeWriter, open(wfd, "wb", buffering=0))
        assert r_proto.events == ["made"]
        assert r_tr.get_extra_info("pipe").fileno() == rfd
        assert w_tr.get_extra_info("pipe").fileno() == wfd
        assert w_tr.can_write_eof()
        w_tr.set_write_buffer_limits(high=64 * 1024)
        for pos in range(0, len(payload), 100_000):
            w_tr.write(payload[pos : pos + 100_000])
        # The reader is on the same loop: more than a pipe's capacity is buffered first.
        assert w_tr.get_write_buffer_size() > 0
        assert w_proto.paused == 1
        w_tr.write_eof()
        await asyncio.wait_for(r_proto.eof, 10)
        assert bytes(r_proto.data) == payload
        assert await asyncio.wait_for(w_proto.lost, 5) is None
        assert w_proto.resumed == 1
        assert await asyncio.wait_for(r_proto.lost, 5) is None
        assert r_proto.events == ["made", "eof", "lost"]

    run(main())


def test_read_pipe_pause_and_resume(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    rfd, wfd = os.pipe()

    async def main() -> None:
        r_tr, r_proto = await loop.connect_read_pipe(PipeReader, open(rfd, "rb", buffering=0))
        try:
            assert r_tr.is_reading()
            r_tr.pause_reading()
            assert not r_tr.is_reading()
            os.write(wfd, b"while paused")
            for _ in range(5):
                await asyncio.sleep(0.01)
            assert r_proto.data == b""
            r_tr.resume_reading()
            assert r_tr.is_reading()
            for _ in range(500):
                if r_proto.data == b"while paused":
                    break
                await asyncio.sleep(0.01)
            assert r_proto.data == b"while paused"
        finally:
            os.close(wfd)
        await asyncio.wait_for(r_proto.eof, 5)
        assert await asyncio.wait_for(r_proto.lost, 5) is None

    run(main())


def test_write_pipe_reader_closed(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    rfd, wfd = os.pipe()

    async def main() -> None:
        w_tr, w_proto = await loop.connect_write_pipe(PipeWriter, open(wfd, "wb", buffering=0))
        w_tr.write(b"hello")
        assert os.read(rfd, 100) == b"hello"
        os.close(rfd)
        # The write end notices that the reader went away, without writing.
        exc = await asyncio.wait_for(w_proto.lost, 5)
        assert exc is None or isinstance(exc, BrokenPipeError)
        assert w_tr.is_closing()

    run(main())


# -- sendfile -----------------------------------------------------------------------------------------------


def test_loop_sendfile_over_tcp_transport(loop: asyncio.AbstractEventLoop, run: Run, tmp_path: Path) -> None:
    content = _payload(5, 512 * 1024 + 99)
    path = tmp_path / "send.bin"
    path.write_bytes(content)
    offset, count = 10_000, 300_000

    async def main() -> None:
        received: list[Collector] = []

        def factory() -> Collector:
            proto = Collector(keep_open_on_eof=False)
            received.append(proto)
            return proto

        server = await loop.create_server(factory, "127.0.0.1", 0)
        try:
            transport, proto = await loop.create_connection(Collector, *server.sockets[0].getsockname())
            transport.write(b"head:")
            with open(path, "rb") as f:
                sent = await asyncio.wait_for(loop.sendfile(transport, f, offset, count), 20)
                assert sent == count
                assert f.tell() == offset + count
                sent = await asyncio.wait_for(loop.sendfile(transport, f), 20)
                assert sent == len(content)
                assert f.tell() == len(content)
            # The transport is usable normally afterwards.
            transport.write(b":tail")
            transport.write_eof()
            assert len(received) == 1
            await asyncio.wait_for(received[0].eof, 20)
            expected = b"head:" + content[offset : offset + count] + content + b":tail"
            assert len(received[0].data) == len(expected)
            assert bytes(received[0].data) == expected
            transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_write_during_sendfile_is_refused(loop: asyncio.AbstractEventLoop, run: Run, tmp_path: Path) -> None:
    content = _payload(6, 4 * 1024 * 1024)
    path = tmp_path / "big.bin"
    path.write_bytes(content)

    async def main() -> None:
        srv = _listener(rcvbuf=16 * 1024)
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, _ = await loop.create_connection(Collector, *srv.getsockname())
            conn, _ = await accept
            _small_sndbuf(transport)
            with open(path, "rb") as f:
                task = asyncio.ensure_future(loop.sendfile(transport, f))
                await asyncio.sleep(0.02)
                assert not task.done()  # the peer does not read yet
                with pytest.raises(RuntimeError):
                    transport.write(b"nope")
                data = await asyncio.wait_for(_recv_exactly(loop, conn, len(content)), 20)
                assert await asyncio.wait_for(task, 10) == len(content)
            assert data == content
            transport.close()
            conn.close()
        finally:
            srv.close()

    run(main())


# -- flow control --------------------------------------------------------------------------------------------


def test_pause_and_resume_reading(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        servers: list[Collector] = []

        def factory() -> Collector:
            proto = Collector(keep_open_on_eof=False)
            servers.append(proto)
            return proto

        server = await loop.create_server(factory, "127.0.0.1", 0)
        try:
            transport, proto = await loop.create_connection(Collector, *server.sockets[0].getsockname())
            for _ in range(100):
                if servers and servers[0].transport is not None:
                    break
                await asyncio.sleep(0.01)
            peer = servers[0]
            assert peer.transport is not None
            assert peer.transport.is_reading()
            peer.transport.pause_reading()
            peer.transport.pause_reading()  # idempotent
            assert not peer.transport.is_reading()

            transport.write(b"while paused")
            for _ in range(5):
                await asyncio.sleep(0.01)
            assert peer.data == b""

            peer.transport.resume_reading()
            peer.transport.resume_reading()  # idempotent
            assert peer.transport.is_reading()
            assert await peer.wait_for_bytes(12) == b"while paused"

            transport.close()
            await asyncio.wait_for(peer.lost, 5)
            assert not peer.transport.is_reading()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_pause_reading_in_connection_made(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    class PausedAtStart(Collector):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()

    async def main() -> None:
        srv = _listener()
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, proto = await loop.create_connection(PausedAtStart, *srv.getsockname())
            conn, _ = await accept
            await loop.sock_sendall(conn, b"early data")
            for _ in range(5):
                await asyncio.sleep(0.01)
            assert not transport.is_reading()
            assert proto.data == b""
            transport.resume_reading()
            assert await proto.wait_for_bytes(10) == b"early data"
            transport.close()
            conn.close()
        finally:
            srv.close()

    run(main())


def test_write_buffer_limits_pause_and_resume_writing(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    high, low = 64 * 1024, 16 * 1024
    chunk_size = 16 * 1024

    async def main() -> None:
        srv = _listener(rcvbuf=16 * 1024)
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, proto = await loop.create_connection(Collector, *srv.getsockname())
            conn, _ = await accept  # the peer does not read for now
            _small_sndbuf(transport)

            transport.set_write_buffer_limits(high=high, low=low)
            assert transport.get_write_buffer_limits() == (low, high)
            assert transport.get_write_buffer_size() == 0

            sent = bytearray()
            for i in range(4096):  # at most 64 MiB
                chunk = _payload(i, chunk_size)
                transport.write(chunk)
                sent += chunk
                if proto.paused:
                    break
            assert proto.paused, "pause_writing() was never called"
            assert proto.pause_count == 1
            assert transport.get_write_buffer_size() > high
            # More writes while paused are buffered, not refused, and no second pause.
            transport.write(b"after pause")
            sent += b"after pause"
            assert proto.pause_count == 1

            for _ in range(5):
                await asyncio.sleep(0.01)
            assert proto.paused, "resumed although the peer reads nothing"

            reader = asyncio.ensure_future(_recv_exactly(loop, conn, len(sent)))
            await asyncio.wait_for(proto.resumed.wait(), 20)
            assert proto.resume_count == 1
            assert transport.get_write_buffer_size() <= low
            data = await asyncio.wait_for(reader, 20)
            assert data == bytes(sent)
            assert transport.get_write_buffer_size() == 0

            # Limits can be changed: a high-water mark of 0 pauses at once when anything is buffered.
            transport.set_write_buffer_limits(high=0)
            assert transport.get_write_buffer_limits() == (0, 0)
            transport.close()
            conn.close()
        finally:
            srv.close()

    run(main())


def test_default_write_buffer_limits(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        server = await loop.create_server(EchoServer, "127.0.0.1", 0)
        try:
            transport, _ = await loop.create_connection(Collector, *server.sockets[0].getsockname())
            assert transport.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
            transport.set_write_buffer_limits(low=1000)
            assert transport.get_write_buffer_limits() == (1000, 4000)
            transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_write_eof_after_buffered_data(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    payload = _payload(23, 4 * 1024 * 1024)

    async def main() -> None:
        srv = _listener(rcvbuf=16 * 1024)
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, proto = await loop.create_connection(Collector, *srv.getsockname())
            conn, _ = await accept
            _small_sndbuf(transport)
            transport.write(payload)
            assert transport.get_write_buffer_size() > 0
            transport.write_eof()  # only once everything buffered is sent
            assert not transport.is_closing()
            data = await asyncio.wait_for(_recv_exactly(loop, conn, len(payload)), 20)
            assert data == payload
            assert await asyncio.wait_for(loop.sock_recv(conn, 10), 10) == b""
            # Half-closed: the other direction still works.
            await loop.sock_sendall(conn, b"reply")
            assert await proto.wait_for_bytes(5) == b"reply"
            conn.close()
            await asyncio.wait_for(proto.eof, 5)
            transport.close()
            assert await asyncio.wait_for(proto.lost, 5) is None
        finally:
            srv.close()

    run(main())


def test_set_write_buffer_limits_invalid(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        server = await loop.create_server(EchoServer, "127.0.0.1", 0)
        try:
            transport, _ = await loop.create_connection(Collector, *server.sockets[0].getsockname())
            with pytest.raises(ValueError):
                transport.set_write_buffer_limits(high=10, low=20)
            transport.set_write_buffer_limits(high=1000)
            assert transport.get_write_buffer_limits() == (250, 1000)
            transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_close_flushes_buffer_before_connection_lost(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    payload = _payload(9, 4 * 1024 * 1024)

    async def main() -> None:
        srv = _listener(rcvbuf=16 * 1024)
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, proto = await loop.create_connection(Collector, *srv.getsockname())
            conn, _ = await accept
            _small_sndbuf(transport)
            transport.write(payload)
            assert transport.get_write_buffer_size() > 0
            transport.close()
            assert transport.is_closing()
            assert not proto.lost.done()
            transport.write(b"ignored after close?")  # buffered-close semantics: must not crash
            data = await asyncio.wait_for(_recv_exactly(loop, conn, len(payload)), 20)
            assert data == payload
            assert await asyncio.wait_for(proto.lost, 10) is None
            conn.close()
        finally:
            srv.close()

    run(main())


def test_written_bytearray_is_copied(loop: asyncio.AbstractEventLoop, loop_kind: str, run: Run) -> None:
    if loop_kind == "asyncio" and sys.version_info >= (3, 12):
        # Stock asyncio 3.12+ queues a reference to the caller's bytearray, so a
        # change after write() changes what is sent; treadle copies it.
        pytest.skip("stock asyncio 3.12+ keeps a reference to a written bytearray; treadle copies it")
    size = 2 * 1024 * 1024

    async def main() -> None:
        srv = _listener(rcvbuf=16 * 1024)
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, _ = await loop.create_connection(Collector, *srv.getsockname())
            conn, _ = await accept
            _small_sndbuf(transport)
            buf = bytearray(b"A" * size)
            transport.write(buf)
            transport.write(memoryview(buf)[:10])
            assert transport.get_write_buffer_size() > 0
            buf[:] = b"B" * size  # reuse the buffer: what was written must not change
            transport.writelines([b"x", bytearray(b"y"), memoryview(b"z")])
            data = await asyncio.wait_for(_recv_exactly(loop, conn, size + 13), 20)
            assert data == b"A" * (size + 10) + b"xyz"
            transport.close()
            conn.close()
        finally:
            srv.close()

    run(main())


# -- half-close, abort, errors ---------------------------------------------------------------------------------


def test_write_eof_and_can_write_eof(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    class ReplyOnEof(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.data = bytearray()

        def data_received(self, data: bytes) -> None:
            self.data += data

        def eof_received(self) -> bool:
            # The client can no longer send, but can still receive.
            self.transport.write(b"got %d bytes" % len(self.data))
            self.transport.close()
            return True

    async def main() -> None:
        server = await loop.create_server(ReplyOnEof, "127.0.0.1", 0)
        try:
            transport, proto = await loop.create_connection(Collector, *server.sockets[0].getsockname())
            assert transport.can_write_eof()
            transport.write(b"x" * 100_000)
            transport.write_eof()
            transport.write_eof()  # idempotent
            with pytest.raises(RuntimeError):
                transport.write(b"after eof")
            await asyncio.wait_for(proto.eof, 10)
            assert bytes(proto.data) == b"got 100000 bytes"
            assert proto.events[:2] == ["made", "eof"]
            # keep_open_on_eof is True: the transport stays open until closed.
            assert not transport.is_closing()
            transport.close()
            assert await asyncio.wait_for(proto.lost, 5) is None
            assert proto.events == ["made", "eof", "lost"]
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_eof_received_false_closes_transport(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        srv = _listener()
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, proto = await loop.create_connection(Collector, *srv.getsockname())
            proto.keep_open_on_eof = False
            conn, _ = await accept
            await loop.sock_sendall(conn, b"bye")
            conn.shutdown(socket.SHUT_WR)
            assert await asyncio.wait_for(proto.lost, 5) is None
            assert bytes(proto.data) == b"bye"
            assert proto.events == ["made", "eof", "lost"]
            assert transport.is_closing()
            assert await asyncio.wait_for(loop.sock_recv(conn, 10), 5) == b""
            conn.close()
        finally:
            srv.close()

    run(main())


def test_abort_discards_buffer(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        srv = _listener(rcvbuf=16 * 1024)
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, proto = await loop.create_connection(Collector, *srv.getsockname())
            conn, _ = await accept
            _small_sndbuf(transport)
            transport.write(b"z" * (4 * 1024 * 1024))
            assert transport.get_write_buffer_size() > 0
            transport.abort()
            assert transport.is_closing()
            assert transport.get_write_buffer_size() == 0
            assert await asyncio.wait_for(proto.lost, 5) is None
            assert transport.get_extra_info("socket") is not None
            # The peer gets at most what the kernel had, then EOF (or a reset).
            total = 0
            for _ in range(10_000):
                try:
                    data = await asyncio.wait_for(loop.sock_recv(conn, 1 << 20), 5)
                except ConnectionResetError:
                    break
                if not data:
                    break
                total += len(data)
            else:
                pytest.fail("peer never saw the end of the connection")
            assert total < 4 * 1024 * 1024
            conn.close()
        finally:
            srv.close()

    run(main())


def test_connection_reset_reported_to_connection_lost(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        srv = _listener()
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, proto = await loop.create_connection(Collector, *srv.getsockname())
            conn, _ = await accept
            # Close with SO_LINGER 0: the peer sends RST.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            exc = await asyncio.wait_for(proto.lost, 5)
            # Both loops report the reset as connection_lost(ConnectionResetError) or as
            # an EOF followed by connection_lost(None); never silently.
            assert exc is None or isinstance(exc, ConnectionResetError)
            assert transport.is_closing()
        finally:
            srv.close()

    run(main())


def test_get_extra_info(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        srv = _listener()
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, _ = await loop.create_connection(Collector, *srv.getsockname())
            conn, caddr = await accept
            try:
                assert transport.get_extra_info("peername") == srv.getsockname()
                assert transport.get_extra_info("sockname") == caddr
                sock = transport.get_extra_info("socket")
                assert sock is not None
                assert sock.family == socket.AF_INET
                assert sock.type == socket.SOCK_STREAM
                assert sock.getsockname() == caddr
                assert sock.getpeername() == srv.getsockname()
                assert sock.fileno() >= 0
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                assert transport.get_extra_info("no such key") is None
                assert transport.get_extra_info("no such key", "dflt") == "dflt"
                assert transport.get_extra_info("sslcontext") is None
            finally:
                transport.close()
                conn.close()
        finally:
            srv.close()

    run(main())


def test_server_side_extra_info(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        peers: list[Collector] = []

        def factory() -> Collector:
            peers.append(Collector(keep_open_on_eof=False))
            return peers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        try:
            transport, _ = await loop.create_connection(Collector, *server.sockets[0].getsockname())
            for _ in range(100):
                if peers and peers[0].made.done():
                    break
                await asyncio.sleep(0.01)
            st = peers[0].transport
            assert st is not None
            assert st.get_extra_info("peername") == transport.get_extra_info("sockname")
            assert st.get_extra_info("sockname") == transport.get_extra_info("peername")
            transport.close()
            await asyncio.wait_for(peers[0].lost, 5)
        finally:
            server.close()
            await server.wait_closed()

    run(main())


# -- BufferedProtocol -----------------------------------------------------------------------------------------


class BufferedReceiver(asyncio.BufferedProtocol):
    def __init__(self, bufsize: int) -> None:
        loop = asyncio.get_running_loop()
        self.buf = bytearray(bufsize)
        self.data = bytearray()
        self.calls = 0
        self.eof = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buf)

    def buffer_updated(self, nbytes: int) -> None:
        assert 0 < nbytes <= len(self.buf)
        self.calls += 1
        self.data += self.buf[:nbytes]

    def eof_received(self) -> None:
        self.eof.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


@pytest.mark.parametrize("bufsize", [1000, 64 * 1024])
def test_buffered_protocol_receives_1mib(loop: asyncio.AbstractEventLoop, run: Run, bufsize: int) -> None:
    payload = _payload(13, 1024 * 1024)

    async def main() -> None:
        receivers: list[BufferedReceiver] = []

        def factory() -> BufferedReceiver:
            receivers.append(BufferedReceiver(bufsize))
            return receivers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        try:
            transport, _ = await loop.create_connection(Collector, *server.sockets[0].getsockname())
            transport.write(payload)
            transport.write_eof()
            for _ in range(100):
                if receivers:
                    break
                await asyncio.sleep(0.01)
            recv = receivers[0]
            await asyncio.wait_for(recv.eof, 20)
            assert len(recv.data) == len(payload)
            assert bytes(recv.data) == payload
            assert recv.calls >= len(payload) // bufsize
            # eof_received returned None: the transport closes itself.
            assert await asyncio.wait_for(recv.lost, 5) is None
            transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_set_protocol_switches_to_buffered(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        srv = _listener()
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, first = await loop.create_connection(Collector, *srv.getsockname())
            conn, _ = await accept
            await loop.sock_sendall(conn, b"first")
            assert await first.wait_for_bytes(5) == b"first"

            second = BufferedReceiver(4096)
            transport.set_protocol(second)
            assert transport.get_protocol() is second
            payload = _payload(21, 200_000)
            await loop.sock_sendall(conn, payload)
            conn.shutdown(socket.SHUT_WR)
            await asyncio.wait_for(second.eof, 10)
            assert bytes(second.data) == payload
            assert bytes(first.data) == b"first"
            await asyncio.wait_for(second.lost, 5)
            conn.close()
        finally:
            srv.close()

    run(main())


# -- streams ----------------------------------------------------------------------------------------------------


def test_streams_echo(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                writer.write(line.upper())
                await writer.drain()
            body = await reader.read()
            assert body == b""
        finally:
            writer.close()
            await writer.wait_closed()

    async def client(port: int, i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            lines = [f"client {i} line {j} ".encode() * (j + 1) + b"\n" for j in range(20)]
            for line in lines:
                writer.write(line)
            await writer.drain()
            for line in lines:
                assert await reader.readline() == line.upper()
            writer.write_eof()
            assert await reader.read() == b""
            assert reader.at_eof()
        finally:
            writer.close()
            await writer.wait_closed()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        assert server.get_loop() is loop
        try:
            port = server.sockets[0].getsockname()[1]
            await asyncio.wait_for(asyncio.gather(*(client(port, i) for i in range(50))), 20)
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_streams_large_payload_readexactly(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    payload = _payload(17, 3 * 1024 * 1024 + 1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = int.from_bytes(await reader.readexactly(8), "big")
        data = await reader.readexactly(size)
        writer.write(hashlib.sha256(data).digest())
        writer.write(data[::-1])
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            writer.write(len(payload).to_bytes(8, "big"))
            writer.write(payload)
            await writer.drain()
            digest = await reader.readexactly(32)
            assert digest == hashlib.sha256(payload).digest()
            assert await reader.readexactly(len(payload)) == payload[::-1]
            with pytest.raises(asyncio.IncompleteReadError):
                await reader.readexactly(1)
            writer.close()
            await writer.wait_closed()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_unix_streams(loop: asyncio.AbstractEventLoop, run: Run, tmp_path: Path) -> None:
    path = str(tmp_path / "streams.sock")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()
        writer.write(data[::-1])
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_unix_server(handle, path)
        try:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"0123456789" * 1000)
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 10) == (b"0123456789" * 1000)[::-1]
            writer.close()
            await writer.wait_closed()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


# -- resource warnings ---------------------------------------------------------------------------------------------


def test_unclosed_transport_resource_warning(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    srv = _listener()

    async def main() -> tuple[weakref.ref[Any], socket.socket]:
        accept = asyncio.ensure_future(loop.sock_accept(srv))
        transport, _ = await loop.create_connection(asyncio.Protocol, *srv.getsockname())
        conn, _ = await accept
        # Stop reading so that the loop's reader callback no longer refers to the transport.
        transport.pause_reading()
        return weakref.ref(transport), conn

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ref, conn = run(main())
            gc.collect()
        assert ref() is None, "the unclosed transport was not collected"
        # (Its socket, collected in the same cycle, may warn "unclosed <socket...>" too.)
        messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        assert any(m.startswith("unclosed transport") for m in messages), messages
        # Collecting it closed its socket: the peer sees EOF.
        conn.setblocking(True)
        conn.settimeout(5)
        assert conn.recv(10) == b""
        conn.close()
    finally:
        srv.close()


def test_closed_transport_no_resource_warning(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    srv = _listener()

    async def main() -> weakref.ref[Any]:
        accept = asyncio.ensure_future(loop.sock_accept(srv))
        transport, proto = await loop.create_connection(Collector, *srv.getsockname())
        conn, _ = await accept
        transport.close()
        await asyncio.wait_for(proto.lost, 5)
        conn.close()
        return weakref.ref(transport)

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ref = run(main())
            gc.collect()
        assert ref() is None
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    finally:
        srv.close()


def test_nodelay_is_set_for_tcp_sockets_made_with_protocol_zero() -> None:
    # socket.create_server() and socket.socket(AF_INET, SOCK_STREAM) have proto 0;
    # asyncio turns TCP_NODELAY on only for proto == IPPROTO_TCP, so a two-part
    # reply on such a socket waits for the peer's delayed ACK.  treadle sets it
    # for every TCP socket (as uvloop does).
    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = socket.create_server(("127.0.0.1", 0))
        assert srv.proto == 0
        accepted: asyncio.Future[Any] = loop.create_future()

        class Server(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted.set_result(transport)

        server = await loop.create_server(Server, sock=srv)
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        assert client.proto == 0
        client.setblocking(False)
        try:
            await loop.sock_connect(client, srv.getsockname())
            transport, _ = await loop.create_connection(asyncio.Protocol, sock=client)
            server_side = await accepted
            for t in (transport, server_side):
                sock = t.get_extra_info("socket")
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            transport.close()
            server_side.close()
        finally:
            server.close()
            await server.wait_closed()

    treadle.run(main())


@pytest.mark.parametrize("view", ["int-items", "strided"])
def test_write_sends_every_byte_of_any_memoryview(view: str) -> None:
    # A transport counts bytes: a view of 4-byte items must not lose three
    # quarters of its unsent rest, nor a view with gaps fail the connection.
    # (Stock asyncio's transports have both faults, so this runs on treadle's.)
    import array

    if view == "int-items":
        data = memoryview(array.array("i", range(500_000)))
    else:
        data = memoryview(_payload(7, 2_000_000))[::2]
    expected = data.tobytes()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = _listener(rcvbuf=4096)  # a small window: the write is partial
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            transport, _ = await loop.create_connection(asyncio.Protocol, *srv.getsockname())
            conn, _ = await accept
            conn.setblocking(False)
            try:
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                transport.write(data)
                transport.write_eof()
                got = bytearray()
                while chunk := await loop.sock_recv(conn, 1 << 16):
                    got += chunk
                assert bytes(got) == expected
            finally:
                transport.close()
                conn.close()
        finally:
            srv.close()

    treadle.run(main())

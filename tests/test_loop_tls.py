"""TLS on the loop: servers and clients, streams, start_tls, verification errors, Unix sockets.

Every test runs on treadle's loop and on stock asyncio (see ``conftest.py``).
Certificates come from the session's ``tls`` fixture (trustme, for localhost,
127.0.0.1 and ::1); nothing leaves the loopback interface.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import TLS

Run = Callable[..., Any]

MIB = 1024 * 1024


def _payload(seed: int, size: int) -> bytes:
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest()
    data = bytearray((block * (size // len(block) + 1))[:size])
    for pos in range(0, size - 8, 4096):
        data[pos : pos + 8] = (pos ^ seed).to_bytes(8, "big")
    return bytes(data)


class TLSEchoServer(asyncio.Protocol):
    """Echoes back what it receives; records connection events."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received = 0
        self.events: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.received += len(data)
        self.transport.write(data)

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")


class Client(asyncio.Protocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.eof = loop.create_future()
        self._want: tuple[int, asyncio.Future[None]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        if self._want is not None and len(self.data) >= self._want[0] and not self._want[1].done():
            self._want[1].set_result(None)

    def eof_received(self) -> None:
        if not self.eof.done():
            self.eof.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.eof.done():
            self.eof.set_result(None)
        self.lost.set_result(exc)

    async def wait_for_bytes(self, n: int, timeout: float = 20) -> bytes:
        if len(self.data) < n:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._want = (n, fut)
            try:
                await asyncio.wait_for(fut, timeout)
            finally:
                self._want = None
        return bytes(self.data[:n])


def _server_factory(servers: list[TLSEchoServer]) -> Callable[[], TLSEchoServer]:
    def factory() -> TLSEchoServer:
        servers.append(TLSEchoServer())
        return servers[-1]

    return factory


# -- create_server / create_connection -------------------------------------------------------------


def test_tls_echo_1mib(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    payload = _payload(1, MIB)

    async def main() -> None:
        servers: list[TLSEchoServer] = []
        server = await loop.create_server(_server_factory(servers), "127.0.0.1", 0, ssl=tls.server_context())
        port = server.sockets[0].getsockname()[1]
        try:
            transport, proto = await loop.create_connection(
                Client, "127.0.0.1", port, ssl=tls.client_context(), server_hostname="localhost"
            )
            try:
                # What TLS exposes through get_extra_info.
                ssl_object = transport.get_extra_info("ssl_object")
                assert isinstance(ssl_object, ssl.SSLObject)
                assert ssl_object.server_hostname == "localhost"
                assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
                assert transport.get_extra_info("sslcontext") is not None
                assert transport.get_extra_info("cipher") is not None
                peercert = transport.get_extra_info("peercert")
                assert peercert is not None
                assert ("DNS", "localhost") in peercert["subjectAltName"]
                assert transport.get_extra_info("peername") == ("127.0.0.1", port)
                assert transport.get_extra_info("socket").family == socket.AF_INET
                assert not transport.can_write_eof()

                for pos in range(0, len(payload), 100_000):
                    transport.write(payload[pos : pos + 100_000])
                echoed = await proto.wait_for_bytes(len(payload))
                assert echoed == payload
                assert len(proto.data) == len(payload)
                assert servers[0].received == len(payload)
            finally:
                transport.close()
            assert await asyncio.wait_for(proto.lost, 10) is None
            # The server hears the client's close_notify.
            for _ in range(500):
                if "lost" in servers[0].events:
                    break
                await asyncio.sleep(0.01)
            assert servers[0].events[0] == "made"
            assert servers[0].events[-1] == "lost"
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_tls_many_concurrent_clients(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    async def main() -> None:
        server = await loop.create_server(TLSEchoServer, "127.0.0.1", 0, ssl=tls.server_context())
        port = server.sockets[0].getsockname()[1]
        client_ctx = tls.client_context()

        async def one(i: int) -> None:
            payload = _payload(100 + i, 20_000 + i)
            transport, proto = await loop.create_connection(
                Client, "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
            )
            try:
                transport.write(payload)
                assert await proto.wait_for_bytes(len(payload)) == payload
            finally:
                transport.close()
            await asyncio.wait_for(proto.lost, 10)

        try:
            await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(20))), 25)
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_tls_server_sends_first_and_closes(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    payload = _payload(2, MIB)

    class Sender(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.write(payload)
            transport.close()  # flushes, then close_notify

    async def main() -> None:
        server = await loop.create_server(Sender, "127.0.0.1", 0, ssl=tls.server_context())
        port = server.sockets[0].getsockname()[1]
        try:
            transport, proto = await loop.create_connection(
                Client, "127.0.0.1", port, ssl=tls.client_context(), server_hostname="localhost"
            )
            assert await asyncio.wait_for(proto.lost, 20) is None
            assert len(proto.data) == len(payload)
            assert bytes(proto.data) == payload
            assert proto.eof.done()
            transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_tls_ipv6(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")

    async def main() -> None:
        server = await loop.create_server(TLSEchoServer, "::1", 0, ssl=tls.server_context())
        port = server.sockets[0].getsockname()[1]
        try:
            transport, proto = await loop.create_connection(
                Client, "::1", port, ssl=tls.client_context(), server_hostname="::1"
            )
            transport.write(b"over v6")
            assert await proto.wait_for_bytes(7) == b"over v6"
            transport.close()
            await asyncio.wait_for(proto.lost, 10)
        finally:
            server.close()
            await server.wait_closed()

    run(main())


# -- verification failures -------------------------------------------------------------------------


def test_client_not_trusting_the_ca_fails_verification(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    async def main() -> None:
        server = await loop.create_server(TLSEchoServer, "127.0.0.1", 0, ssl=tls.server_context())
        port = server.sockets[0].getsockname()[1]
        try:
            untrusting = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # system CAs only
            with pytest.raises(ssl.SSLCertVerificationError) as info:
                await asyncio.wait_for(
                    loop.create_connection(
                        asyncio.Protocol, "127.0.0.1", port, ssl=untrusting, server_hostname="localhost"
                    ),
                    10,
                )
            assert info.value.verify_code != 0

            # Hostname mismatch with a trusted CA is a verification error too.
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.wait_for(
                    loop.create_connection(
                        asyncio.Protocol, "127.0.0.1", port, ssl=tls.client_context(), server_hostname="example.com"
                    ),
                    10,
                )

            # The server survives failed handshakes and serves a good client.
            transport, proto = await loop.create_connection(
                Client, "127.0.0.1", port, ssl=tls.client_context(), server_hostname="localhost"
            )
            transport.write(b"still serving")
            assert await proto.wait_for_bytes(13) == b"still serving"
            transport.close()
            await asyncio.wait_for(proto.lost, 10)
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_plain_client_to_tls_server_does_not_break_it(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    async def main() -> None:
        server = await loop.create_server(TLSEchoServer, "127.0.0.1", 0, ssl=tls.server_context())
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.0\r\n\r\n")  # not a TLS ClientHello
            await writer.drain()
            # The server aborts the handshake and closes: EOF or a reset, never a hang.
            try:
                data = await asyncio.wait_for(reader.read(), 10)
                assert not data.startswith(b"GET")
            except ConnectionResetError:
                pass
            writer.close()

            transport, proto = await loop.create_connection(
                Client, "127.0.0.1", port, ssl=tls.client_context(), server_hostname="localhost"
            )
            transport.write(b"ok")
            assert await proto.wait_for_bytes(2) == b"ok"
            transport.close()
            await asyncio.wait_for(proto.lost, 10)
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_tls_handshake_timeout(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    # A server that accepts and then says nothing: the client's handshake times out.
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.setblocking(False)

    async def main() -> None:
        accept = asyncio.ensure_future(loop.sock_accept(srv))
        with pytest.raises(ConnectionAbortedError):
            await asyncio.wait_for(
                loop.create_connection(
                    asyncio.Protocol,
                    *srv.getsockname(),
                    ssl=tls.client_context(),
                    server_hostname="localhost",
                    ssl_handshake_timeout=0.3,
                ),
                10,
            )
        conn, _ = await accept
        conn.close()

    try:
        run(main())
    finally:
        srv.close()


# -- streams ---------------------------------------------------------------------------------------


def test_tls_streams_1mib_both_ways(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    upload = _payload(3, MIB)
    download = _payload(4, MIB + 7)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            assert writer.get_extra_info("ssl_object") is not None
            data = await reader.readexactly(len(upload))
            assert data == upload
            writer.write(hashlib.sha256(data).digest())
            writer.write(download)
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls.server_context())
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=tls.client_context(), server_hostname="localhost"
            )
            writer.write(upload)
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(32), 20) == hashlib.sha256(upload).digest()
            got = await asyncio.wait_for(reader.read(), 20)
            assert len(got) == len(download)
            assert got == download
            writer.close()
            await writer.wait_closed()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_tls_streams_start_tls(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    """StreamWriter.start_tls on the client side, loop.start_tls under it on the server."""

    payload = _payload(5, MIB)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"GO\n")
            await writer.drain()
            await writer.start_tls(tls.server_context())
            assert writer.get_extra_info("ssl_object") is not None
            data = await reader.readexactly(len(payload))
            writer.write(data[::-1])
            await writer.drain()
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert writer.get_extra_info("ssl_object") is None
            writer.write(b"STARTTLS\n")
            assert await asyncio.wait_for(reader.readline(), 10) == b"GO\n"
            await asyncio.wait_for(writer.start_tls(tls.client_context(), server_hostname="localhost"), 10)
            assert writer.get_extra_info("ssl_object") is not None
            writer.write(payload)
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(len(payload)), 20) == payload[::-1]
            writer.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


# -- start_tls at the protocol level ---------------------------------------------------------------


def test_loop_start_tls_both_sides(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    to_server = _payload(6, MIB)
    to_client = _payload(7, MIB + 3)

    class UpgradingServer(asyncio.Protocol):
        """Plain until it reads STARTTLS, then upgrades and checks/echoes over TLS."""

        def __init__(self) -> None:
            loop_ = asyncio.get_running_loop()
            self.plain = bytearray()
            self.tls_data = bytearray()
            self.done: asyncio.Future[None] = loop_.create_future()
            self.upgraded: asyncio.Future[asyncio.Transport] = loop_.create_future()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            if not self.upgraded.done() and self.tls_data == b"" and self.transport.get_protocol() is self:
                self.plain += data
                if self.plain == b"STARTTLS\n":
                    # Stop reading plain bytes now: the ClientHello is for the TLS layer.
                    self.transport.pause_reading()
                    self.transport.write(b"GO\n")
                    asyncio.get_running_loop().create_task(self._upgrade())
                return
            self.tls_data += data
            if len(self.tls_data) == len(to_server):
                assert bytes(self.tls_data) == to_server
                tls_transport = self.upgraded.result()
                tls_transport.write(to_client)
                tls_transport.close()
                self.done.set_result(None)

        async def _upgrade(self) -> None:
            try:
                new = await loop.start_tls(self.transport, self, tls.server_context(), server_side=True)
            except BaseException as exc:
                self.upgraded.set_exception(exc)
                raise
            assert new is not None
            self.upgraded.set_result(new)

    async def main() -> None:
        servers: list[UpgradingServer] = []

        def factory() -> UpgradingServer:
            servers.append(UpgradingServer())
            return servers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            transport, proto = await loop.create_connection(Client, "127.0.0.1", port)
            transport.write(b"STARTTLS\n")
            assert await proto.wait_for_bytes(3, 10) == b"GO\n"
            proto.data.clear()
            tls_transport = await asyncio.wait_for(
                loop.start_tls(transport, proto, tls.client_context(), server_hostname="localhost"), 10
            )
            assert tls_transport is not None
            assert tls_transport.get_extra_info("ssl_object") is not None
            assert tls_transport.get_extra_info("peercert") is not None
            assert transport.get_extra_info("ssl_object") is None  # the plain one stays plain

            server_tls = await asyncio.wait_for(servers[0].upgraded, 10)
            assert server_tls.get_extra_info("ssl_object") is not None

            tls_transport.write(to_server)
            await asyncio.wait_for(servers[0].done, 20)
            assert await asyncio.wait_for(proto.lost, 20) is None
            assert len(proto.data) == len(to_client)
            assert bytes(proto.data) == to_client
            tls_transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_start_tls_refused_by_untrusting_client(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()
            writer.write(b"GO\n")
            await writer.drain()
            await writer.start_tls(tls.server_context())
        except (ssl.SSLError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            transport, proto = await loop.create_connection(Client, "127.0.0.1", port)
            transport.write(b"STARTTLS\n")
            assert await proto.wait_for_bytes(3, 10) == b"GO\n"
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.wait_for(
                    loop.start_tls(
                        transport,
                        proto,
                        ssl.create_default_context(ssl.Purpose.SERVER_AUTH),
                        server_hostname="localhost",
                    ),
                    10,
                )
            transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


# -- Unix sockets ----------------------------------------------------------------------------------


def test_tls_over_unix_socket(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS, tmp_path: Path) -> None:
    path = str(tmp_path / "tls.sock")
    payload = _payload(8, MIB)

    async def main() -> None:
        servers: list[TLSEchoServer] = []
        server = await loop.create_unix_server(_server_factory(servers), path, ssl=tls.server_context())
        try:
            transport, proto = await loop.create_unix_connection(
                Client, path, ssl=tls.client_context(), server_hostname="localhost"
            )
            try:
                assert transport.get_extra_info("ssl_object") is not None
                assert transport.get_extra_info("socket").family == socket.AF_UNIX
                transport.write(payload)
                assert await proto.wait_for_bytes(len(payload)) == payload
                assert servers[0].received == len(payload)
            finally:
                transport.close()
            assert await asyncio.wait_for(proto.lost, 10) is None

            # Unix TLS streams as well.
            reader, writer = await asyncio.open_unix_connection(
                path, ssl=tls.client_context(), server_hostname="localhost"
            )
            writer.write(b"stream over unix tls")
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(20), 10) == b"stream over unix tls"
            writer.close()
            await writer.wait_closed()

            # And an untrusting client is refused here too.
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.wait_for(
                    loop.create_unix_connection(
                        asyncio.Protocol,
                        path,
                        ssl=ssl.create_default_context(ssl.Purpose.SERVER_AUTH),
                        server_hostname="localhost",
                    ),
                    10,
                )
        finally:
            server.close()
            await server.wait_closed()

    run(main())


# -- misc ------------------------------------------------------------------------------------------


def test_tls_buffered_protocol_client(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    payload = _payload(9, MIB)

    class Sender(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.write(payload)
            transport.close()

    class BufferedClient(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(10_000)
            self.data = bytearray()
            self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint: int) -> memoryview:
            # A memoryview, not the bytearray: asyncio's TLS layer fills the buffer in
            # slices (buf[offset:]), and slicing a bytearray would copy it.
            return memoryview(self.buf)

        def buffer_updated(self, nbytes: int) -> None:
            self.data += self.buf[:nbytes]

        def eof_received(self) -> None:
            pass

        def connection_lost(self, exc: BaseException | None) -> None:
            self.lost.set_result(exc)

    async def main() -> None:
        server = await loop.create_server(Sender, "127.0.0.1", 0, ssl=tls.server_context())
        port = server.sockets[0].getsockname()[1]
        try:
            transport, proto = await loop.create_connection(
                BufferedClient, "127.0.0.1", port, ssl=tls.client_context(), server_hostname="localhost"
            )
            assert await asyncio.wait_for(proto.lost, 20) is None
            assert bytes(proto.data) == payload
            transport.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_tls_loop_sendfile_falls_back(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS, tmp_path: Path) -> None:
    content = os.urandom(300_000)
    path = tmp_path / "tls.bin"
    path.write_bytes(content)

    async def main() -> None:
        servers: list[TLSEchoServer] = []
        server = await loop.create_server(_server_factory(servers), "127.0.0.1", 0, ssl=tls.server_context())
        port = server.sockets[0].getsockname()[1]
        try:
            transport, proto = await loop.create_connection(
                Client, "127.0.0.1", port, ssl=tls.client_context(), server_hostname="localhost"
            )
            with open(path, "rb") as f:
                sent = await asyncio.wait_for(loop.sendfile(transport, f, 1000, 200_000), 20)
                assert sent == 200_000
                assert f.tell() == 201_000
            assert await proto.wait_for_bytes(200_000) == content[1000:201_000]
            transport.close()
            await asyncio.wait_for(proto.lost, 10)
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_tls_flow_control_pauses_writer(loop: asyncio.AbstractEventLoop, run: Run, tls: TLS) -> None:
    """A TLS writer to a peer that does not read gets pause_writing(), then resume_writing()."""

    class PausingClient(Client):
        def __init__(self) -> None:
            super().__init__()
            self.paused = asyncio.Event()
            self.resumed = asyncio.Event()

        def pause_writing(self) -> None:
            self.paused.set()

        def resume_writing(self) -> None:
            self.resumed.set()

    class SlowServer(asyncio.Protocol):
        def __init__(self) -> None:
            self.data = bytearray()
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            transport.pause_reading()

        def data_received(self, data: bytes) -> None:
            self.data += data

    async def main() -> None:
        servers: list[SlowServer] = []

        def factory() -> SlowServer:
            servers.append(SlowServer())
            return servers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=tls.server_context())
        port = server.sockets[0].getsockname()[1]
        try:
            transport, proto = await loop.create_connection(
                PausingClient, "127.0.0.1", port, ssl=tls.client_context(), server_hostname="localhost"
            )
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
            transport.set_write_buffer_limits(high=64 * 1024)
            sent = bytearray()
            for i in range(2048):  # at most 64 MiB
                chunk = _payload(i, 32 * 1024)
                transport.write(chunk)
                sent += chunk
                if proto.paused.is_set():
                    break
                if i % 8 == 7:
                    await asyncio.sleep(0)  # let the TLS layer push records to the socket
            assert proto.paused.is_set(), "pause_writing() was never called"
            for _ in range(500):
                if servers and servers[0].transport is not None:
                    break
                await asyncio.sleep(0.01)
            server_transport = servers[0].transport
            assert server_transport is not None
            server_transport.resume_reading()
            await asyncio.wait_for(proto.resumed.wait(), 20)
            for _ in range(2000):
                if len(servers[0].data) >= len(sent):
                    break
                await asyncio.sleep(0.01)
            assert bytes(servers[0].data) == bytes(sent)
            transport.close()
            await asyncio.wait_for(proto.lost, 10)
        finally:
            server.close()
            await server.wait_closed()

    run(main())

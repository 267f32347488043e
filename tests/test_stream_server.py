"""``serve_tcp``/``serve_unix``: green and async handlers, clients of both styles, TLS, limits and closing.

Each test runs its program with ``treadle.run``: a plain function is the main green task
(green client), a coroutine the main async task (async client).  The handler's style is
the other axis: a coroutine function runs each connection as an asyncio task, a plain
function as a green task.  Handlers report what they do through futures, so tests wait on
events, not on time; the only timeouts are those whose expiry is the point (``close``
cancelling a connection that outlives its grace period).  An autouse fixture checks that no
descriptor is left open after each test, and ResourceWarnings are errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import treadle
from treadle.concurrency.channels import ClosedResourceError
from treadle.net.stream_connect import open_tcp_stream, open_unix_stream
from treadle.net.stream_server import SocketStreamServer, serve_tcp, serve_unix
from treadle.net.streams import BrokenStreamError, ReadLimitError, SocketStream

from .conftest import TLS, ipv6_loopback_available, open_fds
from .styles import asettle, settle, spin

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


HAS_IPV6 = ipv6_loopback_available()
KINDS = [
    "tcp",
    pytest.param("tcp6", marks=pytest.mark.skipif(not HAS_IPV6, reason="no IPv6")),
    "unix",
    "tls",
    "tls-unix",
]


@pytest.fixture(autouse=True)
def no_leaked_fds() -> Iterator[None]:
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    assert open_fds() - before == set(), "a descriptor was left open"


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    """A Unix socket path in tmp_path (or, if that is too long for sun_path, in a short temporary folder)."""
    path = tmp_path / "s.sock"
    if len(os.fsencode(path)) < 100:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="tr") as short:
        yield Path(short) / "s.sock"


def serve(kind: str, handler: Any, tls: TLS, path: Path, **options: Any) -> Any:
    """Both styles: a server of ``kind`` (green: the server; async: an awaitable for it)."""
    context = tls.server_context() if kind.startswith("tls") else None
    if kind.endswith("unix"):
        return serve_unix(handler, path, ssl=context, **options)
    return serve_tcp(handler, "::1" if kind == "tcp6" else "127.0.0.1", 0, ssl=context, **options)


def connect(kind: str, server: SocketStreamServer, tls: TLS) -> Any:
    """Both styles: a client stream to ``server``."""
    context = tls.client_context() if kind.startswith("tls") else None
    if kind.endswith("unix"):
        return open_unix_stream(server.address, ssl=context, server_hostname="localhost" if context else None)
    return open_tcp_stream(server.address[0], server.port, ssl=context)


def record_errors() -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    return errors


def new_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


async def async_upper(stream: SocketStream) -> None:
    async for line in stream:
        await stream.send_all(line.upper())


def green_upper(stream: SocketStream) -> None:
    for line in stream:
        stream.send_all(line.upper())


HANDLERS = {"green": green_upper, "async": async_upper}
BIG = bytes(range(256)) * 1024  # 256 KiB, no newline: several reads and writes


# -- both styles, every transport ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("handler_style", ["green", "async"])
@pytest.mark.parametrize("client_style", ["green", "async"])
def test_echo_between_styles_and_transports(
    kind: str, handler_style: str, client_style: str, tls: TLS, sock_path: Path
) -> None:
    handler = HANDLERS[handler_style]

    def green_main() -> None:
        with serve(kind, handler, tls, sock_path) as server:
            assert server.is_serving() and server.active_connections == 0
            for _ in range(2):
                with connect(kind, server, tls) as stream:
                    stream.send_all(b"one\ntwo\n")
                    assert stream.readline() == b"ONE\n"
                    assert stream.read_until(b"\n") == b"TWO\n"
                    stream.send_all(BIG + b"\n")
                    assert stream.read_exactly(len(BIG) + 1) == BIG.upper() + b"\n"
            assert stream.is_closed()
        assert not server.is_serving()

    async def async_main() -> None:
        async with await serve(kind, handler, tls, sock_path) as server:
            for _ in range(2):
                async with await connect(kind, server, tls) as stream:
                    await stream.send_all(b"one\ntwo\n")
                    assert await stream.readline() == b"ONE\n"
                    assert await stream.read_until(b"\n") == b"TWO\n"
                    await stream.send_all(BIG + b"\n")
                    assert await stream.read_exactly(len(BIG) + 1) == BIG.upper() + b"\n"
        assert not server.is_serving()

    treadle.run(green_main) if client_style == "green" else treadle.run(async_main())


def test_tls_streams_carry_the_tls_details(tls: TLS) -> None:
    async def main() -> None:
        seen = new_future()

        async def handler(stream: SocketStream) -> None:
            seen.set_result((stream.ssl_object is not None, stream.extra("peercert")))
            await stream.send_all(b"hi")

        async with await serve_tcp(handler, "127.0.0.1", 0, ssl=tls.server_context()) as server:
            async with await open_tcp_stream("127.0.0.1", server.port, ssl=tls.client_context()) as stream:
                assert await stream.read_exactly(2) == b"hi"
                assert stream.ssl_object is not None and stream.ssl_object.version() in ("TLSv1.2", "TLSv1.3")
                assert stream.extra("peercert")["subjectAltName"]
                assert "TLS" in repr(stream)
                with pytest.raises(NotImplementedError, match="half-close"):
                    stream.send_eof()
            assert await seen == (True, None)  # the client sent no certificate

    treadle.run(main())


def test_a_failed_tls_handshake_is_not_an_error_and_the_server_goes_on(tls: TLS) -> None:
    async def main() -> None:
        errors = record_errors()
        async with await serve_tcp(async_upper, "127.0.0.1", 0, ssl=tls.server_context()) as server:
            untrusting = ssl.create_default_context()  # does not know the test CA
            with pytest.raises(ssl.SSLCertVerificationError):
                await open_tcp_stream("127.0.0.1", server.port, ssl=untrusting)
            plain = await open_tcp_stream("127.0.0.1", server.port)  # no TLS at all: the server gives up
            await plain.send_all(b"GET / HTTP/1.0\r\n\r\n")
            with contextlib.suppress(BrokenStreamError):  # the server gives up on it: an EOF or a reset
                while await plain.receive_some():
                    pass  # (perhaps a TLS alert first)
            await plain.aclose()
            async with await open_tcp_stream("127.0.0.1", server.port, ssl=tls.client_context()) as good:
                await good.send_all(b"still here\n")
                assert await good.readline() == b"STILL HERE\n"
            await asettle(lambda: server.active_connections == 0)
        assert errors == []

    treadle.run(main())


# -- listening ---------------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6")
def test_every_interface_on_one_port_for_ipv4_and_ipv6() -> None:
    def main() -> None:
        with serve_tcp(green_upper, None, 0) as server:
            families = {sock.family for sock in server.sockets}
            assert families == {socket.AF_INET, socket.AF_INET6}
            assert {address[1] for address in server.addresses} == {server.port}
            for host in ("127.0.0.1", "::1"):
                with open_tcp_stream(host, server.port) as stream:
                    stream.send_all(b"x\n")
                    assert stream.readline() == b"X\n"
                    assert stream.getpeername()[:2] == (host, server.port)
        assert server.sockets == ()

    treadle.run(main)


def test_a_host_name_is_resolved_and_a_busy_port_is_an_error() -> None:
    async def main() -> None:
        async with await serve_tcp(async_upper, "localhost", 0) as server:
            stream = await open_tcp_stream("localhost", server.port)
            await stream.send_all(b"by name\n")
            assert await stream.readline() == b"BY NAME\n"
            await stream.aclose()
            host = server.address[0]
            with pytest.raises(OSError, match="cannot listen"):
                await serve_tcp(async_upper, host, server.port)
        assert "closed" in repr(server)

    treadle.run(main())


def test_unix_socket_file_replaced_when_stale_and_removed_on_close(sock_path: Path) -> None:
    def main() -> None:
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(sock_path))
        stale.close()  # leaves the file behind
        server = serve_unix(green_upper, sock_path)
        assert server.address == str(sock_path) and server.port is None
        with open_unix_stream(sock_path) as stream:
            stream.send_all(b"unix\n")
            assert stream.readline() == b"UNIX\n"
        server.close()
        assert not sock_path.exists()
        sock_path.write_text("not a socket")
        with pytest.raises(OSError, match="cannot listen"):
            serve_unix(green_upper, sock_path)
        assert sock_path.read_text() == "not a socket"

    treadle.run(main)


def test_abstract_unix_socket() -> None:
    name = f"\0treadle-test-{os.getpid()}"

    async def main() -> None:
        async with await serve_unix(async_upper, name) as server:
            async with await open_unix_stream(name) as stream:
                await stream.send_all(b"abstract\n")
                assert await stream.readline() == b"ABSTRACT\n"
            assert server.address == name.encode()

    treadle.run(main())


# -- handlers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("handler_style", ["green", "async"])
def test_a_failing_handler_is_reported_and_the_server_goes_on(handler_style: str) -> None:
    async def failing_async(stream: SocketStream) -> None:
        if await stream.readline() == b"fail\n":
            raise ZeroDivisionError("handler bug")
        await stream.send_all(b"fine\n")

    def failing_green(stream: SocketStream) -> None:
        if stream.readline() == b"fail\n":
            raise ZeroDivisionError("handler bug")
        stream.send_all(b"fine\n")

    def main() -> None:
        errors = record_errors()
        handler = failing_green if handler_style == "green" else failing_async
        with serve_tcp(handler, "127.0.0.1", 0) as server:
            with open_tcp_stream("127.0.0.1", server.port) as stream:
                stream.send_all(b"fail\n")
                assert stream.receive_some() == b""  # the server closed it after the failure
            settle(lambda: errors)
            with open_tcp_stream("127.0.0.1", server.port) as stream:
                stream.send_all(b"ok\n")
                assert stream.readline() == b"fine\n"
        assert len(errors) == 1
        assert isinstance(errors[0]["exception"], ZeroDivisionError)
        assert "handler failed" in errors[0]["message"]
        assert isinstance(errors[0]["stream"], SocketStream)

    treadle.run(main)


def test_a_plain_handler_that_returns_a_coroutine_is_reported() -> None:
    def main() -> None:
        errors = record_errors()

        def handler(stream: SocketStream) -> Any:
            return async_upper(stream)

        with serve_tcp(handler, "127.0.0.1", 0) as server:
            with open_tcp_stream("127.0.0.1", server.port) as stream:
                assert stream.receive_some() == b""
            settle(lambda: errors)
        assert isinstance(errors[0]["exception"], TypeError)
        assert "async def" in str(errors[0]["exception"])

    treadle.run(main)


def test_handler_forms_an_async_callable_object_runs_as_an_async_task() -> None:
    class Handler:
        def __init__(self) -> None:
            self.tasks: list[Any] = []

        async def __call__(self, stream: SocketStream) -> None:
            self.tasks.append(asyncio.current_task())
            await stream.send_all(b"object\n")

    def main() -> None:
        handler = Handler()
        with serve_tcp(handler, "127.0.0.1", 0) as server:
            with open_tcp_stream("127.0.0.1", server.port) as stream:
                assert stream.readline() == b"object\n"
        assert isinstance(handler.tasks[0], asyncio.Task)

    treadle.run(main)


def test_a_handler_is_a_green_task_or_an_async_task() -> None:
    async def main() -> None:
        kinds = []

        def green(stream: SocketStream) -> None:
            kinds.append(type(treadle.getcurrent()))

        async def coro(stream: SocketStream) -> None:
            kinds.append(type(asyncio.current_task()))

        for handler in (green, coro):
            async with await serve_tcp(handler, "127.0.0.1", 0) as server:
                async with await open_tcp_stream("127.0.0.1", server.port) as stream:
                    assert await stream.receive_some() == b""
        assert issubclass(kinds[0], treadle.Greenlet) and issubclass(kinds[1], asyncio.Task)

    treadle.run(main())


def test_a_server_survives_a_client_that_never_sends_a_line_end() -> None:
    async def main() -> None:
        outcomes: list[Any] = []

        async def handler(stream: SocketStream) -> None:
            try:
                line = await stream.readline()
            except ReadLimitError as exc:
                outcomes.append(exc)
                await stream.send_all(b"line too long\n")
                return
            await stream.send_all(line.upper())

        async with await serve_tcp(handler, "127.0.0.1", 0) as server:
            flood = await open_tcp_stream("127.0.0.1", server.port)
            await flood.send_all(b"x" * 200_000)  # more than the 64 KiB limit, never a newline
            assert await flood.readline() == b"line too long\n"
            await flood.aclose()
            async with await open_tcp_stream("127.0.0.1", server.port) as polite:
                await polite.send_all(b"short\n")
                assert await polite.readline() == b"SHORT\n"
        assert len(outcomes) == 1 and isinstance(outcomes[0], ValueError)

    treadle.run(main())


# -- many connections ----------------------------------------------------------------------------


async def async_echo(stream: SocketStream) -> None:
    rng = random.Random(7)
    while data := await stream.receive_some(rng.randrange(1, 100_000)):
        await stream.send_all(data)


def green_echo(stream: SocketStream) -> None:
    rng = random.Random(7)
    while data := stream.receive_some(rng.randrange(1, 100_000)):
        stream.send_all(data)


@pytest.mark.parametrize(
    ("kind", "connections", "max_connections"),
    [("tcp", 300, None), ("tcp", 300, 20), ("unix", 200, 20), ("tls", 40, None)],
)
@pytest.mark.parametrize("handler_style", ["green", "async"])
def test_many_connections_echo_every_byte_whatever_the_sizes_and_splits(
    kind: str, connections: int, max_connections: int | None, handler_style: str, tls: TLS, sock_path: Path
) -> None:
    # Green and async clients at once, each sending a random amount in random pieces (with switches
    # between some) and reading it back in random amounts while it sends.
    rng = random.Random(f"{kind}-{connections}-{max_connections}-{handler_style}")
    sizes = [rng.choice([0, 1, 65536, 65537, rng.randrange(1, 100_000)]) for _ in range(connections)]
    payloads = [rng.randbytes(size) for size in sizes]
    handler = green_echo if handler_style == "green" else async_echo

    def green_client(server: SocketStreamServer, payload: bytes, seed: int) -> bytes:
        r = random.Random(seed)
        with connect(kind, server, tls) as stream:
            sender = treadle.spawn(send_in_pieces_green, stream, payload, r)
            received = bytearray()
            while len(received) < len(payload):
                received += stream.receive_some(r.randrange(1, 100_000))
            sender.get()
            return bytes(received)

    def send_in_pieces_green(stream: SocketStream, payload: bytes, r: random.Random) -> None:
        for start, end in pieces(payload, r):
            stream.send_all(payload[start:end])
            if r.random() < 0.3:
                treadle.sleep(0)

    async def async_client(server: SocketStreamServer, payload: bytes, seed: int) -> bytes:
        r = random.Random(seed)
        async with await connect(kind, server, tls) as stream:

            async def send() -> None:
                for start, end in pieces(payload, r):
                    await stream.send_all(payload[start:end])
                    if r.random() < 0.3:
                        await asyncio.sleep(0)

            sender = asyncio.get_running_loop().create_task(send())
            received = bytearray()
            while len(received) < len(payload):
                received += await stream.receive_some(r.randrange(1, 100_000))
            await sender
            return bytes(received)

    async def main() -> None:
        options: dict[str, Any] = {"backlog": connections, "max_connections": max_connections}
        async with await serve(kind, handler, tls, sock_path, **options) as server:
            clients = [
                treadle.spawn(green_client, server, payload, i) if i % 2 else async_client(server, payload, i)
                for i, payload in enumerate(payloads)
            ]
            with treadle.fail_after(60):
                assert await asyncio.gather(*clients) == payloads
            await asettle(lambda: server.active_connections == 0)

    treadle.run(main())


def pieces(payload: bytes, r: random.Random) -> Iterator[tuple[int, int]]:
    start = 0
    while start < len(payload):
        end = min(len(payload), start + r.randrange(1, 70_000))
        yield start, end
        start = end


# -- max_connections ----------------------------------------------------------------------------


@pytest.mark.parametrize("handler_style", ["green", "async"])
def test_max_connections_serves_the_next_one_only_after_one_closes(handler_style: str) -> None:
    def main() -> None:
        served: list[bytes] = []

        def green_handler(stream: SocketStream) -> None:
            name = stream.readline()
            served.append(name)
            stream.send_all(b"hello " + name)
            stream.receive_some()  # until the client closes

        async def async_handler(stream: SocketStream) -> None:
            name = await stream.readline()
            served.append(name)
            await stream.send_all(b"hello " + name)
            await stream.receive_some()

        handler = green_handler if handler_style == "green" else async_handler
        with serve_tcp(handler, "127.0.0.1", 0, max_connections=2) as server:
            assert server.max_connections == 2
            clients = [open_tcp_stream("127.0.0.1", server.port) for _ in range(3)]
            for i, client in enumerate(clients):
                client.send_all(b"%d\n" % i)
            assert clients[0].readline() == b"hello 0\n"
            assert clients[1].readline() == b"hello 1\n"
            waiting = treadle.spawn(clients[2].readline)
            spin(200)
            assert served == [b"0\n", b"1\n"] and server.active_connections == 2
            assert not waiting.ready()  # connected (in the backlog), not served
            clients[0].close()
            assert waiting.get(timeout=10) == b"hello 2\n"
            assert served == [b"0\n", b"1\n", b"2\n"]
            for client in clients[1:]:
                client.close()
            settle(lambda: server.active_connections == 0)

    treadle.run(main)


# -- closing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("handler_style", ["green", "async"])
def test_close_lets_a_connection_finish_within_the_timeout(handler_style: str) -> None:
    def main() -> None:
        log: list[str] = []
        started = new_future()

        def green_handler(stream: SocketStream) -> None:
            try:
                started.set_result(None)
                stream.send_all(b"got " + stream.readline())
                log.append("finished")
            except asyncio.CancelledError:
                log.append("cancelled")
                raise

        async def async_handler(stream: SocketStream) -> None:
            try:
                started.set_result(None)
                await stream.send_all(b"got " + await stream.readline())
                log.append("finished")
            except asyncio.CancelledError:
                log.append("cancelled")
                raise

        server = serve_tcp(green_handler if handler_style == "green" else async_handler, "127.0.0.1", 0)
        client = open_tcp_stream("127.0.0.1", server.port)
        treadle.await_(started)
        closing = treadle.spawn(server.close, 30)
        settle(lambda: not server.is_serving())
        with pytest.raises(ConnectionRefusedError):  # it stopped accepting at once
            open_tcp_stream("127.0.0.1", server.port)
        spin()
        assert not closing.ready() and log == []  # the live connection may finish
        client.send_all(b"last words\n")
        assert client.readline() == b"got last words\n"
        closing.get(timeout=10)
        assert log == ["finished"] and server.active_connections == 0
        assert client.receive_some() == b""
        client.close()

    treadle.run(main)


@pytest.mark.parametrize("handler_style", ["green", "async"])
@pytest.mark.parametrize("timeout", [0, 0.1])
def test_close_cancels_a_connection_that_outlives_the_timeout(handler_style: str, timeout: float) -> None:
    async def main() -> None:
        errors = record_errors()
        log: list[str] = []
        started = new_future()

        def green_handler(stream: SocketStream) -> None:
            try:
                started.set_result(None)
                stream.readline()  # the client never sends one
            except asyncio.CancelledError:
                log.append("cancelled")
                raise
            finally:
                log.append("finally")

        async def async_handler(stream: SocketStream) -> None:
            try:
                started.set_result(None)
                await stream.readline()
            except asyncio.CancelledError:
                log.append("cancelled")
                raise
            finally:
                log.append("finally")

        server = await serve_tcp(green_handler if handler_style == "green" else async_handler, "127.0.0.1", 0)
        client = await open_tcp_stream("127.0.0.1", server.port)
        await started
        await server.aclose(timeout)
        assert log == ["cancelled", "finally"] and server.active_connections == 0
        assert await client.receive_some() == b""  # the server closed the connection
        await client.aclose()
        assert errors == []  # a cancelled connection is not a failure

    treadle.run(main())


@pytest.mark.parametrize("handler_style", ["green", "async"])
def test_close_cancels_a_handler_inside_a_shielded_scope_and_its_cleanup_still_runs(handler_style: str) -> None:
    # close() cancels connection tasks as tasks (as a TaskGroup its children): a shield in the handler
    # does not hold that back, so the timeout bounds the close; a shielded cleanup then runs whole.
    async def main() -> None:
        log: list[str] = []
        started = new_future()

        def green_handler(stream: SocketStream) -> None:
            started.set_result(None)
            try:
                with treadle.CancelScope(shield=True):
                    stream.readline()  # the client never sends one
            finally:
                with treadle.CancelScope(shield=True):
                    treadle.sleep(0.01)
                    stream.send_all(b"bye\n")
                log.append("cleaned up")

        async def async_handler(stream: SocketStream) -> None:
            started.set_result(None)
            try:
                with treadle.CancelScope(shield=True):
                    await stream.readline()
            finally:
                with treadle.CancelScope(shield=True):
                    await treadle.sleep(0.01)
                    await stream.send_all(b"bye\n")
                log.append("cleaned up")

        server = await serve_tcp(green_handler if handler_style == "green" else async_handler, "127.0.0.1", 0)
        client = await open_tcp_stream("127.0.0.1", server.port)
        await started
        with treadle.fail_after(10):
            await server.aclose(0.05)
        assert log == ["cleaned up"] and server.active_connections == 0
        assert await client.readline() == b"bye\n"
        assert await client.receive_some() == b""
        await client.aclose()

    treadle.run(main())


@pytest.mark.parametrize("handler_style", ["green", "async"])
@pytest.mark.parametrize("caller_style", ["green", "async"])
@pytest.mark.parametrize("deadline", [0, 0.02])
def test_a_close_that_is_cancelled_has_ended_every_connection_when_it_raises(
    caller_style: str, handler_style: str, deadline: float
) -> None:
    # The deadline ends close()'s wait: the connections are cancelled, and waited for, as when a
    # close(timeout) expires; nothing of them is left running when the scope is left.  A deadline
    # already past cancels close() at its first switch point, before its closing task has started.
    log: list[str] = []

    def green_handler(stream: SocketStream) -> None:
        try:
            stream.readline()  # the client never sends one
        finally:
            with treadle.CancelScope(shield=True):
                treadle.sleep(0.05)  # a cleanup that takes a while
            log.append("cleaned up")

    async def async_handler(stream: SocketStream) -> None:
        try:
            await stream.readline()
        finally:
            with treadle.CancelScope(shield=True):
                await treadle.sleep(0.05)
            log.append("cleaned up")

    handler = green_handler if handler_style == "green" else async_handler

    def green_main() -> None:
        server = serve_tcp(handler, "127.0.0.1", 0)
        client = open_tcp_stream("127.0.0.1", server.port)
        settle(lambda: server.active_connections == 1)
        spin()
        with treadle.move_on_after(deadline) as scope:
            server.close()
        assert scope.cancelled_caught
        assert log == ["cleaned up"] and server.active_connections == 0
        assert client.receive_some() == b""
        client.close()

    async def async_main() -> None:
        server = await serve_tcp(handler, "127.0.0.1", 0)
        client = await open_tcp_stream("127.0.0.1", server.port)
        await asettle(lambda: server.active_connections == 1)
        await asyncio.sleep(0)
        with treadle.move_on_after(deadline) as scope:
            await server.aclose()
        assert scope.cancelled_caught
        assert log == ["cleaned up"] and server.active_connections == 0
        assert await client.receive_some() == b""
        await client.aclose()

    treadle.run(green_main) if caller_style == "green" else treadle.run(async_main())


@pytest.mark.parametrize("handler_style", ["green", "async"])
@pytest.mark.parametrize("turns", [0, 10])
def test_close_at_once_closes_connections_not_yet_handled_or_in_a_tls_handshake(
    handler_style: str, turns: int, tls: TLS
) -> None:
    async def main() -> None:
        handled: list[Any] = []

        def green(stream: SocketStream) -> None:
            handled.append(stream)

        async def coro(stream: SocketStream) -> None:
            handled.append(stream)

        for context in (None, tls.server_context()):
            server = await serve_tcp(green if handler_style == "green" else coro, "127.0.0.1", 0, ssl=context)
            raw = socket.create_connection(("127.0.0.1", server.port))  # sends nothing: no handshake
            raw.setblocking(False)
            before = open_fds()
            await asettle(lambda s=server: s.active_connections == 1)  # accepted: its task exists
            for _ in range(turns):  # with turns, the task has started (and a TLS handshake waits)
                await asyncio.sleep(0)
            await server.aclose(0)
            assert open_fds() - before == set()  # every socket the server had is closed now
            loop = asyncio.get_running_loop()
            assert await asyncio.wait_for(loop.sock_recv(raw, 10), 10) == b""  # closed, not lost
            raw.close()
        assert len(handled) <= (2 if turns else 0)  # plain connections may have been served at once

    treadle.run(main())


def test_close_called_from_a_handler_does_not_wait_for_that_handler() -> None:
    async def main() -> None:
        order: list[str] = []

        async def handler(stream: SocketStream) -> None:
            if await stream.readline() == b"shutdown\n":
                await server.aclose(None)
                order.append("closed from the handler")
                await stream.send_all(b"bye\n")

        server = await serve_tcp(handler, "127.0.0.1", 0)
        forever = asyncio.get_running_loop().create_task(server.serve_forever())
        async with await open_tcp_stream("127.0.0.1", server.port) as stream:
            await stream.send_all(b"shutdown\n")
            assert await stream.readline() == b"bye\n"
        await asyncio.wait_for(forever, 10)
        order.append("serve_forever returned")
        assert order == ["closed from the handler", "serve_forever returned"]

    treadle.run(main())


@pytest.mark.parametrize("handler_style", ["green", "async"])
def test_two_handlers_closing_the_server_at_once_do_not_wait_for_each_other(handler_style: str) -> None:
    servers: list[SocketStreamServer] = []

    async def async_handler(stream: SocketStream) -> None:
        if await stream.readline() == b"shutdown\n":
            await servers[0].aclose(None)
            await stream.send_all(b"bye\n")

    def green_handler(stream: SocketStream) -> None:
        if stream.readline() == b"shutdown\n":
            servers[0].close(None)
            stream.send_all(b"bye\n")

    def main() -> None:
        servers.append(serve_tcp(green_handler if handler_style == "green" else async_handler, "127.0.0.1", 0))
        clients = [open_tcp_stream("127.0.0.1", servers[0].port) for _ in range(2)]
        settle(lambda: servers[0].active_connections == 2)
        for client in clients:
            client.send_all(b"shutdown\n")  # both handlers call close() in the same moment
        with treadle.fail_after(10):
            assert [client.readline() for client in clients] == [b"bye\n", b"bye\n"]
            servers[0].serve_forever()
        for client in clients:
            assert client.receive_some() == b""
            client.close()

    treadle.run(main)


@pytest.mark.parametrize("handler_style", ["green", "async"])
def test_a_close_from_outside_ends_a_handler_that_waits_in_close_too(handler_style: str) -> None:
    servers: list[SocketStreamServer] = []
    log: list[str] = []

    async def async_handler(stream: SocketStream) -> None:
        if await stream.readline() == b"shutdown\n":
            try:
                await servers[0].aclose(None)  # waits for the other connection, which stays
            finally:
                log.append("closer ended")

    def green_handler(stream: SocketStream) -> None:
        if stream.readline() == b"shutdown\n":
            try:
                servers[0].close(None)
            finally:
                log.append("closer ended")

    def main() -> None:
        servers.append(serve_tcp(green_handler if handler_style == "green" else async_handler, "127.0.0.1", 0))
        idle, closer = (open_tcp_stream("127.0.0.1", servers[0].port) for _ in range(2))
        settle(lambda: servers[0].active_connections == 2)
        closer.send_all(b"shutdown\n")
        settle(lambda: not servers[0].is_serving())
        spin()
        with treadle.fail_after(10):
            servers[0].close(0)
        assert servers[0].active_connections == 0 and log == ["closer ended"]
        idle.close()
        closer.close()

    treadle.run(main)


@pytest.mark.parametrize("handler_style", ["green", "async"])
def test_close_called_from_an_async_task_of_a_handler_does_not_wait_for_that_handler(handler_style: str) -> None:
    # The handler waits for its TaskGroup, whose child waits for close(): close must not wait for the handler.
    order: list[str] = []

    async def shutdown_command(stream: SocketStream, server: SocketStreamServer) -> None:
        if await stream.readline() == b"shutdown\n":
            await server.aclose(None)
            order.append("closed from the handler's task")
            await stream.send_all(b"bye\n")

    async def async_handler(stream: SocketStream) -> None:
        async with treadle.TaskGroup() as tg:
            tg.create_task(shutdown_command(stream, servers[0]))

    def green_handler(stream: SocketStream) -> None:
        with treadle.TaskGroup() as tg:
            tg.create_task(shutdown_command(stream, servers[0]))

    servers: list[SocketStreamServer] = []

    def main() -> None:
        servers.append(serve_tcp(green_handler if handler_style == "green" else async_handler, "127.0.0.1", 0))
        with open_tcp_stream("127.0.0.1", servers[0].port) as stream:
            stream.send_all(b"shutdown\n")
            with treadle.fail_after(10):
                assert stream.readline() == b"bye\n"
                assert stream.receive_some() == b""
                servers[0].serve_forever()
        assert order == ["closed from the handler's task"] and servers[0].active_connections == 0

    treadle.run(main)


@pytest.mark.parametrize("style", ["green", "async"])
def test_serve_forever_waits_until_closed_and_its_cancellation_closes_the_server(style: str) -> None:
    def green_main() -> None:
        server = serve_tcp(green_upper, "127.0.0.1", 0)
        forever = treadle.spawn(server.serve_forever)
        spin()
        assert not forever.ready()
        server.close()
        forever.get(timeout=10)
        # Cancelled: the server closes, and its connections are cancelled.
        server = serve_tcp(green_upper, "127.0.0.1", 0)
        client = open_tcp_stream("127.0.0.1", server.port)
        forever = treadle.spawn(server.serve_forever)
        settle(lambda: server.active_connections == 1 and forever.started)
        forever.kill()
        assert forever.cancelled() and not server.is_serving() and server.active_connections == 0
        assert client.receive_some() == b""
        client.close()

    async def async_main() -> None:
        server = await serve_tcp(async_upper, "127.0.0.1", 0)
        forever = asyncio.get_running_loop().create_task(server.serve_forever())
        await asyncio.sleep(0)
        assert not forever.done()
        server.close()  # not awaited: the closing goes on by itself
        await asyncio.wait_for(forever, 10)
        server = await serve_tcp(async_upper, "127.0.0.1", 0)
        client = await open_tcp_stream("127.0.0.1", server.port)
        forever = asyncio.get_running_loop().create_task(server.serve_forever())
        await asyncio.sleep(0)  # it is waiting
        await asettle(lambda: server.active_connections == 1)
        forever.cancel()
        with pytest.raises(asyncio.CancelledError):
            await forever
        assert not server.is_serving() and server.active_connections == 0
        assert await client.receive_some() == b""
        await client.aclose()

    treadle.run(green_main) if style == "green" else treadle.run(async_main())


def test_closing_the_client_ends_the_handler_and_its_stream() -> None:
    def main() -> None:
        streams: list[SocketStream] = []

        def handler(stream: SocketStream) -> None:
            streams.append(stream)
            assert stream.receive_some() == b""

        with serve_tcp(handler, "127.0.0.1", 0) as server:
            open_tcp_stream("127.0.0.1", server.port).close()
            settle(lambda: streams and server.active_connections == 0)
            assert streams[0].is_closed()
            with pytest.raises(ClosedResourceError):
                streams[0].receive_some()

    treadle.run(main)


@pytest.mark.parametrize("handler_style", ["green", "async"])
@pytest.mark.parametrize("serve_style", ["green", "async"])
def test_a_server_started_in_a_task_group_is_closed_with_its_connections_when_the_group_is_cancelled(
    serve_style: str, handler_style: str
) -> None:
    log: list[str] = []

    def green_handler(stream: SocketStream) -> None:
        try:
            for line in stream:
                stream.send_all(line.upper())
        finally:
            log.append("handler ended")

    async def async_handler(stream: SocketStream) -> None:
        try:
            async for line in stream:
                await stream.send_all(line.upper())
        finally:
            log.append("handler ended")

    handler = green_handler if handler_style == "green" else async_handler

    def green_serve(task_status: treadle.TaskStatus) -> None:
        with serve_tcp(handler, "127.0.0.1", 0) as server:
            task_status.started(server)
            server.serve_forever()

    async def async_serve(task_status: treadle.TaskStatus) -> None:
        async with await serve_tcp(handler, "127.0.0.1", 0) as server:
            task_status.started(server)
            await server.serve_forever()

    async def main() -> None:
        async with treadle.TaskGroup() as tg:
            server = await tg.start(green_serve if serve_style == "green" else async_serve)
            client = await open_tcp_stream("127.0.0.1", server.port)
            await client.send_all(b"hi\n")
            assert await client.readline() == b"HI\n"
            tg.cancel()
        assert not server.is_serving() and server.active_connections == 0 and log == ["handler ended"]
        assert await client.receive_some() == b""
        await client.aclose()

    treadle.run(main())


# -- on stock asyncio, and bad input ------------------------------------------------------------


def test_async_handlers_and_clients_run_on_stock_asyncio() -> None:
    async def main() -> None:
        async with await serve_tcp(async_upper, "127.0.0.1", 0) as server:
            async with await open_tcp_stream("127.0.0.1", server.port) as stream:
                await stream.send_all(b"stock\n")
                assert await stream.readline() == b"STOCK\n"
        with pytest.raises(RuntimeError, match="treadle loop"):
            await serve_tcp(green_upper, "127.0.0.1", 0)

    asyncio.run(main())


PATCHED_PROGRAM = """
import treadle.monkey
treadle.monkey.patch_all()
import treadle
from treadle.net.stream_server import serve_tcp
from treadle.net.stream_connect import open_tcp_stream

def handler(stream):
    stream.send_all(stream.readline().upper())

def main():
    with serve_tcp(handler, "127.0.0.1", 0, max_connections=1) as server:
        for word in (b"one", b"two"):
            with open_tcp_stream("127.0.0.1", server.port) as stream:
                stream.send_all(word + b"\\n")
                print(stream.readline().decode().strip())

treadle.run(main)
"""


def test_streams_and_servers_under_patch_all() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", PATCHED_PROGRAM],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ONE", "TWO"] and result.stderr == ""


def test_bad_arguments_raise_at_the_call(tls: TLS) -> None:
    async def gen(stream: SocketStream) -> Any:
        yield

    def main() -> None:
        for handler in (None, 3, SocketStream, gen):
            with pytest.raises(TypeError, match="handler"):
                serve_tcp(handler, "127.0.0.1", 0)
        with pytest.raises(TypeError, match="host"):
            serve_tcp(green_upper, 127, 0)
        with pytest.raises(TypeError, match="port"):
            serve_tcp(green_upper, "127.0.0.1", "80")
        with pytest.raises(ValueError, match="port"):
            serve_tcp(green_upper, "127.0.0.1", 70000)
        with pytest.raises(TypeError, match="SSLContext"):
            serve_tcp(green_upper, "127.0.0.1", 0, ssl=True)
        with pytest.raises(ValueError, match="backlog"):
            serve_tcp(green_upper, "127.0.0.1", 0, backlog=0)
        with pytest.raises(TypeError, match="max_connections"):
            serve_tcp(green_upper, "127.0.0.1", 0, max_connections=True)
        with pytest.raises(ValueError, match="max_connections"):
            serve_unix(green_upper, "/tmp/x", max_connections=0)
        with pytest.raises(TypeError, match="path"):
            serve_unix(green_upper, 3)
        with pytest.raises(ValueError, match="path"):
            serve_unix(green_upper, "")
        with serve_tcp(green_upper, "127.0.0.1", 0) as server:
            with pytest.raises(TypeError, match="timeout"):
                server.close("soon")
            with pytest.raises(ValueError, match="timeout"):
                server.close(-1)
        server.close()  # closing twice is allowed

    treadle.run(main)

    async def async_main() -> None:
        server = await serve_tcp(async_upper, "127.0.0.1", 0)
        with pytest.raises(treadle.BlockingInHubError, match="async with"):
            with server:
                pass
        await server.aclose()

    treadle.run(async_main())

"""Green TLS: ``treadle.ssl``, whose sockets handshake, read and write by switching to the hub.

Every test runs its program with ``treadle.run(main)`` (``main`` is the main green task);
client and server are green tasks of one loop, on loopback, with real certificates from
the session's ``tls`` fixture (a trustme CA; the certificate is for localhost, 127.0.0.1
and ::1).  Green contexts are made with ``treadle.ssl.SSLContext`` or by passing a
standard context through ``treadle.ssl.green_context``.
"""

from __future__ import annotations

import asyncio
import errno
import random
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

import treadle
import treadle.socket as gsocket
import treadle.ssl as gssl

from .conftest import TLS

MIB = 1024 * 1024


# -- helpers ---------------------------------------------------------------------------


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def server_context(tls: TLS) -> ssl.SSLContext:
    ctx = gssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.cert.configure_cert(ctx)
    return ctx


def client_context(tls: TLS) -> ssl.SSLContext:
    ctx = gssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the host name
    tls.ca.configure_trust(ctx)
    return ctx


def recv_exactly(sock: Any, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 256 * 1024))
        assert chunk, f"EOF after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def recv_until_eof(sock: Any) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def tls_client(tls: TLS, address: Any, ctx: ssl.SSLContext | None = None) -> Any:
    """A green TLS client connected (and handshaken) to ``address``. Green code only."""
    sock = gsocket.create_connection(address)
    return (ctx or client_context(tls)).wrap_socket(sock, server_hostname="localhost")


# -- the module --------------------------------------------------------------------------


def test_module_has_every_public_name_of_the_standard_ssl_module() -> None:
    missing = [name for name in dir(ssl) if not name.startswith("_") and not hasattr(gssl, name)]
    assert missing == []
    assert gssl.SSLError is ssl.SSLError and gssl.CERT_REQUIRED is ssl.CERT_REQUIRED
    assert gssl.SSLCertVerificationError is ssl.SSLCertVerificationError
    assert issubclass(gssl.SSLContext, ssl.SSLContext) and gssl.SSLContext is not ssl.SSLContext
    assert issubclass(gssl.SSLSocket, ssl.SSLSocket) and issubclass(gssl.SSLSocket, gsocket.socket)
    ctx = gssl.create_default_context()
    assert isinstance(ctx, ssl.SSLContext) and ctx.sslsocket_class is gssl.SSLSocket
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


# -- client and server ---------------------------------------------------------------------


def test_green_tls_client_and_server_exchange_1_mib_each_way(tls: TLS) -> None:
    request = payload(1, MIB)
    reply = payload(2, MIB)

    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        sctx = server_context(tls)

        def server() -> bytes:
            conn, _ = listener.accept()
            tconn = sctx.wrap_socket(conn, server_side=True)  # the handshake runs here
            assert isinstance(tconn, gssl.SSLSocket)
            data = recv_exactly(tconn, len(request))
            tconn.sendall(reply)
            tconn.close()
            return data

        task = treadle.spawn(server)
        tsock = tls_client(tls, listener.getsockname())
        assert isinstance(tsock, gssl.SSLSocket)
        assert tsock.version() in ("TLSv1.2", "TLSv1.3")
        cert = tsock.getpeercert()
        assert ("DNS", "localhost") in cert["subjectAltName"]
        tsock.sendall(request)
        got = recv_exactly(tsock, len(reply))
        assert task.get() == request
        assert got == reply
        assert recv_until_eof(tsock) == b""
        tsock.close()
        listener.close()

    treadle.run(main)


def test_several_tls_connections_run_concurrently_on_a_tls_listening_socket(tls: TLS) -> None:
    count = 6

    def main() -> None:
        listener = server_context(tls).wrap_socket(gsocket.create_server(("127.0.0.1", 0)), server_side=True)
        assert isinstance(listener, gssl.SSLSocket)

        def serve(conn: Any) -> None:
            with conn:
                conn.sendall(recv_exactly(conn, 64 * 1024)[::-1])

        def server() -> list[treadle.Greenlet]:
            tasks = []
            for _ in range(count):
                conn, _addr = listener.accept()  # a green TLS socket, handshaken
                assert isinstance(conn, gssl.SSLSocket) and conn.version() is not None
                tasks.append(treadle.spawn(serve, conn))
            return tasks

        def client(i: int) -> bool:
            data = payload(100 + i, 64 * 1024)
            with tls_client(tls, listener.getsockname()) as t:
                t.sendall(data)
                return recv_exactly(t, len(data)) == data[::-1]

        server_task = treadle.spawn(server)
        clients = [treadle.spawn(client, i) for i in range(count)]
        assert [c.get() for c in clients] == [True] * count
        for t in server_task.get():
            t.get()
        listener.close()

    treadle.run(main)


def test_a_client_that_does_not_trust_the_ca_gets_a_verification_error(tls: TLS) -> None:
    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        sctx = server_context(tls)

        def server() -> list[str]:
            outcomes = []
            for _ in range(2):
                conn, _ = listener.accept()
                try:
                    sctx.wrap_socket(conn, server_side=True).close()
                    outcomes.append("handshake done")
                except (ssl.SSLError, ConnectionError) as exc:
                    outcomes.append(type(exc).__name__)
                    conn.close()
            return outcomes

        task = treadle.spawn(server)
        # No trust in the test CA: the system's CAs only.
        untrusting = gssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            tls_client(tls, listener.getsockname(), untrusting)
        assert info.value.verify_code != 0
        # Trusting the CA but asking for another name fails too.
        sock = gsocket.create_connection(listener.getsockname())
        with pytest.raises(ssl.SSLCertVerificationError, match="example.com|[Hh]ostname"):
            client_context(tls).wrap_socket(sock, server_hostname="example.com")
        outcomes = task.get()
        assert len(outcomes) == 2 and "handshake done" not in outcomes
        listener.close()

    treadle.run(main)


def test_handshake_timeout_with_a_peer_that_never_speaks_tls(tls: TLS) -> None:
    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))

        def silent_peer() -> bytes:
            conn, _ = listener.accept()
            with conn:
                return recv_until_eof(conn)  # takes the ClientHello, never answers

        peer = treadle.spawn(silent_peer)
        sock = gsocket.create_connection(listener.getsockname())
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            client_context(tls).wrap_socket(sock, server_hostname="localhost")
        hello = peer.get()  # the failed client closed its socket: the peer saw EOF
        assert hello[:1] == b"\x16"  # a TLS handshake record was sent

        # The same through SSLSocket.connect (handshake on connect, the timeout set before).
        peer = treadle.spawn(silent_peer)
        tsock = client_context(tls).wrap_socket(gsocket.socket(), server_hostname="localhost")
        tsock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            tsock.connect(listener.getsockname())
        tsock.close()
        assert peer.get()[:1] == b"\x16"
        listener.close()

    treadle.run(main)


def test_a_read_on_an_established_tls_socket_honours_its_timeout(tls: TLS) -> None:
    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        sctx = server_context(tls)
        accepted: list[Any] = []

        def server() -> None:
            conn, _ = listener.accept()
            accepted.append(sctx.wrap_socket(conn, server_side=True))

        task = treadle.spawn(server)
        tsock = tls_client(tls, listener.getsockname())
        task.get()
        tsock.settimeout(0.05)
        with pytest.raises(TimeoutError):
            tsock.recv(10)
        accepted[0].sendall(b"late data")
        assert recv_exactly(tsock, 9) == b"late data"
        tsock.setblocking(False)
        with pytest.raises(ssl.SSLWantReadError):
            tsock.recv(10)
        tsock.close()
        accepted[0].close()
        listener.close()

    treadle.run(main)


def test_unwrap_on_both_sides_returns_to_plaintext(tls: TLS) -> None:
    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        sctx = server_context(tls)

        def server() -> bytes:
            conn, _ = listener.accept()
            t = sctx.wrap_socket(conn, server_side=True)
            assert recv_exactly(t, 9) == b"encrypted"
            t.sendall(b"ENCRYPTED")
            plain = t.unwrap()
            data = recv_exactly(plain, 11)
            plain.sendall(data.upper())
            plain.close()
            return data

        task = treadle.spawn(server)
        raw = gsocket.create_connection(listener.getsockname())
        t = client_context(tls).wrap_socket(raw, server_hostname="localhost")
        t.sendall(b"encrypted")
        assert recv_exactly(t, 9) == b"ENCRYPTED"
        plain = t.unwrap()
        assert isinstance(plain, gsocket.socket)
        with pytest.raises(ValueError, match="No SSL wrapper"):
            t.unwrap()  # already unwrapped
        plain.sendall(b"plain hello")
        assert recv_exactly(plain, 11) == b"PLAIN HELLO"
        assert task.get() == b"plain hello"
        assert plain.recv(10) == b""
        plain.close()
        listener.close()

    treadle.run(main)


def test_sendfile_over_tls_sends_a_real_file(tls: TLS, tmp_path: Path) -> None:
    data = payload(7, MIB + 4321)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)

    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        sctx = server_context(tls)

        def server() -> bytes:
            conn, _ = listener.accept()
            with sctx.wrap_socket(conn, server_side=True) as t:
                return recv_exactly(t, len(data) + 1000)

        task = treadle.spawn(server)
        t = tls_client(tls, listener.getsockname())
        with path.open("rb") as f:
            assert t.sendfile(f) == len(data)
            assert t.sendfile(f, 5000, 1000) == 1000
        assert task.get() == data + data[5000:6000]
        t.close()
        listener.close()

    treadle.run(main)


def test_green_context_makes_a_standard_context_wrap_green_sockets(tls: TLS) -> None:
    def main() -> None:
        std_client = tls.client_context()
        std_server = tls.server_context()
        assert type(std_client) is ssl.SSLContext
        assert gssl.green_context(std_client) is std_client
        assert gssl.green_context(std_server) is std_server
        listener = gsocket.create_server(("127.0.0.1", 0))

        def server() -> bytes:
            conn, _ = listener.accept()
            with std_server.wrap_socket(conn, server_side=True) as t:
                assert isinstance(t, gssl.SSLSocket)
                data = recv_exactly(t, 5)
                t.sendall(data[::-1])
                return data

        task = treadle.spawn(server)
        # A standard (blocking) socket, not yet connected: the green TLS socket takes
        # its descriptor, and connect + handshake wait on the hub.
        tsock = std_client.wrap_socket(socket.socket(), server_hostname="localhost")
        assert isinstance(tsock, gssl.SSLSocket) and isinstance(tsock, gsocket.socket)
        assert tsock.gettimeout() is None
        tsock.connect(listener.getsockname())
        tsock.sendall(b"hello")
        assert recv_exactly(tsock, 5) == b"olleh"
        assert task.get() == b"hello"
        tsock.close()
        listener.close()

        # treadle.ssl.SSLContext.wrap_socket adopts a standard connected socket too.
        listener = gsocket.create_server(("127.0.0.1", 0))
        task = treadle.spawn(server)
        plain = gsocket.create_connection(listener.getsockname())
        std_sock = socket.socket(plain.family, plain.type, plain.proto, plain.detach())
        tsock = client_context(tls).wrap_socket(std_sock, server_hostname="localhost")
        assert isinstance(tsock, gssl.SSLSocket)
        tsock.sendall(b"again")
        assert recv_exactly(tsock, 5) == b"niaga"
        assert task.get() == b"again"
        tsock.close()
        listener.close()

    treadle.run(main)


def test_green_tls_clients_talk_to_an_asyncio_tls_server_on_the_same_loop(tls: TLS) -> None:
    chunk = 16 * 1024
    chunks = 16
    count = 4

    def main() -> None:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda lp, context: errors.append(context))
        handled: list[int] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            total = 0
            for _ in range(chunks):
                data = await reader.readexactly(chunk)
                writer.write(data.upper())
                await writer.drain()
                total += len(data)
            handled.append(total)
            writer.close()
            await writer.wait_closed()

        server = treadle.await_(asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls.server_context()))
        address = server.sockets[0].getsockname()

        def client(i: int) -> None:
            data = payload(200 + i, chunk * chunks)
            t = tls_client(tls, address)
            for pos in range(0, len(data), chunk):
                t.sendall(data[pos : pos + chunk])
                assert recv_exactly(t, chunk) == data[pos : pos + chunk].upper()
            assert recv_until_eof(t) == b""  # the server closed with close_notify
            t.close()

        clients = [treadle.spawn(client, i) for i in range(count)]
        for c in clients:
            c.get()
        server.close()
        treadle.await_(server.wait_closed())
        assert handled == [chunk * chunks] * count
        assert errors == []

    treadle.run(main)


def test_makefile_over_tls(tls: TLS) -> None:
    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        sctx = server_context(tls)

        def server() -> None:
            conn, _ = listener.accept()
            with sctx.wrap_socket(conn, server_side=True) as t:
                f = t.makefile("rwb")
                for line in f:
                    f.write(line.upper())
                    f.flush()
                f.close()

        task = treadle.spawn(server)
        t = tls_client(tls, listener.getsockname())
        f = t.makefile("rw", encoding="utf-8", newline="\n")
        for word in ("one", "twee", "trois"):
            f.write(word + "\n")
            f.flush()
            assert f.readline() == word.upper() + "\n"
        f.close()
        t.close()  # the server's line loop ends at EOF (a ragged EOF reads as b"")
        task.get()
        listener.close()

    treadle.run(main)


def test_closing_a_tls_socket_wakes_the_task_reading_it_with_ebadf(tls: TLS) -> None:
    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        sctx = server_context(tls)
        accepted: list[Any] = []

        def server() -> None:
            conn, _ = listener.accept()
            accepted.append(sctx.wrap_socket(conn, server_side=True))

        task = treadle.spawn(server)
        t = tls_client(tls, listener.getsockname())
        task.get()
        started = [False]

        def reader() -> bytes:
            started[0] = True
            return t.recv(10)  # type: ignore[no-any-return]

        r = treadle.spawn(reader)
        for _ in range(100):
            if started[0]:
                break
            treadle.sleep(0)
        assert started[0] and not r.ready()
        second = treadle.spawn(t.recv, 10)
        second.join(timeout=10)
        with pytest.raises(RuntimeError, match="already waiting"):
            second.get()
        t.close()
        r.join(timeout=10)
        assert r.ready()
        exc = r.exception()
        assert isinstance(exc, OSError) and exc.errno == 9  # EBADF
        accepted[0].close()
        listener.close()

    treadle.run(main)


def test_a_tls_call_from_async_code_raises_blocking_in_hub_error(tls: TLS) -> None:
    async def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        sctx = server_context(tls)

        def server() -> Any:
            conn, _ = listener.accept()
            return sctx.wrap_socket(conn, server_side=True)

        accepted = treadle.spawn(server)
        t = await treadle.run_green(tls_client, tls, listener.getsockname())
        conn = await accepted
        with pytest.raises(treadle.BlockingInHubError):
            t.recv(10)
        conn.sendall(b"ok")  # room in the buffers: does not wait
        assert await treadle.run_green(recv_exactly, t, 2) == b"ok"
        for s in (t, conn, listener):
            s.close()

    treadle.run(main())


def test_cancelling_a_task_in_its_handshake_closes_the_socket(tls: TLS) -> None:
    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        peers: list[Any] = []

        def silent_peer() -> bytes:
            conn, _ = listener.accept()
            peers.append(conn)
            conn.settimeout(5)
            with conn:
                return recv_until_eof(conn)  # takes the ClientHello, never answers

        peer = treadle.spawn(silent_peer)
        started = [False]

        def client() -> None:
            sock = gsocket.create_connection(listener.getsockname())
            started[0] = True
            client_context(tls).wrap_socket(sock, server_hostname="localhost")

        c = treadle.spawn(client)
        for _ in range(1000):
            if started[0] and peers:
                break
            treadle.sleep(0)
        # The client ran from setting the flag into the handshake without a switch:
        # it sent its hello and waits for the answer.
        assert not c.ready()
        c.kill()
        assert c.cancelled()
        # The cancelled handshake must not leave the connection open: the peer sees EOF.
        try:
            hello = peer.get()
        except TimeoutError:
            pytest.fail("the socket of a task cancelled in its TLS handshake was never closed")
        assert hello[:1] == b"\x16"
        listener.close()

    treadle.run(main)


def test_connect_and_connect_ex_on_an_unconnected_tls_socket(tls: TLS) -> None:
    """``wrap_socket`` before connecting: ``connect``/``connect_ex`` connect and handshake; errors are numbers."""

    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        sctx = server_context(tls)

        def server() -> None:
            for _ in range(2):
                conn, _ = listener.accept()
                with sctx.wrap_socket(conn, server_side=True) as tconn:
                    tconn.sendall(recv_exactly(tconn, 5))

        task = treadle.spawn(server)
        for connect in ("connect", "connect_ex"):
            with client_context(tls).wrap_socket(gsocket.socket(), server_hostname="localhost") as tsock:
                result = getattr(tsock, connect)(listener.getsockname())
                assert result == (0 if connect == "connect_ex" else None)
                tsock.sendall(b"hello")
                assert recv_exactly(tsock, 5) == b"hello"
        task.get()
        # Nobody listens on a closed listener's port: an error number, not an exception.
        address = listener.getsockname()
        listener.close()
        with client_context(tls).wrap_socket(gsocket.socket(), server_hostname="localhost") as tsock:
            assert tsock.connect_ex(address) == errno.ECONNREFUSED

    treadle.run(main)

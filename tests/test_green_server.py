"""``treadle.StreamServer``: a green task per connection, limits, TLS, errors and an orderly stop.

Every test runs its program with ``treadle.run(main)`` (``main`` is the main green task);
clients are green tasks of the same loop using ``treadle.socket``, on loopback.  Handlers
tell the test what they are doing through futures of the running loop, so that the test
waits on events, not on time; the only timeouts are the ones whose expiry is the point
(``stop(timeout)`` cutting off a connection that outlives it).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest

import treadle
import treadle.socket as gsocket
import treadle.ssl as gssl

from .conftest import TLS

# -- helpers ---------------------------------------------------------------------------


def new_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


def record_errors() -> list[dict[str, Any]]:
    """Record what the running loop's exception handler receives."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    return errors


def recv_exactly(sock: Any, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"EOF after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def recv_until_eof(sock: Any) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def give_turns_until(cond: Callable[[], bool], limit: int = 1000) -> None:
    for _ in range(limit):
        if cond():
            return
        treadle.sleep(0)
    raise AssertionError("condition never became true")


def echo_upper(conn: Any, address: Any) -> None:
    while data := conn.recv(1024):
        conn.sendall(data.upper())


def exchange(address: Any, message: bytes) -> bytes:
    """Connect, send ``message``, half-close, and return all that comes back."""
    with gsocket.create_connection(address[:2], timeout=30) as c:
        c.sendall(message)
        c.shutdown(socket.SHUT_WR)
        return recv_until_eof(c)


# -- listeners ---------------------------------------------------------------------------


def test_serves_from_an_address_with_server_port_and_address() -> None:
    def main() -> None:
        seen: list[Any] = []

        def handle(conn: Any, address: Any) -> None:
            seen.append((type(conn), address, conn.getsockname()))
            echo_upper(conn, address)

        server = treadle.StreamServer(("127.0.0.1", 0), handle)
        assert not server.started and server.socket is None
        assert server.address == ("127.0.0.1", 0)
        server.start()
        assert server.started
        port = server.server_port
        assert isinstance(port, int) and port > 0
        assert server.address == ("127.0.0.1", port)
        assert isinstance(server.socket, gsocket.socket)
        assert server.socket.getsockname() == ("127.0.0.1", port)
        assert "serving" in repr(server)
        for word in (b"alpha", b"beta", b"gamma"):
            assert exchange(server.address, word) == word.upper()
        assert len(seen) == 3
        for conn_type, address, sockname in seen:
            assert issubclass(conn_type, gsocket.socket)
            assert address[0] == "127.0.0.1" and sockname == ("127.0.0.1", port)
        server.stop()
        assert not server.started and "closed" in repr(server)
        with pytest.raises(ConnectionRefusedError):
            gsocket.create_connection(("127.0.0.1", port))

    treadle.run(main)


def test_serves_from_an_ipv6_address() -> None:
    def main() -> None:
        server = treadle.StreamServer(("::1", 0), echo_upper)
        server.start()
        assert server.socket is not None and server.socket.family == socket.AF_INET6
        assert server.address[:2] == ("::1", server.server_port)
        assert exchange(server.address, b"six") == b"SIX"
        server.stop()

    treadle.run(main)


@pytest.mark.parametrize("kind", ["standard listening", "green listening", "bound, not listening"])
def test_serves_from_an_existing_socket(kind: str) -> None:
    def main() -> None:
        if kind == "green listening":
            sock: socket.socket = gsocket.create_server(("127.0.0.1", 0))
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            if kind == "standard listening":
                sock.listen(5)
        bound = sock.getsockname()
        server = treadle.StreamServer(sock, echo_upper)
        assert isinstance(server.socket, gsocket.socket)
        assert server.address == bound and server.server_port == bound[1]
        server.start()
        assert exchange(bound, b"from a socket") == b"FROM A SOCKET"
        server.stop()
        assert server.socket.fileno() == -1  # the server owns the socket and closed it
        sock.close()

    treadle.run(main)


# -- starting and stopping ---------------------------------------------------------------


def test_serve_forever_blocks_until_stop() -> None:
    def main() -> None:
        server = treadle.StreamServer(("127.0.0.1", 0), echo_upper)
        forever = treadle.spawn(server.serve_forever)
        give_turns_until(lambda: server.started)
        assert exchange(server.address, b"forever") == b"FOREVER"
        assert not forever.ready()
        server.stop()
        forever.join(timeout=10)
        assert forever.ready() and forever.successful()

    treadle.run(main)


def test_stop_lets_a_live_connection_finish_within_the_timeout() -> None:
    def main() -> None:
        errors = record_errors()
        log: list[str] = []
        started = new_future()

        def handle(conn: Any, address: Any) -> None:
            try:
                started.set_result(None)
                treadle.sleep(0.05)  # work in progress when stop() is called
                conn.sendall(b"finished")
                log.append("finished")
            except asyncio.CancelledError:
                log.append("cancelled")
                raise

        server = treadle.StreamServer(("127.0.0.1", 0), handle)
        server.start()
        client = gsocket.create_connection(server.address)
        treadle.await_(started)
        server.stop(timeout=30)
        assert log == ["finished"]
        assert recv_until_eof(client) == b"finished"
        client.close()
        assert errors == []

    treadle.run(main)


def test_stop_cancels_a_connection_that_outlives_the_timeout() -> None:
    def main() -> None:
        errors = record_errors()
        log: list[str] = []
        started = new_future()

        def handle(conn: Any, address: Any) -> None:
            try:
                started.set_result(None)
                log.append(f"read {conn.recv(10)!r}")  # the client never sends
            except asyncio.CancelledError:
                log.append("cancelled")
                raise
            finally:
                log.append("finally")

        server = treadle.StreamServer(("127.0.0.1", 0), handle)
        server.start()
        client = gsocket.create_connection(server.address)
        treadle.await_(started)
        server.stop(timeout=0.1)
        assert log == ["cancelled", "finally"]
        assert recv_until_eof(client) == b""  # the server closed the connection
        client.close()
        assert errors == []  # a cancelled connection is not a failure

    treadle.run(main)


def test_stop_with_timeout_zero_cancels_at_once() -> None:
    def main() -> None:
        log: list[str] = []
        started = new_future()

        def handle(conn: Any, address: Any) -> None:
            try:
                started.set_result(None)
                conn.recv(10)
            finally:
                log.append("finally")

        server = treadle.StreamServer(("127.0.0.1", 0), handle)
        server.start()
        client = gsocket.create_connection(server.address)
        treadle.await_(started)
        server.stop(timeout=0)
        assert log == ["finally"]
        client.close()

    treadle.run(main)


def test_stop_at_once_closes_a_connection_accepted_but_not_yet_handled() -> None:
    def main() -> None:
        handled: list[Any] = []
        server = treadle.StreamServer(("127.0.0.1", 0), lambda conn, address: handled.append(address))
        server.start()
        assert "connections=0" in repr(server)
        client = gsocket.create_connection(server.address)
        # The first turn at which the server shows the connection: it was accepted and
        # its task made, which has not started yet (it starts at the next iteration).
        give_turns_until(lambda: "connections=1" in repr(server))
        server.stop(timeout=0)
        # Whether or not the handler ran, the accepted socket must be closed: the client
        # sees EOF (bounded, so that a lost connection fails here instead of hanging).
        client.settimeout(5)
        try:
            assert recv_until_eof(client) == b""
        except TimeoutError:
            pytest.fail(f"stop(timeout=0) lost an accepted connection (handled: {handled})")
        finally:
            client.close()

    treadle.run(main)


def test_a_stopped_server_cannot_start_again() -> None:
    def main() -> None:
        server = treadle.StreamServer(("127.0.0.1", 0), echo_upper)
        server.start()
        server.start()  # already serving: nothing happens
        assert exchange(server.address, b"once") == b"ONCE"
        server.stop()
        with pytest.raises(RuntimeError, match="stopped"):
            server.start()
        with pytest.raises(RuntimeError, match="stopped"):
            server.serve_forever()
        # Never started, stopped: the same.
        other = treadle.StreamServer(("127.0.0.1", 0), echo_upper)
        other.stop()
        with pytest.raises(RuntimeError):
            other.start()
        # As a context manager: started on entry, stopped on exit.
        with treadle.StreamServer(("127.0.0.1", 0), echo_upper) as third:
            assert third.started
            assert exchange(third.address, b"managed") == b"MANAGED"
        assert not third.started
        with pytest.raises(RuntimeError):
            third.start()

    treadle.run(main)


# -- connections -------------------------------------------------------------------------


def test_max_connections_bounds_the_handlers_running_at_once() -> None:
    clients = 5

    def main() -> None:
        active = [0]
        peak = [0]
        served = [0]
        gate = new_future()

        def handle(conn: Any, address: Any) -> None:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            try:
                treadle.await_(gate)
                conn.sendall(recv_exactly(conn, 5).upper())
                served[0] += 1
            finally:
                active[0] -= 1

        server = treadle.StreamServer(("127.0.0.1", 0), handle, max_connections=2)
        server.start()
        connected = [0]

        def client(i: int) -> bytes:
            with gsocket.create_connection(server.address) as c:
                connected[0] += 1  # the kernel accepted it, whether or not the server did
                c.sendall(f"conn{i}".encode())
                return recv_exactly(c, 5)

        tasks = [treadle.spawn(client, i) for i in range(clients)]
        give_turns_until(lambda: connected[0] == clients and active[0] == 2)
        # Every client is connected: give a server that ignored the bound the time
        # to accept more, then check that it did not.
        treadle.sleep(0.05)
        assert active[0] == 2 and peak[0] == 2
        gate.set_result(None)
        assert [t.get() for t in tasks] == [f"CONN{i}".encode() for i in range(clients)]
        assert served[0] == clients and peak[0] == 2 and active[0] == 0
        server.stop()

    treadle.run(main)


def test_the_accepted_socket_is_closed_after_the_handler_returns() -> None:
    def main() -> None:
        conns: list[Any] = []

        def handle(conn: Any, address: Any) -> None:
            conns.append(conn)
            conn.sendall(b"bye")  # and return without closing it

        server = treadle.StreamServer(("127.0.0.1", 0), handle)
        server.start()
        client = gsocket.create_connection(server.address)
        assert recv_until_eof(client) == b"bye"  # EOF: the server closed it
        client.close()
        assert len(conns) == 1 and conns[0].fileno() == -1
        server.stop()

    treadle.run(main)


def test_a_failing_handler_is_reported_and_the_server_keeps_serving() -> None:
    def main() -> None:
        errors = record_errors()
        calls = [0]

        def handle(conn: Any, address: Any) -> None:
            calls[0] += 1
            if calls[0] == 1:
                recv_until_eof(conn)  # (closing with unread data would reset the connection)
                raise ValueError("handler failed on purpose")
            echo_upper(conn, address)

        server = treadle.StreamServer(("127.0.0.1", 0), handle)
        server.start()
        assert exchange(server.address, b"first") == b""  # its connection was closed
        assert exchange(server.address, b"second") == b"SECOND"
        assert exchange(server.address, b"third") == b"THIRD"
        server.stop()
        assert len(errors) == 1, errors
        [context] = errors
        assert isinstance(context["exception"], ValueError)
        assert str(context["exception"]) == "handler failed on purpose"
        assert "connection handler failed" in context["message"]

    treadle.run(main)


def test_tls_via_ssl_context(tls: TLS) -> None:
    def main() -> None:
        errors = record_errors()
        versions: list[Any] = []

        def handle(conn: Any, address: Any) -> None:
            assert isinstance(conn, gssl.SSLSocket)
            versions.append(conn.version())
            echo_upper(conn, address)

        # A standard context: the server makes it wrap green sockets.
        server = treadle.StreamServer(("127.0.0.1", 0), handle, ssl_context=tls.server_context())
        server.start()
        # A client that connects and never speaks TLS does not hold up the others:
        # each handshake runs in its connection's task.
        silent = gsocket.create_connection(server.address)
        cctx = gssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.ca.configure_trust(cctx)
        for i in range(3):
            t = cctx.wrap_socket(gsocket.create_connection(server.address), server_hostname="localhost")
            message = f"secret {i} ".encode() * 1000
            t.sendall(message)
            assert recv_exactly(t, len(message)) == message.upper()
            t.close()
        assert len(versions) == 3 and all(v in ("TLSv1.2", "TLSv1.3") for v in versions)
        assert errors == []
        silent.close()  # its handshake fails on EOF: reported, as any failed connection
        server.stop(timeout=30)
        assert len(versions) == 3
        assert all(isinstance(c["exception"], ssl.SSLError | OSError) for c in errors), errors

    treadle.run(main)


def test_stop_closes_a_connection_whose_tls_handshake_it_cancels(tls: TLS) -> None:
    def main() -> None:
        errors = record_errors()
        calls: list[Any] = []

        def handle(conn: Any, address: Any) -> None:
            calls.append(address)
            echo_upper(conn, address)

        server = treadle.StreamServer(("127.0.0.1", 0), handle, ssl_context=tls.server_context())
        server.start()
        # Connects and never speaks TLS: the server's handshake for it waits.
        silent = gsocket.create_connection(server.address)
        # A client connected after it is served: so the silent one was accepted
        # (the kernel's accept queue is FIFO) and its handshake is waiting.
        cctx = gssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.ca.configure_trust(cctx)
        with cctx.wrap_socket(gsocket.create_connection(server.address), server_hostname="localhost") as t:
            t.sendall(b"served")
            assert recv_exactly(t, 6) == b"SERVED"
        server.stop(timeout=0.05)  # cancels the silent client's handshake
        assert len(calls) == 1 and errors == []
        # The server must not lose the connection: it closes it and the client sees
        # EOF (bounded, so that a lost connection fails here instead of hanging).
        silent.settimeout(5)
        try:
            assert recv_until_eof(silent) == b""
        except TimeoutError:
            pytest.fail("the connection whose TLS handshake stop() cancelled was never closed")
        finally:
            silent.close()

    treadle.run(main)


# -- bad input -----------------------------------------------------------------------------


def test_bad_arguments_raise_at_the_call() -> None:
    with pytest.raises(TypeError, match="callable"):
        treadle.StreamServer(("127.0.0.1", 0), "not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backlog"):
        treadle.StreamServer(("127.0.0.1", 0), echo_upper, backlog=0)
    with pytest.raises(ValueError, match="backlog"):
        treadle.StreamServer(("127.0.0.1", 0), echo_upper, backlog=-5)
    with pytest.raises(ValueError, match="max_connections"):
        treadle.StreamServer(("127.0.0.1", 0), echo_upper, max_connections=0)
    for listener in ("127.0.0.1:8080", 8080, None, ("127.0.0.1",), ["127.0.0.1", 0]):
        with pytest.raises(TypeError, match="listener"):
            treadle.StreamServer(listener, echo_upper)
    with pytest.raises(TypeError, match="ssl_context"):
        treadle.StreamServer(("127.0.0.1", 0), echo_upper, ssl_context="tls")  # type: ignore[arg-type]

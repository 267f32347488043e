"""The green socket: ``treadle.socket``, a cooperative ``socket.socket`` and the module around it.

Every test runs its program with ``treadle.run(main)``: ``main`` is a plain function that
runs as the main green task on a fresh treadle loop.  Sockets are real (loopback TCP and UDP,
Unix socket pairs); a green task that must be waiting before its peer acts is started first
and given a turn (``treadle.sleep(0)``: the ready queue is FIFO, so it runs until it blocks).
The only timeouts are those whose expiry is the point of the test.
"""

from __future__ import annotations

import array
import asyncio
import errno
import os
import random
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import treadle
import treadle.socket as gsocket

MIB = 1024 * 1024


# -- helpers ---------------------------------------------------------------------------


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def tcp_pair() -> tuple[gsocket.socket, gsocket.socket]:
    """A connected pair of green TCP sockets on loopback (client, server side). Green code only."""
    listener = gsocket.create_server(("127.0.0.1", 0))
    try:
        client = gsocket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.connect(listener.getsockname())
        conn, addr = listener.accept()
        assert addr == client.getsockname()
        return client, conn
    finally:
        listener.close()


def recv_exactly(sock: Any, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"EOF after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def recv_until_eof(sock: Any, bufsize: int = 65536) -> bytes:
    data = bytearray()
    while True:
        chunk = sock.recv(bufsize)
        if not chunk:
            return bytes(data)
        data += chunk


def refused_address() -> tuple[socket.socket, tuple[str, int]]:
    """A bound but not listening TCP socket (keeps the port taken) and its address: connects are refused."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    return holder, holder.getsockname()


def give_turns_until(cond: Callable[[], bool], limit: int = 1000) -> None:
    """Let other green tasks run until ``cond()`` holds (bounded)."""
    for _ in range(limit):
        if cond():
            return
        treadle.sleep(0)
    raise AssertionError("condition never became true")


# -- the module --------------------------------------------------------------------------


def test_module_has_every_public_name_of_the_standard_socket_module() -> None:
    missing = [name for name in dir(socket) if not name.startswith("_") and not hasattr(gsocket, name)]
    assert missing == []
    assert set(socket.__all__) <= set(gsocket.__all__)
    # Constants and exceptions are the standard ones; the blocking parts are replaced.
    assert gsocket.AF_INET is socket.AF_INET and gsocket.error is socket.error and gsocket.timeout is socket.timeout
    assert gsocket.socket is not socket.socket and issubclass(gsocket.socket, socket.socket)
    for name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo", "gethostbyname"):
        assert getattr(gsocket, name) is not getattr(socket, name), name


# -- reading and writing ---------------------------------------------------------------------


def test_send_recv_and_recv_into_over_tcp() -> None:
    def main() -> None:
        client, conn = tcp_pair()
        got: list[Any] = []

        def reader() -> None:
            got.append(conn.recv(100))  # waits: nothing was sent yet
            buf = bytearray(64)
            n = conn.recv_into(buf)
            got.append(bytes(buf[:n]))
            buf = bytearray(64)
            n = conn.recv_into(memoryview(buf)[10:], 5)
            got.append((n, bytes(buf[10 : 10 + n])))

        task = treadle.spawn(reader)
        treadle.sleep(0)
        assert not task.ready()
        assert client.send(b"first") == 5
        give_turns_until(lambda: len(got) == 1)
        client.sendall(b"second")
        give_turns_until(lambda: len(got) == 2)
        client.sendall(b"0123456789")
        task.get()
        assert got == [b"first", b"second", (5, b"01234")]
        assert conn.recv(100) == b"56789"
        client.close()
        assert conn.recv(100) == b""
        conn.close()

    treadle.run(main)


def test_udp_sendto_recvfrom_and_recvfrom_into() -> None:
    def main() -> None:
        a = gsocket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = gsocket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        got: list[Any] = []

        def receiver() -> None:
            got.append(a.recvfrom(100))
            buf = bytearray(100)
            n, addr = a.recvfrom_into(buf)
            got.append((bytes(buf[:n]), addr))

        task = treadle.spawn(receiver)
        treadle.sleep(0)  # the receiver now waits in recvfrom
        assert not task.ready()
        assert b.sendto(b"datagram one", a.getsockname()) == 12
        give_turns_until(lambda: len(got) == 1)
        assert b.sendto(b"datagram two", 0, a.getsockname()) == 12
        task.get()
        assert got == [(b"datagram one", b.getsockname()), (b"datagram two", b.getsockname())]
        a.close()
        b.close()

    treadle.run(main)


def test_sendall_8_mib_to_a_slow_reader_every_byte_arrives() -> None:
    data = payload(8, 8 * MIB)

    def main() -> None:
        client, conn = tcp_pair()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        reads = [0]

        def slow_reader() -> bytes:
            received = bytearray()
            while True:
                chunk = conn.recv(64 * 1024)
                if not chunk:
                    return bytes(received)
                received += chunk
                reads[0] += 1
                if reads[0] % 8 == 0:
                    treadle.sleep(0.001)  # the reader "works" now and then

        reader = treadle.spawn(slow_reader)
        assert client.sendall(data) is None
        client.shutdown(socket.SHUT_WR)
        received = reader.get()
        assert len(received) == len(data)
        assert received == data
        assert reads[0] > 1
        client.close()
        conn.close()

    treadle.run(main)


def test_sendmsg_recvmsg_pass_a_file_descriptor_with_scm_rights() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        assert a.family == socket.AF_UNIX
        r, w = os.pipe()
        got: list[Any] = []

        def receiver() -> None:
            fds = array.array("i")
            msg, ancdata, flags, _addr = b.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
            for level, type_, cdata in ancdata:
                assert (level, type_) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
                fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
            got.append((msg, flags, list(fds)))

        task = treadle.spawn(receiver)
        treadle.sleep(0)  # the receiver now waits in recvmsg
        assert not task.ready()
        sent = a.sendmsg([b"fd ", b"follows"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r]))])
        assert sent == 10
        task.get()
        [(msg, flags, fds)] = got
        assert msg == b"fd follows" and flags & socket.MSG_CTRUNC == 0
        assert len(fds) == 1 and fds[0] not in (r, w)
        passed = fds[0]
        try:
            os.write(w, b"through the passed descriptor")
            assert os.read(passed, 100) == b"through the passed descriptor"
        finally:
            os.close(passed)
            os.close(r)
            os.close(w)
        # The standard helpers call the green methods.
        r2, w2 = os.pipe()
        try:
            receiver_task = treadle.spawn(gsocket.recv_fds, b, 100, 1)
            treadle.sleep(0)
            assert gsocket.send_fds(a, [b"again"], [w2]) == 5
            msg2, fds2, _flags, _addr = receiver_task.get()
            assert msg2 == b"again" and len(fds2) == 1
            os.write(fds2[0], b"x")
            os.close(fds2[0])
            assert os.read(r2, 1) == b"x"
        finally:
            os.close(r2)
            os.close(w2)
        a.close()
        b.close()

    treadle.run(main)


def test_recvmsg_into_scatters_into_buffers() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        first, second = bytearray(4), bytearray(10)
        task = treadle.spawn(b.recvmsg_into, [first, second])
        treadle.sleep(0)  # it waits now
        a.sendall(b"scattered!")
        nbytes, ancdata, flags, _addr = task.get()
        assert (nbytes, ancdata, flags) == (10, [], 0)
        assert bytes(first) == b"scat" and bytes(second[:6]) == b"tered!"
        a.close()
        b.close()

    treadle.run(main)


def test_sendfile_of_a_real_file_over_tcp(tmp_path: Path) -> None:
    data = payload(5, 3 * MIB + 123)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)

    def main() -> None:
        client, conn = tcp_pair()
        reader = treadle.spawn(recv_until_eof, conn)
        with path.open("rb") as f:
            assert client.sendfile(f) == len(data)
            assert f.tell() == len(data)
            assert client.sendfile(f, 100, 50) == 50
        client.shutdown(socket.SHUT_WR)
        assert reader.get() == data + data[100:150]
        client.close()
        conn.close()

    treadle.run(main)


# -- connecting and accepting ----------------------------------------------------------------


def test_accept_waits_for_a_connection_while_the_client_connects_in_another_task() -> None:
    def main() -> None:
        listener = gsocket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        accepted: list[Any] = []

        def server() -> None:
            conn, addr = listener.accept()
            accepted.append((conn, addr))
            conn.sendall(b"welcome " + conn.recv(100))

        task = treadle.spawn(server)
        treadle.sleep(0)  # the server now waits in accept
        assert not task.ready()
        client = gsocket.socket()
        assert client.connect(listener.getsockname()) is None
        client.sendall(b"client")
        assert recv_exactly(client, 14) == b"welcome client"
        task.get()
        [(conn, addr)] = accepted
        assert isinstance(conn, gsocket.socket)
        assert addr == client.getsockname() and conn.getpeername() == client.getsockname()
        assert conn.gettimeout() is None and not os.get_blocking(conn.fileno())
        conn.close()
        client.close()
        listener.close()

    treadle.run(main)


def test_connect_ex_to_a_refused_port_returns_econnrefused_and_connect_raises() -> None:
    holder, address = refused_address()

    def main() -> None:
        s = gsocket.socket()
        assert s.connect_ex(address) == errno.ECONNREFUSED
        s.close()
        s = gsocket.socket()
        with pytest.raises(ConnectionRefusedError):
            s.connect(address)
        s.close()
        # connect_ex to a listening port succeeds with 0.
        listener = gsocket.create_server(("127.0.0.1", 0))
        s = gsocket.socket()
        assert s.connect_ex(listener.getsockname()) == 0
        conn, _ = listener.accept()
        conn.close()
        s.close()
        listener.close()

    try:
        treadle.run(main)
    finally:
        holder.close()


def test_connect_by_host_name_and_non_blocking_connect() -> None:
    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        s = gsocket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("localhost", port))  # resolved cooperatively, for the socket's family
        conn, addr = listener.accept()
        assert addr == s.getsockname() and s.getpeername() == ("127.0.0.1", port)
        conn.close()
        s.close()
        # A non-blocking connect behaves as the standard one: EINPROGRESS at once.
        s = gsocket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError as exc:
            assert exc.errno == errno.EINPROGRESS
        gsocket.wait_writable(s.fileno(), timeout=10)
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        conn, addr = listener.accept()
        assert addr == s.getsockname()
        conn.close()
        s.close()
        listener.close()

    treadle.run(main)


# -- makefile, dup, detach, shutdown ---------------------------------------------------------


def test_makefile_binary_read_write_and_text_readline() -> None:
    def main() -> None:
        client, conn = tcp_pair()

        def server() -> None:
            rfile = conn.makefile("rb")
            wfile = conn.makefile("wb")
            header = rfile.readline()
            body = rfile.read(20000)
            wfile.write(header.upper())
            wfile.write(len(body).to_bytes(4, "big"))
            wfile.flush()
            text_in = conn.makefile("r", encoding="utf-8", newline="\n")
            text_out = conn.makefile("w", encoding="utf-8", newline="\n")
            line = text_in.readline()
            text_out.write(line.upper())
            text_out.write("second line\n")
            text_out.flush()
            for f in (rfile, wfile, text_in, text_out):
                f.close()

        task = treadle.spawn(server)
        body = payload(3, 20000)
        client.sendall(b"header line\n")
        for pos in range(0, len(body), 3000):  # the reader's read(20000) spans several sends
            client.sendall(body[pos : pos + 3000])
            treadle.sleep(0)
        rfile = client.makefile("rb")
        assert rfile.readline() == b"HEADER LINE\n"
        assert int.from_bytes(rfile.read(4), "big") == 20000
        f = client.makefile("rw", encoding="utf-8", newline="\n")
        f.write("héllo wörld\n")
        f.flush()
        assert f.readline() == "HÉLLO WÖRLD\n"
        assert f.readline() == "second line\n"
        task.get()
        f.close()
        rfile.close()
        client.close()
        conn.close()

    treadle.run(main)


def test_dup_gives_a_green_socket_on_the_same_connection_with_the_same_timeout() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        a.settimeout(7.5)
        d = a.dup()
        assert type(d) is type(a) and isinstance(d, gsocket.socket)
        assert d.fileno() != a.fileno() and d.gettimeout() == 7.5
        a.close()
        reader = treadle.spawn(d.recv, 10)
        treadle.sleep(0)  # the dup now waits
        b.sendall(b"to the dup")
        assert reader.get() == b"to the dup"
        d.sendall(b"back")
        assert b.recv(10) == b"back"
        d.close()
        assert b.recv(10) == b""
        b.close()

    treadle.run(main)


def test_detach_returns_the_descriptor_which_a_new_green_socket_can_adopt() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        fd = a.detach()
        assert a.fileno() == -1 and fd >= 0
        s = gsocket.socket(fileno=fd)
        assert s.family == socket.AF_UNIX and s.fileno() == fd
        reader = treadle.spawn(s.recv, 10)
        treadle.sleep(0)
        b.sendall(b"adopted")
        assert reader.get() == b"adopted"
        s.close()
        b.close()

    treadle.run(main)


def test_shutdown_write_is_seen_as_eof_by_the_peer_which_can_still_answer() -> None:
    def main() -> None:
        client, conn = tcp_pair()

        def server() -> bytes:
            received = recv_until_eof(conn)
            conn.sendall(b"got " + received)
            conn.close()
            return received

        task = treadle.spawn(server)
        client.sendall(b"all of it")
        client.shutdown(socket.SHUT_WR)
        assert task.get() == b"all of it"
        assert recv_until_eof(client) == b"got all of it"
        with pytest.raises(OSError):
            client.sendall(b"after shutdown")
        client.close()

    treadle.run(main)


# -- timeouts -------------------------------------------------------------------------------


def test_settimeout_recv_raises_timeout_error_and_other_tasks_run_meanwhile() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        a.settimeout(0.05)
        assert a.gettimeout() == 0.05 and a.timeout == 0.05 and a.getblocking()
        ticks = [0]
        stop = [False]

        def ticker() -> None:
            for _ in range(10**7):
                if stop[0]:
                    return
                ticks[0] += 1
                treadle.sleep(0)

        t = treadle.spawn(ticker)
        treadle.sleep(0)
        before = ticks[0]
        with pytest.raises(TimeoutError, match="^timed out$") as info:
            a.recv(1)
        assert isinstance(info.value, socket.timeout)
        assert ticks[0] > before  # the wait switched to the hub
        stop[0] = True
        t.get()
        # The socket still works after a timeout.
        b.sendall(b"z")
        assert a.recv(1) == b"z"
        # accept() and sendall() honour the timeout too.
        listener = gsocket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.05)
        with pytest.raises(TimeoutError, match="timed out"):
            listener.accept()
        listener.close()
        a.settimeout(0.05)
        with pytest.raises(TimeoutError, match="timed out"):
            a.sendall(b"x" * (64 * MIB))  # nobody reads
        for s in (a, b):
            s.close()

    treadle.run(main)


def test_calls_on_a_closed_socket_raise_ebadf_as_the_standard_ones() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        a.close()
        calls: list[Callable[[], Any]] = [
            lambda: a.recv(1),
            lambda: a.recv_into(bytearray(1)),
            lambda: a.send(b"x"),
            lambda: a.sendall(b"x"),
            lambda: a.sendall(b""),  # one send even for nothing, as the standard sendall
        ]
        for call in calls:
            with pytest.raises(OSError) as info:
                call()
            assert info.value.errno == errno.EBADF
        b.close()

    treadle.run(main)


def test_setblocking_false_recv_raises_blocking_io_error() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        a.setblocking(False)
        assert a.gettimeout() == 0.0 and not a.getblocking()
        with pytest.raises(BlockingIOError) as info:
            a.recv(1)
        # The standard socket's error: errno and message from the C library.
        assert info.value.errno == errno.EAGAIN and info.value.strerror == os.strerror(errno.EAGAIN)
        a.settimeout(0)
        for call in (lambda: a.recv(1), lambda: a.recv_into(bytearray(1))):
            with pytest.raises(BlockingIOError):
                call()
        with pytest.raises(BlockingIOError):  # sendall on a full socket with timeout 0
            a.sendall(b"x" * (64 * MIB))
        b.setblocking(False)
        while True:  # empty b's receive buffer again
            try:
                b.recv(MIB)
            except BlockingIOError:
                break
        b.sendall(b"ready")
        assert a.recv(10) == b"ready"
        a.setblocking(True)
        assert a.gettimeout() is None and a.getblocking()
        # The descriptor itself stays non-blocking whatever the user's timeout.
        assert not os.get_blocking(a.fileno())
        with pytest.raises(ValueError):
            a.settimeout(-1)
        with pytest.raises(TypeError):
            a.settimeout("1")  # type: ignore[arg-type]
        a.close()
        b.close()

    treadle.run(main)


def test_default_timeout_is_honoured_by_new_sockets() -> None:
    assert gsocket.getdefaulttimeout is socket.getdefaulttimeout
    old = socket.getdefaulttimeout()

    def main() -> None:
        s = gsocket.socket()
        assert s.gettimeout() is None and s.getblocking()
        s.close()
        gsocket.setdefaulttimeout(0.05)
        try:
            assert gsocket.getdefaulttimeout() == 0.05
            s = gsocket.socket()
            assert s.gettimeout() == 0.05 and s.getblocking()
            assert not os.get_blocking(s.fileno())
            s.close()
            a, b = gsocket.socketpair()
            assert a.gettimeout() == 0.05 and b.gettimeout() == 0.05
            with pytest.raises(TimeoutError, match="timed out"):
                a.recv(1)
            a.close()
            b.close()
            gsocket.setdefaulttimeout(4.5)
            listener = gsocket.create_server(("127.0.0.1", 0))
            client = gsocket.create_connection(listener.getsockname())
            conn, _ = listener.accept()
            # As the standard socket: the accepted socket has the default timeout.
            assert (listener.gettimeout(), client.gettimeout(), conn.gettimeout()) == (4.5, 4.5, 4.5)
            for sock in (listener, client, conn):
                sock.close()
            gsocket.setdefaulttimeout(0.0)
            s = gsocket.socket()
            assert s.gettimeout() == 0.0 and not s.getblocking()
            s.close()
        finally:
            gsocket.setdefaulttimeout(old)
        s = gsocket.socket()
        assert s.gettimeout() is None
        s.close()

    try:
        treadle.run(main)
    finally:
        socket.setdefaulttimeout(old)


# -- waiters: close, two readers -------------------------------------------------------------


def test_closing_a_socket_wakes_the_task_reading_it_with_ebadf() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        started = [False]

        def reader() -> None:
            started[0] = True
            a.recv(10)

        task = treadle.spawn(reader)
        give_turns_until(lambda: started[0])  # it ran up to recv(), and waits there
        assert not task.ready()
        a.close()
        task.join(timeout=10)
        assert task.ready()
        exc = task.exception()
        assert isinstance(exc, OSError) and exc.errno == errno.EBADF
        b.close()

    treadle.run(main)


def test_closing_a_socket_wakes_the_task_writing_it_with_ebadf() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        started = [False]

        def writer() -> None:
            started[0] = True
            a.sendall(b"w" * (64 * MIB))  # nobody reads: fills the buffers and waits

        task = treadle.spawn(writer)
        give_turns_until(lambda: started[0])
        assert not task.ready()
        a.close()
        task.join(timeout=10)
        assert task.ready()
        exc = task.exception()
        assert isinstance(exc, OSError) and exc.errno == errno.EBADF
        b.close()

    treadle.run(main)


def test_two_tasks_reading_one_socket_the_second_gets_runtime_error() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        first = treadle.spawn(a.recv, 10)
        treadle.sleep(0)  # the first reader waits now
        second = treadle.spawn(a.recv, 10)
        second.join(timeout=10)
        assert second.ready()
        with pytest.raises(RuntimeError, match="already waiting"):
            second.get()
        # The first reader is undisturbed.
        assert not first.ready()
        b.sendall(b"for first")
        assert first.get() == b"for first"
        # Reading and writing from two tasks at once is allowed (one per direction).
        reader = treadle.spawn(a.recv, 10)
        treadle.sleep(0)
        a.sendall(b"ok")
        assert b.recv(2) == b"ok"
        b.sendall(b"done")
        assert reader.get() == b"done"
        a.close()
        b.close()

    treadle.run(main)


# -- module functions -------------------------------------------------------------------------


def test_create_connection_to_localhost_with_timeout_and_refused() -> None:
    holder, refused = refused_address()

    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        client = gsocket.create_connection(("localhost", port))
        assert isinstance(client, gsocket.socket) and client.gettimeout() is None
        conn, addr = listener.accept()
        assert addr == client.getsockname()  # it is our listener it reached
        client.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        conn.close()
        client.close()

        client = gsocket.create_connection(("127.0.0.1", port), timeout=2.5)
        assert client.gettimeout() == 2.5 and not os.get_blocking(client.fileno())
        conn, _ = listener.accept()
        conn.close()
        client.close()
        listener.close()

        with pytest.raises(ConnectionRefusedError):
            gsocket.create_connection(refused)
        with pytest.raises(ConnectionRefusedError):
            gsocket.create_connection(refused, timeout=2.0)
        with pytest.raises(ExceptionGroup) as group:
            gsocket.create_connection(("localhost", refused[1]), all_errors=True)
        assert group.value.exceptions and all(isinstance(e, OSError) for e in group.value.exceptions)

    try:
        treadle.run(main)
    finally:
        holder.close()


def test_create_server_socketpair_and_fromfd_return_green_sockets() -> None:
    def main() -> None:
        listener = gsocket.create_server(("127.0.0.1", 0), backlog=16)
        assert isinstance(listener, gsocket.socket)
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        listener.close()

        a, b = gsocket.socketpair()
        assert isinstance(a, gsocket.socket) and isinstance(b, gsocket.socket)
        assert a.family == socket.AF_UNIX and a.type == socket.SOCK_STREAM

        f = gsocket.fromfd(a.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
        assert isinstance(f, gsocket.socket) and f.fileno() != a.fileno()
        reader = treadle.spawn(f.recv, 20)
        treadle.sleep(0)
        b.sendall(b"via fromfd")
        assert reader.get() == b"via fromfd"
        for s in (a, b, f):
            s.close()

    treadle.run(main)


def test_getaddrinfo_and_gethostbyname_of_localhost_and_of_numeric_addresses() -> None:
    expected = set(socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM))

    def main() -> None:
        assert set(gsocket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)) == expected
        assert gsocket.gethostbyname("localhost") == socket.gethostbyname("localhost")
        assert gsocket.getaddrinfo("127.0.0.1", 80, socket.AF_INET, socket.SOCK_STREAM) == [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 80))
        ]
        assert gsocket.gethostbyname("127.0.0.1") == "127.0.0.1"
        info = gsocket.getaddrinfo("::1", 443, socket.AF_INET6, socket.SOCK_STREAM)
        assert info[0][4][:2] == ("::1", 443)
        with pytest.raises(socket.gaierror):
            gsocket.getaddrinfo("no-such-host.invalid", 80)
        assert gsocket.gethostbyname_ex("localhost") == socket.gethostbyname_ex("localhost")
        assert gsocket.gethostbyaddr("127.0.0.1") == socket.gethostbyaddr("127.0.0.1")
        flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        assert gsocket.getnameinfo(("127.0.0.1", 80), flags) == ("127.0.0.1", "80")

    treadle.run(main)


def test_a_name_lookup_does_not_block_other_green_tasks() -> None:
    def main() -> None:
        ticks = [0]
        stop = [False]

        def ticker() -> None:
            for _ in range(10**7):
                if stop[0]:
                    return
                ticks[0] += 1
                treadle.sleep(0)

        t = treadle.spawn(ticker)
        treadle.sleep(0)

        def ticks_during(fn: Callable[..., Any], *args: Any) -> int:
            before = ticks[0]
            fn(*args)
            return ticks[0] - before

        # A numeric address is resolved in the calling task, without a switch:
        # this shows the count measures switches.
        assert ticks_during(gsocket.getaddrinfo, "127.0.0.1", 80) == 0
        assert ticks_during(gsocket.gethostbyname, "127.0.0.1") == 0
        # A name is looked up off the loop while the ticker keeps ticking.
        assert ticks_during(gsocket.getaddrinfo, "localhost", 80) > 0
        assert ticks_during(gsocket.gethostbyname, "localhost") > 0
        stop[0] = True
        t.get()

    treadle.run(main)


def test_getfqdn_does_not_block_other_green_tasks() -> None:
    # getfqdn() is a resolver function of the module too: its look-up must wait off the loop.
    expected = socket.getfqdn("localhost")

    def main() -> None:
        ticks = [0]
        stop = [False]

        def ticker() -> None:
            for _ in range(10**7):
                if stop[0]:
                    return
                ticks[0] += 1
                treadle.sleep(0)

        t = treadle.spawn(ticker)
        treadle.sleep(0)
        before = ticks[0]
        assert gsocket.getfqdn("localhost") == expected
        during = ticks[0] - before
        stop[0] = True
        t.get()
        assert during > 0, "treadle.socket.getfqdn() resolved on the loop's thread, blocking every green task"

    treadle.run(main)


def test_a_green_socket_call_from_async_code_raises_blocking_in_hub_error() -> None:
    async def main() -> None:
        a, b = gsocket.socketpair()
        with pytest.raises(treadle.BlockingInHubError):
            a.recv(1)
        listener = gsocket.create_server(("127.0.0.1", 0))
        with pytest.raises(treadle.BlockingInHubError):
            listener.accept()
        # Run as a green task, the same calls work; nothing was left registered.
        reader = treadle.spawn(a.recv, 10)
        await asyncio.sleep(0)
        b.sendall(b"green")  # does not need to wait: no error
        assert await reader == b"green"
        client = gsocket.socket()
        accepted = treadle.spawn(listener.accept)
        await treadle.run_green(client.connect, listener.getsockname())
        conn, _ = await accepted
        for s in (a, b, listener, client, conn):
            s.close()

    treadle.run(main())


def test_a_plain_script_uses_green_sockets_without_run(tmp_path: Path) -> None:
    """gevent style: the main greenlet blocks on a green socket and the hub starts under it."""
    script = tmp_path / "program.py"
    script.write_text(
        textwrap.dedent(
            """
            import treadle
            from treadle import socket

            def echo_upper(listener):
                conn, _ = listener.accept()
                with conn:
                    while data := conn.recv(1024):
                        conn.sendall(data.upper())

            listener = socket.create_server(("127.0.0.1", 0))
            g = treadle.spawn(echo_upper, listener)
            client = socket.create_connection(("localhost", listener.getsockname()[1]))
            for word in ("alpha", "beta", "gamma"):
                client.sendall(word.encode())
                print(client.recv(100).decode())
            client.close()
            g.join()
            listener.close()
            print("server done", g.successful())
            """
        ),
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-X", "dev", str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["ALPHA", "BETA", "GAMMA", "server done True"]
    assert proc.stderr == ""


# -- seed 002: the gevent echo server with 500 client threads ---------------------------------


def test_seed002_echo_server_serves_500_concurrent_client_threads() -> None:
    clients = 500
    rounds = 3

    def talk(conn: gsocket.socket) -> int:
        served = 0
        while True:
            try:
                data = conn.recv(1024)
                if len(data) == 0:
                    break
                conn.send(data.upper())
                served += len(data)
            except ConnectionResetError:
                break
        conn.close()
        return served

    def server(listener: gsocket.socket, talks: list[treadle.Greenlet]) -> None:
        while True:
            conn, _client_addr = listener.accept()
            talks.append(treadle.spawn(talk, conn))

    def client(port: int, failures: list[str]) -> None:
        name = threading.current_thread().name
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as c:
                for r in range(rounds):
                    msg = f"{name} say hello {r}".encode()
                    c.sendall(msg)
                    data = recv_exactly(c, len(msg))
                    if data != msg.upper():
                        failures.append(f"{name}: {data!r} != {msg.upper()!r}")
        except Exception as exc:  # reported below, with the thread's name
            failures.append(f"{name}: {exc!r}")

    def start_and_join_clients(port: int, failures: list[str]) -> None:
        threads = [
            threading.Thread(target=client, args=(port, failures), name=f"client-{i:03d}") for i in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=90)
        alive = [t.name for t in threads if t.is_alive()]
        assert not alive, f"client threads still running: {alive[:5]}"

    def main() -> None:
        listener = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_STREAM)
        listener.setsockopt(gsocket.SOL_SOCKET, gsocket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        # The seed listens with backlog=5: under 500 simultaneous connects the kernel
        # then drops SYNs (the clients stall for a SYN retransmit, ~1 s and more), so
        # the accept queue is made large enough for all of them.
        listener.listen(1024)
        port = listener.getsockname()[1]
        talks: list[treadle.Greenlet] = []
        failures: list[str] = []
        g = treadle.spawn(server, listener, talks)
        # The hub must never block on a thread join: the threads are started and
        # joined in an executor thread, and the main green task awaits that.
        loop = asyncio.get_running_loop()
        treadle.await_(loop.run_in_executor(None, start_and_join_clients, port, failures))
        assert failures == []
        assert len(talks) == clients
        done = treadle.joinall(talks, timeout=30)
        assert len(done) == clients
        expected = sum(len(f"client-{i:03d} say hello {r}") for i in range(clients) for r in range(rounds))
        assert sum(t.get() for t in talks) == expected
        g.kill()
        assert g.cancelled()
        listener.close()

    treadle.run(main)


@pytest.mark.parametrize("call", ["send", "sendall", "sendmsg", "recv", "recv_into", "recvmsg"])
def test_msg_dontwait_never_waits_even_with_a_timeout(call: str) -> None:
    """``socket.MSG_DONTWAIT`` (an IntFlag member) on a socket with a timeout: EAGAIN at once, no wait."""

    def main() -> None:
        a, b = gsocket.socketpair()
        a.settimeout(30)
        flag = socket.MSG_DONTWAIT
        chunk = b"x" * 65536
        ops: dict[str, Callable[[], Any]] = {
            "send": lambda: a.send(chunk, flag),
            "sendall": lambda: a.sendall(chunk, flag),
            "recv_into": lambda: a.recv_into(bytearray(10), 0, flag),
            "sendmsg": lambda: a.sendmsg([chunk], [], flag),
            "recv": lambda: a.recv(10, flag),
            "recvmsg": lambda: a.recvmsg(10, 0, flag),
        }
        start = time.monotonic()
        with pytest.raises(BlockingIOError) as info:
            for _ in range(10_000):  # a send fills the buffer within a few MiB
                ops[call]()
        assert info.value.errno == errno.EAGAIN
        assert time.monotonic() - start < 10  # far below the 30 s timeout
        a.close()
        b.close()

    treadle.run(main)


def test_connect_ex_raises_when_the_host_name_cannot_be_resolved() -> None:
    """As the standard socket: ``connect_ex`` returns connection errors, but a failed lookup raises ``gaierror``."""

    def main() -> None:
        with gsocket.socket() as s:
            with pytest.raises(socket.gaierror):
                s.connect_ex(("no-such-host.invalid", 80))

    treadle.run(main)


@pytest.mark.treadle
def test_socket_deadlines_run_on_the_loop_clock(autojump_clock: Any) -> None:
    # sendall's timeout bounds the whole call: each partial send leaves less of
    # it.  That deadline is a loop time, as are the timers that end the waits,
    # so under the autojump clock it expires at exactly 3600 s of loop time
    # although the reader takes a little every 1000 s.
    a, b = gsocket.socketpair()
    try:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

        def slow_reader() -> None:
            while True:
                treadle.sleep(1000)
                if not b.recv(4096):
                    return

        reader = treadle.spawn(slow_reader)
        a.settimeout(3600)
        loop = treadle.green.get_hub().loop
        start = loop.time()
        with pytest.raises(TimeoutError):
            a.sendall(b"x" * (8 * MIB))
        assert loop.time() - start == 3600
        reader.kill()
    finally:
        a.close()
        b.close()

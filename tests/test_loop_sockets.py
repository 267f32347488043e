"""The loop's low-level socket API: readers/writers, the ``sock_*`` coroutines, name resolution.

Every test runs on treadle's loop and on stock asyncio (see ``conftest.py``);
where the two differ by design the test says so and asserts each kind.
"""

from __future__ import annotations

import array
import asyncio
import errno
import hashlib
import io
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Run = Callable[..., Any]


def _nonblocking_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = _nonblocking_pair()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _udp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.bind(("127.0.0.1", 0))
    return s


def _closed_tcp_port() -> int:
    """A loopback TCP port that nothing listens on (bound, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def _listener(host: str = "127.0.0.1", family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setblocking(False)
    srv.bind((host, 0))
    srv.listen(128)
    return srv


async def _tcp_pair(loop: asyncio.AbstractEventLoop) -> tuple[socket.socket, socket.socket]:
    """A connected (client, server-side) pair of non-blocking TCP sockets on 127.0.0.1."""
    srv = _listener()
    try:
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setblocking(False)
        accept = asyncio.ensure_future(loop.sock_accept(srv))
        await loop.sock_connect(cli, srv.getsockname())
        conn, _ = await accept
        return cli, conn
    finally:
        srv.close()


async def _recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    chunks = []
    got = 0
    while got < n:
        data = await loop.sock_recv(sock, n - got)
        assert data, f"EOF after {got} of {n} bytes"
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


# -- add_reader / add_writer ------------------------------------------------------------------


def test_add_reader_called_when_readable_and_removed(
    loop: asyncio.AbstractEventLoop, run: Run, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair

    async def main() -> None:
        received: list[bytes] = []
        got = asyncio.Event()

        def on_readable(tag: str) -> None:
            assert tag == "tag"
            received.append(a.recv(100))
            got.set()

        loop.add_reader(a, on_readable, "tag")
        b.send(b"hello")
        await asyncio.wait_for(got.wait(), 5)
        assert received == [b"hello"]
        assert loop.remove_reader(a) is True
        assert loop.remove_reader(a) is False

        # Removed: new data does not call the callback any more.
        got.clear()
        b.send(b"more")
        for _ in range(5):
            await asyncio.sleep(0.01)
        assert received == [b"hello"]
        assert a.recv(100) == b"more"

    run(main())


def test_add_reader_with_fd_number_and_replacement(
    loop: asyncio.AbstractEventLoop, run: Run, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair

    async def main() -> None:
        calls: list[str] = []
        got = asyncio.Event()

        def first() -> None:
            calls.append("first")

        def second() -> None:
            calls.append("second")
            a.recv(100)
            got.set()

        loop.add_reader(a.fileno(), first)
        loop.add_reader(a.fileno(), second)  # replaces the first one
        b.send(b"x")
        await asyncio.wait_for(got.wait(), 5)
        assert calls == ["second"]
        assert loop.remove_reader(a.fileno()) is True

    run(main())


def test_add_writer_called_when_writable_and_removed(
    loop: asyncio.AbstractEventLoop, run: Run, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair

    async def main() -> None:
        calls = 0
        writable = asyncio.Event()

        def on_writable() -> None:
            nonlocal calls
            calls += 1
            a.send(b"ping")
            loop.remove_writer(a)
            writable.set()

        loop.add_writer(a, on_writable)
        await asyncio.wait_for(writable.wait(), 5)
        assert calls == 1
        assert b.recv(100) == b"ping"
        assert loop.remove_writer(a) is False

        # Fill the socket until it would block, then wait for writability again.
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sent = 0
        for _ in range(100_000):
            try:
                sent += a.send(b"x" * 4096)
            except BlockingIOError:
                break
        else:
            pytest.fail("socket never became unwritable")
        writable.clear()

        def on_writable_again() -> None:
            loop.remove_writer(a)
            writable.set()

        loop.add_writer(a, on_writable_again)
        for _ in range(5):
            await asyncio.sleep(0.01)
        assert not writable.is_set(), "writer called while the socket was full"
        drained = 0
        while drained < sent:
            try:
                data = b.recv(65536)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            drained += len(data)
        await asyncio.wait_for(writable.wait(), 5)
        assert drained == sent

    run(main())


def test_reader_and_writer_on_same_fd(
    loop: asyncio.AbstractEventLoop, run: Run, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair

    async def main() -> None:
        events: list[str] = []
        done = asyncio.Event()

        def on_write() -> None:
            events.append("write")
            loop.remove_writer(a)

        def on_read() -> None:
            events.append("read:" + a.recv(10).decode())
            done.set()

        loop.add_reader(a, on_read)
        loop.add_writer(a, on_write)
        await asyncio.sleep(0.01)
        assert events == ["write"]
        b.send(b"r")
        await asyncio.wait_for(done.wait(), 5)
        assert events == ["write", "read:r"]
        # Removing the writer left the reader alone, and vice versa.
        assert loop.remove_writer(a) is False
        assert loop.remove_reader(a) is True

    run(main())


def test_add_reader_with_coroutine_function(
    loop: asyncio.AbstractEventLoop, loop_kind: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = pair

    async def cb() -> None:
        pass

    if loop_kind == "treadle":
        # treadle refuses misuse at the call ("errors never pass silently").
        with pytest.raises(TypeError):
            loop.add_reader(a, cb)
        assert loop.remove_reader(a) is False
    else:
        # Stock asyncio does not check the callback of add_reader().
        loop.add_reader(a, cb)
        assert loop.remove_reader(a) is True


# -- sock_recv and friends ----------------------------------------------------------------------


def test_sock_recv_waits_then_returns_data_and_eof(
    loop: asyncio.AbstractEventLoop, run: Run, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair

    async def main() -> None:
        task = asyncio.ensure_future(loop.sock_recv(a, 1024))
        await asyncio.sleep(0.01)
        assert not task.done()
        b.send(b"abc")
        assert await asyncio.wait_for(task, 5) == b"abc"
        # Data already there: returned without waiting.
        b.send(b"def")
        assert await loop.sock_recv(a, 2) == b"de"
        assert await loop.sock_recv(a, 10) == b"f"
        b.shutdown(socket.SHUT_WR)
        assert await asyncio.wait_for(loop.sock_recv(a, 10), 5) == b""

    run(main())


def test_sock_recv_into(loop: asyncio.AbstractEventLoop, run: Run, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair

    async def main() -> None:
        buf = bytearray(16)
        task = asyncio.ensure_future(loop.sock_recv_into(a, buf))
        await asyncio.sleep(0.01)
        assert not task.done()
        b.send(b"0123456789")
        n = await asyncio.wait_for(task, 5)
        assert n == 10
        assert bytes(buf[:n]) == b"0123456789"

        # Into a memoryview slice: only that part is written.
        buf2 = bytearray(b"." * 8)
        b.send(b"XYZ")
        n = await asyncio.wait_for(loop.sock_recv_into(a, memoryview(buf2)[2:4]), 5)
        assert n == 2
        assert bytes(buf2) == b"..XY...."
        assert await loop.sock_recv(a, 10) == b"Z"

    run(main())


def test_sock_recvfrom_and_sendto(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    s1, s2 = _udp_socket(), _udp_socket()

    async def main() -> None:
        task = asyncio.ensure_future(loop.sock_recvfrom(s1, 4096))
        await asyncio.sleep(0.01)
        assert not task.done()
        n = await loop.sock_sendto(s2, b"datagram-1", s1.getsockname())
        assert n == len(b"datagram-1")
        data, addr = await asyncio.wait_for(task, 5)
        assert data == b"datagram-1"
        assert addr == s2.getsockname()

        # A bufsize smaller than the datagram truncates it (datagram semantics).
        await loop.sock_sendto(s2, b"0123456789", s1.getsockname())
        data, addr = await asyncio.wait_for(loop.sock_recvfrom(s1, 4), 5)
        assert data == b"0123"
        assert addr == s2.getsockname()

        # Datagram boundaries are kept.
        for i in range(10):
            await loop.sock_sendto(s1, f"msg{i}".encode(), s2.getsockname())
        for i in range(10):
            data, addr = await asyncio.wait_for(loop.sock_recvfrom(s2, 4096), 5)
            assert data == f"msg{i}".encode()
            assert addr == s1.getsockname()

    try:
        run(main())
    finally:
        s1.close()
        s2.close()


def test_sock_recvfrom_into(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    s1, s2 = _udp_socket(), _udp_socket()

    async def main() -> None:
        buf = bytearray(64)
        task = asyncio.ensure_future(loop.sock_recvfrom_into(s1, buf))
        await asyncio.sleep(0.01)
        assert not task.done()
        await loop.sock_sendto(s2, b"hello world", s1.getsockname())
        n, addr = await asyncio.wait_for(task, 5)
        assert (n, bytes(buf[:n]), addr) == (11, b"hello world", s2.getsockname())

        # nbytes limits how much is written into the buffer.
        buf = bytearray(b"-" * 10)
        await loop.sock_sendto(s2, b"abcdefgh", s1.getsockname())
        n, addr = await asyncio.wait_for(loop.sock_recvfrom_into(s1, buf, 3), 5)
        assert n == 3
        assert bytes(buf) == b"abc-------"
        assert addr == s2.getsockname()

    try:
        run(main())
    finally:
        s1.close()
        s2.close()


def test_sock_sendall_large_payload_to_slow_reader(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    size = 8 * 1024 * 1024
    payload = os.urandom(size)
    expected = hashlib.sha256(payload).hexdigest()
    a, b = _nonblocking_pair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)

    async def slow_reader() -> bytes:
        chunks = []
        got = 0
        reads = 0
        while got < size:
            data = await loop.sock_recv(b, 64 * 1024)
            assert data, f"EOF after {got} bytes"
            chunks.append(data)
            got += len(data)
            reads += 1
            if reads % 16 == 0:
                await asyncio.sleep(0.001)
        return b"".join(chunks)

    async def main() -> None:
        sender = asyncio.ensure_future(loop.sock_sendall(a, payload))
        await asyncio.sleep(0.05)
        # Nobody reads yet and 8 MiB cannot fit in the socket buffers: sendall waits.
        assert not sender.done()
        reader = asyncio.ensure_future(slow_reader())
        assert await asyncio.wait_for(sender, 20) is None
        data = await asyncio.wait_for(reader, 20)
        assert len(data) == size
        assert hashlib.sha256(data).hexdigest() == expected
        assert data == payload

    try:
        run(main())
    finally:
        a.close()
        b.close()


def test_sock_sendall_over_tcp_every_byte(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB with a position-dependent pattern

    async def main() -> None:
        cli, conn = await _tcp_pair(loop)
        try:
            reader = asyncio.ensure_future(_recv_exactly(loop, conn, len(payload)))
            await loop.sock_sendall(cli, memoryview(payload))
            assert await asyncio.wait_for(reader, 20) == payload
            cli.shutdown(socket.SHUT_WR)
            assert await loop.sock_recv(conn, 10) == b""
        finally:
            cli.close()
            conn.close()

    run(main())


def test_sock_sendall_empty(
    loop: asyncio.AbstractEventLoop, run: Run, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair

    async def main() -> None:
        assert await loop.sock_sendall(a, b"") is None
        await loop.sock_sendall(a, bytearray(b"after"))
        assert await loop.sock_recv(b, 100) == b"after"

    run(main())


def test_sock_sendall_counts_bytes_of_a_view_of_wider_items(
    loop: asyncio.AbstractEventLoop, loop_kind: str, run: Run, pair: tuple[socket.socket, socket.socket]
) -> None:
    if loop_kind != "treadle":
        pytest.skip("stock asyncio's sock_sendall counts the view's items as bytes and never finishes")
    a, b = pair
    words = array.array("i", range(100_000))  # 400 KB: more than one send takes

    async def main() -> None:
        sending = asyncio.ensure_future(loop.sock_sendall(a, memoryview(words)))
        got = bytearray()
        while len(got) < len(words) * words.itemsize:
            got += await loop.sock_recv(b, 65536)
        await sending
        assert bytes(got) == words.tobytes()

    run(main())


class _CountingSocket(socket.socket):
    """A socket class with its own recv, recv_into and send: the sock_* calls must go through them."""

    calls: list[str]

    def recv(self, n: int, flags: int = 0) -> bytes:
        self.calls.append("recv")
        return super().recv(n, flags)

    def recv_into(self, buf: Any, n: int = 0, flags: int = 0) -> int:
        self.calls.append("recv_into")
        return super().recv_into(buf, n, flags)

    def send(self, data: Any, flags: int = 0) -> int:
        self.calls.append("send")
        return super().send(data, flags)


def test_sock_calls_go_through_a_subclass_own_methods(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    a, b = socket.socketpair()
    own = _CountingSocket(fileno=a.detach())
    own.calls = []
    own.setblocking(False)
    b.setblocking(False)

    async def main() -> None:
        reading = asyncio.ensure_future(loop.sock_recv(own, 10))
        await asyncio.sleep(0.01)  # it found nothing and waits
        await loop.sock_sendall(b, b"ping")
        assert await reading == b"ping"
        await loop.sock_sendall(b, b"pong")
        buf = bytearray(10)
        assert await loop.sock_recv_into(own, buf) == 4 and buf[:4] == b"pong"
        await loop.sock_sendall(own, b"back")
        assert await loop.sock_recv(b, 10) == b"back"

    try:
        run(main())
    finally:
        own.close()
        b.close()
    assert own.calls[0] == "recv" and own.calls.count("recv") == 2  # tried, waited, tried again
    assert own.calls[2:] == ["recv_into", "send"]


def test_full_duplex_recv_and_sendall_on_one_socket(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    """A reader and a writer waiting on the same descriptor at once do not disturb each other."""
    size = 2 * 1024 * 1024
    out_a, out_b = os.urandom(size), os.urandom(size)
    a, b = _nonblocking_pair()
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)

    async def main() -> None:
        results = await asyncio.wait_for(
            asyncio.gather(
                loop.sock_sendall(a, out_a),
                loop.sock_sendall(b, out_b),
                _recv_exactly(loop, a, size),
                _recv_exactly(loop, b, size),
            ),
            20,
        )
        assert results[2] == out_b
        assert results[3] == out_a
        for s in (a, b):
            assert loop.remove_reader(s) is False
            assert loop.remove_writer(s) is False

    try:
        run(main())
    finally:
        a.close()
        b.close()


def test_fd_of_a_transport_is_refused(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    srv = _listener()

    async def main() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        accept = asyncio.ensure_future(loop.sock_accept(srv))
        await loop.sock_connect(sock, srv.getsockname())
        conn, _ = await accept
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=sock)
        try:
            fd = sock.fileno()
            with pytest.raises(RuntimeError):
                loop.add_reader(fd, lambda: None)
            with pytest.raises(RuntimeError):
                loop.add_writer(sock, lambda: None)
            with pytest.raises(RuntimeError):
                loop.remove_reader(fd)
            with pytest.raises(RuntimeError):
                await loop.sock_recv(sock, 10)  # nothing to read: it would have to wait
        finally:
            transport.close()
            conn.close()
        await asyncio.sleep(0)

    try:
        run(main())
    finally:
        srv.close()


# -- connect / accept -----------------------------------------------------------------------------


def test_sock_connect_and_accept(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    srv = _listener()

    async def main() -> None:
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setblocking(False)
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            await asyncio.sleep(0.01)
            assert not accept.done()
            await asyncio.wait_for(loop.sock_connect(cli, srv.getsockname()), 5)
            conn, addr = await asyncio.wait_for(accept, 5)
            try:
                assert conn.gettimeout() == 0, "accepted socket must be non-blocking"
                assert addr == cli.getsockname()
                assert cli.getpeername() == srv.getsockname()
                await loop.sock_sendall(cli, b"to server")
                assert await _recv_exactly(loop, conn, 9) == b"to server"
                await loop.sock_sendall(conn, b"to client")
                assert await _recv_exactly(loop, cli, 9) == b"to client"
            finally:
                conn.close()
        finally:
            cli.close()

    try:
        run(main())
    finally:
        srv.close()


def test_sock_connect_resolves_localhost(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    srv = _listener()
    port = srv.getsockname()[1]

    async def main() -> None:
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(cli, ("localhost", port)), 5)
            assert cli.getpeername() == ("127.0.0.1", port)
            conn, addr = await asyncio.wait_for(loop.sock_accept(srv), 5)
            conn.close()
            assert addr == cli.getsockname()
        finally:
            cli.close()

    try:
        run(main())
    finally:
        srv.close()


def test_sock_connect_ipv6(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    try:
        srv = _listener("::1", socket.AF_INET6)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")

    async def main() -> None:
        cli = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        cli.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(cli, srv.getsockname()[:2]), 5)
            conn, addr = await asyncio.wait_for(loop.sock_accept(srv), 5)
            conn.close()
            assert addr[:2] == cli.getsockname()[:2]
        finally:
            cli.close()

    try:
        run(main())
    finally:
        srv.close()


def test_sock_connect_refused(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    port = _closed_tcp_port()

    async def main() -> None:
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setblocking(False)
        try:
            with pytest.raises(ConnectionRefusedError) as info:
                await asyncio.wait_for(loop.sock_connect(cli, ("127.0.0.1", port)), 5)
            assert info.value.errno == errno.ECONNREFUSED
        finally:
            cli.close()
        # Nothing was left registered on the loop for that descriptor: a new
        # socket (likely reusing the number) connects fine.
        srv = _listener()
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(cli, srv.getsockname()), 5)
        finally:
            cli.close()
            srv.close()

    run(main())


def test_sock_connect_unix(loop: asyncio.AbstractEventLoop, run: Run, tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.setblocking(False)
    srv.bind(path)
    srv.listen(4)

    async def main() -> None:
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cli.setblocking(False)
        try:
            accept = asyncio.ensure_future(loop.sock_accept(srv))
            await asyncio.wait_for(loop.sock_connect(cli, path), 5)
            conn, _ = await asyncio.wait_for(accept, 5)
            try:
                await loop.sock_sendall(cli, b"unix")
                assert await _recv_exactly(loop, conn, 4) == b"unix"
            finally:
                conn.close()
        finally:
            cli.close()

    try:
        run(main())
    finally:
        srv.close()


def test_sock_accept_many(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    srv = _listener()

    async def client(i: int) -> None:
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setblocking(False)
        try:
            await loop.sock_connect(cli, srv.getsockname())
            await loop.sock_sendall(cli, f"{i:04d}".encode())
            assert await _recv_exactly(loop, cli, 4) == f"{i:04d}".encode()[::-1]
        finally:
            cli.close()

    async def server(n: int) -> list[int]:
        seen = []
        for _ in range(n):
            conn, _ = await loop.sock_accept(srv)
            try:
                data = await _recv_exactly(loop, conn, 4)
                seen.append(int(data))
                await loop.sock_sendall(conn, data[::-1])
            finally:
                conn.close()
        return seen

    async def main() -> None:
        n = 20
        srv_task = asyncio.ensure_future(server(n))
        await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(n))), 20)
        assert sorted(await asyncio.wait_for(srv_task, 5)) == list(range(n))

    try:
        run(main())
    finally:
        srv.close()


# -- sendfile -------------------------------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    content = os.urandom(256 * 1024 + 17)
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    return path, content


def test_sock_sendfile_offset_and_count(
    loop: asyncio.AbstractEventLoop, run: Run, data_file: tuple[Path, bytes]
) -> None:
    path, content = data_file
    offset, count = 1000, 100_000

    async def main() -> None:
        cli, conn = await _tcp_pair(loop)
        try:
            with open(path, "rb") as f:
                reader = asyncio.ensure_future(_recv_exactly(loop, conn, count))
                sent = await asyncio.wait_for(loop.sock_sendfile(cli, f, offset, count), 20)
                assert sent == count
                assert f.tell() == offset + count
                assert await asyncio.wait_for(reader, 20) == content[offset : offset + count]
            # Nothing more than count was sent.
            cli.shutdown(socket.SHUT_WR)
            assert await asyncio.wait_for(loop.sock_recv(conn, 10), 5) == b""
        finally:
            cli.close()
            conn.close()

    run(main())


def test_sock_sendfile_whole_file(loop: asyncio.AbstractEventLoop, run: Run, data_file: tuple[Path, bytes]) -> None:
    path, content = data_file

    async def main() -> None:
        cli, conn = await _tcp_pair(loop)
        # Small buffers so that the sender has to wait for the reader.
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
        try:
            with open(path, "rb") as f:
                reader = asyncio.ensure_future(_recv_exactly(loop, conn, len(content)))
                sent = await asyncio.wait_for(loop.sock_sendfile(cli, f), 20)
                assert sent == len(content)
                assert f.tell() == len(content)
                assert await asyncio.wait_for(reader, 20) == content
        finally:
            cli.close()
            conn.close()

    run(main())


def test_sock_sendfile_offset_to_end(loop: asyncio.AbstractEventLoop, run: Run, data_file: tuple[Path, bytes]) -> None:
    path, content = data_file
    offset = 4097

    async def main() -> None:
        cli, conn = await _tcp_pair(loop)
        try:
            with open(path, "rb") as f:
                reader = asyncio.ensure_future(_recv_exactly(loop, conn, len(content) - offset))
                sent = await asyncio.wait_for(loop.sock_sendfile(cli, f, offset), 20)
                assert sent == len(content) - offset
                assert f.tell() == len(content)
                assert await asyncio.wait_for(reader, 20) == content[offset:]
        finally:
            cli.close()
            conn.close()

    run(main())


def test_sock_sendfile_empty_file(loop: asyncio.AbstractEventLoop, run: Run, tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")

    async def main() -> None:
        cli, conn = await _tcp_pair(loop)
        try:
            with open(path, "rb") as f:
                assert await asyncio.wait_for(loop.sock_sendfile(cli, f), 5) == 0
                assert f.tell() == 0
        finally:
            cli.close()
            conn.close()

    run(main())


def test_sock_sendfile_falls_back_for_non_regular_file(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    content = os.urandom(100_000)

    async def main() -> None:
        cli, conn = await _tcp_pair(loop)
        try:
            f = io.BytesIO(content)
            reader = asyncio.ensure_future(_recv_exactly(loop, conn, 50_000))
            sent = await asyncio.wait_for(loop.sock_sendfile(cli, f, 25_000, 50_000), 20)
            assert sent == 50_000
            assert f.tell() == 75_000
            assert await asyncio.wait_for(reader, 20) == content[25_000:75_000]
            with pytest.raises(asyncio.SendfileNotAvailableError):
                await loop.sock_sendfile(cli, io.BytesIO(content), fallback=False)
        finally:
            cli.close()
            conn.close()

    run(main())


# -- misuse and cancellation ------------------------------------------------------------------------


def test_blocking_socket_refused(loop: asyncio.AbstractEventLoop, loop_kind: str, run: Run) -> None:
    a, b = socket.socketpair()  # blocking
    try:
        b.sendall(b"ready")  # so that a blocking recv on stock asyncio cannot hang

        async def main() -> None:
            if loop_kind == "treadle":
                # treadle refuses a blocking socket in every mode.
                with pytest.raises(ValueError, match="non-blocking"):
                    await loop.sock_recv(a, 10)
                with pytest.raises(ValueError):
                    await loop.sock_sendall(a, b"x")
                assert await asyncio.to_thread(a.recv, 10) == b"ready"
            else:
                # Stock asyncio checks only in debug mode: the call goes through.
                assert await loop.sock_recv(a, 10) == b"ready"

        run(main())
    finally:
        a.close()
        b.close()


SOCK_METHODS = [
    "sock_recv",
    "sock_recv_into",
    "sock_recvfrom",
    "sock_recvfrom_into",
    "sock_sendall",
    "sock_sendto",
    "sock_connect",
    "sock_accept",
    "sock_sendfile",
]


class _BlockingCall:
    """One ``loop.sock_*`` call on a *blocking* socket, set up so that it cannot block for long.

    Every socket is in blocking mode, but what the call needs is already there
    (data received, a connection queued, room to send), so a loop that does
    not refuse the socket completes the call at once instead of hanging.
    """

    def __init__(self, method: str, tmp_path: Path) -> None:
        self.method = method
        self.closing: list[Any] = []
        self.args: tuple[Any, ...]
        if method in ("sock_recv", "sock_recv_into", "sock_sendall", "sock_sendfile"):
            a, b = socket.socketpair()
            self.closing += [a, b]
            b.sendall(b"ready")
            if method == "sock_recv":
                self.args = (a, 10)
            elif method == "sock_recv_into":
                self.args = (a, bytearray(10))
            elif method == "sock_sendall":
                self.args = (a, b"x")
            else:
                path = tmp_path / "small.bin"
                path.write_bytes(b"0123456789")
                f = open(path, "rb")  # closed in close()
                self.closing.append(f)
                self.args = (a, f)
        elif method in ("sock_recvfrom", "sock_recvfrom_into", "sock_sendto"):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.closing.append(u)
            u.bind(("127.0.0.1", 0))
            u.sendto(b"dgram", u.getsockname())
            if method == "sock_recvfrom":
                self.args = (u, 100)
            elif method == "sock_recvfrom_into":
                self.args = (u, bytearray(100))
            else:
                self.args = (u, b"x", u.getsockname())
        else:
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.closing.append(srv)
            srv.bind(("127.0.0.1", 0))
            srv.listen(4)
            if method == "sock_connect":
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.closing.append(c)
                self.args = (c, srv.getsockname())
            else:
                c = socket.create_connection(srv.getsockname(), timeout=5)  # queued, so accept() returns at once
                self.closing.append(c)
                self.args = (srv,)
        assert self.args[0].gettimeout() is None  # blocking

    async def __call__(self, loop: asyncio.AbstractEventLoop) -> Any:
        result = await getattr(loop, self.method)(*self.args)
        if self.method == "sock_accept":
            result[0].close()
        return result

    def close(self) -> None:
        for obj in self.closing:
            obj.close()


@pytest.mark.parametrize("method", SOCK_METHODS)
def test_blocking_socket_refused_by_every_sock_method(
    loop: asyncio.AbstractEventLoop, loop_kind: str, run: Run, method: str, tmp_path: Path
) -> None:
    """treadle refuses a blocking socket in every ``sock_*`` method, in every mode (sockops.py docstring).

    Stock asyncio checks only in debug mode; otherwise the call goes through
    (here it cannot block, see ``_BlockingCall``).
    """
    call = _BlockingCall(method, tmp_path)
    try:
        if loop_kind == "treadle":
            with pytest.raises(ValueError, match="non-blocking"):
                run(call(loop), timeout=10)
        else:
            run(call(loop), timeout=10)
    finally:
        call.close()


@pytest.mark.parametrize("method", SOCK_METHODS)
def test_blocking_socket_refused_in_debug_mode(
    loop: asyncio.AbstractEventLoop, run: Run, method: str, tmp_path: Path
) -> None:
    loop.set_debug(True)
    call = _BlockingCall(method, tmp_path)
    try:
        with pytest.raises(ValueError):
            run(call(loop), timeout=10)
    finally:
        call.close()


def test_cancelled_sock_recv_leaves_no_reader(
    loop: asyncio.AbstractEventLoop, run: Run, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair

    async def main() -> None:
        task = asyncio.ensure_future(loop.sock_recv(a, 100))
        await asyncio.sleep(0.01)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_reader(a) is False, "the cancelled sock_recv left a reader registered"

        # add_reader on the same socket works and is called.
        got = asyncio.Event()

        def on_readable() -> None:
            got.set()

        loop.add_reader(a, on_readable)
        b.send(b"one")
        await asyncio.wait_for(got.wait(), 5)
        assert loop.remove_reader(a) is True
        assert a.recv(100) == b"one"

        # And so does a new sock_recv, which gets the data (none was eaten by the cancelled one).
        task = asyncio.ensure_future(loop.sock_recv(a, 100))
        await asyncio.sleep(0.01)
        b.send(b"two")
        assert await asyncio.wait_for(task, 5) == b"two"
        assert loop.remove_reader(a) is False

    run(main())


def test_cancelled_sock_sendall_leaves_no_writer(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    a, b = _nonblocking_pair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    async def main() -> None:
        task = asyncio.ensure_future(loop.sock_sendall(a, b"z" * (4 * 1024 * 1024)))
        await asyncio.sleep(0.02)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_writer(a) is False, "the cancelled sock_sendall left a writer registered"

        called = asyncio.Event()

        def on_writable() -> None:
            loop.remove_writer(a)
            called.set()

        # Drain the peer so that a becomes writable, then a new writer is called.
        loop.add_writer(a, on_writable)
        for _ in range(10_000):
            if called.is_set():
                break
            try:
                b.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.001)
        await asyncio.wait_for(called.wait(), 5)

    try:
        run(main())
    finally:
        a.close()
        b.close()


def test_cancelled_sock_connect_leaves_no_writer(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    # A listening socket with a full accept queue: a further connect stays pending (SYN dropped).
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    filler = socket.create_connection(srv.getsockname(), timeout=5)

    async def main() -> None:
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setblocking(False)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(loop.sock_connect(cli, srv.getsockname()), 0.2)
            assert loop.remove_writer(cli) is False, "the cancelled sock_connect left a writer registered"
            called = asyncio.Event()

            def on_writable() -> None:
                loop.remove_writer(cli)
                called.set()

            # A writer added afterwards is called once the connection completes.
            loop.add_writer(cli, on_writable)
            conn, _ = srv.accept()  # take the filler's connection: there is room in the queue again
            conn.close()
            # The client's SYN is sent again (about a second later) and the handshake completes.
            await asyncio.wait_for(called.wait(), 10)
            assert cli.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            conn, _ = srv.accept()
            conn.close()
        finally:
            cli.close()

    try:
        run(main())
    finally:
        filler.close()
        srv.close()


def test_sock_recv_on_closed_loop_raises(loop: asyncio.AbstractEventLoop) -> None:
    a, b = _nonblocking_pair()
    try:
        loop.close()
        with pytest.raises(RuntimeError):
            loop.add_reader(a, lambda: None)
    finally:
        a.close()
        b.close()


# -- name resolution -------------------------------------------------------------------------------


def test_getaddrinfo_numeric(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    infos = run(loop.getaddrinfo("127.0.0.1", 8080, type=socket.SOCK_STREAM))
    assert infos == socket.getaddrinfo("127.0.0.1", 8080, type=socket.SOCK_STREAM)
    assert len(infos) >= 1
    family, type_, proto, _canon, addr = infos[0]
    assert family == socket.AF_INET
    assert type_ == socket.SOCK_STREAM
    assert proto in (0, socket.IPPROTO_TCP)
    assert addr == ("127.0.0.1", 8080)


def test_getaddrinfo_localhost(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    infos = run(loop.getaddrinfo("localhost", "80", type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP))
    assert infos
    assert infos == socket.getaddrinfo("localhost", "80", type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addrs = {(info[0], info[4][0]) for info in infos}
    assert addrs <= {(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")}
    assert all(info[4][1] == 80 for info in infos)

    v4 = run(loop.getaddrinfo("localhost", 0, family=socket.AF_INET, type=socket.SOCK_DGRAM))
    assert [info[4] for info in v4] == [("127.0.0.1", 0)]
    assert all(info[1] == socket.SOCK_DGRAM for info in v4)


def test_getaddrinfo_error(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    with pytest.raises(socket.gaierror):
        run(loop.getaddrinfo("not a valid host name!", 80, flags=socket.AI_NUMERICHOST))


def test_getnameinfo(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    assert run(loop.getnameinfo(("127.0.0.1", 80), flags)) == ("127.0.0.1", "80")
    assert run(loop.getnameinfo(("127.0.0.1", 80))) == socket.getnameinfo(("127.0.0.1", 80), 0)
    host, _service = run(loop.getnameinfo(("127.0.0.1", 443), socket.NI_NUMERICSERV))
    assert host == socket.getnameinfo(("127.0.0.1", 443), socket.NI_NUMERICSERV)[0]


def test_many_concurrent_resolutions(loop: asyncio.AbstractEventLoop, run: Run) -> None:
    async def main() -> None:
        results = await asyncio.gather(
            *(loop.getaddrinfo("127.0.0.1", port, type=socket.SOCK_STREAM) for port in range(1000, 1050))
        )
        for port, infos in zip(range(1000, 1050), results, strict=True):
            assert infos[0][4] == ("127.0.0.1", port)

    run(main())

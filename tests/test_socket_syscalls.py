"""``treadle._core.sysio``: one socket system call, never waiting, with the standard methods' errors.

The suite runs twice (compiled core and ``TREADLE_PURE_PYTHON=1``), so each
test holds for the C calls and for the standard methods they stand in for.
"""

from __future__ import annotations

import errno
import re
import select
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from treadle._core import sysio


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    client.setblocking(False)
    server.setblocking(False)
    return client, server


def _fill(sock: socket.socket) -> int:
    """Send until the kernel takes no more; the bytes it took."""
    total = 0
    chunk = b"f" * 65536
    for _ in range(10_000):  # a socket buffer holds a few MiB at most
        count = sysio.send(sock, chunk)
        if count < 0:
            return total
        total += count
    raise AssertionError("the socket never filled up")


def test_reads_say_not_ready_with_a_value(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    assert sysio.recv(a, 10) is None
    assert sysio.recv_into(a, bytearray(10)) == -1
    assert sysio.recv_copy(a, bytearray(10)) is None


def test_reads_return_what_came(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    assert sysio.send(b, b"hello world") == 11
    assert sysio.recv(a, 5) == b"hello"
    buffer = bytearray(4)
    assert sysio.recv_into(a, buffer) == 4
    assert buffer == b" wor"
    scratch = bytearray(64)
    copy = sysio.recv_copy(a, scratch)
    assert copy == b"ld" and type(copy) is bytes
    scratch[:2] = b"XX"  # the copy does not share the scratch buffer
    assert copy == b"ld"
    assert sysio.recv(a, 5) is None


def test_recv_into_honours_a_size(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    b.sendall(b"abcdef")
    buffer = bytearray(b"......")
    assert sysio.recv_into(a, buffer, 2) == 2
    assert buffer == b"ab...."
    assert sysio.recv_into(a, memoryview(buffer)[2:]) == 4
    assert buffer == b"abcdef"


def test_flags_are_passed_on(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    b.sendall(b"peek")
    assert sysio.recv(a, 10, socket.MSG_PEEK) == b"peek"
    assert sysio.recv(a, 10) == b"peek"


def test_end_of_stream(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    b.shutdown(socket.SHUT_WR)
    assert sysio.recv(a, 10) == b""
    assert sysio.recv_into(a, bytearray(10)) == 0
    assert sysio.recv_copy(a, bytearray(10)) == b""


def test_send_from_an_offset(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    assert sysio.send(b, b"0123456789", 0, 7) == 3
    assert sysio.send(b, memoryview(b"abc"), 0, 3) == 0
    # A start counts bytes, also in a view of wider items.
    words = memoryview(struct.pack("=4i", 1, 2, 3, 4)).cast("i")
    assert sysio.nbytes(words) == 16
    assert sysio.send(b, words, 0, 12) == 4
    assert a.recv(100) == b"789" + struct.pack("=i", 4)


def test_send_says_not_ready_when_the_buffer_is_full(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    sent = _fill(b)
    assert sent > 0
    assert sysio.send(b, b"more") == -1
    got = 0
    while got < sent:
        data = sysio.recv(a, 1 << 20)
        assert data  # all of it is there to be read
        got += len(data)
    assert got == sent and sysio.recv(a, 10) is None


def test_a_blocking_socket_is_not_waited_on(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.setblocking(True)
    a.settimeout(None)
    assert sysio.recv(a, 10) is None  # MSG_DONTWAIT: the call returns at once
    b.setblocking(True)
    _fill(b)


def test_peer_reset_is_connection_reset_error() -> None:
    client, server = _tcp_pair()
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.close()  # an RST, not a FIN
        assert select.select([client], [], [], 10)[0] == [client]
        with pytest.raises(ConnectionResetError) as info:
            sysio.recv(client, 10)
        assert info.value.errno == errno.ECONNRESET
    finally:
        client.close()


def test_a_closed_socket_is_ebadf(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    a.close()
    calls: list[Callable[[], Any]] = [
        lambda: sysio.recv(a, 1),
        lambda: sysio.recv_into(a, bytearray(1)),
        lambda: sysio.recv_copy(a, bytearray(1)),
        lambda: sysio.send(a, b"x"),
    ]
    for call in calls:
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EBADF


@pytest.mark.parametrize(
    ("ours", "standard"),
    [
        (lambda s: sysio.send(s, "text"), lambda s: s.send("text")),
        (lambda s: sysio.send(s, memoryview(b"abcdef")[::2]), lambda s: s.send(memoryview(b"abcdef")[::2])),
        (lambda s: sysio.nbytes("text"), lambda s: s.send("text")),
        (lambda s: sysio.recv(s, -1), lambda s: s.recv(-1)),
        (lambda s: sysio.recv_into(s, b"read-only"), lambda s: s.recv_into(b"read-only")),
        (lambda s: sysio.recv_into(s, bytearray(2), -1), lambda s: s.recv_into(bytearray(2), -1)),
        (lambda s: sysio.recv_into(s, bytearray(2), 5), lambda s: s.recv_into(bytearray(2), 5)),
    ],
)
def test_bad_arguments_get_the_standard_errors(
    pair: tuple[socket.socket, socket.socket], ours: Callable[[Any], Any], standard: Callable[[Any], Any]
) -> None:
    a, _ = pair
    with pytest.raises(Exception) as expected:
        standard(a)
    with pytest.raises(type(expected.value), match="^" + re.escape(str(expected.value)) + "$"):
        ours(a)


def test_bad_arguments_of_its_own(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    with pytest.raises(TypeError, match="a socket.socket was expected, got object"):
        sysio.recv(object(), 1)
    with pytest.raises(TypeError, match="needs a bytearray to read into, got bytes"):
        sysio.recv_copy(a, b"xx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start must be within the data's 2 bytes, got 3"):
        sysio.send(a, b"xy", 0, 3)
    with pytest.raises(ValueError, match="start must be within the data's 2 bytes, got -1"):
        sysio.send(a, b"xy", 0, -1)
    with pytest.raises(TypeError):
        sysio.send(a, b"xy", None)  # type: ignore[arg-type]

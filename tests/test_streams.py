"""``SocketStream`` and the connect functions: reading, limits, flow control, half-close, closing, errors.

Most tests take a connected pair: ``client`` from ``open_tcp_stream`` and ``peer``, the
stream a server handler got (the handler only hands it over).  Each behaviour is checked in
both styles: a green main task calling the methods directly, and an async one awaiting them.
An autouse fixture checks that no descriptor is left open after each test, and
ResourceWarnings are errors.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import gc
import logging
import random
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import treadle
from treadle.concurrency.channels import BrokenResourceError, ClosedResourceError
from treadle.concurrency.waiting import current_loop
from treadle.net.stream_connect import open_tcp_stream, open_unix_stream
from treadle.net.stream_server import SocketStreamServer, serve_tcp
from treadle.net.streams import (
    BrokenStreamError,
    BusyResourceError,
    IncompleteReadError,
    ReadLimitError,
    SocketStream,
)

from .conftest import TLS, ipv6_loopback_available, open_fds
from .styles import asettle, settle, spin

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

Pair = tuple[SocketStreamServer, SocketStream, SocketStream]


@pytest.fixture(autouse=True)
def no_leaked_fds() -> Iterator[None]:
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    assert open_fds() - before == set(), "a descriptor was left open"


async def open_pair() -> Pair:
    """A server, a client stream to it, and the server side of that connection (``peer``)."""
    got: asyncio.Future[SocketStream] = asyncio.get_running_loop().create_future()

    async def handler(stream: SocketStream) -> None:
        got.set_result(stream)
        await asyncio.Event().wait()  # until the server is closed

    server = await serve_tcp(handler, "127.0.0.1", 0)
    client = await open_tcp_stream("127.0.0.1", server.port)
    return server, client, await got


def pair() -> Pair:
    """Green code: :func:`open_pair`."""
    return treadle.await_(open_pair())


async def aclose_pair(server: SocketStreamServer, client: SocketStream) -> None:
    await client.aclose()
    await server.aclose(0)


def close_pair(server: SocketStreamServer, client: SocketStream) -> None:
    client.close()
    server.close(0)


def run(style: str, green_main: Callable[[], None], async_main: Callable[[], Any]) -> None:
    treadle.run(green_main) if style == "green" else treadle.run(async_main())


def reset(stream: SocketStream) -> None:
    """Close ``stream``'s connection with a reset (RST), as a crashed peer does."""
    stream.extra("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.abort()


STYLES = ["green", "async"]


# -- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_receive_some_returns_up_to_max_bytes_then_empty_at_eof(style: str) -> None:
    def green_main() -> None:
        server, client, peer = pair()
        client.send_all(b"abcdef")
        first = peer.receive_some(4)
        assert 1 <= len(first) <= 4
        assert first + peer.read_exactly(6 - len(first)) == b"abcdef"
        assert not peer.at_eof()
        client.send_eof()
        assert peer.receive_some() == b"" and peer.receive_some() == b""
        assert peer.at_eof()
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        await client.send_all(b"abcdef")
        first = await peer.receive_some(4)
        assert 1 <= len(first) <= 4
        assert first + await peer.read_exactly(6 - len(first)) == b"abcdef"
        await client.send_eof()
        assert await peer.receive_some() == b"" and await peer.receive_some() == b""
        assert peer.at_eof()
        await aclose_pair(server, client)

    run(style, green_main, async_main)


@pytest.mark.parametrize("style", STYLES)
def test_read_exactly_waits_for_every_byte_and_raises_incomplete_at_eof(style: str) -> None:
    def green_main() -> None:
        server, client, peer = pair()
        assert peer.read_exactly(0) == b""
        reader = treadle.spawn(peer.read_exactly, 5)
        client.send_all(b"ab")
        spin()
        assert not reader.ready()
        client.send_all(b"cdef")
        assert reader.get(timeout=10) == b"abcde"
        client.send_eof()
        with pytest.raises(IncompleteReadError) as info:
            peer.read_exactly(3)
        assert info.value.partial == b"f" and info.value.expected == 3
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        assert await peer.read_exactly(0) == b""
        reader = asyncio.get_running_loop().create_task(peer.read_exactly(5))
        await client.send_all(b"ab")
        for _ in range(20):
            await asyncio.sleep(0)
        assert not reader.done()
        await client.send_all(b"cdef")
        assert await asyncio.wait_for(reader, 10) == b"abcde"
        await client.send_eof()
        with pytest.raises(IncompleteReadError) as info:
            await peer.read_exactly(3)
        assert info.value.partial == b"f" and info.value.expected == 3
        await aclose_pair(server, client)

    run(style, green_main, async_main)


@pytest.mark.parametrize("style", STYLES)
def test_read_until_and_readline_return_through_the_separator(style: str) -> None:
    pieces = [b"one\r", b"\ntwo\r\nthr"]

    def green_main() -> None:
        server, client, peer = pair()
        for piece in pieces:
            client.send_all(piece)
            spin(5)
        assert peer.read_until(b"\r\n") == b"one\r\n"
        assert peer.read_until(separator=b"\r\n") == b"two\r\n"
        client.send_all(b"ee\na\nb")
        client.send_eof()
        assert peer.readline() == b"three\n"
        assert list(peer) == [b"a\n", b"b"]  # the last line without its newline, at EOF
        assert peer.readline() == b""
        with pytest.raises(IncompleteReadError) as info:
            peer.read_until(b"\n")
        assert info.value.partial == b"" and info.value.expected is None
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        for piece in pieces:
            await client.send_all(piece)
            await asyncio.sleep(0)
        assert await peer.read_until(b"\r\n") == b"one\r\n"
        assert await peer.read_until(separator=b"\r\n") == b"two\r\n"
        await client.send_all(b"ee\na\nb\r")
        await client.send_eof()
        assert await peer.readline() == b"three\n"
        assert [line async for line in peer] == [b"a\n", b"b\r"]
        await aclose_pair(server, client)

    run(style, green_main, async_main)


@pytest.mark.parametrize("style", STYLES)
def test_read_until_at_eof_keeps_nothing_back(style: str) -> None:
    def green_main() -> None:
        server, client, peer = pair()
        client.send_all(b"no end")
        client.send_eof()
        with pytest.raises(IncompleteReadError) as info:
            peer.read_until(b"\n")
        assert info.value.partial == b"no end"
        assert peer.receive_some() == b""
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        await client.send_all(b"no end")
        await client.send_eof()
        with pytest.raises(IncompleteReadError) as info:
            await peer.read_until(b"\n")
        assert info.value.partial == b"no end"
        await aclose_pair(server, client)

    run(style, green_main, async_main)


@pytest.mark.parametrize("style", STYLES)
def test_the_read_limit_raises_and_keeps_the_bytes(style: str) -> None:
    line = b"0123456789abc\n"  # 13 bytes before the newline

    def green_main() -> None:
        server, client, peer = pair()
        assert peer.limit == 64 * 1024
        peer.limit = 10
        client.send_all(line)
        with pytest.raises(ReadLimitError) as info:
            peer.readline()
        assert isinstance(info.value, ValueError) and isinstance(info.value, asyncio.LimitOverrunError)
        with pytest.raises(ReadLimitError, match="limit"):
            peer.readline(limit=12)
        assert peer.readline(limit=13) == line  # the bytes stayed; 13 is enough
        client.send_all(b"0123456789\n" + line)
        assert peer.readline() == b"0123456789\n"  # exactly the limit
        with pytest.raises(ReadLimitError):
            peer.read_until(b"\n")
        assert peer.read_exactly(len(line)) == line
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        peer.limit = 10
        await client.send_all(line)
        with pytest.raises(ReadLimitError):
            await peer.readline()
        assert await peer.readline(limit=13) == line
        await client.send_all(b"x" * 100)  # no newline at all
        with pytest.raises(ReadLimitError):
            await peer.read_until(b"\n", limit=50)
        assert await peer.read_exactly(100) == b"x" * 100
        await aclose_pair(server, client)

    run(style, green_main, async_main)


def test_a_long_line_arriving_in_pieces_is_read_whole() -> None:
    async def main() -> None:
        server, client, peer = await open_pair()
        reader = asyncio.get_running_loop().create_task(peer.readline())
        for _ in range(100):
            await client.send_all(b"abc" * 100)
            await asyncio.sleep(0)
        await client.send_all(b"\n")
        assert await asyncio.wait_for(reader, 10) == b"abc" * 10000 + b"\n"
        await aclose_pair(server, client)

    treadle.run(main())


@pytest.mark.parametrize("style", STYLES)
def test_reads_ended_by_a_deadline_or_a_task_group_lose_no_byte(style: str) -> None:
    # Each read waits for more than has come; what came stays for the next read, which is not "busy".
    def green_main() -> None:
        server, client, peer = pair()
        client.send_all(b"0123")
        with treadle.move_on_after(0.02) as scope:
            peer.read_exactly(10)
        assert scope.cancelled_caught
        with pytest.raises(TimeoutError), treadle.fail_after(0.02):
            peer.read_until(b"\r\n")
        with treadle.move_on_after(0.02) as scope:
            peer.readline()
        assert scope.cancelled_caught
        with treadle.TaskGroup() as tg:  # a child reading, cancelled with its group
            child = tg.spawn(peer.read_exactly, 5)
            spin()
            tg.cancel()
        assert child.cancelled()
        client.send_all(b"456789\r\nline\n")
        assert peer.read_exactly(10) == b"0123456789"
        assert peer.read_until(b"\r\n") == b"\r\n"
        assert peer.readline() == b"line\n"
        with treadle.move_on_after(0.02) as scope:
            peer.receive_some()  # nothing buffered at all
        assert scope.cancelled_caught
        client.send_all(b"x")
        assert peer.receive_some() == b"x"
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        await client.send_all(b"0123")
        with treadle.move_on_after(0.02) as scope:
            await peer.read_exactly(10)
        assert scope.cancelled_caught
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await peer.read_until(b"\r\n")
        with pytest.raises(TimeoutError), treadle.fail_after(0.02):
            await peer.readline()
        async with treadle.TaskGroup() as tg:
            child = tg.create_task(peer.read_exactly(5))
            await asyncio.sleep(0)
            tg.cancel()
        assert child.cancelled()
        await client.send_all(b"456789\r\nline\n")
        assert await peer.read_exactly(10) == b"0123456789"
        assert await peer.read_until(b"\r\n") == b"\r\n"
        assert await peer.readline() == b"line\n"
        with treadle.move_on_after(0.02) as scope:
            await peer.receive_some()
        assert scope.cancelled_caught
        await client.send_all(b"x")
        assert await peer.receive_some() == b"x"
        await aclose_pair(server, client)

    run(style, green_main, async_main)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("separator", [b"\n", b"\r\n", b"--boundary--"])
def test_the_read_limit_at_its_boundary_whole_or_byte_by_byte(style: str, separator: bytes) -> None:
    limit = 16
    cases = []  # (bytes before the separator, delivered byte by byte)
    for filler in (b"x", separator[:-1] or b"x"):  # the second one fills the line with near-separators
        for n in (limit - 1, limit, limit + 1):
            body = (filler * n)[:n]
            if (body + separator).find(separator) == n:
                cases += [(body, False), (body, True)]

    def green_main() -> None:
        server, client, peer = pair()
        for body, bytewise in cases:
            chunk = body + separator
            reader = treadle.spawn(peer.read_until, separator, limit)
            for piece in [chunk[i : i + 1] for i in range(len(chunk))] if bytewise else [chunk]:
                client.send_all(piece)
                spin(2)
            if len(body) <= limit:
                assert reader.get(timeout=10) == chunk
            else:
                with pytest.raises(ReadLimitError):
                    reader.get(timeout=10)
                assert peer.read_exactly(len(chunk)) == chunk  # every byte stayed
        peer.limit = limit
        client.send_all(b"y" * limit + b"\n" + b"z" * (limit + 1) + b"\n")
        assert peer.readline() == b"y" * limit + b"\n"
        with pytest.raises(ReadLimitError):
            peer.readline()
        assert peer.readline(limit=limit + 1) == b"z" * (limit + 1) + b"\n"
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        for body, bytewise in cases:
            chunk = body + separator
            reader = asyncio.get_running_loop().create_task(peer.read_until(separator, limit))
            for piece in [chunk[i : i + 1] for i in range(len(chunk))] if bytewise else [chunk]:
                await client.send_all(piece)
                await asyncio.sleep(0)
            if len(body) <= limit:
                assert await asyncio.wait_for(reader, 10) == chunk
            else:
                with pytest.raises(ReadLimitError):
                    await asyncio.wait_for(reader, 10)
                assert await peer.read_exactly(len(chunk)) == chunk
        await aclose_pair(server, client)

    run(style, green_main, async_main)


SEPARATORS = [b"\n", b"\r\n", b"abab", b"--boundary--"]


@settings(max_examples=30, deadline=None, database=None)
@given(data=st.data())
def test_read_until_returns_exactly_the_chunks_whatever_the_split(data: st.DataObject) -> None:
    # Chunks made of the separator's own bytes, cut anywhere: separators straddle every boundary.
    separator = data.draw(st.sampled_from(SEPARATORS))
    alphabet = sorted(set(separator)) + [ord("x")]
    records = data.draw(st.lists(st.lists(st.sampled_from(alphabet), max_size=30).map(bytes), min_size=1, max_size=8))
    stream = b"".join(record + separator for record in records)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=12)))
    expected, start = [], 0
    while (found := stream.find(separator, start)) >= 0:
        expected.append(stream[start : found + len(separator)])
        start = found + len(separator)
    rest = stream[start:]

    def main() -> None:
        server, client, peer = pair()
        reader = treadle.spawn(lambda: [peer.read_until(separator) for _ in expected])
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            client.send_all(stream[a:b])
            spin(2)
        client.send_eof()
        assert reader.get(timeout=10) == expected
        assert peer.read_exactly(len(rest)) == rest
        assert peer.receive_some() == b""
        close_pair(server, client)

    treadle.run(main)


def expected_read(model: bytes, op: str, size: int, separator: bytes, limit: int) -> tuple[str, bytes]:
    """What a read returns once every byte and the end of the stream have come: ("ok" | "incomplete"
    | "limit", the bytes returned, or in the exception)."""
    if op == "read_exactly":
        return ("ok", model[:size]) if len(model) >= size else ("incomplete", model)
    found = model.find(separator, 0, limit + len(separator))
    if found >= 0:
        return "ok", model[: found + len(separator)]
    if len(model) >= limit + len(separator):
        return "limit", b""
    return ("ok" if op == "readline" else "incomplete"), model


@settings(max_examples=25, deadline=None, database=None)
@given(seed=st.integers(0, 2**32))
def test_mixed_reads_agree_with_a_model_of_the_stream(seed: int) -> None:
    # Random reads of every kind, with a small limit, against the bytes sent in random pieces
    # and the end of the stream: every byte returned once, in order, or kept for the next read.
    rng = random.Random(seed)
    separator = rng.choice([b"\n", b"ab"])
    sent = bytes(rng.choice(sorted(set(separator)) + [ord("x")]) for _ in range(rng.randrange(0, 3000)))
    limit = rng.choice([1, 3, 10, 100])

    def read_all(peer: SocketStream) -> None:
        model = sent
        for _ in range(1000):
            op = rng.choice(["receive_some", "read_exactly", "read_until", "readline"])
            if op == "receive_some":
                data = peer.receive_some(size := rng.randrange(1, 50))
                assert data == model[: len(data)] and len(data) <= size and (data or not model)
                model = model[len(data) :]
                if not data:
                    return
                continue
            if op == "readline" and separator != b"\n":
                op = "read_until"
            size = rng.randrange(0, 40)
            expected = expected_read(model, op, size, separator, limit)
            try:
                if op == "read_exactly":
                    data = peer.read_exactly(size)
                else:
                    data = peer.readline(limit) if op == "readline" else peer.read_until(separator, limit)
                assert expected == ("ok", data)
            except ReadLimitError:
                assert expected[0] == "limit"
                data = peer.read_exactly(limit + len(separator))  # the bytes stayed
                assert data == model[: len(data)]
            except IncompleteReadError as exc:
                assert expected == ("incomplete", exc.partial)
                data = exc.partial
            model = model[len(data) :]
        raise AssertionError("the end of the stream never came")

    def main() -> None:
        server, client, peer = pair()
        reader = treadle.spawn(read_all, peer)
        start = 0
        while start < len(sent):
            end = start + rng.randrange(1, 400)
            client.send_all(sent[start:end])
            start = end
            spin(rng.randrange(0, 3))
        client.send_eof()
        reader.get(timeout=10)
        close_pair(server, client)

    treadle.run(main)


@pytest.mark.parametrize("secure", [False, True], ids=["plain", "tls"])
def test_streams_read_in_the_same_iterations_get_only_their_own_bytes(secure: bool, tls: TLS) -> None:
    # Every stream of a loop receives through one shared buffer: two connections fed at once.
    payloads = [bytes(range(256)) * 1200, bytes(range(255, -1, -1)) * 1200]  # 300 KiB each

    async def main() -> None:
        peers: list[SocketStream] = []

        async def handler(stream: SocketStream) -> None:
            peers.append(stream)
            await asyncio.Event().wait()

        server = await serve_tcp(handler, "127.0.0.1", 0, ssl=tls.server_context() if secure else None)
        context = tls.client_context() if secure else None
        clients = [await open_tcp_stream("127.0.0.1", server.port, ssl=context) for _ in payloads]
        await asettle(lambda: len(peers) == 2)
        by_port = {peer.getpeername()[1]: peer for peer in peers}
        ordered = [by_port[client.getsockname()[1]] for client in clients]
        sends = [client.send_all(payload) for client, payload in zip(clients, payloads, strict=True)]
        received = await asyncio.gather(
            *(peer.read_exactly(len(p)) for peer, p in zip(ordered, payloads, strict=True)), *sends
        )
        assert received[:2] == payloads
        for client in clients:
            await client.aclose()
        await server.aclose(0)

    treadle.run(main())


# -- flow control ----------------------------------------------------------------------------------


def settled(value: Callable[[], int], still: int = 100, rounds: int = 20000) -> int:
    """Green: let the loop run until ``value()`` has not changed for ``still`` rounds; return it."""
    last, same = value(), 0
    for _ in range(rounds):
        treadle.sleep(0)
        current = value()
        same = same + 1 if current == last else 0
        last = current
        if same >= still:
            return current
    raise AssertionError("the value never settled")


CHUNK = bytes(range(256)) * 256  # 64 KiB
CHUNKS = 512  # 32 MiB: far more than the kernel's socket buffers hold


@pytest.mark.parametrize("sender_style", STYLES)
def test_send_all_waits_while_the_peer_does_not_read(sender_style: str) -> None:
    def main() -> None:
        server, client, peer = pair()
        sent = [0]

        def green_sender() -> None:
            for _ in range(CHUNKS):
                client.send_all(CHUNK)
                sent[0] += 1

        async def async_sender() -> None:
            for _ in range(CHUNKS):
                await client.send_all(CHUNK)
                sent[0] += 1

        if sender_style == "green":
            sender: Any = treadle.spawn(green_sender)
        else:
            sender = asyncio.get_running_loop().create_task(async_sender())
        stalled_at = settled(lambda: sent[0])
        assert 0 < stalled_at < CHUNKS and not sender.done()  # real backpressure, through both buffers
        with pytest.raises(BusyResourceError, match="sending"):
            client.send_all(b"x")
        with pytest.raises(BusyResourceError):
            client.send_eof()
        received = 0
        while received < CHUNKS * len(CHUNK):
            data = peer.receive_some()
            offset = received % len(CHUNK)
            assert data == (CHUNK * 2)[offset : offset + len(data)]  # in order, nothing lost
            received += len(data)
        assert received == CHUNKS * len(CHUNK)
        treadle.await_(sender)
        assert sent[0] == CHUNKS
        close_pair(server, client)

    treadle.run(main)


def test_received_bytes_arrive_whole_and_in_order_under_backpressure() -> None:
    async def main() -> None:
        server, client, peer = await open_pair()
        payload = bytes(range(251)) * 33_000  # about 8 MiB

        async def send() -> None:
            await client.send_all(payload)
            await client.send_eof()

        sender = asyncio.get_running_loop().create_task(send())
        received = bytearray()
        while data := await peer.receive_some(100_000):
            assert len(data) <= 100_000
            received += data
        await sender
        assert received == payload
        await aclose_pair(server, client)

    treadle.run(main())


@pytest.mark.parametrize("how", ["green-kill", "async-cancel"])
def test_a_sender_cancelled_inside_with_closes_at_once_without_waiting_for_the_peer(how: str) -> None:
    def main() -> None:
        server, client, peer = pair()

        def green_sender() -> None:
            with client:
                client.send_all(CHUNK * CHUNKS)  # far more than the peer, which does not read, takes

        async def async_sender() -> None:
            async with client:
                await client.send_all(CHUNK * CHUNKS)

        if how == "green-kill":
            sender: Any = treadle.spawn(green_sender)
        else:
            sender = asyncio.get_running_loop().create_task(async_sender())
        spin(50)
        assert not sender.done()
        sock = client.extra("socket")
        sender.kill(block=False) if how == "green-kill" else sender.cancel()
        settle(lambda: sender.done() and sock.fileno() == -1)  # it did not wait for the unsent data to go
        assert sender.cancelled() and client.is_closed()
        server.close(0)

    treadle.run(main)


def memoryviews() -> tuple[list[memoryview], bytes]:
    """Views whose len() is not their size in bytes, or that are not contiguous, and the bytes they hold."""
    ints = array.array("i", range(1 << 20))  # 4 MiB: the kernel takes only part of it at once
    views = [memoryview(ints), memoryview(b"abcdef")[::2], memoryview(bytes(range(6))).cast("B", (2, 3))]
    return views, ints.tobytes() + b"ace" + bytes(range(6))


@pytest.mark.parametrize("style", STYLES)
def test_send_all_sends_every_byte_of_any_memoryview(style: str) -> None:
    views, expected = memoryviews()

    def green_main() -> None:
        server, client, peer = pair()
        reader = treadle.spawn(peer.read_exactly, len(expected))
        for view in views:
            client.send_all(view)
        assert reader.get(timeout=10) == expected
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        reader = asyncio.get_running_loop().create_task(peer.read_exactly(len(expected)))
        for view in views:
            await client.send_all(view)
        assert await asyncio.wait_for(reader, 10) == expected
        await aclose_pair(server, client)

    run(style, green_main, async_main)


@pytest.mark.parametrize("style", STYLES)
def test_send_all_ended_by_a_deadline_has_still_queued_all_its_bytes(style: str) -> None:
    # Cancelled while it waits for the peer, send_all has handed every byte over: they all arrive,
    # once, before the next call's.  The next send_all is not "busy".
    payload = CHUNK * CHUNKS

    def green_main() -> None:
        server, client, peer = pair()
        with treadle.move_on_after(0.05) as scope:
            client.send_all(payload)
        assert scope.cancelled_caught  # it was waiting: the peer does not read yet
        reader = treadle.spawn(peer.read_exactly, len(payload) + 4)
        client.send_all(b"tail")
        assert reader.get(timeout=30) == payload + b"tail"
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        with pytest.raises(TimeoutError), treadle.fail_after(0.05):
            await client.send_all(payload)
        reader = asyncio.get_running_loop().create_task(peer.read_exactly(len(payload) + 4))
        await client.send_all(b"tail")
        assert await asyncio.wait_for(reader, 30) == payload + b"tail"
        await aclose_pair(server, client)

    run(style, green_main, async_main)


@pytest.mark.parametrize("how", ["close", "abort"])
@pytest.mark.parametrize("sender_style", STYLES)
def test_a_peer_that_closes_while_send_all_waits_breaks_it(sender_style: str, how: str) -> None:
    def main() -> None:
        server, client, peer = pair()

        def green_sender() -> None:
            for _ in range(CHUNKS):
                client.send_all(CHUNK)

        async def async_sender() -> None:
            for _ in range(CHUNKS):
                await client.send_all(CHUNK)

        if sender_style == "green":
            sender: Any = treadle.spawn(green_sender)
        else:
            sender = asyncio.get_running_loop().create_task(async_sender())
        treadle.sleep(0.05)
        assert not sender.done()  # waiting for the peer, which does not read
        peer.close() if how == "close" else peer.abort()  # unread data: the peer's kernel resets
        with treadle.fail_after(10), pytest.raises(BrokenStreamError):
            treadle.await_(sender)
        close_pair(server, client)

    treadle.run(main)


# -- half-close, closing and breaking ----------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_send_eof_half_closes_and_the_reply_still_comes(style: str) -> None:
    def green_main() -> None:
        server, client, peer = pair()
        client.send_all(b"request")
        client.send_eof()
        client.send_eof()  # twice is allowed
        with pytest.raises(ClosedResourceError, match="send_eof"):
            client.send_all(b"more")
        request = bytearray()
        while data := peer.receive_some():
            request += data
        peer.send_all(b"reply to " + request)
        peer.send_eof()
        assert client.read_until(b"request") == b"reply to request"
        assert client.receive_some() == b""
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        await client.send_all(b"request")
        client.send_eof()  # not awaited: it never waits
        with pytest.raises(ClosedResourceError):
            await client.send_all(b"more")
        assert await peer.read_exactly(7) == b"request" and await peer.receive_some() == b""
        await peer.send_all(b"reply")
        await peer.send_eof()
        assert await client.read_exactly(5) == b"reply" and await client.receive_some() == b""
        await aclose_pair(server, client)

    run(style, green_main, async_main)


@pytest.mark.parametrize("style", STYLES)
def test_close_wakes_a_waiting_reader_and_closes_the_socket(style: str) -> None:
    def green_main() -> None:
        server, client, peer = pair()
        reader = treadle.spawn(client.receive_some)
        spin()
        sock = client.extra("socket")
        client.close()
        assert sock.fileno() == -1 and client.is_closed() and "closed" in repr(client)
        with pytest.raises(ClosedResourceError):
            reader.get(timeout=10)
        for call in (client.receive_some, client.readline, lambda: client.send_all(b"x"), client.send_eof):
            with pytest.raises(ClosedResourceError):
                call()
        client.close()  # twice is allowed
        assert peer.receive_some() == b""
        server.close(0)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        reader = asyncio.get_running_loop().create_task(client.read_exactly(3))
        await asyncio.sleep(0)
        sock = client.extra("socket")
        await client.close()  # close() is awaitable in async code
        assert sock.fileno() == -1
        with pytest.raises(ClosedResourceError):
            await reader
        with pytest.raises(ClosedResourceError):
            await client.receive_some()
        await client.aclose()
        assert await peer.receive_some() == b""
        await server.aclose(0)

    run(style, green_main, async_main)


@pytest.mark.parametrize("style", STYLES)
def test_a_reset_connection_raises_broken_stream_error(style: str) -> None:
    def check(exc: BaseException) -> None:
        assert isinstance(exc, BrokenStreamError)
        assert isinstance(exc, BrokenResourceError) and isinstance(exc, ConnectionError)
        assert exc.errno in (errno.ECONNRESET, errno.EPIPE)
        assert isinstance(exc.__cause__, OSError)

    def green_main() -> None:
        server, client, peer = pair()
        reset(peer)
        with pytest.raises(BrokenStreamError) as info:
            client.receive_some()
        check(info.value)
        with pytest.raises(BrokenStreamError):  # and again: the stream stays broken
            client.readline()
        with pytest.raises(BrokenStreamError) as info:
            client.send_all(b"into the void")
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        reader = asyncio.get_running_loop().create_task(client.receive_some())
        await asyncio.sleep(0)
        reset(peer)
        with pytest.raises(BrokenStreamError) as info:
            await reader
        check(info.value)
        assert "broken" in repr(client)
        with pytest.raises(ConnectionError):
            await client.send_all(b"x")
        await aclose_pair(server, client)

    run(style, green_main, async_main)


@pytest.mark.parametrize("style", STYLES)
def test_sending_on_a_broken_stream_raises_each_time_and_logs_nothing(
    style: str, caplog: pytest.LogCaptureFixture
) -> None:
    def green_main() -> None:
        server, client, peer = pair()
        reset(peer)
        with pytest.raises(BrokenStreamError):
            client.read_exactly(1)  # the reset has arrived
        for _ in range(8):
            with pytest.raises(BrokenStreamError, match="reset"):
                client.send_all(b"x")
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        reset(peer)
        with pytest.raises(BrokenStreamError):
            await client.receive_some()
        for _ in range(8):
            with pytest.raises(BrokenStreamError):
                await client.send_all(b"x")
        await aclose_pair(server, client)

    with caplog.at_level(logging.DEBUG, logger="treadle"):
        run(style, green_main, async_main)
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []


# -- several tasks on one stream -------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_a_second_reader_gets_busy_resource_error(style: str) -> None:
    def green_main() -> None:
        server, client, peer = pair()
        first = treadle.spawn(peer.readline)
        spin()
        with pytest.raises(BusyResourceError, match="reading"):
            peer.receive_some()
        client.send_all(b"for the first\n")
        assert first.get(timeout=10) == b"for the first\n"
        close_pair(server, client)

    async def async_main() -> None:
        server, client, peer = await open_pair()
        first = asyncio.get_running_loop().create_task(peer.read_exactly(2))
        await asyncio.sleep(0)
        with pytest.raises(BusyResourceError):
            await peer.read_until(b"x")
        await client.send_all(b"ok")
        assert await first == b"ok"
        await aclose_pair(server, client)

    run(style, green_main, async_main)


@pytest.mark.parametrize("how", ["async-cancel", "green-kill"])
def test_a_cancelled_read_loses_no_bytes(how: str) -> None:
    def main() -> None:
        server, client, peer = pair()
        if how == "green-kill":
            reader: Any = treadle.spawn(peer.read_exactly, 10)
        else:

            async def read() -> bytes:
                return await peer.read_exactly(10)  # (called here, in async code, it is awaitable)

            reader = asyncio.get_running_loop().create_task(read())
        client.send_all(b"01234")
        spin(50)  # the first bytes are in the stream's buffer
        assert not reader.done()
        reader.kill() if how == "green-kill" else reader.cancel()
        settle(reader.done)
        assert reader.cancelled()
        client.send_all(b"56789")
        assert peer.read_exactly(10) == b"0123456789"
        close_pair(server, client)

    treadle.run(main)


def test_a_green_task_reads_what_an_async_task_sends_on_the_same_stream() -> None:
    async def main() -> None:
        server, client, peer = await open_pair()

        def green_reader() -> list[bytes]:
            return [peer.readline() for _ in range(3)]

        async def async_writer() -> None:
            for word in (b"a\n", b"b\n", b"c\n"):
                await client.send_all(word)
                await asyncio.sleep(0)

        lines, _ = await asyncio.gather(treadle.run_green(green_reader), async_writer())
        assert lines == [b"a\n", b"b\n", b"c\n"]
        await aclose_pair(server, client)

    treadle.run(main())


# -- connecting ------------------------------------------------------------------------------------


def test_addresses_and_extra_info() -> None:
    def main() -> None:
        server, client, peer = pair()
        assert client.getpeername() == ("127.0.0.1", server.port)
        assert peer.getpeername() == client.getsockname()
        assert client.extra("socket").family == socket.AF_INET
        for stream in (client, peer):  # small writes go out at once, on both sides (no Nagle delay)
            assert stream.extra("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert client.extra("no such thing", "default") == "default"
        assert client.ssl_object is None
        assert "open" in repr(client) and str(server.port) in repr(client)
        close_pair(server, client)

    treadle.run(main)


@pytest.mark.parametrize("style", STYLES)
def test_connect_by_name_from_a_local_address_one_address_at_a_time(style: str) -> None:
    def green_main() -> None:
        server, client, _ = pair()
        with open_tcp_stream("localhost", server.port, local_address="127.0.0.1", happy_eyeballs_delay=None) as s:
            assert s.getsockname()[0] == "127.0.0.1"
        close_pair(server, client)

    async def async_main() -> None:
        server, client, _ = await open_pair()
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        async with await open_tcp_stream("localhost", server.port, local_address=("127.0.0.1", port)) as s:
            assert s.getsockname() == ("127.0.0.1", port)
        await aclose_pair(server, client)

    run(style, green_main, async_main)


@pytest.mark.parametrize("style", STYLES)
def test_failed_connections_raise_os_errors(style: str, tmp_path: Any) -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()

    def green_main() -> None:
        with pytest.raises(ConnectionRefusedError):
            open_tcp_stream("127.0.0.1", port)
        with pytest.raises(FileNotFoundError):
            open_unix_stream(tmp_path / "nobody")

    async def async_main() -> None:
        with pytest.raises(ConnectionRefusedError):
            await open_tcp_stream("127.0.0.1", port)
        with pytest.raises(FileNotFoundError):
            await open_unix_stream(str(tmp_path / "nobody"))

    run(style, green_main, async_main)


@pytest.mark.parametrize("how", ["green-kill", "async-cancel"])
def test_a_connect_cancelled_in_its_tls_handshake_leaves_nothing_open(how: str, tls: TLS) -> None:
    def main() -> None:
        mute = socket.create_server(("127.0.0.1", 0))  # accepts in its backlog, never answers
        port = mute.getsockname()[1]
        if how == "green-kill":
            task: Any = treadle.spawn(open_tcp_stream, "127.0.0.1", port, ssl=tls.client_context())
        else:

            async def connect() -> SocketStream:
                return await open_tcp_stream("127.0.0.1", port, ssl=tls.client_context())

            task = asyncio.get_running_loop().create_task(connect())
        spin(50)
        assert not task.done()
        before = open_fds()
        task.kill() if how == "green-kill" else task.cancel()
        settle(task.done)
        assert task.cancelled()
        if how == "green-kill":
            assert before - open_fds()  # the green call returned once its socket was closed
        settle(lambda: before - open_fds())  # (an async task's socket is closed one turn later)
        mute.close()

    treadle.run(main)


def unanswered_port() -> tuple[list[socket.socket], int]:
    """A port on ::1 and 127.0.0.1 whose listeners' backlogs are full: a connect to it stays pending.

    Returns the sockets to close (the listeners, and the connections that fill them) and the port.
    """
    for _ in range(20):
        six = socket.socket(socket.AF_INET6)
        six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        six.bind(("::1", 0))
        port = six.getsockname()[1]
        four = socket.socket()
        try:
            four.bind(("127.0.0.1", port))
        except OSError:
            six.close()
            four.close()
            continue
        held = [six, four]
        for listener, host in ((six, "::1"), (four, "127.0.0.1")):
            listener.listen(0)
            for _ in range(2):  # one fills the accept queue, the next waits for a SYN-ACK
                filler = socket.socket(listener.family)
                filler.setblocking(False)
                filler.connect_ex((host, port))
                held.append(filler)
        return held, port
    raise AssertionError("no port was free on both ::1 and 127.0.0.1")


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6")
@pytest.mark.parametrize("delay", [0.01, None], ids=["happy-eyeballs", "one-at-a-time"])
@pytest.mark.parametrize("how", ["green-deadline", "async-deadline", "green-kill", "async-cancel"])
def test_a_connect_to_several_addresses_ended_while_pending_leaves_nothing_open(
    how: str, delay: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def both_loopbacks(host: str, port: int, **_: Any) -> list[Any]:
        # The name's addresses, as a dual-stack "localhost" has them (this machine's may have one).
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port)),
        ]

    def main() -> None:
        held, port = unanswered_port()
        monkeypatch.setattr(current_loop(), "getaddrinfo", both_loopbacks)
        gc.collect()
        before = open_fds()

        def green_connect() -> None:
            with treadle.fail_after(0.1):
                open_tcp_stream("dual-stack", port, happy_eyeballs_delay=delay)

        async def async_connect() -> None:
            with treadle.fail_after(0.1) if how == "async-deadline" else contextlib.nullcontext():
                await open_tcp_stream("dual-stack", port, happy_eyeballs_delay=delay)

        if how == "green-kill":
            task: Any = treadle.spawn(open_tcp_stream, "dual-stack", port, happy_eyeballs_delay=delay)
        elif how == "green-deadline":
            task = treadle.spawn(green_connect)
        else:
            task = asyncio.get_running_loop().create_task(async_connect())
        treadle.sleep(0.05)
        assert len(open_fds() - before) == (2 if delay else 1)  # both addresses tried at once, or the first
        if how.endswith(("kill", "cancel")):
            task.kill(block=False) if how == "green-kill" else task.cancel()
        with treadle.fail_after(10):
            (outcome,) = treadle.await_(asyncio.gather(task, return_exceptions=True))
        assert isinstance(outcome, TimeoutError if how.endswith("deadline") else asyncio.CancelledError)
        settle(lambda: open_fds() - before == set())
        for sock in held:
            sock.close()

    treadle.run(main)


def test_tls_over_unix_needs_a_server_hostname_unless_not_checked(tls: TLS, tmp_path: Any) -> None:
    async def handler(stream: SocketStream) -> None:
        await stream.send_all(b"secret")

    def main() -> None:
        from treadle.net.stream_server import serve_unix

        path = tmp_path / "t.sock" if len(str(tmp_path)) < 90 else "\0treadle-tls-unix"
        with serve_unix(handler, path, ssl=tls.server_context()) as server:
            with pytest.raises(ValueError, match="server_hostname"):
                open_unix_stream(server.address, ssl=tls.client_context())
            unchecked = tls.client_context()
            unchecked.check_hostname = False
            with open_unix_stream(server.address, ssl=unchecked) as stream:
                assert stream.read_exactly(6) == b"secret"

    treadle.run(main)


def test_bad_arguments_raise_at_the_call() -> None:
    def main() -> None:
        server, client, peer = pair()
        cases: list[tuple[type[Exception], str, Callable[[], Any]]] = [
            (TypeError, "max_bytes", lambda: client.receive_some("10")),
            (ValueError, "max_bytes", lambda: client.receive_some(0)),
            (ValueError, "size", lambda: client.read_exactly(-1)),
            (TypeError, "size", lambda: client.read_exactly(1.5)),
            (TypeError, "separator", lambda: client.read_until("\n")),
            (ValueError, "separator", lambda: client.read_until(b"")),
            (ValueError, "limit", lambda: client.readline(limit=0)),
            (TypeError, "data", lambda: client.send_all("text")),
            (TypeError, "host", lambda: open_tcp_stream(b"localhost", 80)),
            (ValueError, "host", lambda: open_tcp_stream("", 80)),
            (TypeError, "port", lambda: open_tcp_stream("localhost", "80")),
            (ValueError, "port", lambda: open_tcp_stream("localhost", 0)),
            (TypeError, "ssl", lambda: open_tcp_stream("localhost", 80, ssl="yes")),
            (ValueError, "only meaningful with ssl", lambda: open_tcp_stream("a", 80, server_hostname="a")),
            (TypeError, "server_hostname", lambda: open_tcp_stream("a", 80, ssl=True, server_hostname=3)),
            (ValueError, "happy_eyeballs_delay", lambda: open_tcp_stream("a", 80, happy_eyeballs_delay=-1)),
            (TypeError, "local_address", lambda: open_tcp_stream("a", 80, local_address=3)),
            (ValueError, "port", lambda: open_tcp_stream("a", 80, local_address=("127.0.0.1", -1))),
            (TypeError, "path", lambda: open_unix_stream(3)),
            (ValueError, "path", lambda: open_unix_stream("")),
        ]
        for kind, message, call in cases:
            with pytest.raises(kind, match=message):
                call()
        with pytest.raises(TypeError, match="limit"):
            peer.limit = "big"  # type: ignore[assignment]
        close_pair(server, client)

    treadle.run(main)


def test_blocking_forms_in_async_code_say_what_to_write() -> None:
    async def main() -> None:
        server, client, peer = await open_pair()
        with pytest.raises(treadle.BlockingInHubError, match="async with"):
            with client:
                pass
        with pytest.raises(treadle.BlockingInHubError, match="async for"):
            for _ in client:
                pass
        await aclose_pair(server, client)

    treadle.run(main())

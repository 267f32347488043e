"""Byte streams over TCP and Unix sockets, for green and async code alike.

Owns: :class:`SocketStream` (a connected stream: ``receive_some``,
``read_exactly``, ``read_until``, ``readline``, ``send_all``, ``send_eof``,
``close``) and its errors; the connect functions are ``stream_connect``'s.
One name serves both styles: called from green code a blocking method blocks
the green task; called from async code it returns an awaitable
(``await stream.receive_some()``).

Never: loses or reorders received bytes (a read that is cancelled, or that
fails on a limit or an early end of stream, leaves what it did not return in
the buffer or in its exception), reports bytes as sent that the transport
dropped, or lets two tasks read (or send) at once: the second gets
:class:`BusyResourceError`.

Discussion: the stream is the transport's protocol itself (a buffered one),
so a byte goes from ``SocketTransport._read_ready__get_buffer`` straight into a receive
buffer that all the streams of a loop share (``recv_into``: no allocation per
read), and ``buffer_updated`` appends it to the stream's one ``bytearray`` and
wakes the one waiting reader, if any, by completing its future.  A waiter is
only a signal: the woken task looks at the buffer again, so a late or
spurious wake-up is harmless.  Reading pauses (the transport stops reading
the socket, the kernel's window fills, and the sender waits) once the buffer
holds more than twice the read limit (64 KiB at least); it resumes when a
reader has drained it to half that, or needs more than it holds.  Writes go
straight to the transport; ``send_all`` waits only while the transport's
buffer is above its high-water mark (``pause_writing``/``resume_writing``).
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
import weakref
from asyncio import IncompleteReadError
from collections.abc import AsyncIterator, Iterator
from typing import Any, Self

from ..concurrency.channels import BrokenResourceError, ClosedResourceError
from ..concurrency.waiting import green_wait, in_async
from ..green.hub import BlockingInHubError

__all__ = [
    "DEFAULT_LIMIT",
    "BrokenStreamError",
    "BusyResourceError",
    "IncompleteReadError",
    "ReadLimitError",
    "SocketStream",
]

DEFAULT_LIMIT = 64 * 1024  # the longest line (or read_until chunk) a stream accepts by default
DEFAULT_RECEIVE_SIZE = 64 * 1024
_BYTES_LIKE = (bytes, bytearray, memoryview)
_SHARED_RECEIVE_SIZE = 256 * 1024  # one per loop: what one recv() may bring

# The receive buffer of each loop's streams.  Sharing is safe: a transport
# fills it (get_buffer, recv_into) and the stream copies out of it
# (buffer_updated) in one callback, with nothing in between; each loop (and
# so each thread) has its own.
_shared_receive: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, memoryview] = weakref.WeakKeyDictionary()


def _receive_buffer(loop: asyncio.AbstractEventLoop) -> memoryview:
    view = _shared_receive.get(loop)
    if view is None:
        view = _shared_receive[loop] = memoryview(bytearray(_SHARED_RECEIVE_SIZE))
    return view


class BusyResourceError(RuntimeError):
    """Another task is already reading from (or sending on) this stream."""


class BrokenStreamError(BrokenResourceError, ConnectionError):
    """The connection broke (reset, timed out, closed by the peer while sending); ``__cause__`` says how.

    A :class:`~treadle.BrokenResourceError` and a :class:`ConnectionError`, so
    that both trio's and asyncio's ``except`` clauses catch it.
    """


class ReadLimitError(asyncio.LimitOverrunError, ValueError):
    """``read_until``/``readline`` found no separator within the read limit.

    The buffered bytes stay in the stream (``receive_some`` returns them);
    ``consumed`` is how many bytes were searched.  Also an
    ``asyncio.LimitOverrunError`` and a ``ValueError``, as asyncio's streams raise.
    """


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _read_high_water(limit: int) -> int:
    """How many buffered bytes pause reading: room for a whole chunk past the limit, and never little."""
    return max(2 * limit, DEFAULT_RECEIVE_SIZE)


def _wake(fut: asyncio.Future[Any] | None) -> None:
    if fut is not None and not fut.done():
        fut.set_result(None)


class _StreamCore:
    """The state and the methods of :class:`SocketStream`, which adds asyncio's ``BufferedProtocol`` as a base.

    Compiled, an extension type (``streams.pxd``): its fields are C fields
    and its helpers C methods, so a read or a send looks up no attribute of
    the stream.  asyncio's protocol classes have no state (empty
    ``__slots__``), so ``SocketStream`` can derive from both.
    """

    __slots__ = (
        "_loop",
        "_transport",
        "_receive",
        "_buffer",
        "_limit",
        "_read_high",
        "_read_waiter",
        "_write_waiter",
        "_lost_fut",
        "_reading",
        "_sending",
        "_read_paused",
        "_write_paused",
        "_eof",
        "_eof_sent",
        "_lost",
        "_closed",
        "_error",
        "_tls",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int = DEFAULT_LIMIT) -> None:
        self._loop = loop
        self._transport: Any = None
        self._receive = _receive_buffer(loop)
        self._buffer = bytearray()
        self._limit = limit
        self._read_high = _read_high_water(limit)
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[None] | None = None
        self._lost_fut: asyncio.Future[None] | None = None
        self._reading = False  # a reader waits (or was woken and has not resumed yet)
        self._sending = False  # a sender waits for the transport to drain
        self._read_paused = False
        self._write_paused = False
        self._eof = False  # nothing more will arrive
        self._eof_sent = False
        self._lost = False  # connection_lost() ran: the socket is closed
        self._closed = False  # close() was called
        self._error: BaseException | None = None
        self._tls = False

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        elif self._error is not None:
            state = f"broken ({self._error!r})"
        elif self._lost:
            state = "lost"
        else:
            state = "at EOF" if self._eof else "open"
        transport = self._transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        kind = "TLS " if self._tls else ""
        return f"<SocketStream {kind}peer={peer!r} {state}, {len(self._buffer)} bytes buffered>"

    # -- the protocol: called by the transport --------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self._tls = transport.get_extra_info("sslcontext") is not None

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._receive

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return
        buffer = self._buffer
        buffer += self._receive[:nbytes]
        if len(buffer) > self._read_high and not self._read_paused:
            self._read_paused = True
            self._transport.pause_reading()
        waiter = self._read_waiter
        if waiter is not None:
            self._read_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def eof_received(self) -> bool:
        self._eof = True
        waiter = self._read_waiter
        self._read_waiter = None
        _wake(waiter)
        # Keep the socket open for sending (a half-close); TLS cannot, and says
        # so in a warning if asked.
        return not self._tls

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        self._eof = True
        if exc is not None and self._error is None:
            self._error = exc
        read_waiter, self._read_waiter = self._read_waiter, None
        write_waiter, self._write_waiter = self._write_waiter, None
        _wake(read_waiter)
        _wake(write_waiter)
        _wake(self._lost_fut)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter, self._write_waiter = self._write_waiter, None
        _wake(waiter)

    # -- state ----------------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """The longest chunk ``read_until``/``readline`` accept before the separator (bytes)."""
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        self._limit = _check_count(value, "limit", 1)
        self._read_high = _read_high_water(self._limit)

    def extra(self, name: str, default: Any = None) -> Any:
        """The transport's ``get_extra_info(name)``: "peername", "sockname", "socket", "ssl_object", "peercert"..."""
        return self._transport.get_extra_info(name, default)

    def getpeername(self) -> Any:
        return self._transport.get_extra_info("peername")

    def getsockname(self) -> Any:
        return self._transport.get_extra_info("sockname")

    @property
    def ssl_object(self) -> _ssl.SSLObject | None:
        """The TLS connection (``version()``, ``cipher()``, ``getpeercert()``...), or None for a plain stream."""
        return self._transport.get_extra_info("ssl_object")  # type: ignore[no-any-return]

    def is_closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    def at_eof(self) -> bool:
        """True when the peer will send nothing more and every received byte was read."""
        return self._eof and not self._buffer

    # -- reading ---------------------------------------------------------------------------------

    def _check_read(self) -> None:
        if self._closed:
            raise ClosedResourceError("the stream is closed")
        if self._reading:
            raise BusyResourceError("another task is already reading from this stream")

    def _no_more_data(self) -> bool:
        """Nothing buffered suffices: True at the end of the stream; raises if it was closed or broke."""
        if self._closed:
            raise ClosedResourceError("the stream was closed while reading")
        if self._error is not None:
            raise self._broken("reading")
        return self._eof

    def _broken(self, doing: str) -> BrokenStreamError:
        cause = self._error
        if isinstance(cause, OSError) and cause.errno is not None:
            error = BrokenStreamError(cause.errno, f"the connection broke while {doing}: {cause.strerror}")
        elif cause is not None:
            error = BrokenStreamError(f"the connection broke while {doing}: {cause!r}")
        else:
            error = BrokenStreamError(f"the connection was closed before {doing} finished")
        error.__cause__ = cause
        return error

    def _take(self, size: int) -> bytes:
        """The first ``size`` buffered bytes (at most all of them), removed from the buffer."""
        buffer = self._buffer
        if size >= len(buffer):
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(memoryview(buffer)[:size])
            del buffer[:size]
        if self._read_paused and len(buffer) <= self._read_high // 2:
            self._resume_reading()
        return data

    def _resume_reading(self) -> None:
        self._read_paused = False
        if not self._lost:
            self._transport.resume_reading()

    def _prepare_read_wait(self) -> asyncio.Future[None]:
        fut = self._loop.create_future()
        self._read_waiter = fut
        self._reading = True
        if self._read_paused:
            self._resume_reading()
        return fut

    def _end_read_wait(self, fut: asyncio.Future[None]) -> None:
        self._reading = False
        if self._read_waiter is fut:
            self._read_waiter = None

    def _wait_read_green(self, what: str) -> None:
        fut = self._prepare_read_wait()
        try:
            green_wait(fut, what)
        finally:
            self._end_read_wait(fut)

    async def _wait_read_async(self) -> None:
        fut = self._prepare_read_wait()
        try:
            await fut
        finally:
            self._end_read_wait(fut)

    def receive_some(self, max_bytes: int = DEFAULT_RECEIVE_SIZE) -> Any:
        """Wait until some bytes arrived and return up to ``max_bytes`` of them; ``b""`` at the end of the stream.

        Raises ``ClosedResourceError`` (closed by this side), ``BrokenStreamError``
        (the connection broke), ``BusyResourceError`` (another task reads).
        """
        _check_count(max_bytes, "max_bytes", 1)
        if in_async():
            return self._receive_some_async(max_bytes)
        self._check_read()
        while not self._buffer:
            if self._no_more_data():
                return b""
            self._wait_read_green("SocketStream.receive_some()")
        return self._take(max_bytes)

    async def _receive_some_async(self, max_bytes: int) -> bytes:
        self._check_read()
        while not self._buffer:
            if self._no_more_data():
                return b""
            # _wait_read_async, inline: one coroutine less per wait.
            fut = self._prepare_read_wait()
            try:
                await fut
            finally:
                self._end_read_wait(fut)
        return self._take(max_bytes)

    def read_exactly(self, size: int) -> Any:
        """Wait for exactly ``size`` bytes and return them.

        Raises ``IncompleteReadError`` (its ``partial`` holds what came) if the
        stream ends first; the errors of :meth:`receive_some` otherwise.
        """
        _check_count(size, "size", 0)
        if in_async():
            return self._read_exactly_async(size)
        self._check_read()
        while len(self._buffer) < size:
            if self._no_more_data():
                raise IncompleteReadError(self._take(size), size)
            self._wait_read_green("SocketStream.read_exactly()")
        return self._take(size)

    async def _read_exactly_async(self, size: int) -> bytes:
        self._check_read()
        while len(self._buffer) < size:
            if self._no_more_data():
                raise IncompleteReadError(self._take(size), size)
            await self._wait_read_async()
        return self._take(size)

    def _check_separator(self, separator: Any, limit: int | None) -> tuple[bytes, int]:
        if not isinstance(separator, _BYTES_LIKE):
            raise TypeError(f"separator must be bytes, got {type(separator).__name__}")
        if not separator:
            raise ValueError("separator must not be empty")
        return bytes(separator), self._limit if limit is None else _check_count(limit, "limit", 1)

    def _find(self, separator: bytes, limit: int, start: int) -> int:
        """The end of the first chunk ending with ``separator``, or -1; raises past the limit."""
        buffer = self._buffer
        end = limit + len(separator)
        found = buffer.find(separator, start, end)
        if found >= 0:
            return found + len(separator)
        if len(buffer) >= end:
            raise ReadLimitError(
                f"no {separator!r} within {limit} bytes (the read limit: set stream.limit, or pass limit=); "
                "the bytes stay buffered",
                end,
            )
        return -1

    def read_until(self, separator: bytes = b"\n", limit: int | None = None) -> Any:
        """Wait for ``separator`` and return the bytes up to and including it.

        ``limit`` (default ``stream.limit``) bounds the bytes before the
        separator: past it, ``ReadLimitError`` is raised and the bytes stay
        buffered.  If the stream ends first, ``IncompleteReadError`` (with what
        came in ``partial``).
        """
        separator, limit = self._check_separator(separator, limit)
        if in_async():
            return self._read_until_async(separator, limit, False)
        return self._read_until_green(separator, limit, False, "SocketStream.read_until()")

    def readline(self, limit: int | None = None) -> Any:
        """Wait for a line and return it with its ``b"\\n"``; at the end of the stream, what is left (``b""`` at last).

        ``limit`` as for :meth:`read_until`.
        """
        separator, limit = self._check_separator(b"\n", limit)
        if in_async():
            return self._read_until_async(separator, limit, True)
        return self._read_until_green(separator, limit, True, "SocketStream.readline()")

    def _read_until_green(self, separator: bytes, limit: int, partial_ok: bool, what: str) -> bytes:
        self._check_read()
        start = 0
        while (end := self._find(separator, limit, start)) < 0:
            start = max(0, len(self._buffer) - len(separator) + 1)
            if self._no_more_data():
                return self._at_end_without_separator(partial_ok)
            self._wait_read_green(what)
        return self._take(end)

    async def _read_until_async(self, separator: bytes, limit: int, partial_ok: bool) -> bytes:
        self._check_read()
        start = 0
        while (end := self._find(separator, limit, start)) < 0:
            start = max(0, len(self._buffer) - len(separator) + 1)
            if self._no_more_data():
                return self._at_end_without_separator(partial_ok)
            await self._wait_read_async()
        return self._take(end)

    def _at_end_without_separator(self, partial_ok: bool) -> bytes:
        rest = self._take(len(self._buffer))
        if partial_ok:
            return rest
        raise IncompleteReadError(rest, None)

    def __iter__(self) -> Iterator[bytes]:
        if in_async():
            raise BlockingInHubError("`for line in stream` in async code would block the loop: use `async for`")
        return self

    def __next__(self) -> bytes:
        line: bytes = self.readline()
        if not line:
            raise StopIteration
        return line

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        line: bytes = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # -- sending ---------------------------------------------------------------------------------

    def _check_send(self) -> None:
        if self._closed:
            raise ClosedResourceError("the stream is closed")
        if self._sending:
            raise BusyResourceError("another task is already sending on this stream")
        if self._eof_sent:
            raise ClosedResourceError("send_eof() was called: this stream sends nothing more")
        if self._lost or self._transport.is_closing():
            raise self._broken("sending")  # before writing: a dead transport counts (and logs) every write

    def _sent(self) -> bool:
        """After a write: True when ``send_all`` may return, False while the transport's buffer is too full."""
        if self._closed:
            raise ClosedResourceError("the stream was closed while sending")
        if self._lost or self._transport.is_closing():
            raise self._broken("sending")
        return not self._write_paused

    def _prepare_write_wait(self) -> asyncio.Future[None]:
        fut = self._loop.create_future()
        self._write_waiter = fut
        self._sending = True
        return fut

    def _end_write_wait(self, fut: asyncio.Future[None]) -> None:
        self._sending = False
        if self._write_waiter is fut:
            self._write_waiter = None

    def send_all(self, data: bytes | bytearray | memoryview) -> Any:
        """Send all of ``data``: returns once the kernel took it or the rest is buffered below the high-water mark.

        The whole of ``data`` is handed to the transport at once; then the call
        waits (flow control) while the peer does not keep up.  So a call that
        is cancelled (or times out) while it waits has sent nothing less: every
        byte is queued and still goes out, before those of the next call,
        unless the stream is aborted (as a ``with`` block left by a
        cancellation does): do not send it again.  Returning does not mean the
        peer received it.  Over TLS, asyncio's TLS layer counts only what it has
        not handed down yet: one call's data may pass the mark, and the next
        call waits.  Raises ``BrokenStreamError`` if the connection broke
        (some of ``data``, and of earlier calls, may have reached the peer; the
        rest never will), ``ClosedResourceError``, ``BusyResourceError``.
        """
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(f"data must be bytes, bytearray or memoryview, got {type(data).__name__}")
        if isinstance(data, memoryview) and (data.itemsize != 1 or data.ndim != 1 or not data.c_contiguous):
            # A transport counts len(data) as bytes and needs one contiguous buffer: give it one.
            data = data.cast("B") if data.c_contiguous else data.tobytes()
        if in_async():
            return self._send_all_async(data)
        self._check_send()
        if data:
            self._transport.write(data)
        while not self._sent():
            fut = self._prepare_write_wait()
            try:
                green_wait(fut, "SocketStream.send_all()")
            finally:
                self._end_write_wait(fut)
        return None

    async def _send_all_async(self, data: bytes | bytearray | memoryview) -> None:
        self._check_send()
        if data:
            self._transport.write(data)
        while not self._sent():
            fut = self._prepare_write_wait()
            try:
                await fut
            finally:
                self._end_write_wait(fut)

    def send_eof(self) -> Any:
        """Half-close: tell the peer nothing more will be sent (after what is buffered); reading goes on.

        Never waits; in async code it may be awaited.  Raises ``ClosedResourceError``,
        ``BusyResourceError`` (a ``send_all`` is waiting), ``NotImplementedError``
        for TLS, which cannot half-close.
        """
        if self._closed:
            raise ClosedResourceError("the stream is closed")
        if self._sending:
            raise BusyResourceError("another task is sending on this stream")
        if self._tls:
            raise NotImplementedError("a TLS stream cannot half-close (send_eof): close() it instead")
        if not self._eof_sent:
            self._eof_sent = True
            if not self._lost:
                self._transport.write_eof()
        return self._done_future() if in_async() else None

    def _done_future(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = self._loop.create_future()
        fut.set_result(None)
        return fut

    # -- closing ---------------------------------------------------------------------------------

    def _lost_future(self) -> asyncio.Future[None]:
        fut = self._lost_fut
        if fut is None or fut.cancelled():
            fut = self._lost_fut = self._loop.create_future()
            if self._lost:
                fut.set_result(None)
        return fut

    def _start_close(self, abort: bool) -> None:
        if not self._closed:
            self._closed = True
            self._buffer.clear()
            read_waiter, self._read_waiter = self._read_waiter, None
            write_waiter, self._write_waiter = self._write_waiter, None
            _wake(read_waiter)
            _wake(write_waiter)
        if not self._lost:
            if abort:
                self._transport.abort()
            elif not self._transport.is_closing():
                self._transport.close()

    def close(self) -> Any:
        """Close the stream: what is buffered is still sent, then the socket is closed.

        Green code waits until the socket is closed (cancelled meanwhile, it is
        closed at once, dropping what was not sent).  Async code gets an
        awaitable it may await for the same; ``await stream.aclose()`` is the
        usual form.  Other tasks waiting on the stream get ``ClosedResourceError``.
        Closing twice is allowed.  ``with``/``async with`` close on exit; when
        the block is left by a cancellation the stream is aborted instead.
        """
        self._start_close(False)
        if in_async():
            return asyncio.shield(self._lost_future())
        if not self._lost:
            try:
                green_wait(asyncio.shield(self._lost_future()), "SocketStream.close()")
            except BaseException:
                self._start_close(True)
                raise
        return None

    async def aclose(self) -> None:
        """Async code: close the stream and wait until the socket is closed (cancelled: closed at once)."""
        self._start_close(False)
        if not self._lost:
            try:
                await asyncio.shield(self._lost_future())
            except BaseException:
                self._start_close(True)
                raise

    def abort(self) -> None:
        """Close the socket at once, dropping what was not sent yet; never waits."""
        self._start_close(True)

    def __enter__(self) -> Self:
        if in_async():
            raise BlockingInHubError("`with stream` in async code would block the event loop: use `async with`")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.abort()  # cancelled (or interrupted): do not wait for the peer
        else:
            self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.abort()
        else:
            await self.aclose()


class SocketStream(_StreamCore, asyncio.BufferedProtocol):
    """A connected byte stream (TCP or Unix, plain or TLS), usable from green and async code.

    Made by :func:`open_tcp_stream`, :func:`open_unix_stream`, or a server's
    handler argument (``serve_tcp``/``serve_unix``); not constructed directly.
    Every reading or sending method is a switch point when it must wait.
    """

    __slots__ = ()

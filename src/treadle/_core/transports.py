"""Socket transports: the path from a ready socket to ``protocol.data_received``.

Owns: :class:`SocketTransport` (TCP and Unix stream sockets, plain or under
``asyncio.sslproto``), its write buffer and flow control, and
:class:`BaseSocketTransport`, the closing logic shared with the datagram
transport.

Never: waits.  A transport reacts to readiness callbacks from the poller and
to calls from its protocol; it reports every error to its protocol
(``connection_lost(exc)``) or to the loop's exception handler, never swallows
one, and never reports data as written that is not in the kernel or in its
buffer.

Discussion: the write buffer is a deque of immutable chunks (``bytes`` or
memoryviews of ``bytes``) and a byte count.  A write that finds the buffer empty
tries ``send`` at once, which is the common case; only the rest is copied into
the buffer.  Several buffered chunks go out in one ``sendmsg``.
"""

from __future__ import annotations

import collections
import logging
import socket
import sys
import warnings
from asyncio import constants, futures, protocols, transports, trsock
from typing import TYPE_CHECKING, Any

from .sysio import recv_copy, recv_into, send

__all__ = ["BaseSocketTransport", "SocketTransport"]

logger = logging.getLogger("treadle")

_IOV_MAX = 512
_SERVER_TRACKS_TRANSPORTS = sys.version_info >= (3, 13)
_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def _set_nodelay(sock: Any) -> None:
    """TCP_NODELAY on a TCP socket, whatever protocol number it was made with."""
    if sock.family in _TCP_FAMILIES and sock.type == socket.SOCK_STREAM:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not every socket of these families takes it (a listening one may not)


class BaseSocketTransport(transports._FlowControlMixin, transports.Transport):  # type: ignore[misc]
    """What stream and datagram socket transports share: state, closing, errors."""

    # asyncio's attribute: the most one read brings, which is the size of the
    # loop's receive buffer (read only: both transports read into that buffer).
    max_size = 256 * 1024

    _loop: Any
    _extra: dict[str, Any]
    if TYPE_CHECKING:  # from transports._FlowControlMixin, absent from the stubs

        def _maybe_pause_protocol(self) -> None: ...
        def _maybe_resume_protocol(self) -> None: ...

    _sock: Any = None  # read by __del__ even if __init__ did not run

    def __init__(self, loop: Any, sock: socket.socket, protocol: Any, extra: Any = None, server: Any = None) -> None:
        super().__init__(extra, loop)
        self._extra["socket"] = trsock.TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._sock = sock
        self._sock_fd = sock.fileno()
        self._protocol_connected = False
        self.set_protocol(protocol)
        self._server = server
        self._buffer: collections.deque[Any] = collections.deque()
        self._buffer_size = 0
        self._conn_lost = 0  # > 0 once connection_lost is scheduled
        self._closing = False
        self._paused = False
        if server is not None:
            # Python 3.13 tracks the server's transports (close_clients()).
            server._attach(self) if _SERVER_TRACKS_TRANSPORTS else server._attach()
        loop._transports[self._sock_fd] = self

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        loop = self._loop
        if loop is not None and not loop.is_closed():
            reader, writer = loop._poller.get(self._sock_fd)
            info.append("read=polling" if reader is not None else "read=idle")
            state = "polling" if writer is not None else "idle"
            info.append(f"write=<{state}, bufsize={self.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        sock = getattr(self, "_sock", None)  # None too if __init__ did not get far
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            sock.close()

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol
        self._protocol_connected = True

    def get_protocol(self) -> Any:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def is_reading(self) -> bool:
        return not self._closing and not self._paused

    def pause_reading(self) -> None:
        if self._closing or self._paused:
            return
        self._paused = True
        self._loop._remove_reader(self._sock_fd)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._loop._add_reader(self._sock_fd, self._reader())

    def _start_reading(self) -> None:
        if self.is_reading():
            self._loop._add_reader(self._sock_fd, self._reader())

    def _reader(self) -> Any:
        """What the poller calls when the socket is readable (a subclass's ``_read_ready``, or its choice)."""
        return self._read_ready

    def _read_ready(self) -> None:
        raise NotImplementedError

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    def abort(self) -> None:
        self._force_close(None)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop._remove_reader(self._sock_fd)
        if not self._buffer_size:
            self._conn_lost += 1
            self._loop._remove_writer(self._sock_fd)
            self._loop.call_soon(self._call_connection_lost, None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, OSError):
            # Connection errors are the peer's doing; the protocol hears of them
            # through connection_lost(exc).
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler(
                {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
            )
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._buffer_size:
            self._buffer.clear()
            self._buffer_size = 0
            self._loop._remove_writer(self._sock_fd)
        if not self._closing:
            self._closing = True
            self._loop._remove_reader(self._sock_fd)
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            self._sock.close()
            self._sock = None
            self._protocol = None
            self._loop = None
            server = self._server
            if server is not None:
                server._detach(self) if _SERVER_TRACKS_TRANSPORTS else server._detach()
                self._server = None


class _StreamIO:
    """What a stream transport's read and write touch: compiled, an extension type with C fields.

    A transport must be an ``asyncio.Transport``, whose bases have slots of
    their own, so it cannot itself be an extension type with fields; each of
    its attributes costs a type lookup and a dictionary lookup.  Its hot state
    lives here instead, one attribute away, and the transport's attributes of
    the same names (``_sock``, ``_protocol``, ...) are properties over it.
    """

    __slots__ = ("sock", "protocol", "recv_buffer", "conn_lost", "eof", "buffer", "buffer_size", "empty_waiter")

    def __init__(self, recv_buffer: bytearray) -> None:
        self.sock: Any = None
        self.protocol: Any = None
        self.recv_buffer = recv_buffer  # the loop's (see SocketTransport._read_ready__data_received)
        self.conn_lost = 0
        self.eof = False
        self.buffer: collections.deque[Any] = collections.deque()
        self.buffer_size = 0
        self.empty_waiter: Any = None


def _io_property(name: str) -> Any:
    """A transport attribute kept in its ``_StreamIO`` as ``name``."""

    def get(self: SocketTransport) -> Any:
        return getattr(self._io, name)

    def set(self: SocketTransport, value: Any) -> None:
        setattr(self._io, name, value)

    return property(get, set)


class SocketTransport(BaseSocketTransport):
    """A stream socket (TCP or Unix) driven by the loop's poller."""

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE

    _io: _StreamIO
    _sock = _io_property("sock")
    _protocol = _io_property("protocol")
    _conn_lost = _io_property("conn_lost")
    _eof = _io_property("eof")
    _buffer = _io_property("buffer")
    _buffer_size = _io_property("buffer_size")
    _empty_waiter = _io_property("empty_waiter")

    def __init__(
        self,
        loop: Any,
        sock: socket.socket,
        protocol: Any,
        waiter: Any = None,
        extra: Any = None,
        server: Any = None,
    ) -> None:
        self._io = _StreamIO(loop._recv_buffer)
        self._read_ready_cb: Any = None
        super().__init__(loop, sock, protocol, extra, server)
        # Small writes go out without waiting for the peer's ACK (no Nagle),
        # for every TCP socket: asyncio's own check also wants proto ==
        # IPPROTO_TCP, which misses sockets made with proto 0
        # (socket.create_server), and a two-part reply then waits ~40 ms for
        # the peer's delayed ACK.  uvloop sets it for any TCP socket too.
        _set_nodelay(sock)
        loop.call_soon(self._protocol.connection_made, self)
        # Read only once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)  # type: ignore[attr-defined]

    def set_protocol(self, protocol: Any) -> None:
        old = self._read_ready_cb
        if isinstance(protocol, protocols.BufferedProtocol):
            new = self._read_ready_cb = self._read_ready__get_buffer
        else:
            new = self._read_ready_cb = self._read_ready__data_received
        super().set_protocol(protocol)
        if old is not None and new != old and self._loop is not None and not self._loop.is_closed():
            # The poller calls the reader of the protocol's kind directly (see
            # _reader): a registration of the old one is moved to the new one.
            handle = self._loop._poller.get(self._sock_fd)[0]
            if handle is not None and handle._callback == old:
                self._loop._add_reader(self._sock_fd, new)

    def _reader(self) -> Any:
        # The reader of the protocol's kind itself (set_protocol chooses it).
        return self._read_ready_cb

    def get_write_buffer_size(self) -> int:
        return self._io.buffer_size

    def _read_ready__data_received(self) -> None:
        _receive_data(self, self._io)

    def _read_ready__get_buffer(self) -> None:
        _receive_into_buffer(self, self._io)

    def _read_ready__on_eof(self) -> None:
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if keep_open:
            # The protocol may still write; nothing more can be read.
            self._loop._remove_reader(self._sock_fd)
        else:
            self.close()

    def write(self, data: Any) -> None:
        _write(self, self._io, data)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def _write_ready(self) -> None:
        _flush(self, self._io)

    def write_eof(self) -> None:
        if self._closing or self._eof:
            return
        self._eof = True
        if not self._buffer_size:
            self._sock.shutdown(socket.SHUT_WR)

    def can_write_eof(self) -> bool:
        return True

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        super()._call_connection_lost(exc)
        if self._empty_waiter is not None:
            self._empty_waiter.set_exception(ConnectionError("Connection is closed by peer"))

    def _make_empty_waiter(self) -> Any:
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self._empty_waiter = self._loop.create_future()
        if not self._buffer_size:
            self._empty_waiter.set_result(None)
        return self._empty_waiter

    def _reset_empty_waiter(self) -> None:
        self._empty_waiter = None


# -- the hot path of a stream transport, on its _StreamIO (C fields when compiled) -------------


def _receive_data(transport: SocketTransport, io: _StreamIO) -> None:
    if io.conn_lost:
        return
    # Into the loop's receive buffer (256 KiB), then copied out: recv(256 KiB)
    # would malloc 256 KiB per event, which glibc serves with mmap, then
    # mremap and munmap (three system calls per read of a small message).
    try:
        data = recv_copy(io.sock, io.recv_buffer)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        transport._fatal_error(exc, "Fatal read error on socket transport")
        return
    if data is None:  # nothing after all (another reader of the socket took it)
        return
    if not data:
        transport._read_ready__on_eof()
        return
    try:
        io.protocol.data_received(data)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        transport._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")


def _receive_into_buffer(transport: SocketTransport, io: _StreamIO) -> None:
    if io.conn_lost:
        return
    try:
        buf = io.protocol.get_buffer(-1)
        if not len(buf):
            raise RuntimeError("get_buffer() returned an empty buffer")
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        transport._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
        return
    try:
        nbytes = recv_into(io.sock, buf)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        transport._fatal_error(exc, "Fatal read error on socket transport")
        return
    if nbytes < 0:  # nothing after all
        return
    if not nbytes:
        transport._read_ready__on_eof()
        return
    try:
        io.protocol.buffer_updated(nbytes)  # read again, as asyncio's transports do
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        transport._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")


def _write(transport: SocketTransport, io: _StreamIO, data: Any) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
    if io.eof:
        raise RuntimeError("Cannot call write() after write_eof()")
    if io.empty_waiter is not None:
        raise RuntimeError("unable to write; sendfile is in progress")
    if type(data) is memoryview and (data.itemsize != 1 or not data.c_contiguous):
        # Counted in bytes below: a view of wider items (array('i')) is
        # cast to bytes, one with gaps ([::2]) copied.
        data = data.cast("B") if data.c_contiguous else data.tobytes()
    if not data:
        return
    if io.conn_lost:
        if io.conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
            logger.warning("socket.send() raised exception.")
        io.conn_lost += 1
        return
    if not io.buffer_size:
        try:
            n = send(io.sock, data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            transport._fatal_error(exc, "Fatal write error on socket transport")
            return
        if n == len(data):
            return
        if n > 0:
            data = memoryview(data)[n:]
        transport._loop._add_writer(transport._sock_fd, transport._write_ready)
    # Copy: the caller may reuse a bytearray or memoryview after write().
    chunk = data if type(data) is bytes else bytes(data)
    io.buffer.append(chunk)
    io.buffer_size += len(chunk)
    transport._maybe_pause_protocol()


def _flush(transport: SocketTransport, io: _StreamIO) -> None:
    if io.conn_lost:
        return
    buffer = io.buffer
    try:
        if len(buffer) == 1:
            n = send(io.sock, buffer[0])
            if n < 0:
                return
        else:
            n = io.sock.sendmsg(list(buffer)[:_IOV_MAX])
    except (BlockingIOError, InterruptedError):
        return
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        transport._loop._remove_writer(transport._sock_fd)
        buffer.clear()
        io.buffer_size = 0
        transport._fatal_error(exc, "Fatal write error on socket transport")
        if io.empty_waiter is not None:
            io.empty_waiter.set_exception(exc)
        return
    io.buffer_size -= n
    while n:
        chunk = buffer[0]
        size = len(chunk)
        if n >= size:
            buffer.popleft()
            n -= size
        else:
            buffer[0] = memoryview(chunk)[n:]
            n = 0
    transport._maybe_resume_protocol()  # may write more
    if not io.buffer_size:
        transport._loop._remove_writer(transport._sock_fd)
        if io.empty_waiter is not None:
            io.empty_waiter.set_result(None)
        if transport._closing:
            transport._call_connection_lost(None)
        elif io.eof:
            io.sock.shutdown(socket.SHUT_WR)

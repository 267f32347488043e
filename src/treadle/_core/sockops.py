"""Low-level socket operations of the loop: ``sock_recv``, ``sock_sendall`` and friends.

Owns: the ``sock_*`` coroutines of ``asyncio.AbstractEventLoop`` and the two
ways they wait: :meth:`SockOpsMixin._wait_fd` registers a reader or writer that
completes a future, awaits it and unregisters; :meth:`SockOpsMixin._wait_readable`
(every read and accept) keeps the socket's reader registered after the wait,
for the next read of the same socket.  Every operation tries the system call
first and waits only when it would block.

Never: keeps a writer registered after the awaiting coroutine is done or
cancelled, or a reader for a socket other than the one it was made for; never
blocks the loop (a blocking socket is refused with ``ValueError`` at the call,
in every mode, not only in debug mode).

Discussion: a reader kept between reads saves the two ``epoll_ctl`` calls
(add, then remove) of every read that has to wait.  It is made for one socket
object (a weak reference: the registration must not keep the socket alive),
and reused only by a read of that same object, which owns the descriptor until
it is closed.  A socket closed without the loop knowing (``sock.close()``) may
see its number reused by another file: a read of another socket object finds
the kept reader not its own and registers afresh, and ``add_reader`` or a
transport replacing it re-tells the kernel (``Poller._rearm``).  A kept reader
that fires with nobody waiting is dropped, so an unread socket does not wake
the loop every iteration; writers are never kept (a socket is writable again
at once, so a kept writer would only fire).
"""

from __future__ import annotations

import _socket
import errno
import io
import os
import socket
import weakref
from asyncio import exceptions
from typing import Any

from .poller import Poller
from .sysio import nbytes, recv, recv_into, send

try:
    from ssl import SSLSocket as _SSLSocket
except ImportError:  # Python built without ssl
    _SSLSocket = None  # type: ignore[assignment, misc]

__all__ = ["SockOpsMixin"]

# The C methods: a socket whose class does not override one of them is read
# and written through sysio (no exception when it is not ready).  A class's
# own recv (a green socket's, say) is called as it is.
_C_RECV = _socket.socket.recv
_C_RECV_INTO = _socket.socket.recv_into
_C_SEND = _socket.socket.send


def _wake(fut: Any) -> None:
    if not fut.done():
        fut.set_result(None)


def _check_sock(sock: Any) -> None:
    if not isinstance(sock, socket.socket):
        raise TypeError(f"expected a socket.socket, got {type(sock).__name__}")
    if _SSLSocket is not None and isinstance(sock, _SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")  # asyncio's words
    if sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


class _KeptReader:
    """The reader a socket's reads keep registered between waits (see the module's discussion).

    Compiled, an extension type (``sockops.pxd``); its attributes are the same.
    """

    def __init__(self, loop: Any, fd: int, sock: socket.socket) -> None:
        self.loop = loop
        self.fd = fd
        self.owner = weakref.ref(sock)
        self.fut: Any = None  # the future of the read waiting now, if any
        self.handle: Any = None
        self.since = -1  # the poller's poll count when the last wait began or ended

    def wake(self) -> None:
        poller: Poller = self.loop._poller
        if self.since == poller.polls:
            # The poll that reported this ran before the current wait began
            # (or the last one ended): the readiness may be what the last read
            # took.  If it is still there, the next poll reports it again
            # (epoll is level-triggered); taken for new, it would wake the
            # task for nothing, which every read that waits would pay.
            return
        fut = self.fut
        if fut is None:
            # Ready, and nobody reads: drop it, or it would fire every iteration.
            self.drop()
        elif fut is not _DROPPED and not fut.done():
            fut.set_result(None)

    def idle(self) -> bool:
        """Registered with no read waiting on it."""
        return self.fut is None and not self.handle._cancelled

    def drop(self) -> None:
        """Unregister (if the slot is still this reader's) and forget it.

        A read still waiting on it is left waiting, as asyncio leaves one whose
        reader another ``add_reader`` replaced.
        """
        loop = self.loop
        if loop._kept_readers.get(self.fd) is self:
            del loop._kept_readers[self.fd]
        if self.fut is None:
            loop._kept_idle -= 1
        self.fut = _DROPPED
        if not loop._closed and loop._poller.get(self.fd)[0] is self.handle:
            loop._poller.remove_reader(self.fd)


_DROPPED: Any = object()  # a dropped _KeptReader's fut: neither waiting nor idle


def _start_read_wait(loop: Any, sock: socket.socket) -> _KeptReader:
    """Register (or reuse) ``sock``'s kept reader, with a new future in ``fut`` that its readiness completes."""
    fd = sock.fileno()
    loop._ensure_fd_no_transport(fd)
    fut = loop.create_future()
    kept = loop._kept_readers.get(fd)
    if kept is not None and kept.fut is None and kept.owner() is sock and not kept.handle._cancelled:
        loop._kept_idle -= 1  # registered for this very socket: no system call
    else:
        if kept is not None:
            kept.drop()
        kept = _KeptReader(loop, fd, sock)
        kept.handle = loop._add_reader(fd, kept.wake)
        loop._kept_readers[fd] = kept
    kept.fut = fut
    poller: Poller = loop._poller
    kept.since = poller.polls
    return kept


def _end_read_wait(loop: Any, kept: _KeptReader, fut: Any) -> None:
    """The wait on ``fut`` is over (done, cancelled or failed): the reader stays, idle, for the next read."""
    if kept.fut is fut:
        kept.fut = None
        poller: Poller = loop._poller
        kept.since = poller.polls
        loop._kept_idle += 1
        if loop._closed:
            kept.drop()


class SockOpsMixin:
    """``sock_*`` methods; mixed into the loop, which supplies the registration calls."""

    _debug: bool
    _kept_readers: dict[int, _KeptReader]  # fd -> the reader kept for its socket
    _kept_idle: int  # how many of them no read waits on

    async def _wait_readable(self, sock: socket.socket) -> None:
        """Suspend until ``sock`` is readable, keeping its reader registered afterwards."""
        kept = _start_read_wait(self, sock)
        fut = kept.fut
        try:
            await fut
        finally:
            _end_read_wait(self, kept, fut)

    async def _wait_fd(self, fd: int, write: bool) -> None:
        """Suspend until ``fd`` is readable (or writable); the single wait of this module."""
        loop: Any = self
        loop._ensure_fd_no_transport(fd)
        fut = loop.create_future()
        poller = loop._poller
        if write:
            handle = loop._add_writer(fd, _wake, fut)
        else:
            handle = loop._add_reader(fd, _wake, fut)
        try:
            await fut
        finally:
            if not loop._closed:
                reader, writer = poller.get(fd)
                if write and writer is handle:
                    poller.remove_writer(fd)
                elif not write and reader is handle:
                    poller.remove_reader(fd)

    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        """Receive up to ``n`` bytes; waits until some arrive (b'' at end of stream)."""
        _check_sock(sock)
        if type(sock).recv is _C_RECV:
            while True:
                data = recv(sock, n)
                if data is not None:
                    return data
                # _wait_readable, inline: one coroutine less per wait.
                kept = _start_read_wait(self, sock)
                fut = kept.fut
                try:
                    await fut
                finally:
                    _end_read_wait(self, kept, fut)
        while True:
            try:
                return sock.recv(n)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_readable(sock)

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        """Receive into ``buf``; returns the number of bytes received."""
        _check_sock(sock)
        if type(sock).recv_into is _C_RECV_INTO:
            while True:
                count = recv_into(sock, buf)
                if count >= 0:
                    return count
                kept = _start_read_wait(self, sock)
                fut = kept.fut
                try:
                    await fut
                finally:
                    _end_read_wait(self, kept, fut)
        while True:
            try:
                return sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_readable(sock)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram of up to ``bufsize`` bytes; returns (data, address)."""
        _check_sock(sock)
        while True:
            try:
                return sock.recvfrom(bufsize)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_readable(sock)

    async def sock_recvfrom_into(self, sock: socket.socket, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
        """Receive a datagram into ``buf``; returns (nbytes, address)."""
        _check_sock(sock)
        if not nbytes:
            nbytes = len(buf)
        while True:
            try:
                return sock.recvfrom_into(buf, nbytes)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_readable(sock)

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        """Send all of ``data``; on error, how much was sent is unknown (as in asyncio)."""
        _check_sock(sock)
        if type(sock).send is _C_SEND:
            total = nbytes(data)
            pos = 0
            while True:
                count = send(sock, data, 0, pos)
                if count > 0:
                    pos += count
                if pos >= total:
                    return
                await self._wait_fd(sock.fileno(), True)
        view = memoryview(data).cast("B")
        total = len(view)
        pos = 0
        while True:
            try:
                pos += sock.send(view[pos:])
            except (BlockingIOError, InterruptedError):
                pass
            if pos >= total:
                return
            await self._wait_fd(sock.fileno(), True)

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        """Send one datagram to ``address``; returns the number of bytes sent."""
        _check_sock(sock)
        while True:
            try:
                return sock.sendto(data, address)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_fd(sock.fileno(), True)

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connect ``sock`` to ``address``, resolving host names without blocking."""
        _check_sock(sock)
        loop: Any = self
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            resolved = await loop._ensure_resolved(
                address, family=sock.family, type=sock.type, proto=sock.proto, loop=self
            )
            address = resolved[0][4]
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            await self._wait_fd(sock.fileno(), True)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                return
            if err not in (errno.EINPROGRESS, errno.EALREADY, errno.EINTR):
                raise OSError(err, f"Connect call failed {address}")

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        """Accept a connection; returns (non-blocking socket, address)."""
        _check_sock(sock)
        while True:
            try:
                conn, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                await self._wait_readable(sock)
                continue
            conn.setblocking(False)
            return conn, address

    async def _sock_sendfile_native(self, sock: socket.socket, file: Any, offset: int, count: int | None) -> int:
        # asyncio's sock_sendfile checks the socket in debug mode only.
        _check_sock(sock)
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise exceptions.SendfileNotAvailableError("not a regular file") from None
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise exceptions.SendfileNotAvailableError("not a regular file") from None
        blocksize = count if count else fsize
        if not blocksize:
            return 0
        fd = sock.fileno()
        total = 0
        try:
            while True:
                if count:
                    blocksize = count - total
                    if blocksize <= 0:
                        return total
                try:
                    sent = os.sendfile(fd, fileno, offset, blocksize)
                except (BlockingIOError, InterruptedError):
                    await self._wait_fd(fd, True)
                    continue
                except OSError as exc:
                    if total == 0:
                        # Not an mmap-able file, say: the caller falls back to send().
                        raise exceptions.SendfileNotAvailableError("os.sendfile call failed") from exc
                    if exc.errno == errno.ENOTCONN and type(exc) is not ConnectionError:
                        raise ConnectionError(errno.ENOTCONN, "socket is not connected") from exc
                    raise
                if sent == 0:
                    return total
                offset += sent
                total += sent
        finally:
            if total > 0:
                os.lseek(fileno, offset, os.SEEK_SET)

    async def _sendfile_native(self, transp: Any, file: Any, offset: int, count: int | None) -> int:
        loop: Any = self
        del loop._transports[transp._sock_fd]
        resume_reading = transp.is_reading()
        transp.pause_reading()
        await transp._make_empty_waiter()
        try:
            return await loop.sock_sendfile(transp._sock, file, offset, count, fallback=False)
        finally:
            transp._reset_empty_waiter()
            if resume_reading:
                transp.resume_reading()
            loop._transports[transp._sock_fd] = transp

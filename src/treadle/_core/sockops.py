"""Low-level socket operations of the loop: ``sock_recv``, ``sock_sendall`` and friends.

Owns: the ``sock_*`` coroutines of ``asyncio.AbstractEventLoop`` and the one way
they wait, :meth:`SockOpsMixin._wait_fd`: register a reader or writer that
completes a future, await it, unregister.  Every operation tries the system
call first and waits only when it would block.

Never: keeps a reader or writer registered after the awaiting coroutine is
done or cancelled; never blocks the loop (a blocking socket is refused with
``ValueError`` at the call, in every mode, not only in debug mode).
"""

from __future__ import annotations

import errno
import io
import os
import socket
from asyncio import base_events, exceptions
from typing import Any

__all__ = ["SockOpsMixin"]


def _wake(fut: Any) -> None:
    if not fut.done():
        fut.set_result(None)


def _check_sock(sock: Any) -> None:
    if not isinstance(sock, socket.socket):
        raise TypeError(f"expected a socket.socket, got {type(sock).__name__}")
    base_events._check_ssl_socket(sock)  # type: ignore[attr-defined]
    if sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


class SockOpsMixin:
    """``sock_*`` methods; mixed into the loop, which supplies the registration calls."""

    _debug: bool

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
        while True:
            try:
                return sock.recv(n)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_fd(sock.fileno(), False)

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        """Receive into ``buf``; returns the number of bytes received."""
        _check_sock(sock)
        while True:
            try:
                return sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_fd(sock.fileno(), False)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram of up to ``bufsize`` bytes; returns (data, address)."""
        _check_sock(sock)
        while True:
            try:
                return sock.recvfrom(bufsize)
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait_fd(sock.fileno(), False)

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
            await self._wait_fd(sock.fileno(), False)

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        """Send all of ``data``; on error, how much was sent is unknown (as in asyncio)."""
        _check_sock(sock)
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
                await self._wait_fd(sock.fileno(), False)
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

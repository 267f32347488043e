"""The green socket: ``socket.socket`` with the standard interface, that waits by switching.

Owns: :class:`socket`, a subclass of the standard library's ``socket.socket``
whose descriptor is always non-blocking underneath, while the timeout the user
sets (``settimeout``, ``setblocking``, ``socket.getdefaulttimeout()``) is kept
here and honoured by waiting on the hub: an operation that would block
registers the descriptor with the loop and switches to the hub until it is
ready, or raises ``TimeoutError`` ("timed out") when the timeout passes.

Never: blocks the loop's thread in a system call (a socket with timeout 0 raises
``BlockingIOError`` as the standard one does; one with a timeout waits on the
hub); never lets two green tasks wait on the same direction of one socket (the
second gets a ``RuntimeError``, as one of them would otherwise never be woken);
never leaves a waiter behind: closing a socket wakes every task waiting on it
with ``OSError(EBADF)``.
"""

from __future__ import annotations

import _socket
import errno
import io
import os
import socket as _stdsocket
from typing import Any

from .._core.sysio import nbytes as _nbytes
from .._core.sysio import recv as _recv
from .._core.sysio import recv_into as _recv_into
from .._core.sysio import send as _send
from ..green.hub import current_hub, get_hub
from . import dns

__all__ = ["socket", "create_connection", "socketpair", "fromfd", "wait_readable", "wait_writable"]

_timeout_error = _stdsocket.timeout  # TimeoutError on 3.10+; "timed out" as the standard socket
_base = _socket.socket  # the C type: its methods are the raw system calls
_StdSocket = _stdsocket.socket  # the standard class, bound before any patching
_BLOCKING = (BlockingIOError, InterruptedError)
_DONTWAIT = getattr(_stdsocket, "MSG_DONTWAIT", 0)
_UNSET: Any = object()  # no deadline computed yet (None is "no limit")


def _would_block() -> BlockingIOError:
    """What the standard socket raises when a call on a non-blocking one would block."""
    return BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))


def _closed_error() -> OSError:
    return OSError(errno.EBADF, "Bad file descriptor: the socket was closed while a task waited on it")


class _Waits:
    """Whether a green task waits to read from (write to) one socket, and what those waits are called."""

    __slots__ = ("read", "write", "fd", "read_what", "write_what")

    def __init__(self) -> None:
        self.read = False
        self.write = False
        # "readable fd N" and "writable fd N" for the stall report, made once
        # per descriptor rather than formatted on every wait.
        self.fd = -1
        self.read_what = ""
        self.write_what = ""


def _wait(sock: socket, write: bool, timeout: float | None) -> None:
    """Switch to the hub until ``sock`` is readable (writable), or raise TimeoutError after ``timeout``."""
    fd = _base.fileno(sock)
    if fd < 0:
        raise _closed_error()
    waits = sock._waits
    if waits.write if write else waits.read:
        raise RuntimeError(
            f"another green task is already waiting to {'write to' if write else 'read from'} {sock!r}: "
            "one socket direction serves one task at a time"
        )
    fdwaits = get_hub().fdwaits
    if waits.fd != fd:
        waits.fd = fd
        waits.read_what = f"readable fd {fd}"
        waits.write_what = f"writable fd {fd}"
    if write:
        waits.write = True
    else:
        waits.read = True
    try:
        # The socket's _waits object owns fd while the socket is open: its
        # registration is kept between two waits (green.fdwait).
        fdwaits.wait_one(
            fd,
            write,
            timeout,
            waits.write_what if write else waits.read_what,
            None if timeout is None else _timeout_error("timed out"),
            waits,
        )
    finally:
        if write:
            waits.write = False
        else:
            waits.read = False


def loop_time() -> float:
    """The hub's loop time: the clock of socket deadlines, as of the timers that end the waits."""
    return get_hub().loop.time()


def _wait_until(sock: socket, write: bool, deadline: float | None) -> None:
    """:func:`_wait` until a loop-time ``deadline`` (None: no limit); TimeoutError once it has passed."""
    if deadline is None:
        _wait(sock, write, None)
        return
    remaining = deadline - loop_time()
    if remaining <= 0:
        raise _timeout_error("timed out")
    _wait(sock, write, remaining)


def wait_readable(fileno: Any, timeout: float | None = None) -> None:
    """Block the current green task until ``fileno`` is readable (TimeoutError after ``timeout``)."""
    _wait_fd(fileno if isinstance(fileno, int) else fileno.fileno(), False, timeout)


def wait_writable(fileno: Any, timeout: float | None = None) -> None:
    """Block the current green task until ``fileno`` is writable (TimeoutError after ``timeout``)."""
    _wait_fd(fileno if isinstance(fileno, int) else fileno.fileno(), True, timeout)


def _wait_fd(fd: int, write: bool, timeout: float | None) -> None:
    """The one wait of this module, through the hub's descriptor waits."""
    get_hub().fdwaits.wait_one(
        fd,
        write,
        timeout,
        f"{'writable' if write else 'readable'} fd {fd}",
        None if timeout is None else _timeout_error("timed out"),
    )


class socket(_StdSocket):
    """A cooperative ``socket.socket``: blocking calls switch to other green tasks."""

    # No __slots__: the TLS socket (net.greenssl) combines this class with
    # ssl.SSLSocket, which has an instance dict.

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
        _StdSocket.__init__(self, family, type, proto, fileno)
        self._waits = _Waits()
        # The standard socket's own initial timeout (the default timeout), kept
        # here; the descriptor itself is always non-blocking.
        self._timeout: float | None = _base.gettimeout(self)
        _base.settimeout(self, 0.0)

    # -- timeouts --------------------------------------------------------------

    def settimeout(self, value: float | None) -> None:
        if value is not None:
            if not isinstance(value, (int, float)):
                raise TypeError(f"Timeout value must be int, float or None, got {type(value).__name__}")
            if value != value or value < 0:
                raise ValueError("Timeout value out of range")
            value = float(value)
        _base.settimeout(self, 0.0)  # an invalid descriptor raises, as the standard call does
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        _base.setblocking(self, False)  # an invalid descriptor raises, as the standard call does
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    @property
    def timeout(self) -> float | None:  # type: ignore[override]
        return self._timeout

    # -- closing ---------------------------------------------------------------

    def _wake_waiters(self) -> None:
        """The descriptor is going away: every green task waiting on it gets EBADF at once."""
        fd = _base.fileno(self)
        if fd >= 0:
            hub = current_hub()
            if hub is not None and hub.fdwaits.waiting(fd):
                hub.fdwaits.forget(fd, _closed_error())

    def _real_close(self, _ss: Any = _base) -> None:
        # Called by close() once no makefile() object uses the socket.
        self._wake_waiters()
        _ss.close(self)

    def detach(self) -> int:
        self._wake_waiters()
        return _StdSocket.detach(self)

    # -- waiting helpers -----------------------------------------------------------

    def _io(self, write: bool, op: Any, *args: Any) -> Any:
        """Call ``op(*args)``; while it would block and the timeout allows, wait and retry.

        The last argument of every operation passed here is its ``flags``;
        with ``MSG_DONTWAIT`` the caller asked not to wait, as on any socket.
        """
        timeout = self._timeout
        flags = args[-1]
        # (socket.MSG_DONTWAIT is an IntFlag member, not an int.)
        if timeout == 0.0 or (flags and isinstance(flags, int) and flags & _DONTWAIT):
            return op(*args)
        deadline = None if timeout is None else loop_time() + timeout
        while True:
            try:
                return op(*args)
            except _BLOCKING:
                pass
            _wait_until(self, write, deadline)

    def _wait_ready(self, write: bool, flags: int, deadline: Any) -> Any:
        """After a call found the socket not ready: wait, and return the deadline for the next try.

        ``BlockingIOError`` instead if the socket must not wait (timeout 0, or
        ``MSG_DONTWAIT`` in ``flags``); ``deadline`` is :data:`_UNSET` on the
        first wait of a call, which then starts the socket's timeout.
        """
        timeout = self._timeout
        if timeout == 0.0 or (flags and isinstance(flags, int) and flags & _DONTWAIT):
            raise _would_block()
        if deadline is _UNSET:
            deadline = None if timeout is None else loop_time() + timeout
        _wait_until(self, write, deadline)
        return deadline

    # -- reading ---------------------------------------------------------------
    # recv, recv_into, send and sendall try first and wait only when the socket
    # is not ready (sysio: no exception for that); the rest go through _io.

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        deadline = _UNSET
        while True:
            data = _recv(self, bufsize, flags)
            if data is not None:
                return data
            deadline = self._wait_ready(False, flags, deadline)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        deadline = _UNSET
        while True:
            count = _recv_into(self, buffer, nbytes, flags)
            if count >= 0:
                return count
            deadline = self._wait_ready(False, flags, deadline)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        return self._io(False, _base.recvfrom, self, bufsize, flags)  # type: ignore[no-any-return]

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        return self._io(False, _base.recvfrom_into, self, buffer, nbytes, flags)  # type: ignore[no-any-return]

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> Any:
        return self._io(False, _base.recvmsg, self, bufsize, ancbufsize, flags)

    def recvmsg_into(self, buffers: Any, ancbufsize: int = 0, flags: int = 0) -> Any:
        return self._io(False, _base.recvmsg_into, self, buffers, ancbufsize, flags)

    # -- writing ---------------------------------------------------------------

    def send(self, data: Any, flags: int = 0) -> int:
        deadline = _UNSET
        while True:
            count = _send(self, data, flags)
            if count >= 0:
                return count
            deadline = self._wait_ready(True, flags, deadline)

    def sendto(self, data: Any, *args: Any) -> int:
        """``sendto(data, address)`` or ``sendto(data, flags, address)``, as the standard socket."""
        if len(args) == 1:
            return self._io(True, _base.sendto, self, data, args[0])  # type: ignore[no-any-return]
        if len(args) != 2:
            raise TypeError(f"sendto() takes 2 or 3 arguments ({len(args) + 1} given)")
        if isinstance(args[0], int) and args[0] & _DONTWAIT:
            return _base.sendto(self, data, *args)  # type: ignore[no-any-return]
        return self._io(True, _base.sendto, self, data, *args)  # type: ignore[no-any-return]

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> int:
        if address is None:
            return self._io(True, _base.sendmsg, self, buffers, ancdata, flags)  # type: ignore[no-any-return]
        if flags and isinstance(flags, int) and flags & _DONTWAIT:
            return _base.sendmsg(self, buffers, ancdata, flags, address)  # type: ignore[no-any-return]
        return self._io(True, _base.sendmsg, self, buffers, ancdata, flags, address)  # type: ignore[no-any-return]

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Send all of ``data``; on a timeout, as the standard socket, how much went out is unknown."""
        total = _nbytes(data)
        sent = 0
        deadline = _UNSET
        while True:  # at least one send, as the standard one: sendall(b"") on a closed socket raises
            count = _send(self, data, flags, sent)
            if count >= 0:
                sent += count
                if sent >= total:
                    return
            else:
                deadline = self._wait_ready(True, flags, deadline)

    def _sendfile_use_sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        # The standard version waits with a blocking PollSelector; this one
        # waits on the hub.  socket.sendfile() calls it, and falls back to
        # send() when it gives up (_GiveupOnSendfile), as the standard does.
        self._check_sendfile_params(file, offset, count)  # type: ignore[attr-defined]
        sockno = self.fileno()
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation) as err:
            raise _stdsocket._GiveupOnSendfile(err) from None  # type: ignore[attr-defined]
        try:
            fsize = os.fstat(fileno).st_size
        except OSError as err:
            raise _stdsocket._GiveupOnSendfile(err) from None  # type: ignore[attr-defined]
        if not fsize:
            return 0
        blocksize = min(count or fsize, 2**30)
        timeout = self._timeout
        if timeout == 0:
            raise ValueError("non-blocking sockets are not supported")
        deadline = None if timeout is None else loop_time() + timeout
        total_sent = 0
        try:
            while True:
                if count:
                    blocksize = count - total_sent
                    if blocksize <= 0:
                        break
                try:
                    sent = os.sendfile(sockno, fileno, offset, blocksize)
                except _BLOCKING:
                    _wait_until(self, True, deadline)
                    continue
                except OSError as err:
                    if total_sent == 0:
                        # Not a regular file, say: let sendfile() fall back to send().
                        raise _stdsocket._GiveupOnSendfile(err) from None  # type: ignore[attr-defined]
                    raise
                if sent == 0:
                    break  # end of file
                offset += sent
                total_sent += sent
            return total_sent
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset)

    # -- connecting and accepting --------------------------------------------------

    def _resolve(self, address: Any) -> Any:
        if (
            self.family in (_stdsocket.AF_INET, _stdsocket.AF_INET6)
            and isinstance(address, tuple)
            and len(address) >= 2
            and isinstance(address[1], int)
            and 0 <= address[1] <= 65535
        ):
            host = address[0]
            if not dns._is_numeric_host(host):
                info = dns.getaddrinfo(host, address[1], self.family, self.type, self.proto)
                return info[0][4]
        return address

    def bind(self, address: Any) -> None:
        _base.bind(self, self._resolve(address))

    def connect(self, address: Any) -> None:
        address = self._resolve(address)
        if self._timeout == 0.0:
            return _base.connect(self, address)
        err = _base.connect_ex(self, address)
        if err == 0 or err == errno.EISCONN:
            return None
        if err not in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY, errno.EINTR):
            raise OSError(err, os.strerror(err))
        _wait(self, True, self._timeout)
        err = self.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
        return None

    def connect_ex(self, address: Any) -> int:
        try:
            # This class's connect, not an override's: ssl.SSLSocket.connect
            # calls connect_ex itself.
            socket.connect(self, address)
        except _timeout_error:
            return errno.EAGAIN
        except (_stdsocket.gaierror, _stdsocket.herror):
            raise  # resolving the address failed: raised, as the standard connect_ex does
        except OSError as exc:
            if exc.errno:
                return exc.errno
            raise
        return 0

    def accept(self) -> tuple[socket, Any]:
        fd, addr = self._io(False, _base._accept, self)  # type: ignore[attr-defined]
        # A plain green socket, whatever this one is (a TLS socket wraps it).
        sock = socket(self.family, self.type, self.proto, fileno=fd)
        # As the standard socket: blocking if no default timeout is set and this
        # one has a timeout; otherwise the default timeout (set at creation).
        if _stdsocket.getdefaulttimeout() is None and self.gettimeout():
            sock.setblocking(True)
        return sock, addr

    def dup(self) -> socket:
        fd = os.dup(self.fileno())
        sock = type(self)(self.family, self.type, self.proto, fileno=fd)
        sock.settimeout(self.gettimeout())
        return sock


def _socket_class() -> Any:
    """The class to make sockets with: the socket module's, if something replaced it, else ours."""
    cls = _stdsocket.socket
    return socket if cls is _StdSocket else cls


def create_connection(
    address: tuple[str, int],
    timeout: Any = _stdsocket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: Any = None,
    *,
    all_errors: bool = False,
) -> socket:
    """``socket.create_connection`` with a green socket and cooperative resolution."""
    host, port = address
    exceptions: list[OSError] = []
    for family, type_, proto, _canon, sa in dns.getaddrinfo(host, port, 0, _stdsocket.SOCK_STREAM):
        sock = None
        try:
            sock = _socket_class()(family, type_, proto)
            if timeout is not _stdsocket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sa)
            exceptions.clear()
            return sock
        except OSError as exc:
            exceptions.append(exc)
            if sock is not None:
                sock.close()
    if exceptions:
        if all_errors:
            raise ExceptionGroup("create_connection failed", exceptions)
        raise exceptions[0]
    raise OSError("getaddrinfo returns an empty list")


def socketpair(
    family: int = _stdsocket.AF_UNIX, type: int = _stdsocket.SOCK_STREAM, proto: int = 0
) -> tuple[socket, socket]:
    a, b = _socket.socketpair(family, type, proto)  # the C function: plain C sockets
    return (
        socket(family, type, proto, a.detach()),
        socket(family, type, proto, b.detach()),
    )


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> socket:
    return socket(family, type, proto, os.dup(fd))

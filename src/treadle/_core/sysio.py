"""Socket system calls that never wait: one ``recv``/``send`` on a socket's descriptor, now.

Owns: :func:`recv`, :func:`recv_into`, :func:`recv_copy` and :func:`send`,
the reads and writes of the hot paths (socket transports, green sockets), and
:func:`nbytes`.  Each makes one system call on the descriptor of a
``socket.socket`` (the raw call of ``_socket.socket``, never an ``ssl``
socket's override) with ``MSG_DONTWAIT``, and says "not ready" with a return
value (``None`` or ``-1``) instead of raising ``BlockingIOError``.  Every
other outcome is the standard method's: its result, its ``OSError`` (from
``errno``, so ``ConnectionResetError`` and kin), its ``TypeError`` and
``ValueError`` for bad arguments, and a retry after the signal handlers on
``EINTR`` (PEP 475).

Never: waits, or decides what to do when a socket is not ready (callers
register with the loop, or raise ``BlockingIOError`` themselves where their
interface asks for it).

Discussion: where the socket is not ready, the standard methods raise an
exception built from ``errno`` (its message decoded from the C library's
``strerror``), which the caller catches at once: about 4,000 instructions
each time a green task or a transport finds nothing to read, as often as
once per message.  They also let go of the GIL around each call and take it
back after, which costs about 800 instructions, to let other threads run
during a call that cannot block here.  Compiled (``sysio.pxd``), these
functions call ``recv(2)``/``send(2)`` directly with the GIL held; as Python
they call the standard methods and catch the exception, which behaves the
same.
"""

from __future__ import annotations

import _socket
from typing import Any

from .._accel import is_extension_file

__all__ = ["nbytes", "recv", "recv_copy", "recv_into", "send"]

_base = _socket.socket  # the C type: its methods are the raw system calls
_DONTWAIT: int = _socket.MSG_DONTWAIT
_NOT_READY = (BlockingIOError, InterruptedError)

_COMPILED = is_extension_file(__file__)
if _COMPILED:
    _c_init(_base)  # type: ignore[name-defined]  # noqa: F821


def _check_socket(sock: Any) -> None:
    # The compiled functions' first check, with their message.
    if not isinstance(sock, _base):
        raise TypeError(f"a socket.socket was expected, got {type(sock).__name__}")


def recv(sock: Any, bufsize: int, flags: int = 0) -> bytes | None:
    """``sock.recv(bufsize, flags)`` once, without waiting: ``b""`` at end of stream, None if nothing has come."""
    if _COMPILED:
        return _c_recv(sock, bufsize, flags)  # type: ignore[name-defined, no-any-return]  # noqa: F821
    _check_socket(sock)
    try:
        return _base.recv(sock, bufsize, flags | _DONTWAIT)  # type: ignore[no-any-return]
    except _NOT_READY:
        return None


def recv_into(sock: Any, buffer: Any, size: int = 0, flags: int = 0) -> int:
    """``sock.recv_into(buffer, size, flags)`` once, without waiting: the count (0 at end), -1 if nothing has come."""
    if _COMPILED:
        return _c_recv_into(sock, buffer, size, flags)  # type: ignore[name-defined, no-any-return]  # noqa: F821
    _check_socket(sock)
    try:
        return _base.recv_into(sock, buffer, size, flags | _DONTWAIT)  # type: ignore[no-any-return]
    except _NOT_READY:
        return -1


def recv_copy(sock: Any, scratch: bytearray) -> bytes | None:
    """Read once into ``scratch``, without waiting, and return a copy of what came (None if nothing has).

    One buffer serves every read of a loop: a ``recv`` of the most one read
    may bring (256 KiB) would allocate that much for each message, which the
    C library serves with ``mmap`` and gives back with ``munmap``.
    """
    if _COMPILED:
        return _c_recv_copy(sock, scratch)  # type: ignore[name-defined, no-any-return]  # noqa: F821
    if type(scratch) is not bytearray:
        raise TypeError(f"recv_copy() needs a bytearray to read into, got {type(scratch).__name__}")
    _check_socket(sock)
    try:
        count = _base.recv_into(sock, scratch, 0, _DONTWAIT)
    except _NOT_READY:
        return None
    return bytes(memoryview(scratch)[:count])


def send(sock: Any, data: Any, flags: int = 0, start: int = 0) -> int:
    """``sock.send(data[start:], flags)`` once, without waiting (``start`` in bytes): what went, -1 if nothing could."""
    if _COMPILED:
        return _c_send(sock, data, flags, start)  # type: ignore[name-defined, no-any-return]  # noqa: F821
    if start:
        view = _byte_view(data)
        if start < 0 or start > len(view):
            raise ValueError(f"start must be within the data's {len(view)} bytes, got {start}")
        data = view[start:]
    _check_socket(sock)
    try:
        return _base.send(sock, data, flags | _DONTWAIT)  # type: ignore[no-any-return]
    except _NOT_READY:
        return -1


def nbytes(data: Any) -> int:
    """The length of ``data`` in bytes, as ``send`` counts it (TypeError if it is not bytes-like)."""
    if _COMPILED:
        return _c_nbytes(data)  # type: ignore[name-defined, no-any-return]  # noqa: F821
    return len(_byte_view(data))


def _byte_view(data: Any) -> memoryview:
    """``data`` as a flat view of bytes, with the errors of the standard ``send``."""
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not '{type(data).__name__}'") from None
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    return view.cast("B")

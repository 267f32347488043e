"""Connecting: :func:`open_tcp_stream` and :func:`open_unix_stream`, for green and async code.

Owns: the argument checks of the two connect functions, the coroutines that
connect through the running loop (``create_connection``,
``create_unix_connection``) with a :class:`~treadle.net.streams.SocketStream`
as the protocol, :func:`wait_for_resource`, which runs such a coroutine for
green code without leaking what it made if the green task is cancelled, and
:func:`in_callers_style`, which the serve functions use too: the coroutine
for async code, its result for green code.

Never: reads or sends on a stream (``streams``), or accepts connections
(``stream_server``).
"""

from __future__ import annotations

import asyncio
import os
import ssl as _ssl
from typing import Any

from ..concurrency.waiting import current_loop, green_wait, in_async
from ..green.task import check_timeout
from .streams import SocketStream

__all__ = ["in_callers_style", "open_tcp_stream", "open_unix_stream", "wait_for_resource"]


def _check_ssl(ssl: Any) -> _ssl.SSLContext | None:
    if ssl is None or ssl is False:
        return None
    if ssl is True:
        return _ssl.create_default_context()
    if isinstance(ssl, _ssl.SSLContext):
        return ssl
    raise TypeError(f"ssl must be an ssl.SSLContext, True or None, got {type(ssl).__name__}")


def _check_port(port: Any, minimum: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, got {type(port).__name__}")
    if not minimum <= port <= 65535:
        raise ValueError(f"port must be in {minimum}..65535, got {port}")
    return port


def wait_for_resource(coro: Any, what: str) -> Any:
    """Green code: run ``coro`` (which makes a stream or a server) in a task and return its result.

    If the green task is cancelled meanwhile, ``coro`` is cancelled too and
    this waits until it has cleaned up (closed its socket), as an awaited
    coroutine would; a result that came in the same moment is aborted
    (``abort()``), not leaked.
    """
    task = current_loop().create_task(coro)
    try:
        return green_wait(task, what)
    except BaseException:
        if not task.done():
            task.cancel()
            try:
                green_wait(asyncio.shield(task), f"{what}, cancelled")
            except BaseException:
                pass  # its outcome is not this task's any more: the first exception goes on
        if task.done() and not task.cancelled() and task.exception() is None:
            task.result().abort()
        raise


def in_callers_style(coro: Any, what: str) -> Any:
    """Green code: run ``coro`` (connecting, or starting a server) and return its result; async code: ``coro``."""
    if in_async():
        return coro
    return wait_for_resource(coro, what)


def open_tcp_stream(
    host: str,
    port: int,
    *,
    ssl: _ssl.SSLContext | bool | None = None,
    happy_eyeballs_delay: float | None = 0.25,
    local_address: str | tuple[str, int] | None = None,
    server_hostname: str | None = None,
) -> Any:
    """Connect to ``host``:``port`` over TCP and return a :class:`SocketStream`.

    Green code blocks until connected; async code awaits it
    (``stream = await open_tcp_stream(...)``).  A host name is resolved off the
    loop's thread, and its addresses are tried with happy eyeballs
    (``happy_eyeballs_delay`` seconds apart; None tries them one after the
    other).  ``ssl`` (an ``ssl.SSLContext``, or True for the default one)
    makes it a TLS stream, checked against ``server_hostname`` (default
    ``host``).  ``local_address`` is the local host (or ``(host, port)``) to
    bind to.  Raises ``OSError`` if no address could be connected.
    """
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, got {type(host).__name__}")
    if not host:
        raise ValueError("host must not be empty")
    _check_port(port, 1)
    context = _check_ssl(ssl)
    delay = check_timeout(happy_eyeballs_delay, "happy_eyeballs_delay")
    local_addr: tuple[str, int] | None
    if local_address is None:
        local_addr = None
    elif isinstance(local_address, str):
        local_addr = (local_address, 0)
    elif isinstance(local_address, tuple) and len(local_address) == 2 and isinstance(local_address[0], str):
        local_addr = (local_address[0], _check_port(local_address[1], 0))
    else:
        raise TypeError(f"local_address must be a host str or a (host, port) tuple, got {local_address!r}")
    if server_hostname is not None:
        if not isinstance(server_hostname, str):
            raise TypeError(f"server_hostname must be a str, got {type(server_hostname).__name__}")
        if context is None:
            raise ValueError("server_hostname is only meaningful with ssl")
    return in_callers_style(
        _open_tcp(host, port, context, delay, local_addr, server_hostname), f"open_tcp_stream({host!r}, {port})"
    )


async def _open_tcp(
    host: str,
    port: int,
    context: _ssl.SSLContext | None,
    delay: float | None,
    local_addr: tuple[str, int] | None,
    server_hostname: str | None,
) -> SocketStream:
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_connection(
        lambda: SocketStream(loop),
        host,
        port,
        ssl=context,
        happy_eyeballs_delay=delay,
        local_addr=local_addr,
        server_hostname=server_hostname,
    )
    return stream


def open_unix_stream(
    path: str | bytes | os.PathLike[str],
    *,
    ssl: _ssl.SSLContext | bool | None = None,
    server_hostname: str | None = None,
) -> Any:
    """Connect to the Unix socket at ``path`` and return a :class:`SocketStream`.

    Both styles, as :func:`open_tcp_stream`.  With ``ssl``, ``server_hostname``
    names the certificate to expect (needed unless the context's
    ``check_hostname`` is off).
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str, bytes or path-like object, got {type(path).__name__}")
    path = os.fsdecode(path)  # bytes too (an abstract name, say): decoded as the socket module would encode it
    if not path:
        raise ValueError("path must not be empty")
    context = _check_ssl(ssl)
    if server_hostname is not None:
        if not isinstance(server_hostname, str):
            raise TypeError(f"server_hostname must be a str, got {type(server_hostname).__name__}")
        if context is None:
            raise ValueError("server_hostname is only meaningful with ssl")
    elif context is not None:
        if context.check_hostname:
            raise ValueError(
                "a TLS stream over a Unix socket needs server_hostname= (the name the server's certificate "
                "must have), or a context with check_hostname off"
            )
        server_hostname = ""
    return in_callers_style(_open_unix(path, context, server_hostname), f"open_unix_stream({path!r})")


async def _open_unix(path: str, context: _ssl.SSLContext | None, server_hostname: str | None) -> SocketStream:
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_unix_connection(
        lambda: SocketStream(loop), path, ssl=context, server_hostname=server_hostname
    )
    return stream

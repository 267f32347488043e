"""Stream servers: ``serve_tcp`` and ``serve_unix`` run a handler per connection, green or async.

Owns: :class:`SocketStreamServer` (the listening sockets, accepting, a task
per connection, the bound on live connections, an orderly close) and the
functions that make one, :func:`serve_tcp` and :func:`serve_unix`.  A handler
that is a coroutine function runs each connection as an asyncio task; a plain
function runs it as a green task.  Both get a
:class:`~treadle.net.streams.SocketStream`, closed when the handler returns.

Never: loses an accepted socket or a task.  Every accepted socket belongs to
one connection task; if the task ends before it made a stream of it (cancelled
before it started), the socket is closed when the task is done.  A handler's
exception goes to the loop's exception handler and the server goes on.  Once
``close()`` returned (to the caller that was not itself a connection), every
connection task has ended and every socket is closed.

Discussion: the server accepts on its own (``loop.add_reader`` on each
listening socket) rather than through ``loop.create_server``, so that it can
stop accepting while ``max_connections`` connections are live (the others wait
in the kernel's backlog), and so that the TLS handshake runs in the
connection's task (``loop.connect_accepted_socket``), where ``close()`` can
cancel it like any other part of a connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import inspect
import logging
import os
import socket
import ssl as _ssl
import stat
from asyncio import trsock
from typing import Any

from greenlet import getcurrent

from ..concurrency.waiting import green_wait, in_async
from ..green.hub import BlockingInHubError, get_hub
from ..green.task import Greenlet, check_timeout
from .stream_connect import in_callers_style, wait_for_resource
from .streams import SocketStream

__all__ = ["SocketStreamServer", "serve_tcp", "serve_unix"]

logger = logging.getLogger("treadle")

_getaddrinfo = socket.getaddrinfo  # bound now: the monkey patcher replaces the module's
_ACCEPT_RETRY_DELAY = 1.0  # seconds without accepting after the process ran out of descriptors or memory
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class _Connection:
    """One accepted socket and the task that serves it."""

    __slots__ = ("sock", "address", "task", "started", "stream")

    def __init__(self, sock: socket.socket, address: Any) -> None:
        self.sock = sock
        self.address = address
        self.task: Any = None
        self.started = False  # the task began (it owns the socket from then on)
        self.stream: SocketStream | None = None


# The connection a task serves: set in each connection's task, and so seen by
# the asyncio tasks it starts (they copy its context), for close() to leave out.
_serving: contextvars.ContextVar[_Connection | None] = contextvars.ContextVar("treadle_serving", default=None)


class SocketStreamServer:
    """A server that runs ``handler(stream)`` for each connection; made by :func:`serve_tcp`/:func:`serve_unix`.

    It is serving from the moment it is returned.  ``close(timeout)`` stops
    it; ``serve_forever()`` waits until it is closed.  Both styles: green code
    blocks in them, async code awaits them.  ``with``/``async with`` close it
    on exit, waiting for live connections without limit (at once when the
    block is left by a cancellation).
    """

    __slots__ = (
        "_loop",
        "_handler",
        "_is_async",
        "_sockets",
        "_addresses",
        "_ssl",
        "_backlog",
        "_max_connections",
        "_connections",
        "_closers",
        "_accepting",
        "_closing",
        "_closed_fut",
        "_retry_handle",
        "_unix_path",
        "_unix_id",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handler: Any,
        is_async: bool,
        sockets: list[socket.socket],
        ssl: _ssl.SSLContext | None,
        backlog: int,
        max_connections: int | None,
        unix_path: str | bytes | None = None,
    ) -> None:
        self._loop = loop
        self._handler = handler
        self._is_async = is_async
        self._sockets = sockets
        self._addresses = [sock.getsockname() for sock in sockets]
        self._ssl = ssl
        self._backlog = backlog
        self._max_connections = max_connections
        self._connections: set[_Connection] = set()
        self._closers: set[_Connection] = set()  # connections whose handler waits in close()
        self._accepting = False
        self._closing = False
        self._closed_fut: asyncio.Future[None] | None = None
        self._retry_handle: asyncio.TimerHandle | None = None
        self._unix_path = unix_path
        self._unix_id: tuple[int, int] | None = None
        if unix_path is not None and unix_path[:1] not in (b"\0", "\0"):
            st = os.stat(unix_path)
            self._unix_id = (st.st_dev, st.st_ino)

    def __repr__(self) -> str:
        state = "closed" if self._closing else "serving"
        where = ", ".join(str(address) for address in self._addresses)
        return f"<SocketStreamServer {where} {state}, {len(self._connections)} connections>"

    # -- what it is ------------------------------------------------------------------------------

    @property
    def sockets(self) -> tuple[trsock.TransportSocket, ...]:
        """The listening sockets (read-only views, as asyncio's servers give); empty once closed."""
        return tuple(trsock.TransportSocket(sock) for sock in self._sockets)

    @property
    def addresses(self) -> list[Any]:
        """The addresses the server listens (or listened) on: ``(host, port, ...)`` tuples, or a Unix path."""
        return list(self._addresses)

    @property
    def address(self) -> Any:
        """The first of :attr:`addresses`."""
        return self._addresses[0]

    @property
    def port(self) -> int | None:
        """The TCP port (the same on every address), or None for a Unix socket."""
        address = self._addresses[0]
        return address[1] if isinstance(address, tuple) else None

    @property
    def max_connections(self) -> int | None:
        return self._max_connections

    @property
    def active_connections(self) -> int:
        """How many connections are being served now (their tasks have not ended)."""
        return len(self._connections)

    def is_serving(self) -> bool:
        return not self._closing

    # -- accepting -------------------------------------------------------------------------------

    def _start_accepting(self) -> None:
        if self._accepting or self._closing:
            return
        self._accepting = True
        for sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _stop_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            for sock in self._sockets:
                self._loop.remove_reader(sock.fileno())

    def _full(self) -> bool:
        return self._max_connections is not None and len(self._connections) >= self._max_connections

    def _accept(self, sock: socket.socket) -> None:
        # Called once per readiness event: take what waits, up to the backlog.
        for _ in range(self._backlog):
            if not self._accepting:
                return  # stopped by a callback of this same iteration
            if self._full():
                self._stop_accepting()  # the rest wait in the kernel's backlog
                return
            try:
                conn, address = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                self._loop.call_exception_handler(
                    {"message": f"{self!r}: accept() failed", "exception": exc, "socket": trsock.TransportSocket(sock)}
                )
                if exc.errno in _OUT_OF_RESOURCES:
                    # Linux keeps reporting the socket as ready: stop for a while.
                    self._stop_accepting()
                    self._retry_handle = self._loop.call_later(_ACCEPT_RETRY_DELAY, self._retry_accepting)
                return
            self._start_connection(conn, address)

    def _retry_accepting(self) -> None:
        self._retry_handle = None
        if not self._full():
            self._start_accepting()

    def _start_connection(self, conn: socket.socket, address: Any) -> None:
        record = _Connection(conn, address)
        name = f"connection from {address!r}"
        try:
            conn.setblocking(False)
            if self._is_async:
                record.task = self._loop.create_task(self._serve_async(record), name=name)
            else:
                task = Greenlet(self._serve_green, record)
                task.name = name
                record.task = task.start()
        except BaseException as exc:
            conn.close()
            if not isinstance(exc, Exception):
                raise
            self._loop.call_exception_handler(
                {"message": f"{self!r}: cannot start a connection task", "exception": exc}
            )
            return
        self._connections.add(record)
        record.task.add_done_callback(functools.partial(self._connection_done, record))

    # -- one connection --------------------------------------------------------------------------

    async def _accept_stream(self, record: _Connection) -> SocketStream:
        loop = self._loop
        record.started = True  # from here on the transport (or its failure path) closes the socket
        _, stream = await loop.connect_accepted_socket(lambda: SocketStream(loop), record.sock, ssl=self._ssl)
        return stream  # type: ignore[no-any-return]

    def _handshake_failed(self, record: _Connection, exc: OSError) -> None:
        # A failed TLS handshake, or a peer gone before it: the client's doing
        # (a scanner, a wrong certificate), not an error of the server.
        logger.debug("%r: the connection from %r failed before it was served: %r", self, record.address, exc)

    async def _serve_async(self, record: _Connection) -> None:
        _serving.set(record)
        try:
            stream = await self._accept_stream(record)
        except OSError as exc:
            self._handshake_failed(record, exc)
            return
        record.stream = stream
        try:
            await self._handler(stream)
        except Exception as exc:
            self._report(exc, stream)
        except BaseException:
            stream.abort()  # cancelled: what was not sent yet is dropped
            raise
        await stream.aclose()

    def _serve_green(self, record: _Connection) -> None:
        _serving.set(record)
        try:
            stream: SocketStream = wait_for_resource(self._accept_stream(record), "the connection's TLS handshake")
        except OSError as exc:
            self._handshake_failed(record, exc)
            return
        record.stream = stream
        try:
            result = self._handler(stream)
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError(
                    f"the handler {self._handler!r} returned an awaitable; an async handler must be a coroutine "
                    "function (async def) so that it runs as an asyncio task"
                )
        except Exception as exc:
            self._report(exc, stream)
        except BaseException:
            stream.abort()
            raise
        stream.close()

    def _report(self, exc: BaseException, stream: SocketStream) -> None:
        self._loop.call_exception_handler(
            {"message": f"{self!r}: the connection handler failed", "exception": exc, "stream": stream}
        )

    def _connection_done(self, record: _Connection, task: Any) -> None:
        self._connections.discard(record)
        if not record.started:
            record.sock.close()  # cancelled before it began: the socket is still ours
        elif record.stream is not None:
            record.stream.abort()  # a no-op unless the task ended in an unusual way
        if not task.cancelled():
            exc = task.exception()
            if exc is not None:
                self._loop.call_exception_handler({"message": f"{self!r}: a connection task failed", "exception": exc})
        if self._closing:
            if not self._connections and self._closed_fut is not None and not self._closed_fut.done():
                self._closed_fut.set_result(None)
        elif not self._accepting and self._retry_handle is None and not self._full():
            self._start_accepting()

    # -- closing ---------------------------------------------------------------------------------

    def _closed_future(self) -> asyncio.Future[None]:
        if self._closed_fut is None:
            self._closed_fut = self._loop.create_future()
            if self._closing and not self._connections:
                self._closed_fut.set_result(None)
        return self._closed_fut

    def _shut(self) -> None:
        """Stop accepting and close the listening sockets, at once."""
        if self._closing:
            return
        self._closing = True
        self._stop_accepting()
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        if self._unix_id is not None and self._unix_path is not None:
            try:
                st = os.stat(self._unix_path)
                if (st.st_dev, st.st_ino) == self._unix_id:
                    os.unlink(self._unix_path)
            except FileNotFoundError:
                pass
        if not self._connections:
            fut = self._closed_future()
            if not fut.done():
                fut.set_result(None)

    def abort(self) -> None:
        """Stop accepting and cancel every connection at once; never waits."""
        self._shut()
        for record in list(self._connections):
            record.task.cancel()

    def _start_closing(self, me: Any) -> tuple[list[Any], _Connection | None]:
        """Stop accepting; the connection tasks to wait for, and the caller's own connection (if it is one)."""
        self._shut()
        mine = _serving.get()
        # Not waited for: the caller's own connection and, when the caller is a connection, one whose handler
        # is in close() too (each would wait for the other).
        others = [
            record.task
            for record in self._connections
            if record.task is not me and record is not mine and (mine is None or record not in self._closers)
        ]
        if mine is not None:
            self._closers.add(mine)
        return others, mine

    def _closing_task(self, timeout: float | None, me: Any) -> tuple[asyncio.Task[None], list[Any]]:
        others, mine = self._start_closing(me)
        task = self._loop.create_task(self._finish(timeout, others))
        task.add_done_callback(functools.partial(self._finished, others, mine))
        return task, others

    async def _finish(self, timeout: float | None, others: list[Any]) -> None:
        try:
            if others and timeout != 0:
                await asyncio.wait(others, timeout=timeout)
        finally:
            # Then, or when the caller gave up waiting, cancel what is left, and let it end.
            for task in others:
                task.cancel()
            await _ended(others)

    def _finished(self, others: list[Any], mine: _Connection | None, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            for other in others:  # cancelled before it started, _finish cancelled nothing (else all ended)
                if not other.done():
                    other.cancel()
        if mine is not None:
            self._closers.discard(mine)

    def close(self, timeout: float | None = None) -> Any:
        """Stop accepting at once; let live connections finish for up to ``timeout`` s, then cancel them.

        Green code blocks until every connection ended (their ``finally``
        blocks ran) and its socket is closed; async code gets an awaitable for
        the same (``await server.close(5)``, or ``await server.aclose(5)``); it
        goes on even if nobody awaits it.  ``timeout`` None waits without
        limit, 0 cancels at once.  A connection is cancelled as a task (as a
        TaskGroup cancels its children): a shielded scope in its handler does
        not hold that back, though a cleanup it shields once cancelled runs
        whole, and is waited for.  Called from a handler of this server, or
        from an asyncio task it started (a TaskGroup's child, say), it does not
        wait for that handler's own connection, nor for another whose handler
        is in close() too; a green task that a handler spawned is not known as
        part of it: from there, give a timeout.  Cancelling the wait cancels
        the connections at once, and (green code, and ``aclose()``) still
        waits until they ended before the cancellation goes on; a second
        cancellation gives up that wait.
        """
        timeout = check_timeout(timeout)
        if in_async():
            return self._closing_task(timeout, asyncio.current_task())[0]
        task, others = self._closing_task(timeout, getcurrent())
        try:
            green_wait(task, "SocketStreamServer.close()")
        except BaseException:
            # green_wait cancelled the task: it (or, if it had not started, _finished) cancels them; wait.
            try:
                green_wait(self._loop.create_task(_ended(others)), "SocketStreamServer.close(), cancelled")
            except BaseException:
                pass  # cancelled again: give up waiting; the first exception goes on
            raise
        return None

    async def aclose(self, timeout: float | None = None) -> None:
        """Async code: ``close(timeout)`` and wait for it, in this task (cancelled, it waits as ``close()`` says)."""
        timeout = check_timeout(timeout)
        others, mine = self._start_closing(asyncio.current_task())
        try:
            await self._finish(timeout, others)
        finally:
            if mine is not None:
                self._closers.discard(mine)

    def serve_forever(self) -> Any:
        """Wait until the server is closed and its connections ended (both styles).

        If the waiting task is cancelled (Ctrl-C under ``treadle.run``), the
        server is closed at once: its connections are cancelled.
        """
        if in_async():
            return self._serve_forever_async()
        try:
            green_wait(asyncio.shield(self._closed_future()), "SocketStreamServer.serve_forever()")
        except asyncio.CancelledError:
            self.close(0)
            raise
        return None

    async def _serve_forever_async(self) -> None:
        try:
            await asyncio.shield(self._closed_future())
        except asyncio.CancelledError:
            await self.aclose(0)
            raise

    def __enter__(self) -> SocketStreamServer:
        if in_async():
            raise BlockingInHubError("`with server` in async code would block the event loop: use `async with`")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # Cancelled (or interrupted): the connections are cancelled at once.
        self.close(0 if exc_type is not None and not issubclass(exc_type, Exception) else None)

    async def __aenter__(self) -> SocketStreamServer:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        await self.aclose(0 if exc_type is not None and not issubclass(exc_type, Exception) else None)


async def _ended(tasks: list[Any]) -> None:
    """Wait until ``tasks`` have ended, and their done callbacks (which close what they left) have run."""
    pending = [task for task in tasks if not task.done()]
    if pending:
        await asyncio.wait(pending)
    await asyncio.sleep(0)


# -- making servers ---------------------------------------------------------------------------------


def _check_handler(handler: Any) -> bool:
    """Validate ``handler``; True if it runs as an async task, False as a green task."""
    if not callable(handler) or inspect.isclass(handler):
        raise TypeError(
            "handler must be a function taking the stream: a coroutine function (each connection runs as an "
            f"asyncio task) or a plain function (each runs as a green task), got {handler!r}"
        )
    if inspect.isgeneratorfunction(handler) or inspect.isasyncgenfunction(handler):
        raise TypeError(f"handler must be a coroutine function or a plain function, not a generator: {handler!r}")
    # A coroutine function, a partial of one, or an object whose __call__ is one.
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(type(handler).__call__)


def _check_options(ssl: Any, backlog: Any, max_connections: Any) -> None:
    if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
        raise TypeError(
            f"ssl must be an ssl.SSLContext holding the server's certificate, or None, got {type(ssl).__name__}"
        )
    for name, value in (("backlog", backlog), ("max_connections", max_connections)):
        if name == "max_connections" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def serve_tcp(
    handler: Any,
    host: str | None,
    port: int,
    *,
    ssl: _ssl.SSLContext | None = None,
    backlog: int = 100,
    max_connections: int | None = None,
) -> Any:
    """Listen on ``host``:``port`` and run ``handler(stream)`` for each connection; return the server.

    ``host`` None (or "") listens on every interface (IPv4 and IPv6); a name
    is resolved off the loop's thread and every address it has is listened
    on.  ``port`` 0 picks a free port, the same for every address.  ``ssl``
    (an ``ssl.SSLContext`` with the server's certificate) serves TLS; the
    handshake runs in the connection's task.  ``max_connections`` bounds the
    connections served at once: further ones wait in the backlog.  Green code
    gets the server at once, serving; async code awaits it
    (``server = await serve_tcp(...)``).
    """
    is_async = _check_handler(handler)
    if host is not None and not isinstance(host, str):
        raise TypeError(f"host must be a str or None, got {type(host).__name__}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, got {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port}")
    _check_options(ssl, backlog, max_connections)
    return in_callers_style(
        _serve_tcp(handler, is_async, host or None, port, ssl, backlog, max_connections),
        f"serve_tcp({host!r}, {port})",
    )


async def _resolve_passive(host: str | None, port: int) -> list[Any]:
    flags = socket.AI_PASSIVE
    try:  # a numeric address (or None): no look-up, so no thread
        return _getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, flags | socket.AI_NUMERICHOST)
    except socket.gaierror:
        if host is None:
            raise
    return await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)


def _bind_tcp(infos: list[Any], port: int, backlog: int) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    seen: set[Any] = set()
    try:
        for family, type_, proto, _canonname, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            if port == 0 and sockets:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])  # one port for all
            try:
                sock = socket.socket(family, type_, proto)
            except OSError as exc:
                if exc.errno == errno.EAFNOSUPPORT and len(infos) > 1:
                    continue  # e.g. no IPv6 in this kernel: the other families will do
                raise
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen on {address!r}: {exc.strerror}") from None
            sock.listen(backlog)
            sock.setblocking(False)
        if not sockets:
            raise OSError(errno.EAFNOSUPPORT, "no address could be listened on")
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def _serve_tcp(
    handler: Any,
    is_async: bool,
    host: str | None,
    port: int,
    ssl: _ssl.SSLContext | None,
    backlog: int,
    max_connections: int | None,
) -> SocketStreamServer:
    loop = asyncio.get_running_loop()
    if not is_async:
        get_hub()  # green handlers need a treadle loop: say so now
    infos = await _resolve_passive(host, port)
    sockets = _bind_tcp(infos, port, backlog)
    server = SocketStreamServer(loop, handler, is_async, sockets, ssl, backlog, max_connections)
    server._start_accepting()
    return server


def serve_unix(
    handler: Any,
    path: str | bytes | os.PathLike[str],
    *,
    ssl: _ssl.SSLContext | None = None,
    backlog: int = 100,
    max_connections: int | None = None,
) -> Any:
    """Listen on the Unix socket ``path`` and run ``handler(stream)`` for each connection; return the server.

    A stale socket file at ``path`` is replaced (any other file is an error);
    the server removes its socket file when it is closed.  A path starting
    with a NUL byte is in the abstract namespace.  Otherwise as
    :func:`serve_tcp`.
    """
    is_async = _check_handler(handler)
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str, bytes or path-like object, got {type(path).__name__}")
    path = os.fspath(path)
    if not path:
        raise ValueError("path must not be empty")
    _check_options(ssl, backlog, max_connections)
    return in_callers_style(
        _serve_unix(handler, is_async, path, ssl, backlog, max_connections), f"serve_unix({path!r})"
    )


def _bind_unix(path: str | bytes, backlog: int) -> socket.socket:
    if path[:1] not in (b"\0", "\0"):
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)  # a stale socket from an earlier server
        except FileNotFoundError:
            pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {path!r}: {exc.strerror}") from None
    except BaseException:
        sock.close()
        raise
    return sock


async def _serve_unix(
    handler: Any,
    is_async: bool,
    path: str | bytes,
    ssl: _ssl.SSLContext | None,
    backlog: int,
    max_connections: int | None,
) -> SocketStreamServer:
    loop = asyncio.get_running_loop()
    if not is_async:
        get_hub()
    sock = _bind_unix(path, backlog)
    try:
        server = SocketStreamServer(loop, handler, is_async, [sock], ssl, backlog, max_connections, path)
    except BaseException:
        sock.close()
        raise
    server._start_accepting()
    return server

"""Servers and connections: accepting sockets and building transports for them.

Owns: the accept loop of listening sockets (``_start_serving``), the factory
hooks that ``asyncio.base_events.BaseEventLoop`` calls to build transports
(``_make_socket_transport``, ``_make_ssl_transport``,
``_make_datagram_transport``), ``create_unix_connection``/``create_unix_server``,
and the warning for a server that is garbage-collected while still listening.

Never: reads or writes connection data (that is ``transports``), and never
loses an accepted socket: a connection whose protocol factory fails is closed
and the error goes to the exception handler.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import warnings
import weakref
from asyncio import base_events, constants, sslproto, tasks, trsock
from typing import Any

from .datagram import DatagramTransport
from .transports import SocketTransport, logger

__all__ = ["ServingMixin"]


def _warn_unclosed_server(sockets: list[socket.socket], description: str) -> None:
    still_open = [s for s in sockets if s.fileno() != -1]
    if still_open:
        warnings.warn(f"unclosed server {description}", ResourceWarning, stacklevel=1)
        for s in still_open:
            s.close()


def _watch_server(server: base_events.Server) -> base_events.Server:
    """Warn (ResourceWarning) if ``server`` is collected while it still listens."""
    sockets = server._sockets  # type: ignore[attr-defined]
    if sockets:
        weakref.finalize(server, _warn_unclosed_server, list(sockets), repr(server))
    return server


class ServingMixin:
    """Transport factories and the accept loop; mixed into the loop."""

    _debug: bool

    def _make_socket_transport(
        self, sock: Any, protocol: Any, waiter: Any = None, *, extra: Any = None, server: Any = None
    ) -> SocketTransport:
        return SocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(
        self,
        rawsock: Any,
        protocol: Any,
        sslcontext: Any,
        waiter: Any = None,
        *,
        server_side: bool = False,
        server_hostname: Any = None,
        extra: Any = None,
        server: Any = None,
        ssl_handshake_timeout: Any = constants.SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: Any = constants.SSL_SHUTDOWN_TIMEOUT,
        call_connection_made: bool = True,
    ) -> Any:
        ssl_protocol = sslproto.SSLProtocol(
            self,  # type: ignore[arg-type]
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        SocketTransport(self, rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    def _make_datagram_transport(
        self, sock: Any, protocol: Any, address: Any = None, waiter: Any = None, extra: Any = None
    ) -> DatagramTransport:
        return DatagramTransport(self, sock, protocol, address, waiter, extra)

    # -- accepting ------------------------------------------------------------------

    def _start_serving(
        self,
        protocol_factory: Any,
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        ssl_handshake_timeout: Any = constants.SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: Any = constants.SSL_SHUTDOWN_TIMEOUT,
    ) -> None:
        loop: Any = self
        loop._add_reader(
            sock.fileno(),
            self._accept_connection,
            protocol_factory,
            sock,
            sslcontext,
            server,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )

    def _stop_serving(self, sock: socket.socket) -> None:
        loop: Any = self
        loop._remove_reader(sock.fileno())
        sock.close()

    def _accept_connection(
        self,
        protocol_factory: Any,
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        ssl_handshake_timeout: Any = constants.SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: Any = constants.SSL_SHUTDOWN_TIMEOUT,
    ) -> None:
        loop: Any = self
        # Called once per readiness event; take up to `backlog` waiting connections.
        for _ in range(backlog):
            try:
                conn, addr = sock.accept()
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors or memory: Linux keeps reporting the
                    # socket as ready, so stop listening for a moment.
                    loop.call_exception_handler(
                        {
                            "message": "socket.accept() out of system resource",
                            "exception": exc,
                            "socket": trsock.TransportSocket(sock),
                        }
                    )
                    loop._remove_reader(sock.fileno())
                    loop.call_later(
                        constants.ACCEPT_RETRY_DELAY,
                        self._start_serving,
                        protocol_factory,
                        sock,
                        sslcontext,
                        server,
                        backlog,
                        ssl_handshake_timeout,
                        ssl_shutdown_timeout,
                    )
                    return
                raise  # the handle reports it through the exception handler
            extra = {"peername": addr}
            if sslcontext:
                loop.create_task(
                    self._accept_ssl_connection(
                        protocol_factory,
                        conn,
                        extra,
                        sslcontext,
                        server,
                        ssl_handshake_timeout,
                        ssl_shutdown_timeout,
                    )
                )
                continue
            try:
                protocol = protocol_factory()
                SocketTransport(self, conn, protocol, None, extra, server)
            except (SystemExit, KeyboardInterrupt):
                conn.close()
                raise
            except BaseException as exc:
                conn.close()
                loop.call_exception_handler(
                    {"message": "Error on transport creation for incoming connection", "exception": exc}
                )

    async def _accept_ssl_connection(
        self,
        protocol_factory: Any,
        conn: socket.socket,
        extra: Any,
        sslcontext: Any,
        server: Any,
        ssl_handshake_timeout: Any,
        ssl_shutdown_timeout: Any,
    ) -> None:
        loop: Any = self
        protocol = None
        transport = None
        try:
            protocol = protocol_factory()
            waiter = loop.create_future()
            transport = self._make_ssl_transport(
                conn,
                protocol,
                sslcontext,
                waiter=waiter,
                server_side=True,
                extra=extra,
                server=server,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
            try:
                await waiter
            except BaseException:
                transport.close()
                raise
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if transport is None:
                conn.close()
            # A failed TLS handshake is the client's doing (a scanner, a wrong
            # certificate); it is reported in debug mode only, as in asyncio.
            if self._debug or protocol is None:
                context = {"message": "Error on transport creation for incoming connection", "exception": exc}
                if protocol is not None:
                    context["protocol"] = protocol
                if transport is not None:
                    context["transport"] = transport
                loop.call_exception_handler(context)

    # -- servers ----------------------------------------------------------------------

    async def create_server(self, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any) -> Any:
        server = await super().create_server(protocol_factory, host, port, **kwargs)  # type: ignore[misc]
        return _watch_server(server)

    async def create_unix_connection(
        self,
        protocol_factory: Any,
        path: Any = None,
        *,
        ssl: Any = None,
        sock: Any = None,
        server_hostname: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
    ) -> tuple[Any, Any]:
        loop: Any = self
        if server_hostname is not None and not isinstance(server_hostname, str):
            raise TypeError(f"server_hostname must be a str, got {type(server_hostname).__name__}")
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            sock.setblocking(False)
        return await loop._create_connection_transport(  # type: ignore[no-any-return]
            sock,
            protocol_factory,
            ssl,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def create_unix_server(
        self,
        protocol_factory: Any,
        path: Any = None,
        *,
        sock: Any = None,
        backlog: int = 100,
        ssl: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
        start_serving: bool = True,
    ) -> Any:
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if path[0] not in (0, "\x00"):  # not an abstract socket: remove a stale one
                try:
                    if stat.S_ISSOCK(os.stat(path).st_mode):
                        os.remove(path)
                except FileNotFoundError:
                    pass
                except OSError as err:
                    logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        sock.setblocking(False)
        server: Any = base_events.Server(
            self,  # type: ignore[arg-type]
            [sock],
            protocol_factory,
            ssl,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )
        if start_serving:
            server._start_serving()
            await tasks.sleep(0)  # let the add_reader of the accept loop go through
        return _watch_server(server)

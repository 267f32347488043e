"""The green ``StreamServer``: a green task per connection, as gevent's.

Owns: :class:`StreamServer`: the listening socket (made from an address, or
taken as given), the accept task, the set of connection tasks, the limit on
concurrent connections, TLS wrapping, and an orderly stop.

Never: loses a connection: an accepted socket is either handed to a handler
task, which closes it when the handler returns, or closed at once when the
server stops.  A handler's exception is reported through the loop's exception
handler and does not stop the server.
"""

from __future__ import annotations

import _socket
import functools
import logging
import socket as _stdsocket
import ssl as _stdssl
from collections.abc import Callable
from typing import Any

from greenlet import getcurrent

from ..green.bridge import sleep
from ..green.hub import Waiter, get_hub
from ..green.task import Greenlet, check_timeout, joinall
from . import dns
from .greensocket import socket as green_socket
from .greenssl import green_context

__all__ = ["StreamServer"]

logger = logging.getLogger("treadle")
_std_create_server = _stdsocket.create_server  # bound now: the patcher replaces the module's


class StreamServer:
    """Serve ``handle(socket, address)`` in a new green task for each connection.

    ``listener`` is an address (``(host, port)``, port 0 for any) or a
    listening socket.  ``ssl_context`` wraps each connection in TLS (the
    handshake runs in the connection's task).  ``max_connections`` bounds the
    connections served at once: the server stops accepting while the bound is
    reached.
    """

    def __init__(
        self,
        listener: Any,
        handle: Callable[[Any, Any], object],
        *,
        backlog: int = 1024,
        ssl_context: _stdssl.SSLContext | None = None,
        max_connections: int | None = None,
    ) -> None:
        if not callable(handle):
            raise TypeError(f"handle must be callable as handle(socket, address), got {handle!r}")
        if not isinstance(backlog, int) or isinstance(backlog, bool) or backlog < 1:
            raise ValueError(f"backlog must be a positive int, got {backlog!r}")
        if max_connections is not None and (
            not isinstance(max_connections, int) or isinstance(max_connections, bool) or max_connections < 1
        ):
            raise ValueError(f"max_connections must be a positive int or None, got {max_connections!r}")
        if ssl_context is not None and not isinstance(ssl_context, _stdssl.SSLContext):
            raise TypeError(f"ssl_context must be an ssl.SSLContext, got {type(ssl_context).__name__}")
        if isinstance(listener, _socket.socket):
            self._address = None
            self._socket: green_socket | None = self._adopt(listener)
        elif isinstance(listener, tuple) and len(listener) >= 2:
            self._address = listener
            self._socket = None
        else:
            raise TypeError(f"listener must be a (host, port) address or a listening socket, got {listener!r}")
        self.handle = handle
        self.backlog = backlog
        self.ssl_context = green_context(ssl_context) if ssl_context is not None else None
        self.max_connections = max_connections
        self._accept_task: Greenlet | None = None
        self._connections: set[Greenlet] = set()
        self._slot_waiter: Waiter | None = None
        self._closed = False

    @staticmethod
    def _adopt(sock: _socket.socket) -> green_socket:
        if isinstance(sock, green_socket):
            return sock
        return green_socket(sock.family, sock.type, sock.proto, sock.detach())

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("serving" if self.started else "not started")
        return f"<StreamServer {self.address!r} {state} connections={len(self._connections)}>"

    @property
    def socket(self) -> green_socket | None:
        return self._socket

    @property
    def address(self) -> Any:
        if self._socket is not None and self._socket.fileno() >= 0:
            return self._socket.getsockname()
        return self._address

    @property
    def server_port(self) -> int | None:
        address = self.address
        return address[1] if isinstance(address, tuple) else None

    @property
    def started(self) -> bool:
        return self._accept_task is not None and not self._accept_task.done()

    def start(self) -> None:
        """Bind (if given an address) and start accepting in a green task.

        A switch point only when a host name must be resolved.
        """
        if self._closed:
            raise RuntimeError("this StreamServer was stopped; make a new one")
        if self.started:
            return
        if self._socket is None:
            host, port = self._address[0], self._address[1]  # type: ignore[index]
            # Resolve first (a host name is looked up off the loop's thread),
            # and bind with the family of the address: "::1" is IPv6.
            family, _type, _proto, _canon, sockaddr = dns.getaddrinfo(
                host, port, 0, _stdsocket.SOCK_STREAM, 0, _stdsocket.AI_PASSIVE
            )[0]
            raw = _std_create_server(sockaddr, family=family, backlog=self.backlog)
            self._socket = self._adopt(raw)
        else:
            self._socket.listen(self.backlog)
        self._socket.settimeout(None)
        self._accept_task = Greenlet(self._accept_loop).start()
        self._accept_task.name = f"StreamServer accept {self.address!r}"

    def serve_forever(self) -> None:
        """Start, then block the current green task until the server is stopped."""
        self.start()
        assert self._accept_task is not None
        self._accept_task.join()

    def _accept_loop(self) -> None:
        sock = self._socket
        assert sock is not None
        while not self._closed:
            if self.max_connections is not None and len(self._connections) >= self.max_connections:
                self._slot_waiter = Waiter()
                try:
                    self._slot_waiter.wait("a free connection slot")
                finally:
                    self._slot_waiter = None
                continue
            try:
                conn, address = sock.accept()
            except OSError:
                if self._closed:
                    return
                raise
            task = Greenlet(self._serve_one, conn, address)
            task.name = f"StreamServer connection {address!r}"
            self._connections.add(task)
            task.add_done_callback(functools.partial(self._connection_done, conn))
            task.start()

    def _serve_one(self, conn: Any, address: Any) -> None:
        try:
            if self.ssl_context is not None:
                try:
                    conn = self.ssl_context.wrap_socket(conn, server_side=True)
                except OSError as exc:
                    # A failed handshake is the client's doing (a scanner, a
                    # wrong certificate): not an error of the server.
                    logger.debug("%r: TLS handshake with %r failed: %r", self, address, exc)
                    return
            self.handle(conn, address)
        finally:
            conn.close()

    def _connection_done(self, conn: Any, task: Greenlet) -> None:
        # The task may have been cancelled before it started (stop(timeout=0)):
        # then its finally never ran, and the socket is closed here.
        conn.close()
        self._connections.discard(task)
        if not task.cancelled() and task.exception():
            get_hub().loop.call_exception_handler(
                {"message": f"{self!r}: connection handler failed", "exception": task.exception()}
            )
        waiter = self._slot_waiter
        if waiter is not None:
            waiter.switch()

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting; let live connections finish for up to ``timeout`` s, then cancel them.

        A switch point.  ``timeout`` None waits for them without limit; 0 cancels at once.
        """
        timeout = check_timeout(timeout)
        self._closed = True
        if self._accept_task is not None and not self._accept_task.done():
            self._accept_task.cancel()
        if self._socket is not None:
            self._socket.close()
        # A handler may call stop() itself: it does not wait for its own task.
        live = [task for task in self._connections if task is not getcurrent()]
        if live and timeout != 0:
            joinall(live, timeout=timeout)
        for task in live:
            if not task.done():
                task.cancel()
        if live:
            joinall(live)
        if self._accept_task is not None and not self._accept_task.done():
            self._accept_task.join()
        sleep(0)

    close = stop

    def __enter__(self) -> StreamServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

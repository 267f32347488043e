"""The datagram transport: UDP and Unix datagram sockets under ``DatagramProtocol``.

Owns: :class:`DatagramTransport`, its queue of (datagram, address) pairs that
the kernel could not take at once, and its flow control.

Never: splits or merges datagrams, or drops one silently: a datagram the kernel
refuses is reported through ``protocol.error_received(exc)``, as in asyncio.
"""

from __future__ import annotations

import socket
from asyncio import constants, futures, transports
from typing import Any

from .transports import BaseSocketTransport, logger

__all__ = ["DatagramTransport"]


class DatagramTransport(BaseSocketTransport, transports.DatagramTransport):  # type: ignore[misc]
    def __init__(
        self,
        loop: Any,
        sock: socket.socket,
        protocol: Any,
        address: Any = None,
        waiter: Any = None,
        extra: Any = None,
    ) -> None:
        super().__init__(loop, sock, protocol, extra)
        self._address = address
        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)  # type: ignore[attr-defined]

    def _read_ready(self) -> None:
        if self._conn_lost:
            return
        view = self._loop._recv_view  # as the stream transport: no 256 KiB malloc per datagram
        try:
            nbytes, addr = self._sock.recvfrom_into(view)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
        else:
            self._protocol.datagram_received(view[:nbytes].tobytes(), addr)

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if not data:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        if self._conn_lost and self._address:
            if self._conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer_size:
            try:
                if self._extra["peername"]:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._loop._add_writer(self._sock_fd, self._sendto_ready)
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        chunk = bytes(data)
        self._buffer.append((chunk, addr))
        self._buffer_size += len(chunk)
        self._maybe_pause_protocol()

    def _sendto_ready(self) -> None:
        buffer = self._buffer
        while buffer:
            data, addr = buffer.popleft()
            self._buffer_size -= len(data)
            try:
                if self._extra["peername"]:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                buffer.appendleft((data, addr))  # try again later
                self._buffer_size += len(data)
                break
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self._maybe_resume_protocol()
        if not buffer:
            self._loop._remove_writer(self._sock_fd)
            if self._closing:
                self._call_connection_lost(None)

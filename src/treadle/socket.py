"""``treadle.socket``: the standard ``socket`` module, with cooperative parts.

Every name of the standard library's ``socket`` module is here; the ones that
would block are replaced by green versions: the ``socket`` class,
``create_connection``, ``create_server``, ``socketpair``, ``fromfd`` and the
resolver functions (``getaddrinfo``, ``gethostbyname``...), which wait on the
hub instead of blocking the thread.  This is the module the monkey patcher
installs in place of ``socket``.

Owns: that namespace.  Never: holds logic of its own (see ``net.greensocket``
and ``net.dns``).
"""

from __future__ import annotations

import socket as _stdsocket
from typing import Any

from .net import dns as _dns
from .net import greensocket as _green

_std_create_server = _stdsocket.create_server  # bound now: the patcher replaces the module's

# The standard namespace first (constants, exceptions, helpers), then the
# cooperative replacements over it.
globals().update({k: v for k, v in vars(_stdsocket).items() if not k.startswith("__")})

socket = _green.socket  # SocketType stays the standard _socket.socket
create_connection = _green.create_connection
socketpair = _green.socketpair
fromfd = _green.fromfd
getaddrinfo = _dns.getaddrinfo
gethostbyname = _dns.gethostbyname
gethostbyname_ex = _dns.gethostbyname_ex
gethostbyaddr = _dns.gethostbyaddr
getnameinfo = _dns.getnameinfo
getfqdn = _dns.getfqdn
wait_readable = _green.wait_readable
wait_writable = _green.wait_writable


def create_server(
    address: Any,
    *,
    family: int = _stdsocket.AF_INET,
    backlog: int | None = None,
    reuse_port: bool = False,
    dualstack_ipv6: bool = False,
) -> _green.socket:
    """``socket.create_server`` returning a green listening socket (a host name is resolved off the loop)."""
    host, port = address[0], address[1]
    if not _dns._is_numeric_host(host) and host != "":
        address = _dns.getaddrinfo(host, port, family, _stdsocket.SOCK_STREAM, 0, _stdsocket.AI_PASSIVE)[0][4]
    sock = _std_create_server(
        address, family=family, backlog=backlog, reuse_port=reuse_port, dualstack_ipv6=dualstack_ipv6
    )
    return _green.socket(sock.family, sock.type, sock.proto, sock.detach())


__all__ = list(getattr(_stdsocket, "__all__", [])) + ["wait_readable", "wait_writable"]

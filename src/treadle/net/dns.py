"""Name resolution that does not block the loop.

Owns: cooperative ``getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex``,
``gethostbyaddr``, ``getnameinfo``.  A numeric address is resolved at once, in
the calling task; anything else runs the standard library's resolver on the
loop's default executor (a thread) while the green task waits.

Never: calls the blocking resolver on the loop's thread for a name that needs a
look-up.  Called from a thread that runs no loop (an executor worker, a plain
thread), it calls the blocking resolver directly: that thread is not the loop.
"""

from __future__ import annotations

import asyncio
import socket as _stdsocket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..green.bridge import await_

__all__ = ["getaddrinfo", "getfqdn", "gethostbyaddr", "gethostbyname", "gethostbyname_ex", "getnameinfo"]

T = TypeVar("T")

_getaddrinfo = _stdsocket.getaddrinfo
_gethostbyname = _stdsocket.gethostbyname
_gethostbyname_ex = _stdsocket.gethostbyname_ex
_gethostbyaddr = _stdsocket.gethostbyaddr
_getnameinfo = _stdsocket.getnameinfo
_getfqdn = _stdsocket.getfqdn


def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    if asyncio._get_running_loop() is None and threading.current_thread() is not threading.main_thread():
        return fn(*args)  # a worker thread: blocking here blocks nobody else
    from ..green.hub import get_hub

    loop = get_hub().loop
    return await_(loop.run_in_executor(None, fn, *args))


def _is_numeric_host(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str):
        return False
    if host in ("", "<broadcast>"):
        return True  # INADDR_ANY and INADDR_BROADCAST: no look-up
    for family in (_stdsocket.AF_INET, _stdsocket.AF_INET6):
        try:
            _stdsocket.inet_pton(family, host.split("%", 1)[0])
            return True
        except (OSError, ValueError):
            pass
    return False


def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> list[Any]:
    """``socket.getaddrinfo`` that waits in a thread, not on the loop, for a real look-up."""
    if _is_numeric_host(host):
        return _getaddrinfo(host, port, family, type, proto, flags)
    return _off_loop(_getaddrinfo, host, port, family, type, proto, flags)


def gethostbyname(hostname: str) -> str:
    if _is_numeric_host(hostname):
        return _gethostbyname(hostname)
    return _off_loop(_gethostbyname, hostname)


def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    return _off_loop(_gethostbyname_ex, hostname)


def gethostbyaddr(ip_address: str) -> tuple[str, list[str], list[str]]:
    return _off_loop(_gethostbyaddr, ip_address)


def getnameinfo(sockaddr: Any, flags: int) -> tuple[str, str]:
    return _off_loop(_getnameinfo, sockaddr, flags)


def getfqdn(name: str = "") -> str:
    """``socket.getfqdn``, its look-ups off the loop's thread."""
    return _off_loop(_getfqdn, name)

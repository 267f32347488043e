"""Shared fixtures: every loop test runs on treadle's loop and on stock asyncio.

``loop`` is a fresh event loop of the kind named by the test's parameter
(``treadle`` or ``asyncio``), set as the current loop and closed afterwards;
``run`` runs a coroutine on it to completion.  ``tls`` holds a CA and server
and client contexts made by trustme for this test session only.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import trustme

import treadle


def pytest_report_header(config: pytest.Config) -> str:
    """Which form of the core this run tests (make test runs the suite in both)."""
    if treadle.compiled:
        return "treadle: compiled core (Cython extension modules)"
    from treadle import _accel

    why = f"{_accel.ENV_VAR} is set" if _accel.pure_python_requested() else "the compiled core is not built"
    return f"treadle: pure Python ({why})"


LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "treadle": treadle.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


@pytest.fixture(params=sorted(LOOP_FACTORIES))
def loop_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def loop(loop_kind: str) -> Iterator[asyncio.AbstractEventLoop]:
    lp = LOOP_FACTORIES[loop_kind]()
    asyncio.set_event_loop(lp)
    try:
        yield lp
    finally:
        if not lp.is_closed():
            if not lp.is_running():
                lp.run_until_complete(lp.shutdown_default_executor())
            lp.close()
        asyncio.set_event_loop(None)
        gc.collect()


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine on ``loop``, with a 30 s guard so a hang fails instead of stalling."""

    def _run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    return _run


class TLS:
    """A throwaway CA with a certificate for localhost/127.0.0.1/::1."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("localhost", "127.0.0.1", "::1")

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture(scope="session")
def tls() -> TLS:
    return TLS()


def open_fds() -> set[int]:
    """The descriptors this process has open now (from /proc/self/fd)."""
    return {int(name) for name in os.listdir("/proc/self/fd")}


def ipv6_loopback_available() -> bool:
    """True if this machine can bind a TCP socket to ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True

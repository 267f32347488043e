"""Misuse of the event loop raises at the call, and a loop leaks nothing when closed.

Runs on treadle's loop and on stock asyncio (the ``loop`` fixture).  Where
treadle is documented to be stricter than asyncio (it checks callbacks and
timer deadlines even outside debug mode), each kind's behaviour is asserted
explicitly.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import gc
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from treadle._core import new_event_loop as treadle_new_event_loop

from .conftest import LOOP_FACTORIES, open_fds

Run = Callable[..., Any]


def _noop(*args: Any) -> None:
    pass


async def _coro() -> None:
    pass


def _schedule(loop: asyncio.AbstractEventLoop, method: str, callback: Any) -> asyncio.Handle:
    if method == "call_soon":
        return loop.call_soon(callback)
    if method == "call_soon_threadsafe":
        return loop.call_soon_threadsafe(callback)
    if method == "call_later":
        return loop.call_later(1, callback)
    assert method == "call_at"
    return loop.call_at(loop.time() + 1, callback)


SCHEDULERS = ["call_soon", "call_soon_threadsafe", "call_later", "call_at"]


# -- bad delays and deadlines ----------------------------------------------------------------


def test_call_later_rejects_non_numeric_delay(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError):
        loop.call_later("1", _noop)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        loop.call_later(None, _noop)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        loop.call_later([1], _noop)  # type: ignore[arg-type]


def test_call_at_rejects_none(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError):
        loop.call_at(None, _noop)  # type: ignore[arg-type]


def test_nan_delay_and_deadline(loop: asyncio.AbstractEventLoop, loop_kind: str) -> None:
    """treadle refuses NaN; stock asyncio accepts it and schedules a timer due at NaN.

    A NaN deadline compares false with every other deadline, so in asyncio's
    heap it silently breaks the ordering of the other timers; treadle raises
    ValueError at the call instead (loop.py, ``call_later``/``call_at``).
    """
    nan = float("nan")
    if loop_kind == "treadle":
        with pytest.raises(ValueError):
            loop.call_later(nan, _noop)
        with pytest.raises(ValueError):
            loop.call_at(nan, _noop)
        assert len(loop._timers) == 0  # type: ignore[attr-defined]
    else:
        for handle in (loop.call_later(nan, _noop), loop.call_at(nan, _noop)):
            assert isinstance(handle, asyncio.TimerHandle)
            assert math.isnan(handle.when())
            handle.cancel()


def test_infinite_delay_is_accepted_and_never_fires(loop: asyncio.AbstractEventLoop) -> None:
    out: list[str] = []
    h = loop.call_later(math.inf, out.append, "never")
    assert h.when() == math.inf
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert out == []
    h.cancel()


# -- bad callbacks ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", SCHEDULERS)
def test_coroutine_object_as_callback(loop: asyncio.AbstractEventLoop, loop_kind: str, method: str) -> None:
    """treadle always rejects a coroutine object; asyncio only in debug mode."""
    coro = _coro()
    try:
        if loop_kind == "treadle":
            with pytest.raises(TypeError, match="coroutines cannot be used"):
                _schedule(loop, method, coro)
        else:
            # Not checked outside debug mode: it would fail only when run.
            _schedule(loop, method, coro).cancel()
        loop.set_debug(True)
        with pytest.raises(TypeError, match="coroutines cannot be used"):
            _schedule(loop, method, coro)
    finally:
        coro.close()


@pytest.mark.parametrize("method", SCHEDULERS)
def test_coroutine_function_as_callback_in_debug_mode(loop: asyncio.AbstractEventLoop, method: str) -> None:
    loop.set_debug(True)
    with pytest.raises(TypeError, match="coroutines cannot be used"):
        _schedule(loop, method, _coro)


@pytest.mark.parametrize("method", SCHEDULERS)
def test_non_callable_callback(loop: asyncio.AbstractEventLoop, loop_kind: str, method: str) -> None:
    """treadle always rejects a non-callable, naming the method called; asyncio only in debug mode."""
    if loop_kind == "treadle":
        with pytest.raises(TypeError, match=rf"^a callable object was expected by {method}\(\), got 42$"):
            _schedule(loop, method, 42)
    else:
        _schedule(loop, method, 42).cancel()
    loop.set_debug(True)
    with pytest.raises(TypeError, match="callable"):
        _schedule(loop, method, 42)


def test_rejected_callbacks_leave_nothing_scheduled(loop: asyncio.AbstractEventLoop, loop_kind: str) -> None:
    loop.set_debug(True)
    for method in SCHEDULERS:
        with pytest.raises(TypeError):
            _schedule(loop, method, "not callable")
    out: list[str] = []
    loop.call_soon(out.append, "ok")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["ok"]


# -- add_reader / add_writer on bad descriptors --------------------------------------------------


def test_add_reader_on_closed_socket_object(loop: asyncio.AbstractEventLoop) -> None:
    a, b = socket.socketpair()
    a.close()
    b.close()
    with pytest.raises(ValueError):
        loop.add_reader(a, _noop)
    with pytest.raises(ValueError):
        loop.add_writer(a, _noop)
    with pytest.raises(ValueError):
        loop.remove_reader(a)


def test_add_reader_on_closed_raw_fd(loop: asyncio.AbstractEventLoop) -> None:
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    # Nothing in this test opens a descriptor in between, so r and w are still closed.
    with pytest.raises(OSError):
        loop.add_reader(r, _noop)
    with pytest.raises(OSError):
        loop.add_writer(w, _noop)
    # The failed registrations left nothing behind.
    assert loop.remove_reader(r) is False
    assert loop.remove_writer(w) is False


def test_add_reader_with_negative_fd_or_non_file(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(ValueError):
        loop.add_reader(-1, _noop)
    with pytest.raises(ValueError):
        loop.add_reader(object(), _noop)


def test_a_registration_orphaned_by_close_while_a_dup_lives_stops_waking_the_poller() -> None:
    # epoll keeps a registration for as long as the file lives, not the
    # descriptor number: closed while registered, with a dup still open, it
    # can no longer be removed by number.  Level-triggered, it would wake every
    # iteration; treadle's poller moves to a fresh epoll instead (stock
    # asyncio's selector spins on it).
    loop = treadle_new_event_loop()
    a, b = socket.socketpair()
    dup = os.dup(a.fileno())
    try:
        fired: list[int] = []
        fd = a.fileno()
        loop.add_reader(fd, fired.append, 1)
        a.close()
        assert loop.remove_reader(fd) is True  # the kernel's registration survives it
        b.send(b"x")  # the file is readable from now on
        polls = [loop._poller.poll(0, collections.deque()) for _ in range(3)]  # type: ignore[attr-defined]
        assert polls == [1, 0, 0]  # the orphan's event once, then no more
        assert fired == []
        # The loop still works, and still watches what it should.
        loop.add_reader(b.fileno(), fired.append, 2)
        os.write(dup, b"y")
        loop.run_until_complete(asyncio.sleep(0.01))
        assert fired and set(fired) == {2}
        loop.remove_reader(b.fileno())
    finally:
        os.close(dup)
        b.close()
        loop.close()


def test_add_reader_on_regular_file(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    # epoll cannot watch regular files: EPERM from epoll_ctl, on both loops.
    with open(tmp_path / "file", "wb") as f, pytest.raises(PermissionError):
        loop.add_reader(f.fileno(), _noop)


# -- a closed loop ---------------------------------------------------------------------------


def test_using_a_closed_loop_raises(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    with pytest.raises(RuntimeError):
        loop.call_soon(_noop)
    with pytest.raises(RuntimeError):
        loop.call_soon_threadsafe(_noop)
    with pytest.raises(RuntimeError):
        loop.call_later(0, _noop)
    with pytest.raises(RuntimeError):
        loop.call_at(loop.time(), _noop)
    with pytest.raises(RuntimeError):
        loop.run_forever()
    with pytest.raises(RuntimeError):
        loop.run_in_executor(None, _noop)
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGUSR1, _noop)
    a, b = socket.socketpair()
    try:
        with pytest.raises(RuntimeError):
            loop.add_reader(a, _noop)
        with pytest.raises(RuntimeError):
            loop.add_writer(a, _noop)
        assert loop.remove_reader(a) is False
        assert loop.remove_writer(a) is False
    finally:
        a.close()
        b.close()
    coro = _coro()
    try:
        with pytest.raises(RuntimeError):
            loop.create_task(coro)
    finally:
        coro.close()
    # Closing again is still fine.
    loop.close()


def test_run_until_complete_on_a_closed_loop(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.close()
    coro = _coro()
    try:
        with pytest.raises(RuntimeError):
            loop.run_until_complete(coro)
    finally:
        coro.close()
    with pytest.raises(RuntimeError):
        loop.run_until_complete(fut)


def test_run_until_complete_rejects_non_awaitables(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError):
        loop.run_until_complete(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        loop.run_until_complete(_coro)  # type: ignore[arg-type]
    assert not loop.is_running()


def test_run_until_complete_with_future_of_another_loop(loop: asyncio.AbstractEventLoop, loop_kind: str) -> None:
    other = LOOP_FACTORIES[loop_kind]()
    try:
        fut = other.create_future()
        with pytest.raises(ValueError):
            loop.run_until_complete(fut)
        fut.cancel()
    finally:
        other.close()


# -- no leaks ------------------------------------------------------------------------------------


async def _exercise(loop: asyncio.AbstractEventLoop, sig: signal.Signals) -> None:
    """Use the loop's main resources once each: TCP, a subprocess, executors, a signal."""
    assert asyncio.get_running_loop() is loop

    # TCP server and client on loopback.
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        writer.write(data.upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello")
    await writer.drain()
    assert await reader.read() == b"HELLO"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()

    # A subprocess with pipes.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; sys.stdout.write(sys.stdin.read()[::-1])",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate(b"abc")
    assert out == b"cba"
    assert proc.returncode == 0

    # The default executor and an explicit one.
    assert await loop.run_in_executor(None, sum, [1, 2, 3]) == 6
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert await asyncio.gather(*(loop.run_in_executor(pool, abs, -i) for i in range(5))) == [0, 1, 2, 3, 4]

    # A signal handler; left installed for close() to remove.
    got = loop.create_future()
    loop.add_signal_handler(sig, got.set_result, "signalled")
    os.kill(os.getpid(), sig)
    assert await got == "signalled"

    # A timer that never fires, left for close() to drop.
    loop.call_later(3600, _noop)


@pytest.fixture
def sigusr1() -> Iterator[signal.Signals]:
    old = signal.getsignal(signal.SIGUSR1)
    try:
        yield signal.SIGUSR1
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_closed_loop_leaks_no_fds_or_threads(loop_kind: str, sigusr1: signal.Signals) -> None:
    """A loop that served TCP, ran a subprocess, executors and a signal handler
    gives back every descriptor and thread once everything and the loop are closed."""
    gc.collect()
    fds_before = open_fds()
    threads_before = set(threading.enumerate())

    lp = LOOP_FACTORIES[loop_kind]()
    try:
        lp.run_until_complete(asyncio.wait_for(_exercise(lp, sigusr1), 30))
        lp.run_until_complete(lp.shutdown_asyncgens())
        lp.run_until_complete(lp.shutdown_default_executor())
    finally:
        lp.close()
    assert signal.getsignal(sigusr1) == signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1, "the closed loop's wake-up fd is still installed"
    del lp

    # Threads that are finishing (executor workers, a child watcher) may take
    # a moment to exit: poll with a deadline.
    deadline = time.monotonic() + 5.0
    while True:
        gc.collect()
        new_fds = open_fds() - fds_before
        gone_fds = fds_before - open_fds()
        new_threads = [t for t in threading.enumerate() if t not in threads_before]
        if (not new_fds and not gone_fds and not new_threads) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    details = {fd: _describe_fd(fd) for fd in new_fds}
    assert not new_fds, f"descriptors left open: {details}"
    assert not gone_fds, f"descriptors closed that the loop did not open: {sorted(gone_fds)}"
    assert not new_threads, f"threads left running: {new_threads}"


def _describe_fd(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError as exc:
        return f"? ({exc})"

"""Green ``os.waitpid`` and ``time.sleep``: the process and clock waits of the standard library.

Owns: :func:`waitpid` (waits for a child through a pidfd registered with the
loop; for "any child", by polling with a growing interval) and :func:`sleep`
(``time.sleep`` with its checks, blocking only the current green task).

Never: blocks the loop's thread, or reaps a child that the caller did not ask
for.  Called from the hub (async code), both raise ``BlockingInHubError``.
"""

from __future__ import annotations

import math
import os
import time as _stdtime
from typing import Any

from ..green.bridge import sleep as _green_sleep
from ..green.hub import BlockingInHubError, in_hub
from ..net.greensocket import wait_readable

__all__ = ["popen_try_wait", "sleep", "waitpid"]

_waitpid = os.waitpid
_waitid = os.waitid
_sleep = _stdtime.sleep


def sleep(secs: float) -> None:
    """``time.sleep`` that blocks only the current green task."""
    if not isinstance(secs, (int, float)):
        raise TypeError(f"'{type(secs).__name__}' object cannot be interpreted as an integer or float")
    if math.isnan(secs) or secs < 0:
        raise ValueError("sleep length must be non-negative")
    if in_hub():
        raise BlockingInHubError(
            "time.sleep() (patched by treadle) was called from the event loop itself (an async task or a "
            "callback), which would stop the loop: use `await asyncio.sleep(...)` there"
        )
    _green_sleep(secs)


def waitpid(pid: int, options: int) -> tuple[int, int]:
    """``os.waitpid`` that blocks only the current green task."""
    if options & os.WNOHANG:
        return _waitpid(pid, options)
    result = _waitpid(pid, options | os.WNOHANG)
    if result != (0, 0):
        return result
    if in_hub():
        raise BlockingInHubError(
            "os.waitpid() (patched by treadle) would block the event loop: in async code use "
            "asyncio's subprocess API (await proc.wait())"
        )
    if pid > 0:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = -1
        if pidfd >= 0:
            try:
                while True:
                    wait_readable(pidfd)
                    result = _waitpid(pid, options | os.WNOHANG)
                    if result != (0, 0):
                        return result
            finally:
                os.close(pidfd)
    delay = 0.001
    while True:  # any child (pid <= 0), or no pidfds: poll
        _green_sleep(delay)
        result = _waitpid(pid, options | os.WNOHANG)
        if result != (0, 0):
            return result
        delay = min(delay * 2, 0.05)


def _wait_exited(pid: int) -> None:
    """Block the current green task until child ``pid`` has ended, without reaping it.

    Returns at once if it is not (or no longer) a child of this process.
    """
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    delay = 0.001
    pidfd = -1
    try:
        while True:
            try:
                if _waitid(os.P_PID, pid, flags) is not None:
                    return
            except ChildProcessError:
                return
            if in_hub():
                raise BlockingInHubError(
                    "Popen.wait() (patched by treadle) would block the event loop: in async code use "
                    "asyncio's subprocess API (await proc.wait())"
                )
            if pidfd < 0:
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:
                    pidfd = -2  # no pidfds here: poll
            if pidfd >= 0:
                wait_readable(pidfd)
            else:
                _green_sleep(delay)
                delay = min(delay * 2, 0.05)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def popen_try_wait(self: Any, wait_flags: int) -> tuple[int, int]:
    """``subprocess.Popen._try_wait``: wait on the hub for the child to end, then reap it with ``os.waitpid``.

    ``os.waitpid`` is looked up when called, as the standard method does (a
    test may replace it); by then it does not block.
    """
    if not wait_flags & os.WNOHANG:
        _wait_exited(self.pid)
    try:
        return os.waitpid(self.pid, wait_flags)
    except ChildProcessError:
        # As the standard one: waiting was disabled (SIGCHLD ignored); the
        # child is gone and its status unknown.
        return (self.pid, 0)

"""Cooperative pipe file objects for ``subprocess``: ``proc.stdout.read()`` blocks only its green task.

Owns: :class:`GreenFileIO`, a ``io.FileIO`` whose reads and writes wait on
the hub while the pipe is empty (full), and
:data:`subprocess_io`, the ``io`` namespace that the patched ``subprocess``
module sees, whose ``open`` builds the standard buffered objects (and, as
``Popen`` asks, text wrappers) on top of it.

Never: changes a descriptor's flags (a child process may share it), or
reports bytes as written before the kernel took them.
"""

from __future__ import annotations

import io
import os
import select as _select
import types
import warnings
from typing import Any

from ..net.greensocket import wait_readable, wait_writable

__all__ = ["GreenFileIO", "open_pipe", "subprocess_io"]

_poll = _select.poll  # the standard one, bound before any patching
_PIPE_BUF = getattr(_select, "PIPE_BUF", 512)


class GreenFileIO(io.FileIO):
    """``io.FileIO`` on a pipe whose reads and writes first wait on the hub until they cannot block.

    The descriptor itself stays blocking: its open file description may be
    shared with a child process (``stdin=proc1.stdout``), which must see the
    pipe as it always does.  So each call asks the kernel first (a zero
    ``poll``); when the pipe is not ready the task waits on the hub, and then
    reads what is there, or writes at most ``PIPE_BUF`` bytes, which a
    writable pipe takes without blocking.
    """

    def __init__(self, fd: int, mode: str = "r", closefd: bool = True) -> None:
        super().__init__(fd, mode, closefd)
        self._poll = _poll()
        self._poll.register(fd, _select.POLLOUT if "w" in mode else _select.POLLIN)

    def _ready(self, write: bool) -> None:
        if not self._poll.poll(0):
            fd = self.fileno()
            if write:
                wait_writable(fd)
            else:
                wait_readable(fd)

    def readinto(self, buffer: Any) -> int:
        self._ready(False)
        return super().readinto(buffer)  # type: ignore[no-any-return]

    def readall(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            self._ready(False)
            chunk = super().read(io.DEFAULT_BUFFER_SIZE * 8)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        self._ready(False)
        return super().read(size)  # type: ignore[no-any-return]

    def write(self, data: Any) -> int:
        self._ready(True)
        view = memoryview(data).cast("B")
        return super().write(view[:_PIPE_BUF])


def open_pipe(fd: int, mode: str, buffering: int = -1) -> Any:
    """``io.open(fd, mode, buffering)`` for the binary pipe modes ``Popen`` uses, on :class:`GreenFileIO`."""
    if mode not in ("rb", "wb"):
        return open(fd, mode, buffering)
    if buffering == 1:
        warnings.warn(
            "line buffering (buffering=1) isn't supported in binary mode, the default buffer size will be used",
            RuntimeWarning,
            stacklevel=3,
        )
        buffering = -1
    raw = GreenFileIO(fd, mode[0])
    if buffering == 0:
        return raw
    if buffering < 0:
        buffering = io.DEFAULT_BUFFER_SIZE
        try:
            blksize = os.fstat(fd).st_blksize
        except OSError:
            blksize = 0
        if blksize > 1:
            buffering = blksize
    if mode == "rb":
        return io.BufferedReader(raw, buffering)
    return io.BufferedWriter(raw, buffering)


# The ``io`` module as the patched ``subprocess`` module sees it: the standard
# one, except that ``open`` makes cooperative pipes.
subprocess_io = types.ModuleType("io", "The io module, with pipes opened by treadle.monkey.greenio.open_pipe.")
subprocess_io.__dict__.update({k: v for k, v in vars(io).items() if not k.startswith("__")})
subprocess_io.open = open_pipe  # type: ignore[attr-defined]

"""Cooperative pipe file objects for ``subprocess``: ``proc.stdout.read()`` blocks only its green task.

Owns: :class:`GreenFileIO`, a ``io.FileIO`` on a non-blocking descriptor
whose reads and writes wait on the hub while the pipe is empty (full), and
:data:`subprocess_io`, the ``io`` namespace that the patched ``subprocess``
module sees, whose ``open`` builds the standard buffered objects (and, as
``Popen`` asks, text wrappers) on top of it.

Never: changes the descriptor the child process holds (only the parent's end
of each pipe is made non-blocking), or reports bytes as written before the
kernel took them.
"""

from __future__ import annotations

import io
import os
import types
import warnings
from typing import Any

from ..net.greensocket import wait_readable, wait_writable

__all__ = ["GreenFileIO", "open_pipe", "subprocess_io"]


class GreenFileIO(io.FileIO):
    """``io.FileIO`` on a pipe: the descriptor is non-blocking and waits happen on the hub."""

    def __init__(self, fd: int, mode: str = "r", closefd: bool = True) -> None:
        super().__init__(fd, mode, closefd)
        os.set_blocking(fd, False)

    def readinto(self, buffer: Any) -> int:
        while True:
            n = super().readinto(buffer)
            if n is not None:
                return n
            wait_readable(self.fileno())

    def readall(self) -> bytes:
        # FileIO.readall stops at the first EAGAIN (returning what it has, or
        # None); the standard blocking one reads to the end of the file.
        chunks: list[bytes] = []
        while True:
            chunk = super().read(io.DEFAULT_BUFFER_SIZE * 8)
            if chunk is None:
                wait_readable(self.fileno())
            elif not chunk:
                return b"".join(chunks)
            else:
                chunks.append(chunk)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        while True:
            data = super().read(size)
            if data is not None:
                return data
            wait_readable(self.fileno())

    def write(self, data: Any) -> int:
        while True:
            n = super().write(data)
            if n is not None:
                return n
            wait_writable(self.fileno())


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

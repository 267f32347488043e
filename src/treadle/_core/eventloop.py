"""The event loop class that users get, and its policy.

Owns: :class:`EventLoop`, the assembly of the core loop (``loop``) with its
mixins (``sockops``, ``servers``, ``unixproc``), and :class:`EventLoopPolicy`.

Never: adds behaviour of its own beyond wiring; each capability lives in the
module named for it.
"""

from __future__ import annotations

import asyncio

from .loop import CoreLoop
from .servers import ServingMixin
from .sockops import SockOpsMixin
from .unixproc import UnixProcMixin

__all__ = ["EventLoop", "EventLoopPolicy", "new_event_loop"]


class EventLoop(SockOpsMixin, ServingMixin, UnixProcMixin, CoreLoop):
    """treadle's event loop: a complete ``asyncio.AbstractEventLoop`` on epoll."""

    def __init__(self) -> None:
        self._child_pidfds = {}
        super().__init__()

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._close_child_watch()  # the parent's children are not this process's

    def close(self) -> None:
        if not self.is_running() and not self._closed:
            self._close_child_watch()
        super().close()


def new_event_loop() -> EventLoop:
    """A new, not yet running, treadle event loop."""
    return EventLoop()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc, valid-type]
    """An asyncio event loop policy whose loops are treadle's."""

    def _loop_factory(self) -> EventLoop:  # type: ignore[override]
        return EventLoop()

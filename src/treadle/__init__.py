"""treadle: one event loop for every kind of Python coroutine.

The public names are re-exported here; everything else is private.  See
docs/architecture.md for the layers and where each piece lives.
"""

from __future__ import annotations

from ._core import EventLoop, EventLoopPolicy, new_event_loop
from ._runner import install, run

__all__ = ["EventLoop", "EventLoopPolicy", "install", "new_event_loop", "run"]

__version__ = "0.1.0"

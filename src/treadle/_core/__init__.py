"""treadle's core: the event loop and what it owns (see docs/architecture.md).

Imports the standard library only.
"""

from .eventloop import EventLoop, EventLoopPolicy, new_event_loop
from .handles import Handle, TimerHandle

__all__ = ["EventLoop", "EventLoopPolicy", "Handle", "TimerHandle", "new_event_loop"]

"""treadle: one event loop for every kind of Python coroutine.

The public names are re-exported here; everything else is private.  See
docs/architecture.md for the layers and where each piece lives.
"""

from __future__ import annotations

from ._core import EventLoop, EventLoopPolicy, new_event_loop
from ._runner import install, run
from .concurrency import (
    DEFAULT_THREAD_LIMIT,
    BoundedSemaphore,
    BrokenResourceError,
    CapacityLimiter,
    ClosedResourceError,
    Condition,
    EndOfChannel,
    Event,
    Group,
    LifoQueue,
    Lock,
    MemoryReceiveChannel,
    MemorySendChannel,
    Pool,
    PriorityQueue,
    Queue,
    QueueEmpty,
    QueueFull,
    QueueShutDown,
    RLock,
    Semaphore,
    WouldBlock,
    from_thread,
    open_memory_channel,
    to_thread,
)
from .green import (
    BlockingInHubError,
    GeneratorTask,
    Greenlet,
    NeverWokenError,
    await_,
    getcurrent,
    joinall,
    killall,
    run_green,
    sleep,
    spawn,
    spawn_later,
)
from .net.server import StreamServer

__all__ = [
    "DEFAULT_THREAD_LIMIT",
    "BlockingInHubError",
    "BoundedSemaphore",
    "BrokenResourceError",
    "ClosedResourceError",
    "EndOfChannel",
    "MemoryReceiveChannel",
    "MemorySendChannel",
    "WouldBlock",
    "from_thread",
    "open_memory_channel",
    "CapacityLimiter",
    "Condition",
    "Event",
    "Group",
    "LifoQueue",
    "Lock",
    "PriorityQueue",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "QueueShutDown",
    "RLock",
    "Semaphore",
    "EventLoop",
    "EventLoopPolicy",
    "GeneratorTask",
    "Greenlet",
    "NeverWokenError",
    "Pool",
    "StreamServer",
    "await_",
    "getcurrent",
    "install",
    "joinall",
    "killall",
    "new_event_loop",
    "run",
    "run_green",
    "sleep",
    "spawn",
    "spawn_later",
    "to_thread",
]

__version__ = "0.1.0"

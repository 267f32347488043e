"""treadle: one event loop for every kind of Python coroutine.

The public names are re-exported here; everything else is private.  See
docs/architecture.md for the layers and where each piece lives.
"""

from __future__ import annotations

# First: importing _accel installs the finder that chooses between the compiled
# and the pure Python form of the core modules imported below.
from . import _accel
from ._core import EventLoop, EventLoopPolicy, new_event_loop
from ._runner import install, run
from .concurrency import (
    DEFAULT_THREAD_LIMIT,
    BoundedSemaphore,
    BrokenResourceError,
    CancelScope,
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
    TaskGroup,
    TaskStatus,
    WouldBlock,
    current_effective_deadline,
    fail_after,
    fail_at,
    from_thread,
    move_on_after,
    move_on_at,
    open_memory_channel,
    to_process,
    to_thread,
    with_timeout,
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
from .net.stream_connect import open_tcp_stream, open_unix_stream
from .net.stream_server import SocketStreamServer, serve_tcp, serve_unix
from .net.streams import BrokenStreamError, BusyResourceError, ReadLimitError, SocketStream

#: True if the compiled core runs (Cython extension modules), False for pure Python
#: (``TREADLE_PURE_PYTHON=1``, no compiler at build time, or a stale build).
compiled: bool = _accel.running_compiled()

__all__ = [
    "compiled",
    "BrokenStreamError",
    "BusyResourceError",
    "ReadLimitError",
    "SocketStream",
    "SocketStreamServer",
    "open_tcp_stream",
    "open_unix_stream",
    "serve_tcp",
    "serve_unix",
    "DEFAULT_THREAD_LIMIT",
    "BlockingInHubError",
    "BoundedSemaphore",
    "BrokenResourceError",
    "CancelScope",
    "TaskGroup",
    "TaskStatus",
    "current_effective_deadline",
    "fail_after",
    "fail_at",
    "move_on_after",
    "move_on_at",
    "with_timeout",
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
    "to_process",
    "to_thread",
]

__version__ = "0.1.0"

"""The concurrency toolkit: what programs are written with, usable from green and async code alike."""

from . import from_thread
from .channels import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfChannel,
    MemoryChannelStatistics,
    MemoryReceiveChannel,
    MemorySendChannel,
    WouldBlock,
    open_memory_channel,
)
from .pools import Group, Pool
from .queues import LifoQueue, PriorityQueue, Queue, QueueEmpty, QueueFull, QueueShutDown, QueueStatistics
from .sync import (
    BoundedSemaphore,
    CapacityLimiter,
    CapacityLimiterStatistics,
    Condition,
    ConditionStatistics,
    Event,
    EventStatistics,
    Lock,
    LockStatistics,
    RLock,
    Semaphore,
    SemaphoreStatistics,
)
from .threads import DEFAULT_THREAD_LIMIT, to_thread

__all__ = [
    "DEFAULT_THREAD_LIMIT",
    "BoundedSemaphore",
    "BrokenResourceError",
    "ClosedResourceError",
    "EndOfChannel",
    "MemoryChannelStatistics",
    "MemoryReceiveChannel",
    "MemorySendChannel",
    "WouldBlock",
    "from_thread",
    "open_memory_channel",
    "CapacityLimiter",
    "CapacityLimiterStatistics",
    "Condition",
    "ConditionStatistics",
    "Event",
    "EventStatistics",
    "Group",
    "Lock",
    "LifoQueue",
    "LockStatistics",
    "Pool",
    "PriorityQueue",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "QueueShutDown",
    "QueueStatistics",
    "RLock",
    "Semaphore",
    "SemaphoreStatistics",
    "to_thread",
]

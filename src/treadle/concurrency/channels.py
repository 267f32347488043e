"""Memory channels (trio's): a send end and a receive end, for green and async tasks alike.

``send, receive = open_memory_channel(max_buffer_size)``; ``send.send(x)``
blocks a green task (``await send.send(x)`` in async code) while the buffer is
full (``max_buffer_size=0``: until a receiver takes the value, a rendezvous);
``receive.receive()`` waits for a value.  Ends can be cloned; a channel ends
when every send end is closed (receivers then get ``EndOfChannel``, and
``for``/``async for`` loops stop) and breaks when every receive end is closed
(senders get ``BrokenResourceError``).

Owns: the channel state, both ends, their errors and ``statistics()``.

Never: loses or duplicates a value.  A value is delivered once: to a waiting
receiver, into the buffer, or taken from a waiting sender.  A receiver
cancelled after a value was handed to it gives the value back (to the next
receiver, or to the front of the buffer).  A sender cancelled after a
receiver took its value is not told "not sent": its send returns and the
cancellation is delivered at its next switch point.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from greenlet import getcurrent

from ..green.hub import BlockingInHubError
from .waiting import WaitQueue, green_wait, in_async

__all__ = [
    "BrokenResourceError",
    "ClosedResourceError",
    "EndOfChannel",
    "MemoryChannelStatistics",
    "MemoryReceiveChannel",
    "MemorySendChannel",
    "WouldBlock",
    "open_memory_channel",
]

T = TypeVar("T")


class WouldBlock(Exception):
    """A ``*_nowait`` call would have had to wait."""


class EndOfChannel(Exception):
    """Every send end is closed and the buffer is empty: nothing more will come."""


class ClosedResourceError(Exception):
    """This end of the channel was closed (by this task or another)."""


class BrokenResourceError(Exception):
    """Every receive end is closed: a value sent now could never be received."""


_END = object()  # a receiver woken because every send end closed
_BROKEN = object()  # a sender woken because every receive end closed
_CLOSED = object()  # a waiter woken because its own end was closed


@dataclass(frozen=True)
class MemoryChannelStatistics:
    current_buffer_used: int
    max_buffer_size: float
    open_send_channels: int
    open_receive_channels: int
    tasks_waiting_send: int
    tasks_waiting_receive: int


class _State:
    __slots__ = ("max", "buffer", "senders", "receivers", "open_send", "open_receive", "in_flight")

    def __init__(self, max_buffer_size: float) -> None:
        self.max = max_buffer_size
        self.buffer: collections.deque[Any] = collections.deque()
        self.senders = WaitQueue()  # who: (value, the send end)
        self.receivers = WaitQueue()  # who: the receive end
        self.open_send = 0
        self.open_receive = 0
        # Values handed to receivers that have not resumed yet: the channel has
        # not ended while one of them may still be given back.
        self.in_flight = 0

    def ended(self) -> bool:
        return self.open_send == 0 and self.in_flight == 0 and not self.buffer

    def end_if_done(self) -> None:
        if self.ended():
            self.receivers.wake_all(_END)

    def statistics(self) -> MemoryChannelStatistics:
        return MemoryChannelStatistics(
            current_buffer_used=len(self.buffer),
            max_buffer_size=self.max,
            open_send_channels=self.open_send,
            open_receive_channels=self.open_receive,
            tasks_waiting_send=len(self.senders),
            tasks_waiting_receive=len(self.receivers),
        )


def open_memory_channel(max_buffer_size: float) -> tuple[MemorySendChannel[Any], MemoryReceiveChannel[Any]]:
    """A new channel's two ends; ``max_buffer_size`` is an int >= 0 or ``math.inf``."""
    if isinstance(max_buffer_size, bool) or not (isinstance(max_buffer_size, int) or max_buffer_size == math.inf):
        raise TypeError(f"max_buffer_size must be an int or math.inf, got {max_buffer_size!r}")
    if max_buffer_size < 0:
        raise ValueError(f"max_buffer_size must be >= 0, got {max_buffer_size}")
    state = _State(max_buffer_size)
    return MemorySendChannel(state), MemoryReceiveChannel(state)


class _End:
    __slots__ = ("_state", "_closed", "__weakref__")

    def __init__(self, state: _State) -> None:
        self._state = state
        self._closed = False

    def statistics(self) -> MemoryChannelStatistics:
        return self._state.statistics()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedResourceError(f"this {type(self).__name__} is closed")

    def close(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class MemorySendChannel(_End, Generic[T]):
    """The send end of a memory channel."""

    __slots__ = ()

    def __init__(self, state: _State) -> None:
        super().__init__(state)
        state.open_send += 1

    def __repr__(self) -> str:
        return f"<treadle.MemorySendChannel {'closed' if self._closed else 'open'} {self._state.statistics()}>"

    def clone(self) -> MemorySendChannel[T]:
        """Another send end of the same channel (the channel ends when all are closed)."""
        self._check_open()
        return MemorySendChannel(self._state)

    def send_nowait(self, value: T) -> None:
        """Deliver ``value`` now (to a waiting receiver or the buffer), else ``WouldBlock``."""
        if not self._try_send(value):
            raise WouldBlock

    def _try_send(self, value: T) -> bool:
        self._check_open()
        state = self._state
        if state.open_receive == 0:
            raise BrokenResourceError("every receive end of this channel is closed")
        if state.receivers.wake_first(value):
            state.in_flight += 1
            return True
        if len(state.buffer) < state.max and not state.senders:
            state.buffer.append(value)
            return True
        return False

    def send(self, value: T) -> Any:
        """Deliver ``value``, waiting while the buffer is full. Both styles."""
        if in_async():
            return self._send_async(value)
        if self._try_send(value):
            return None
        fut = self._state.senders.add((value, self))
        try:
            woken = green_wait(fut, "MemorySendChannel.send()")
        except BaseException as exc:
            if not self._sent_anyway(fut, exc):
                raise
            woken = fut.result()
        _check_woken_sender(woken)
        return None

    async def _send_async(self, value: T) -> None:
        if self._try_send(value):
            return
        fut = self._state.senders.add((value, self))
        try:
            woken = await fut
        except asyncio.CancelledError as exc:
            if not self._sent_anyway(fut, exc):
                raise
            woken = fut.result()
        _check_woken_sender(woken)

    def _sent_anyway(self, fut: asyncio.Future[Any], exc: BaseException) -> bool:
        """The sender was stopped while waiting: True if its value was taken already (then the send stands)."""
        if not fut.done() or fut.cancelled():
            if not fut.done():
                fut.cancel()
            self._state.senders.discard(fut)
            return False
        if fut.result() is not True:
            return False  # woken with an error: the send did not happen
        # Delivered: the send returns normally and the stop comes at the next switch point.
        if isinstance(exc, asyncio.CancelledError):
            if in_async():
                task = asyncio.current_task()
                if task is not None:
                    # Delivered again at the next await, unless what cancelled
                    # (a timeout, a task group) has absorbed it by then.
                    asyncio.get_running_loop().call_soon(_cancel_again, task, exc.args)
                    return True
            else:
                current: Any = getcurrent()
                if hasattr(current, "_cancel_requested"):
                    current._cancel_requested = True
                    current._cancel_message = exc.args[0] if exc.args else None
                    return True
        return False  # a kill (GreenletExit) goes on: the value was delivered all the same

    def close(self) -> None:
        """Close this end (idempotent); when it is the last send end, receivers get ``EndOfChannel``."""
        if self._closed:
            return
        self._closed = True
        state = self._state
        state.open_send -= 1
        # This end's own waiting senders fail with ClosedResourceError.
        state.senders.wake_where(lambda who: who[1] is self, _CLOSED)
        state.end_if_done()


def _cancel_again(task: asyncio.Task[Any], args: tuple[Any, ...]) -> None:
    if task.cancelling() and not task.done():
        task.cancel(*args)
        task.uncancel()


def _check_woken_sender(woken: Any) -> None:
    if woken is _BROKEN:
        raise BrokenResourceError("every receive end of this channel was closed while send() waited")
    if woken is _CLOSED:
        raise ClosedResourceError("this MemorySendChannel was closed while send() waited")


class MemoryReceiveChannel(_End, Generic[T]):
    """The receive end of a memory channel; iterate it (``for``/``async for``) until the channel ends."""

    __slots__ = ()

    def __init__(self, state: _State) -> None:
        super().__init__(state)
        state.open_receive += 1

    def __repr__(self) -> str:
        return f"<treadle.MemoryReceiveChannel {'closed' if self._closed else 'open'} {self._state.statistics()}>"

    def clone(self) -> MemoryReceiveChannel[T]:
        self._check_open()
        return MemoryReceiveChannel(self._state)

    def receive_nowait(self) -> T:
        """The next value if one is ready, else ``WouldBlock`` (``EndOfChannel`` once the channel ended)."""
        found, value = self._try_receive()
        if not found:
            raise WouldBlock
        return value  # type: ignore[no-any-return]

    def _try_receive(self) -> tuple[bool, Any]:
        self._check_open()
        state = self._state
        if state.buffer and not state.receivers:
            value = state.buffer.popleft()
            self._refill()
            return True, value
        sender = state.senders.pop_first_live()
        if sender is not None and not state.receivers:
            fut, (value, _) = sender
            fut.set_result(True)
            return True, value
        if sender is not None:  # other receivers wait first: put the sender back at the head
            state.senders.put_back(sender)
        if state.open_send == 0 and state.in_flight == 0:
            raise EndOfChannel
        return False, None

    def _refill(self) -> None:
        """Room in the buffer: move the oldest waiting sender's value in, and let it go."""
        state = self._state
        while len(state.buffer) < state.max:
            sender = state.senders.pop_first_live()
            if sender is None:
                return
            fut, (value, _) = sender
            state.buffer.append(value)
            fut.set_result(True)

    def receive(self) -> Any:
        """The next value, waiting for one; ``EndOfChannel`` once every send end is closed. Both styles."""
        if in_async():
            return self._receive_async()
        found, value = self._try_receive()
        if found:
            return value
        fut = self._state.receivers.add(self)
        try:
            woken = green_wait(fut, "MemoryReceiveChannel.receive()")
        except BaseException:
            self._give_back(fut)
            raise
        return self._check_woken(woken)

    async def _receive_async(self) -> T:
        found, value = self._try_receive()
        if found:
            return value  # type: ignore[no-any-return]
        fut = self._state.receivers.add(self)
        try:
            woken = await fut
        except BaseException:
            self._give_back(fut)
            raise
        return self._check_woken(woken)

    def _give_back(self, fut: asyncio.Future[Any]) -> None:
        """A receiver stopped while waiting: a value handed to it goes to the next receiver or the buffer's front."""
        state = self._state
        if not fut.done() or fut.cancelled():
            if not fut.done():
                fut.cancel()
            state.receivers.discard(fut)
            return
        value = fut.result()
        if value is _END or value is _CLOSED:
            return
        if not state.receivers.wake_first(value):  # else still in flight, to the next receiver
            state.in_flight -= 1
            state.buffer.appendleft(value)  # may exceed max_buffer_size by this one value: never lost

    def _check_woken(self, woken: Any) -> T:
        if woken is not _END and woken is not _CLOSED:
            state = self._state
            state.in_flight -= 1  # this receiver has its value
            state.end_if_done()
        if woken is _END:
            raise EndOfChannel
        if woken is _CLOSED:
            raise ClosedResourceError("this MemoryReceiveChannel was closed while receive() waited")
        return woken  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close this end (idempotent); when it is the last receive end, senders get ``BrokenResourceError``."""
        if self._closed:
            return
        self._closed = True
        state = self._state
        state.open_receive -= 1
        state.receivers.wake_where(lambda who: who is self, _CLOSED)
        if state.open_receive == 0:
            state.buffer.clear()
            state.senders.wake_all(_BROKEN)

    # -- iteration -----------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[T]:
        if in_async():
            raise BlockingInHubError("`for value in channel` in async code would block the loop: use `async for`")
        while True:
            try:
                yield self.receive()
            except EndOfChannel:
                return

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self._receive_async()
        except EndOfChannel:
            raise StopAsyncIteration from None

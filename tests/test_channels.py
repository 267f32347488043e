"""Memory channels (trio's): open_memory_channel, its send and receive ends, for green and async tasks alike.

One channel serves both styles: ``send.send(x)`` and ``receive.receive()`` block a
green task and are awaited by an async one, and both kinds wait on one channel in
arrival order.  Most tests run a green main (``treadle.run(main)``) or an async main
that starts workers of either kind, lets the loop run until they wait (watched
through ``statistics()``, never real time), and joins them; "mixed" alternates the
kinds.  The property-based test (hypothesis) runs random programs of green and async
senders and receivers, with cancellations, and checks that no value is lost or
duplicated.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import treadle
from treadle import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfChannel,
    MemoryReceiveChannel,
    MemorySendChannel,
    WouldBlock,
    open_memory_channel,
)
from treadle.concurrency import MemoryChannelStatistics as Stats

from .styles import CANCELS, OTHER, STYLES, Pair, asettle, cancel, finish, kind_of, kinds, results, settle, spin, start

SIZES = [0, 1, 5, math.inf]

# -- helpers ---------------------------------------------------------------------------------------------


def waiting_send(end: Any) -> Callable[[], int]:
    return lambda: end.statistics().tasks_waiting_send


def waiting_receive(end: Any) -> Callable[[], int]:
    return lambda: end.statistics().tasks_waiting_receive


def line_up(workers: list[tuple[Any, ...]], waiting: Callable[[], int]) -> list[Any]:
    """Green: start ``(kind, pair, *args)`` workers one by one, each once the one before waits (``waiting()``)."""
    tasks: list[Any] = []
    for n, (kind, pair, *args) in enumerate(workers, start=waiting() + 1):
        tasks.append(start(kind, pair, *args))
        settle(lambda n=n: waiting() == n)
    return tasks


OUTCOMES = (BrokenResourceError, ClosedResourceError, EndOfChannel)


def one_send(s: MemorySendChannel[Any], log: list[Any]) -> Pair:
    """Worker bodies of both styles: ``send(value)`` once; log (value, "sent" or the error's name); then a switch
    point (where a late cancellation arrives)."""

    def green(value: Any) -> None:
        try:
            s.send(value)
            log.append((value, "sent"))
        except OUTCOMES as exc:
            log.append((value, type(exc).__name__))
        treadle.sleep(0)

    async def coro(value: Any) -> None:
        try:
            await s.send(value)
            log.append((value, "sent"))
        except OUTCOMES as exc:
            log.append((value, type(exc).__name__))
        await asyncio.sleep(0)

    return green, coro


def one_receive(r: MemoryReceiveChannel[Any], log: list[Any]) -> Pair:
    """Worker bodies of both styles: ``receive()`` once; log and return (name, the value or the error's name)."""

    def green(name: Any) -> Any:
        try:
            outcome = (name, r.receive())
        except OUTCOMES as exc:
            outcome = (name, type(exc).__name__)
        log.append(outcome)
        return outcome

    async def coro(name: Any) -> Any:
        try:
            outcome = (name, await r.receive())
        except OUTCOMES as exc:
            outcome = (name, type(exc).__name__)
        log.append(outcome)
        return outcome

    return green, coro


def feeder(
    s: MemorySendChannel[Any], sent: list[Any] | None = None, every: int = 0, hook: Callable[[], Any] = int
) -> Pair:
    """Worker bodies of both styles: send (p, 0) .. (p, n-1) in order, logging in ``sent`` each whose send returned
    and switching after every ``every``-th; ``hook()`` is called just before and just after each send (no switch
    in between); then close ``s`` (``with`` / ``async with``)."""
    log = [] if sent is None else sent

    def green(p: int, n: int) -> None:
        with s:
            for i in range(n):
                hook()
                s.send((p, i))
                log.append((p, i))
                hook()
                if every and (i + 1) % every == 0:
                    treadle.sleep(0)

    async def coro(p: int, n: int) -> None:
        async with s:
            for i in range(n):
                hook()
                await s.send((p, i))
                log.append((p, i))
                hook()
                if every and (i + 1) % every == 0:
                    await asyncio.sleep(0)

    return green, coro


def collector(r: MemoryReceiveChannel[Any], got: list[Any], pause: int = 0) -> Pair:
    """Worker bodies of both styles: ``for`` / ``async for`` over ``r`` until the channel ends, logging each value as
    soon as it is returned and then switching ``pause`` times; then close ``r``."""

    def green() -> str:
        with r:
            for value in r:
                got.append(value)
                for _ in range(pause):
                    treadle.sleep(0)
        return "end"

    async def coro() -> str:
        async with r:
            async for value in r:
                got.append(value)
                for _ in range(pause):
                    await asyncio.sleep(0)
        return "end"

    return green, coro


# -- arguments, basics, statistics ---------------------------------------------------------------------------


def test_buffer_size_is_checked_at_the_call() -> None:
    """open_memory_channel(-1) is a ValueError; a size that is not an int or math.inf ("3", 1.5, 1.0, True, None,
    NaN, -inf) is a TypeError naming max_buffer_size; 0, 5 and math.inf (float("inf") too) give two open ends."""
    with pytest.raises(ValueError, match="max_buffer_size"):
        open_memory_channel(-1)
    for bad in ("3", 1.5, 1.0, True, None, math.nan, -math.inf):
        with pytest.raises(TypeError, match="max_buffer_size"):
            open_memory_channel(bad)  # type: ignore[arg-type]
    for size in (0, 5, math.inf, float("inf")):
        s, r = open_memory_channel(size)
        assert isinstance(s, MemorySendChannel) and isinstance(r, MemoryReceiveChannel)
        assert s.statistics() == r.statistics() == Stats(0, size, 1, 1, 0, 0)


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("style", ["green", "async"])
def test_one_task_fills_and_drains_the_buffer(style: str, size: float) -> None:
    """A task alone: send/send_nowait put values in the buffer up to its size (then send_nowait is WouldBlock and
    keeps nothing; math.inf never fills), receive/receive_nowait give them back in order (then WouldBlock); in async
    code send/receive are awaitables, in green code they return at once; statistics() and repr follow."""
    n = 12 if size == math.inf else int(size)

    async def body(done: Callable[[Any], Any]) -> None:  # done(what send/receive returned): the outcome
        s, r = open_memory_channel(size)
        for i in range(n):
            assert (await done(s.send(i)) if i % 2 else s.send_nowait(i)) is None
            assert s.statistics() == Stats(i + 1, size, 1, 1, 0, 0) and f"current_buffer_used={i + 1}" in repr(s)
        if size != math.inf:
            with pytest.raises(WouldBlock):
                s.send_nowait("extra")
        assert [await done(r.receive()) if i % 2 else r.receive_nowait() for i in range(n)] == list(range(n))
        with pytest.raises(WouldBlock):
            r.receive_nowait()
        assert r.statistics() == Stats(0, size, 1, 1, 0, 0) and "MemoryReceiveChannel open" in repr(r)

    async def awaited(pending: Any) -> Any:
        assert inspect.isawaitable(pending)
        return await pending

    async def returned(outcome: Any) -> Any:
        assert not inspect.isawaitable(outcome)
        return outcome

    def main() -> None:
        coro = body(returned)  # green code: nothing in it suspends, so one send() runs it to the end
        with pytest.raises(StopIteration):
            coro.send(None)

    treadle.run(main if style == "green" else body(awaited))


# -- many values, several senders and receivers ------------------------------------------------------------


@pytest.mark.parametrize("receivers", [1, 3])
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_two_thousand_values_through_clones(size: float, style: str, receivers: int) -> None:
    """Four senders (clones; alternating kinds when mixed) send 500 values each and close their ends; receivers
    (clones; async first when mixed) iterate (for / async for) until the channel ends: every value arrives exactly
    once, each sender's values in its order at each receiver; with several receivers, each gets a share."""
    senders, share = 4, 500

    def main() -> None:
        s, r = open_memory_channel(size)
        gots: list[list[Any]] = [[] for _ in range(receivers)]
        rx = [
            start(k, collector(r.clone(), got)) for k, got in zip(kinds(style, receivers, "async"), gots, strict=True)
        ]
        tx = [start(k, feeder(s.clone()), p, share) for p, k in enumerate(kinds(style, senders))]
        s.close()
        r.close()
        assert results(tx + rx) == [None] * senders + ["end"] * receivers
        every = [value for got in gots for value in got]
        assert len(every) == senders * share and set(every) == {(p, i) for p in range(senders) for i in range(share)}
        for got in gots:
            for p in range(senders):
                mine = [i for pp, i in got if pp == p]
                assert mine == sorted(mine), "a sender's values arrived out of order"
        if receivers > 1:
            assert all(gots), "every receiver should have had a share"
        assert s.statistics() == Stats(0, size, 0, 0, 0, 0)

    treadle.run(main)


# -- rendezvous and arrival order -------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_rendezvous_and_arrival_order(style: str) -> None:
    """Buffer size 0: senders (both kinds) wait in send however long the loop runs, and send_nowait with no
    receiver waiting is WouldBlock; each receive (or receive_nowait) takes the oldest sender's value and lets exactly
    that sender go.  Receivers queued in a known order get the values in that order: send_nowait hands each value
    straight to the oldest waiting receiver, so a newcomer's receive_nowait finds nothing before they run."""

    def main() -> None:
        s, r = open_memory_channel(0)
        log: list[Any] = []
        tasks = line_up([(k, one_send(s, log), i) for i, k in enumerate(kinds(style, 4))], waiting_send(s))
        spin()
        assert log == [] and not any(task.done() for task in tasks)
        with pytest.raises(WouldBlock):
            s.send_nowait("newcomer")
        assert s.statistics() == Stats(0, 0, 1, 1, 4, 0)
        for i in range(4):
            assert (r.receive() if i % 2 else r.receive_nowait()) == i
            settle(lambda n=i + 1: len(log) == n)
            spin()
            assert log == [(j, "sent") for j in range(i + 1)] and s.statistics().tasks_waiting_send == 3 - i
        results(tasks)
        log.clear()
        tasks = line_up([(k, one_receive(r, log), i) for i, k in enumerate(kinds(style, 6))], waiting_receive(r))
        for i in range(6):
            assert s.send_nowait(f"value {i}") is None
        assert s.statistics() == Stats(0, 0, 1, 1, 0, 0) and log == []
        with pytest.raises(WouldBlock):
            r.receive_nowait()
        assert results(tasks) == [(i, f"value {i}") for i in range(6)]

    treadle.run(main)


# -- the end of a channel, a broken channel, closed ends ----------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_iteration_ends_when_every_send_end_is_closed(style: str) -> None:
    """Receivers iterating (for in green tasks, async for in async ones) wait on an empty channel; closing one of two
    send ends ends nothing; when the last one closes while they wait, every loop stops; from then on receive and
    receive_nowait raise EndOfChannel.  Values buffered before the last send end closed are still received first."""

    def main() -> None:
        s, r = open_memory_channel(5)
        s2 = s.clone()
        gots: list[list[Any]] = [[] for _ in range(4)]
        tasks = [start(k, collector(r.clone(), got)) for k, got in zip(kinds(style, 4), gots, strict=True)]
        settle(lambda: r.statistics().tasks_waiting_receive == 4)
        s2.close()
        spin()
        assert not any(task.done() for task in tasks) and r.statistics() == Stats(0, 5, 1, 5, 0, 4)
        for i in range(4):
            s.send_nowait(i)  # one each: every receiver waits again
        settle(lambda: r.statistics().tasks_waiting_receive == 4 and sum(map(len, gots)) == 4)
        s.close()
        assert results(tasks) == ["end"] * 4 and sorted(v for got in gots for v in got) == [0, 1, 2, 3]
        for receive in (r.receive_nowait, r.receive):
            with pytest.raises(EndOfChannel):
                receive()
        assert results([start(k, one_receive(r, []), k) for k in ("green", "async")]) == [
            (k, "EndOfChannel") for k in ("green", "async")
        ]
        assert list(r) == [] and r.statistics() == Stats(0, 5, 0, 1, 0, 0)
        # buffered values outlive the last send end
        s, r = open_memory_channel(math.inf)
        with s:
            for i in range(6):
                s.send_nowait(i)
        gots = [[], []]
        tasks = [start(k, collector(r.clone(), got)) for k, got in zip(kinds("mixed", 2), gots, strict=True)]
        assert results(tasks) == ["end", "end"] and sorted(gots[0] + gots[1]) == list(range(6))

    treadle.run(main)


@pytest.mark.parametrize("size", [0, 2])
@pytest.mark.parametrize("style", STYLES)
def test_closing_every_receive_end_breaks_the_channel(style: str, size: int) -> None:
    """Closing one of two receive ends breaks nothing; closing the last wakes every waiting sender (both kinds) with
    BrokenResourceError and drops the buffer; from then on send and send_nowait raise BrokenResourceError (in both
    styles), and a closed send end still says ClosedResourceError."""

    def main() -> None:
        s, r = open_memory_channel(size)
        r2 = r.clone()
        for i in range(size):
            s.send_nowait(("buffered", i))
        log: list[Any] = []
        tasks = line_up([(k, one_send(s, log), i) for i, k in enumerate(kinds(style, 4))], waiting_send(s))
        r2.close()
        spin()
        assert log == [] and s.statistics() == Stats(size, size, 1, 1, 4, 0)
        r.close()
        assert s.statistics() == Stats(0, size, 1, 0, 0, 0)
        results(tasks)
        assert log == [(i, "BrokenResourceError") for i in range(4)]
        log.clear()
        results([start(k, one_send(s, log), k) for k in ("green", "async")])
        assert log == [("green", "BrokenResourceError"), ("async", "BrokenResourceError")]
        for call in (lambda: s.send_nowait("x"), lambda: s.send("x")):
            with pytest.raises(BrokenResourceError):
                call()
        s.close()
        with pytest.raises(ClosedResourceError):
            s.send_nowait("x")

    treadle.run(main)


@pytest.mark.parametrize("style", ["green", "async"])
def test_a_closed_end_raises_closed_resource_error(style: str) -> None:
    """An end closed by close() (idempotent), aclose(), with or async with: send, send_nowait, clone, receive,
    receive_nowait and iteration on it raise ClosedResourceError (in async code when awaited), also once the
    channel has ended or broken; the other ends of the channel are not affected."""

    def check(s2: Any, r2: Any) -> None:
        for call in (lambda: s2.send_nowait(1), s2.clone, r2.receive_nowait, r2.clone):
            with pytest.raises(ClosedResourceError):
                call()

    def main() -> None:
        s, r = open_memory_channel(1)
        with s.clone() as s2, r.clone() as r2:
            assert s.statistics() == Stats(0, 1, 2, 2, 0, 0)
        s2.close()
        assert s.statistics() == Stats(0, 1, 1, 1, 0, 0) and "MemorySendChannel closed" in repr(s2)
        for call in (lambda: s2.send(1), r2.receive, lambda: list(r2)):
            with pytest.raises(ClosedResourceError):
                call()
        s.send_nowait("fine")
        assert r.receive_nowait() == "fine"
        s.close()
        r.close()
        check(s2, r2)
        check(s, r)

    async def amain() -> None:
        s, r = open_memory_channel(1)
        async with s.clone() as s2, r.clone() as r2:
            await s2.aclose()
        for pending in (s2.send(1), r2.receive(), r2.__anext__()):
            with pytest.raises(ClosedResourceError):
                await pending
        await s.send("fine")
        assert await r.receive() == "fine"
        await r.aclose()
        check(s2, r2)
        with pytest.raises(BrokenResourceError):
            await s.send(1)
        async with s:
            pass
        check(s, r)

    treadle.run(main if style == "green" else amain())


@pytest.mark.parametrize("style", STYLES)
def test_a_task_waiting_on_an_end_closed_by_another_task_gets_closed_resource_error(style: str) -> None:
    """Senders (both kinds) waiting in send on end A are woken with ClosedResourceError when another task closes A,
    and their values are never received; receivers waiting on end B likewise when B is closed.  Waiters on the
    other ends of the channel go on waiting and are served as before."""

    def main() -> None:
        s, r = open_memory_channel(0)
        a = s.clone()
        log: list[Any] = []
        workers = [
            (k, one_send(a if i < 2 else s, log), ("a" if i < 2 else "s", i)) for i, k in enumerate(kinds(style, 4))
        ]
        tasks = line_up(workers, waiting_send(s))
        a.close()
        results(tasks[:2])
        assert log == [(("a", 0), "ClosedResourceError"), (("a", 1), "ClosedResourceError")]
        assert s.statistics() == Stats(0, 0, 1, 1, 2, 0)
        assert [r.receive(), r.receive_nowait()] == [("s", 2), ("s", 3)]
        results(tasks[2:])
        with pytest.raises(WouldBlock):
            r.receive_nowait()
        b = r.clone()
        log.clear()
        workers = [
            (k, one_receive(b if i < 2 else r, log), ("b" if i < 2 else "r", i)) for i, k in enumerate(kinds(style, 4))
        ]
        tasks = line_up(workers, waiting_receive(r))
        b.close()
        assert results(tasks[:2]) == [(("b", 0), "ClosedResourceError"), (("b", 1), "ClosedResourceError")]
        assert r.statistics() == Stats(0, 0, 1, 1, 0, 2)
        s.send_nowait("x")
        s.send_nowait("y")
        assert results(tasks[2:]) == [(("r", 2), "x"), (("r", 3), "y")]

    treadle.run(main)


def test_for_in_async_code_raises_blocking_in_hub_error() -> None:
    """`for value in receive_end` in async code raises treadle.BlockingInHubError (pointing to async for) instead of
    blocking the loop; nothing is taken and nobody is left waiting; async for then gets the value."""

    async def main() -> None:
        s, r = open_memory_channel(math.inf)
        s.send_nowait(1)
        with pytest.raises(treadle.BlockingInHubError, match="async for"):
            for _ in r:
                pass
        assert r.statistics() == Stats(1, math.inf, 1, 1, 0, 0)
        s.close()
        assert [value async for value in r] == [1]

    treadle.run(main())


# -- cancellation at the hand-off -----------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["cancel-before-send", "cancel-after-send"])
@pytest.mark.parametrize("how", CANCELS)
def test_receiver_cancelled_at_the_hand_off_passes_the_value_on(how: str, when: str) -> None:
    """B and C (the other kind) wait in receive; x is sent (handed to B) and B is cancelled before it runs: C gets x.
    A green task's cancellation comes by a callback queued after the wake-up it was just given, so a green B
    cancelled after the send does take x (and is cancelled at its next switch point): then C gets the next value."""

    def main() -> None:
        s, r = open_memory_channel(0)
        log: list[Any] = []
        workers = [(kind_of(how), one_receive(r, log), "B"), (OTHER[kind_of(how)], one_receive(r, log), "C")]
        b, c = line_up(workers, waiting_receive(r))
        if when == "cancel-before-send":
            cancel(b, how)
        s.send_nowait("x")
        if when == "cancel-after-send":
            cancel(b, how)
        finish([b])
        if kind_of(how) == "green" and when == "cancel-after-send":
            assert not b.cancelled() and log == [("B", "x")]
            s.send_nowait("y")
            assert results([c]) == [("C", "y")]
        else:
            assert b.cancelled() and results([c]) == [("C", "x")] and log == [("C", "x")]
        assert r.statistics() == Stats(0, 0, 1, 1, 0, 0)

    treadle.run(main)


@pytest.mark.parametrize("how", CANCELS)
def test_value_given_back_by_a_cancelled_receiver_is_received_first(how: str) -> None:
    """With no other receiver waiting, the value a cancelled receiver was handed goes back to the front of the
    buffer (one past max_buffer_size if need be): the next receive gets it, then the values sent after it.  (A
    green receiver is cancelled before the hand-off, so that its cancellation arrives first.)"""

    def main() -> None:
        s, r = open_memory_channel(1)
        [b] = line_up([(kind_of(how), one_receive(r, []), "B")], waiting_receive(r))
        if kind_of(how) == "green":
            cancel(b, how)
        s.send_nowait(1)  # handed to B
        s.send_nowait(2)  # into the buffer, now full
        with pytest.raises(WouldBlock):
            s.send_nowait(3)
        if kind_of(how) == "async":
            cancel(b, how)
        finish([b])
        assert b.cancelled() and r.statistics() == Stats(2, 1, 1, 1, 0, 0)
        assert [r.receive_nowait(), r.receive()] == [1, 2]

    treadle.run(main)


@pytest.mark.parametrize("when", ["cancel-before-take", "cancel-after-take"])
@pytest.mark.parametrize("how", CANCELS)
def test_sender_cancelled_as_its_value_is_taken(how: str, when: str) -> None:
    """Buffer size 0; B waits in send(x); in one callback a receiver takes x and B is cancelled.  Once x is taken
    (also when a green B's cancellation came first but had not arrived yet), B's send returns normally and B is
    cancelled at its next switch point.  An async B cancelled before the take stops at once: x is never received."""

    def main() -> None:
        s, r = open_memory_channel(0)
        log: list[Any] = []
        [b] = line_up([(kind_of(how), one_send(s, log), "x")], waiting_send(s))
        if when == "cancel-before-take":
            cancel(b, how)
        taken = []
        try:
            taken.append(r.receive_nowait())
        except WouldBlock:
            pass
        if when == "cancel-after-take":
            cancel(b, how)
        finish([b])
        assert b.cancelled(), "the cancellation must arrive at the sender's next switch point"
        if kind_of(how) == "async" and when == "cancel-before-take":
            assert taken == [] and log == []
        else:
            assert taken == ["x"] and log == [("x", "sent")]
        assert s.statistics() == Stats(0, 0, 1, 1, 0, 0)

    treadle.run(main)


@pytest.mark.parametrize("size", [0, 1])
@pytest.mark.parametrize("how", CANCELS)
def test_sender_cancelled_before_its_value_is_taken_sends_nothing(how: str, size: int) -> None:
    """B then C (the other kind) wait in send on a full buffer; B is cancelled and its cancellation arrives before
    anyone receives: B's value is never received.  Receivers get the buffered values, then C's; a receive that
    frees a slot moves C's value into the buffer at once and lets C go."""

    def main() -> None:
        s, r = open_memory_channel(size)
        for i in range(size):
            s.send_nowait(("buffered", i))
        log: list[Any] = []
        workers = [(kind_of(how), one_send(s, log), "b"), (OTHER[kind_of(how)], one_send(s, log), "c")]
        b, c = line_up(workers, waiting_send(s))
        cancel(b, how)
        finish([b])
        assert b.cancelled() and log == [] and s.statistics() == Stats(size, size, 1, 1, 1, 0)
        if size:
            assert r.receive() == ("buffered", 0) and s.statistics() == Stats(1, 1, 1, 1, 0, 0)
            settle(lambda: log == [("c", "sent")])
        assert r.receive() == "c"
        results([c])
        assert log == [("c", "sent")]
        with pytest.raises(WouldBlock):
            r.receive_nowait()

    treadle.run(main)


# -- a value in flight when the channel ends, and a send under a timeout ----------------------------


@pytest.mark.parametrize("how", CANCELS)
def test_a_value_given_back_after_the_last_sender_closed_is_still_received(how: str) -> None:
    """B waits in receive and C (the other kind) iterates; x is handed to B, B is cancelled before it runs and the
    last send end closes: x must reach C before C's loop ends (no receiver may be told the channel ended while a
    value is still on its way)."""

    def main() -> None:
        s, r = open_memory_channel(0)
        got: list[Any] = []
        workers = [(kind_of(how), one_receive(r, []), "B"), (OTHER[kind_of(how)], collector(r.clone(), got))]
        b, c = line_up(workers, waiting_receive(r))
        if kind_of(how) == "green":
            cancel(b, how)
        s.send_nowait("x")
        if kind_of(how) == "async":
            cancel(b, how)
        s.close()
        finish([b, c])
        assert b.cancelled() and c.result() == "end"
        assert got == ["x"], f"x was left in the buffer after C's loop ended: {r.statistics()}"

    treadle.run(main)


def test_send_under_a_timeout_expiring_as_its_value_is_taken_leaks_no_cancellation() -> None:
    """An async send under asyncio.timeout(): a receiver takes the value in the same loop iteration as the timeout
    fires (the loop is held up until both timers are due).  The send returns normally (the value was delivered) and
    the timeout's cancellation ends with its block: the task goes on, no stray CancelledError at its next await."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        s, r = open_memory_channel(0)
        deadline = loop.time() + 0.5
        log: list[Any] = []

        async def sender() -> None:
            try:
                async with asyncio.timeout_at(deadline):
                    await s.send("x")
                log.append("sent")
            except TimeoutError:
                log.append("timed out")
            await asyncio.sleep(0)
            log.append("went on")

        task = loop.create_task(sender())
        await asettle(lambda: s.statistics().tasks_waiting_send == 1)
        loop.call_at(deadline - 0.01, lambda: log.append(("took", r.receive_nowait())))
        while loop.time() < deadline + 0.05:
            time.sleep(0.05)  # hold the loop: both timers are due in one iteration, the take first
        await asyncio.gather(task, return_exceptions=True)
        assert log == [("took", "x"), "sent", "went on"] and not task.cancelled()

    treadle.run(main())


# -- property: nothing lost, nothing duplicated -------------------------------------------------------------

KIND, HOW = st.sampled_from(["green", "async"]), st.sampled_from(["cancel", "kill"])
SENDERS = st.lists(st.tuples(KIND, st.integers(0, 12), st.integers(1, 4), HOW), min_size=1, max_size=4)
RECEIVERS = st.lists(st.tuples(KIND, st.integers(0, 2), HOW), min_size=1, max_size=4)  # kind, pause, how
CANCELLATIONS = st.lists(st.tuples(st.integers(0, 40), st.booleans(), st.integers(0, 6)), max_size=6)


@settings(max_examples=50, deadline=None, database=None)
@given(size=st.sampled_from([0, 1, 2, 3, math.inf]), senders=SENDERS, receivers=RECEIVERS, script=CANCELLATIONS)
def test_property_every_value_sent_is_received_exactly_once(
    size: float, senders: list[Any], receivers: list[Any], script: list[tuple[int, bool, int]]
) -> None:
    """Random programs: green and async senders (values, a switch after every n-th) and receivers (for / async for,
    switches after each value) on clones, buffer size 0..3 or inf, and cancellations (cancel or kill) of senders and
    of receivers but the first (which keeps the channel going to its end), made just before or just after the n-th
    send of any sender, at the hand-off.  The values the receivers returned (logged as soon as returned, by cancelled
    receivers too) plus any left in the buffer at the end are exactly the values whose send returned: none lost, none
    duplicated, none made up."""

    def main() -> None:
        s, r = open_memory_channel(size)
        sent: list[Any] = []
        gots: list[list[Any]] = [[] for _ in receivers]
        calls = [0]

        def hook() -> None:  # called by the senders around each send: the cancellations due now
            for at, of_sender, arg in script:
                if at == calls[0] and of_sender:
                    cancel(tx[arg % len(tx)], senders[arg % len(tx)][3])
                elif at == calls[0] and len(rx) > 1:
                    cancel(rx[1 + arg % (len(rx) - 1)], receivers[1 + arg % (len(rx) - 1)][2])
            calls[0] += 1

        rx_ends, tx_ends = [r.clone() for _ in receivers], [s.clone() for _ in senders]
        rx = [start(k, collector(rx_ends[i], gots[i], pause)) for i, (k, pause, _) in enumerate(receivers)]
        tx = [start(k, feeder(tx_ends[p], sent, every, hook), p, n) for p, (k, n, every, _) in enumerate(senders)]
        s.close()  # r stays open, so that whatever is left at the end can be drained
        # Not finish() at once: a stalled program must fail here, not end in the loop's NeverWokenError.
        settle(lambda: all(task.done() for task in tx), rounds=10_000)
        for end in tx_ends:
            end.close()  # a sender cancelled before it started never ran its `with`
        settle(lambda: all(task.done() for task in rx), rounds=10_000)
        finish(tx + rx)
        left = []
        while True:
            try:
                left.append(r.receive_nowait())
            except EndOfChannel:
                break
        received = [value for got in gots for value in got] + left
        assert len(set(received)) == len(received), "a value was received twice"
        assert sorted(received) == sorted(sent), "a value sent was lost, or one not sent was received"
        for rx_end in rx_ends:
            rx_end.close()
        assert r.statistics() == Stats(0, size, 0, 1, 0, 0)

    treadle.run(main)

"""The poll at the heart of each loop iteration: treadle's Poller and how the loop waits.

Compiled, ``Poller.poll`` calls ``epoll_wait`` itself, into an array that it
grows when a poll fills it; as Python it calls ``select.epoll.poll``.  The
suite runs in both forms, so these tests hold for both: every ready
descriptor is reported however many there are, a signal that interrupts a
wait runs its handler (and an exception from the handler leaves the loop),
and a timer less than a millisecond away is waited for, not spun on.
"""

from __future__ import annotations

import collections
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from treadle._core import new_event_loop
from treadle._core.handles import Handle
from treadle._core.poller import Poller


@pytest.fixture
def loop() -> Iterator[Any]:
    lp = new_event_loop()
    try:
        yield lp
    finally:
        lp.close()


@pytest.fixture
def pipes() -> Iterator[list[tuple[int, int]]]:
    made: list[tuple[int, int]] = []
    try:
        yield made
    finally:
        for r, w in made:
            os.close(r)
            os.close(w)


def test_every_ready_descriptor_is_reported_when_there_are_more_than_one_poll_takes(
    loop: Any, pipes: list[tuple[int, int]]
) -> None:
    poller = Poller(maxevents=4)
    try:
        for _ in range(11):
            r, w = os.pipe()
            pipes.append((r, w))
            poller.set_reader(r, Handle(lambda: None, (), loop))
            os.write(w, b"x")
        seen: set[int] = set()
        counts = []
        for _ in range(4):  # level-triggered: the same eleven stay ready
            ready: collections.deque[Any] = collections.deque()
            counts.append(poller.poll(0, ready))
            seen.update(fd for fd, reader, _ in poller.registrations() if reader in ready)
        # 4, then 8 (the array doubled after a full poll), then all 11 in 16.
        assert counts == [4, 8, 11, 11]
        assert seen == {r for r, _ in pipes}
    finally:
        poller.close()


def test_poller_rejects_a_size_below_one() -> None:
    with pytest.raises(ValueError, match="maxevents must be at least 1"):
        Poller(maxevents=0)


def test_a_poll_reports_the_reader_and_the_writer_of_one_descriptor(loop: Any) -> None:
    poller = Poller()
    r, w = os.pipe()
    try:
        reader, writer = Handle(lambda: None, (), loop), Handle(lambda: None, (), loop)
        poller.set_reader(r, reader)
        poller.set_writer(w, writer)
        ready: collections.deque[Any] = collections.deque()
        assert poller.poll(0, ready) == 1 and list(ready) == [writer]
        os.write(w, b"x")
        ready.clear()
        assert poller.poll(0, ready) == 2 and set(ready) == {reader, writer}
    finally:
        poller.close()
        os.close(r)
        os.close(w)


def test_a_closed_poller_refuses_to_poll(loop: Any) -> None:
    poller = Poller()
    poller.close()
    with pytest.raises(ValueError, match="closed Poller"):
        poller.poll(0, collections.deque())


def test_a_signal_during_a_wait_runs_its_handler_and_the_loop_keeps_waiting(loop: Any) -> None:
    got: list[int] = []
    old = signal.signal(signal.SIGALRM, lambda signum, frame: got.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        fired: list[bool] = []
        loop.call_later(0.3, lambda: (fired.append(True), loop.stop()))
        loop.run_forever()  # sleeps in epoll_wait until the timer; SIGALRM interrupts it
        assert got == [signal.SIGALRM] and fired == [True]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class _Alarm(Exception):
    pass


def test_an_exception_from_a_signal_handler_leaves_a_waiting_loop(loop: Any) -> None:
    def handler(signum: int, frame: Any) -> None:
        raise _Alarm

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        guard = loop.call_later(5, loop.stop)  # a hang guard: the alarm must end the wait first
        with pytest.raises(_Alarm):
            loop.run_forever()
        assert not guard.cancelled() and loop.time() < guard.when()
        guard.cancel()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_a_timer_under_a_millisecond_away_is_waited_for_not_spun_on(loop: Any) -> None:
    # The wait is rounded up to whole milliseconds, as select.epoll.poll does;
    # rounded down, it would be 0 and the loop would poll until the deadline.
    poller = loop._poller
    for _ in range(20):
        start = poller.polls
        loop.call_later(0.0004, loop.stop)
        loop.run_forever()
        assert poller.polls - start <= 3


def test_a_loop_waiting_without_a_timeout_is_woken_from_another_thread(loop: Any) -> None:
    woken = threading.Event()
    thread = threading.Timer(0.05, lambda: loop.call_soon_threadsafe(lambda: (woken.set(), loop.stop())))
    thread.start()
    try:
        loop.run_forever()  # nothing scheduled: epoll_wait with no timeout
    finally:
        thread.join()
    assert woken.is_set()

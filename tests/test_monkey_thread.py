"""The thread and queue patches (``patch_thread``, ``patch_queue``), each case in a fresh interpreter.

Each program runs under ``patch_all`` (see ``test_monkey.py`` for the helpers)
and prints ``key=value`` lines.  Every program also reports ``os_threads``: how
many real OS threads its ``threading.Thread`` objects ran in (told apart by the
original ``_thread.get_ident``).  1 shows that they were green tasks; without
the patch it is one per thread, so those tests fail unpatched.

What is checked: ``threading.Thread`` runs its target as a green task
(concurrency, ``join``, ``is_alive``, names, ``main_thread``); ``Lock``
(contention that leaves the loop running, timeouts, non-blocking acquire,
errors, FIFO waiters); ``RLock`` re-entrancy and ownership; ``Condition``,
``Event``, ``Semaphore``; ``threading.local`` per green thread; ``queue.Queue``
and ``queue.SimpleQueue`` between green threads, and their timeouts;
``threading.excepthook``; ``_thread._count``; a green lock shared with a real
OS thread; ``ThreadPoolExecutor``; a target that is not callable.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from .test_monkey import run_program, values

# The start of every program: patch; note the OS thread of every Thread's run();
# a green ticker that records when the loop was free to run it; show() prints.
PRELUDE = """
import threading

main_before_patch = threading.main_thread()
from treadle import monkey

monkey.patch_all()
import time

real_ident = monkey.get_original("_thread", "get_ident")
os_threads = {real_ident()}
_run = threading.Thread.run

def _noting_run(self):
    os_threads.add(real_ident())
    _run(self)

threading.Thread.run = _noting_run
ticks = []
stop_ticking = threading.Event()

def ticker():
    while not stop_ticking.is_set():
        ticks.append(time.monotonic())
        time.sleep(0.01)

def ticks_between(start, end):
    return sum(1 for t in ticks if start <= t <= end)

def show(**items):
    for key, value in items.items():
        print(f"{key}={value}")

def start_all(*targets):
    threads = [threading.Thread(target=target) for target in targets]
    for t in threads:
        t.start()
    return threads

def join_all(threads):
    for t in threads:
        t.join()
"""


def run(tmp_path: Path, body: str, *args: str) -> dict[str, str]:
    """Run ``PRELUDE`` + ``body`` in a fresh interpreter; its ``key=value`` output, with ``os_threads``."""
    source = PRELUDE + textwrap.dedent(body) + "\nshow(os_threads=len(os_threads))\n"
    return values(run_program(tmp_path, source, *args))


def expect(got: dict[str, str], **wanted: str) -> None:
    """The program printed these values (and ran its threads in the main OS thread)."""
    wanted.setdefault("os_threads", "1")
    assert {key: got.get(key) for key in wanted} == wanted, got


def seconds(got: dict[str, str], key: str, low: float, high: float) -> None:
    """A duration the program printed is within [low, high): wide bounds, for concurrency, never speed."""
    assert low <= float(got[key]) < high, (key, got)


# -- threading.Thread -------------------------------------------------------------------------------


def test_threads_run_as_green_tasks_concurrently_and_join_waits(tmp_path: Path) -> None:
    """50 threads sleeping 0.2 s run at once, in green tasks; join waits; names, is_alive, main_thread."""
    got = run(
        tmp_path,
        """
        import greenlet

        main_before = threading.main_thread()
        show(main_kept_by_patch=main_before is main_before_patch)
        show(main_is_current=threading.current_thread() is main_before)
        seen, finished = {}, []

        def work(i):
            seen[i] = (threading.current_thread().name, threading.get_ident(), type(greenlet.getcurrent()).__name__)
            time.sleep(0.2)
            finished.append(i)

        threads = [threading.Thread(target=work, args=(i,), name=f"worker-{i}") for i in range(50)]
        show(alive_before_start=any(t.is_alive() for t in threads))
        start = time.monotonic()
        for t in threads:
            t.start()
        show(alive_after_start=all(t.is_alive() for t in threads), finished_before_join=len(finished))
        threads[0].join(timeout=0.05)
        show(alive_after_join_timeout=threads[0].is_alive())
        join_all(threads)
        show(elapsed=time.monotonic() - start, finished_after_join=len(finished))
        show(alive_after_join=any(t.is_alive() for t in threads))
        show(names_ok=all(seen[i][0] == f"worker-{i}" for i in range(50)))
        show(idents_ok=[seen[i][1] for i in range(50)] == [t.ident for t in threads])
        show(distinct_idents=len({s[1] for s in seen.values()}), kinds=",".join(sorted({s[2] for s in seen.values()})))
        show(main_same=threading.main_thread() is main_before)
        show(main_is_current_after=threading.current_thread() is threading.main_thread())
        show(main_name=threading.current_thread().name)
        """,
    )
    seconds(got, "elapsed", 0.19, 2.0)  # 10 s if the sleeps ran one after the other
    expect(got, main_kept_by_patch="True", main_is_current="True", alive_before_start="False", alive_after_start="True")
    expect(got, finished_before_join="0", alive_after_join_timeout="True", finished_after_join="50")
    expect(got, alive_after_join="False", names_ok="True", idents_ok="True", distinct_idents="50")
    expect(got, kinds="Greenlet", main_same="True", main_is_current_after="True", main_name="MainThread")


# -- locks ------------------------------------------------------------------------------------------


def test_a_contended_lock_blocks_only_the_waiting_green_thread(tmp_path: Path) -> None:
    """A thread waiting 0.3 s for a held Lock lets a ticker thread run; it gets the lock on release."""
    got = run(
        tmp_path,
        """
        lock = threading.Lock()
        times = {}

        def holder():
            with lock:
                times["held"] = time.monotonic()
                time.sleep(0.3)
                times["released"] = time.monotonic()

        def waiter():
            time.sleep(0.05)  # the holder has the lock by now
            times["asked"] = time.monotonic()
            show(locked_when_asked=lock.locked())
            with lock:
                times["got"] = time.monotonic()

        tick, *others = start_all(ticker, holder, waiter)
        join_all(others)
        stop_ticking.set()
        tick.join()
        show(waited=times["got"] - times["asked"], got_after_release=times["got"] >= times["released"])
        show(ticks_while_waiting=ticks_between(times["asked"], times["got"]), type=type(lock).__name__)
        """,
    )
    seconds(got, "waited", 0.1, 2.0)  # about 0.25
    assert int(got["ticks_while_waiting"]) >= 5, got  # about 25: the loop ran while the waiter waited
    expect(got, locked_when_asked="True", got_after_release="True", type="GreenLock")


def test_lock_acquire_timeout_non_blocking_and_releasing_an_unlocked_lock(tmp_path: Path) -> None:
    """acquire(timeout=0.1) on a held lock gives False after about 0.1 s while others run; blocking=False; errors."""
    got = run(
        tmp_path,
        """
        lock = threading.Lock()
        lock.acquire()  # the main program holds it
        result = {}

        def try_for_a_while():
            start = time.monotonic()
            result["acquired"] = lock.acquire(timeout=0.1)
            result["start"], result["end"] = start, time.monotonic()
            result["non_blocking_held"] = lock.acquire(blocking=False)

        tick, attempt = start_all(ticker, try_for_a_while)
        attempt.join()
        show(acquired=result["acquired"], waited=result["end"] - result["start"])
        show(ticks_while_waiting=ticks_between(result["start"], result["end"]))
        show(non_blocking_held=result["non_blocking_held"])
        lock.release()
        show(non_blocking_free=lock.acquire(blocking=False), locked=lock.locked())
        lock.release()
        try:
            lock.release()
        except RuntimeError as exc:
            show(release_unlocked=f"RuntimeError:{exc}")
        try:
            lock.acquire(False, 1.0)
        except ValueError:
            show(timeout_with_non_blocking="ValueError")
        stop_ticking.set()
        tick.join()
        """,
    )
    seconds(got, "waited", 0.09, 1.0)
    assert int(got["ticks_while_waiting"]) >= 3, got  # about 10
    expect(got, acquired="False", non_blocking_held="False", non_blocking_free="True", locked="True")
    expect(got, release_unlocked="RuntimeError:release unlocked lock", timeout_with_non_blocking="ValueError")


def test_lock_waiters_get_the_lock_in_the_order_they_asked(tmp_path: Path) -> None:
    """Five threads queue on a held Lock one after another; they get it in that order."""
    got = run(
        tmp_path,
        """
        lock = threading.Lock()
        asked, served = [], []

        def take(i):
            asked.append(i)
            with lock:
                served.append(i)
                time.sleep(0.01)

        lock.acquire()
        threads = []
        for i in (3, 0, 4, 1, 2):
            threads.append(threading.Thread(target=take, args=(i,)))
            threads[-1].start()
            time.sleep(0.02)  # that thread is waiting before the next one starts
        show(all_waiting=len(asked) == 5 and not served)
        lock.release()
        join_all(threads)
        show(asked=asked, served=served)
        """,
    )
    expect(got, all_waiting="True", asked="[3, 0, 4, 1, 2]", served="[3, 0, 4, 1, 2]")


def test_rlock_is_reentrant_in_a_green_thread_and_owned_by_it(tmp_path: Path) -> None:
    """A green thread takes an RLock three times; another green thread can neither take nor release it meanwhile."""
    got = run(
        tmp_path,
        """
        rlock = threading.RLock()
        holding, checked = threading.Event(), threading.Event()

        def owner():
            show(depth1=rlock.acquire())
            show(depth2=bool(rlock.acquire(blocking=False)))  # 1, not True, from the pure-Python RLock
            with rlock:
                holding.set()
                checked.wait()
            rlock.release()
            rlock.release()
            show(owner_released=True)

        def other():
            holding.wait()
            try:
                rlock.release()
                show(other_release="no error")
            except RuntimeError:
                show(other_release="RuntimeError")
            show(other_non_blocking=rlock.acquire(blocking=False), other_timeout=rlock.acquire(timeout=0.05))
            checked.set()
            start = time.monotonic()
            with rlock:  # waits for the owner's last release
                show(other_got_it_after=time.monotonic() - start)

        join_all(start_all(owner, other))
        show(main_acquire=rlock.acquire(blocking=False))
        rlock.release()
        """,
    )
    seconds(got, "other_got_it_after", 0.0, 1.0)
    expect(got, depth1="True", depth2="True", other_release="RuntimeError", other_non_blocking="False")
    expect(got, other_timeout="False", owner_released="True", main_acquire="True")


# -- Condition, Event, Semaphore, local -------------------------------------------------------------


def test_condition_producer_consumer_between_green_threads(tmp_path: Path) -> None:
    """A consumer waits on a Condition for 200 items a producer notifies one by one; wait(timeout) times out."""
    got = run(
        tmp_path,
        """
        cond = threading.Condition()
        items, received = [], []

        def producer():
            for i in range(200):
                with cond:
                    items.append(i)
                    cond.notify()
                if i % 10 == 0:
                    time.sleep(0.001)

        def consumer():
            while len(received) < 200:
                with cond:
                    while not items:
                        cond.wait()
                    received.append(items.pop(0))

        join_all(start_all(consumer, producer))
        show(in_order=received == list(range(200)))
        with cond:
            start = time.monotonic()
            show(wait_timeout=cond.wait(timeout=0.1), waited=time.monotonic() - start)
            show(wait_for=cond.wait_for(lambda: len(received) == 200, timeout=0.1))
        """,
    )
    seconds(got, "waited", 0.09, 1.0)
    expect(got, in_order="True", wait_timeout="False", wait_for="True")


def test_event_set_by_one_thread_wakes_every_waiter_and_wait_times_out(tmp_path: Path) -> None:
    """Five threads wait on an Event; a sixth sets it after 0.2 s and all wake; wait(0.1) on an unset one is False."""
    got = run(
        tmp_path,
        """
        event = threading.Event()
        woken = []

        def waiter():
            result = event.wait()
            woken.append((result, time.monotonic()))

        def setter():
            time.sleep(0.2)
            show(woken_before_set=len(woken))
            event.set()

        start = time.monotonic()
        join_all(start_all(*[waiter] * 5, setter))
        show(woken=len(woken), results={r for r, _ in woken})
        show(earliest=min(w for _, w in woken) - start, latest=max(w for _, w in woken) - start)
        start = time.monotonic()
        show(timeout_result=threading.Event().wait(0.1), waited=time.monotonic() - start)
        """,
    )
    seconds(got, "earliest", 0.19, 2.0)
    seconds(got, "latest", 0.19, 2.0)
    seconds(got, "waited", 0.09, 1.0)
    expect(got, woken_before_set="0", woken="5", results="{True}", timeout_result="False")


def test_semaphore_lets_two_of_six_threads_in_at_a_time(tmp_path: Path) -> None:
    """Semaphore(2) among 6 green threads sleeping 0.1 s inside: at most 2 at once, and 2 do run at once."""
    got = run(
        tmp_path,
        """
        sem = threading.Semaphore(2)
        inside, most = [], [0]

        def work():
            with sem:
                inside.append(1)
                most[0] = max(most[0], len(inside))
                time.sleep(0.1)
                inside.pop()

        start = time.monotonic()
        join_all(start_all(*[work] * 6))
        show(elapsed=time.monotonic() - start, most=most[0], value_after=sem._value)
        """,
    )
    seconds(got, "elapsed", 0.29, 2.0)  # three rounds of two
    expect(got, most="2", value_after="2")


def test_thread_local_is_per_green_thread(tmp_path: Path) -> None:
    """threading.local: each green thread sees only its own attributes, across switches; the main one's are kept."""
    got = run(
        tmp_path,
        """
        data = threading.local()
        data.value = "main"
        seen = {}

        def work(i):
            seen[i] = [hasattr(data, "value")]
            data.value = i
            time.sleep(0.05)  # the others set theirs meanwhile
            seen[i].append(data.value)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        join_all(threads)
        show(had_value=any(s[0] for s in seen.values()), own_values=all(seen[i][1] == i for i in range(10)))
        show(main_value=data.value, module=type(data).__module__)
        """,
    )
    expect(got, had_value="False", own_values="True", main_value="main", module="_threading_local")


# -- queue ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Queue", "SimpleQueue"])
def test_a_queue_between_a_producer_and_a_consumer_thread(tmp_path: Path, kind: str) -> None:
    """1000 items pass in order; Queue(3) makes the producer wait, task_done/join work; SimpleQueue is pure Python."""
    got = run(
        tmp_path,
        """
        import queue
        import sys

        KIND = sys.argv[1]
        q = queue.Queue(maxsize=3) if KIND == "Queue" else queue.SimpleQueue()
        received, sizes = [], []

        def producer():
            for i in range(1000):
                q.put(i)
                sizes.append(q.qsize())
                if i % 100 == 0:
                    time.sleep(0.001)  # let the queue fill up, or empty
            q.put(None)

        def consumer():
            while (item := q.get()) is not None:
                received.append(item)
                if item % 100 == 50:
                    time.sleep(0.001)
                if KIND == "Queue":
                    q.task_done()
            if KIND == "Queue":
                q.task_done()

        consuming, producing = start_all(consumer, producer)
        producing.join()
        if KIND == "Queue":
            q.join()  # every item, the None too, was marked done
            show(unfinished=q.unfinished_tasks, received_at_join=len(received))
        consuming.join()
        show(in_order=received == list(range(1000)), max_size=max(sizes), empty=q.empty())
        show(pure_python=queue.SimpleQueue is queue._PySimpleQueue)
        """,
        kind,
    )
    expect(got, in_order="True", empty="True", pure_python="True")
    if kind == "Queue":
        expect(got, unfinished="0", received_at_join="1000", max_size="3")


def test_queue_get_and_put_timeouts_let_other_threads_run(tmp_path: Path) -> None:
    """get(timeout=0.1) on an empty Queue and SimpleQueue raises Empty after about 0.1 s, put on a full one Full."""
    got = run(
        tmp_path,
        """
        import queue

        (tick,) = start_all(ticker)
        time.sleep(0.02)
        full = queue.Queue(maxsize=1)
        full.put("x")
        cases = [
            ("queue", queue.Queue().get, queue.Empty),
            ("simple", queue.SimpleQueue().get, queue.Empty),
            ("full", lambda timeout: full.put("y", timeout=timeout), queue.Full),
        ]
        for name, call, error in cases:
            start = time.monotonic()
            try:
                call(timeout=0.1)
                show(**{name: "no error"})
            except error:
                show(**{name: error.__name__})
            end = time.monotonic()
            show(**{f"{name}_waited": end - start, f"{name}_ticks": ticks_between(start, end)})
        stop_ticking.set()
        tick.join()
        """,
    )
    for name in ("queue", "simple", "full"):
        seconds(got, f"{name}_waited", 0.09, 1.0)
        assert int(got[f"{name}_ticks"]) >= 3, got  # about 10: the loop ran while the main program waited
    expect(got, queue="Empty", simple="Empty", full="Full")


# -- errors, counting, real threads, executors ------------------------------------------------------


def test_an_exception_in_a_thread_goes_to_threading_excepthook_and_the_program_goes_on(tmp_path: Path) -> None:
    """A target that raises: threading.excepthook gets its type and thread; other threads and the program go on."""
    got = run(
        tmp_path,
        """
        def hook(args):
            show(hook=f"{args.exc_type.__name__}:{args.exc_value}:{args.thread.name}")

        threading.excepthook = hook

        def fail():
            time.sleep(0.01)
            raise KeyError("boom")

        def fine():
            time.sleep(0.05)
            show(fine="done")

        threads = [threading.Thread(target=fail, name="failing"), threading.Thread(target=fine, name="fine")]
        for t in threads:
            t.start()
        join_all(threads)
        show(alive=[t.is_alive() for t in threads], end="reached")
        """,
    )
    expect(got, hook="KeyError:'boom':failing", fine="done", alive="[False, False]", end="reached")


def test_thread_count_counts_green_threads_and_not_the_executor_workers(tmp_path: Path) -> None:
    """_thread._count() is one more while a green thread runs, then back; getaddrinfo's real workers don't count."""
    got = run(
        tmp_path,
        """
        import _thread
        import socket

        real_count = monkey.get_original("_thread", "_count")
        show(before=_thread._count())
        go = threading.Event()
        (t,) = start_all(go.wait)
        time.sleep(0.01)
        show(during=_thread._count())
        go.set()
        t.join()
        show(after=_thread._count())
        socket.getaddrinfo("localhost", 80)
        show(real_after_dns=real_count(), after_dns=_thread._count())
        """,
    )
    assert int(got["real_after_dns"]) >= 1, got  # the executor's worker, idle but alive
    expect(got, before="0", during="1", after="0", after_dns="0")


def test_a_real_os_thread_and_a_green_thread_share_a_green_lock(tmp_path: Path) -> None:
    """A real thread holds a green Lock 0.3 s; a green thread waits for it while a green ticker ticks, then gets it."""
    got = run(
        tmp_path,
        """
        real_start = monkey.get_original("_thread", "start_new_thread")
        real_sleep = monkey.get_original("time", "sleep")
        real_count = monkey.get_original("_thread", "_count")
        lock = threading.Lock()
        times = {}

        def real_holder():
            times["real_thread"] = real_ident()
            with lock:
                real_sleep(0.3)
                times["released"] = time.monotonic()

        def green_waiter():
            times["asked"] = time.monotonic()
            with lock:
                times["got"] = time.monotonic()

        real_start(real_holder, ())
        while not lock.locked():
            time.sleep(0.005)
        tick, waiting = start_all(ticker, green_waiter)
        waiting.join()
        stop_ticking.set()
        tick.join()
        while real_count():  # the real thread is ending
            time.sleep(0.005)
        show(real_thread_elsewhere=times["real_thread"] not in os_threads)
        show(waited=times["got"] - times["asked"], got_after_release=times["got"] >= times["released"])
        show(ticks_while_waiting=ticks_between(times["asked"], times["got"]))
        """,
    )
    seconds(got, "waited", 0.1, 2.0)  # about 0.25
    assert int(got["ticks_while_waiting"]) >= 5, got  # about 25
    expect(got, real_thread_elsewhere="True", got_after_release="True")


def test_a_real_os_thread_waits_for_a_green_lock_that_a_green_thread_holds(tmp_path: Path) -> None:
    """The other way round: a green thread holds a green Lock for 0.3 s; a real thread waits for it, then gets it."""
    got = run(
        tmp_path,
        """
        real_start = monkey.get_original("_thread", "start_new_thread")
        real_count = monkey.get_original("_thread", "_count")
        lock = threading.Lock()
        times = {}

        def real_waiter():
            try:
                with lock:
                    times["got"] = time.monotonic()
            except BaseException as exc:
                show(error=type(exc).__name__)

        def green_holder():
            with lock:
                real_start(real_waiter, ())
                time.sleep(0.3)
                times["released"] = time.monotonic()

        join_all(start_all(green_holder))
        deadline = time.monotonic() + 10
        while real_count() and time.monotonic() < deadline:
            time.sleep(0.005)
        show(real_thread_ended=real_count() == 0, got_after_release=times.get("got", 0) >= times["released"])
        """,
    )
    assert "error" not in got, got
    expect(got, real_thread_ended="True", got_after_release="True")


def test_thread_pool_executor_workers_are_green_threads(tmp_path: Path) -> None:
    """ThreadPoolExecutor(20).map of 20 calls sleeping 0.1 s: concurrent, results in order, in green threads."""
    got = run(
        tmp_path,
        """
        from concurrent.futures import ThreadPoolExecutor

        def work(i):
            time.sleep(0.1)
            return i * i

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(work, range(20)))
        show(elapsed=time.monotonic() - start, in_order=results == [i * i for i in range(20)])
        """,
    )
    seconds(got, "elapsed", 0.09, 1.5)  # 2 s if the calls ran one after the other
    expect(got, in_order="True")


BAD_TARGET = """
import threading

hooked = []  # printed by the main program: a print in a real thread could interleave with its own


def hook(args):
    hooked.append(f"{args.exc_type.__name__}:{args.thread.name}")


threading.excepthook = hook
t = threading.Thread(target=1, name="bad")
try:
    t.start()
    print("start=returned")
except TypeError:
    print("start=TypeError")
t.join()
print(f"hook={','.join(hooked)}")
print(f"alive={t.is_alive()}")
print("end=reached")
"""


def test_a_thread_with_a_target_that_is_not_callable_fails_as_the_standard_one_does(tmp_path: Path) -> None:
    """Thread(target=1).start(): the standard module reports the TypeError from the thread; treadle does the same."""
    standard = values(run_program(tmp_path / "standard", BAD_TARGET))
    patched = values(run_program(tmp_path / "patched", "from treadle import monkey\nmonkey.patch_all()\n" + BAD_TARGET))
    assert standard == {"start": "returned", "hook": "TypeError:bad", "alive": "False", "end": "reached"}
    assert patched == standard


def test_interrupt_main_from_a_green_thread_raises_keyboard_interrupt_in_the_main_program(tmp_path: Path) -> None:
    """``_thread.interrupt_main()`` in a green thread: KeyboardInterrupt in the main greenlet, not in the thread."""
    got = run(
        tmp_path,
        """
        import _thread

        seen = []


        def worker():
            _thread.interrupt_main()
            seen.append("worker finished")


        t = threading.Thread(target=worker)
        try:
            t.start()
            t.join()
        except KeyboardInterrupt:
            print("main_interrupted=True")
        t.join()
        print("worker=" + ",".join(seen))
        print("alive=" + str(t.is_alive()))
        """,
    )
    expect(got, main_interrupted="True", worker="worker finished", alive="False")


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="3.13's lock type can be instantiated")
def test_the_green_lock_type_cannot_be_instantiated_directly_as_the_standard_one(tmp_path: Path) -> None:
    got = run(
        tmp_path,
        """
        import _thread

        lock_type = type(threading.Lock())
        try:
            lock_type()
        except TypeError as exc:
            print("error=" + str(exc))
        print("is_lock_type=" + str(lock_type is _thread.LockType))
        """,
    )
    assert got["error"] == "cannot create 'treadle.monkey.greenthread.GreenLock' instances"
    assert got["is_lock_type"] == "True"


def test_the_green_lock_type_cannot_be_subclassed_as_the_standard_one(tmp_path: Path) -> None:
    got = run(
        tmp_path,
        """
        try:
            class MyLock(type(threading.Lock())):
                pass
        except TypeError as exc:
            print("error=" + str(exc))
        """,
    )
    assert "is not an acceptable base type" in got["error"], got


def test_a_thread_patch_that_fails_half_way_leaves_both_modules_unpatched(tmp_path: Path) -> None:
    """``_thread`` is patched first; if ``threading`` then refuses a name, ``_thread`` is put back too."""
    lines = run_program(
        tmp_path,
        """
        import _thread
        import threading
        import types

        originals = (_thread.allocate_lock, _thread.get_ident, _thread.start_new_thread, threading.Lock)


        class Guarded(types.ModuleType):
            def __setattr__(self, name, value):
                if name == "local":
                    raise AttributeError("threading.local is read-only here")
                super().__setattr__(name, value)


        threading.__class__ = Guarded
        from treadle import monkey

        try:
            monkey.patch_thread()
        except AttributeError as exc:
            print("error=" + str(exc))
        now = (_thread.allocate_lock, _thread.get_ident, _thread.start_new_thread, threading.Lock)
        print("unchanged=" + str(all(a is b for a, b in zip(originals, now))))
        print("patched=" + ",".join(monkey.patched_modules()))
        """,
    )
    got = values(lines)
    assert got["error"] == "threading.local is read-only here"
    assert got["unchanged"] == "True"
    assert got["patched"] == ""

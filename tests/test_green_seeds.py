"""The seeds' gevent, greenlet and generator programs, rewritten with treadle, run as real scripts.

Each program runs in a fresh interpreter (``sys.executable`` on a temporary file), so
what is tested is a plain script's top level: no ``treadle.run``, the main greenlet
blocks in ``join``/``joinall``/``sleep`` and the hub greenlet starts by itself, as
gevent's does.  Each test asserts the exact output the seed shows (with treadle's
names where gevent printed its own) and, where the seed's point is timing, the
wall time measured inside the program.

The seed programs that need ``monkey.patch_all()`` to make ``time.sleep`` or sockets
switch (seed 001's patched work1/work2, all of seed 002) wait for the monkey patcher
and are not here.  Sleeps are shortened wherever their length is not the point.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TIMEOUT = 60.0


def run_program(tmp_path: Path, source: str) -> list[str]:
    """Run ``source`` as a script in a new interpreter; return its output lines (it must exit 0, silently)."""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-X", "dev", str(script)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, f"exit status {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.stderr == "", proc.stderr
    return proc.stdout.splitlines()


def split_elapsed(lines: list[str], prefix: str) -> tuple[list[str], float]:
    """The output without its last line, and the seconds that last line (``prefix`` + number) reports."""
    assert lines and lines[-1].startswith(prefix), lines
    return lines[:-1], float(lines[-1][len(prefix) :])


# -- seed 000: "gevent 实现协程, 实现方式1": two tasks sleeping 1 s and 0.5 s ---------------


def test_seed000_two_sleeping_tasks_run_concurrently(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        import time

        import treadle


        def task1():
            print("task1 start ---->")
            treadle.sleep(1)
            print("task1 end ---->")


        def task2():
            print("task2 start ---->")
            treadle.sleep(0.5)
            print("task2 end ---->")


        if __name__ == "__main__":
            s_time = time.time()
            g1 = treadle.spawn(task1)
            g2 = treadle.spawn(task2)

            treadle.joinall([g1, g2])

            print("=====use time is: %s" % (time.time() - s_time))
            assert g1.successful() and g2.successful()
        """,
    )
    output, elapsed = split_elapsed(lines, "=====use time is: ")
    assert output == ["task1 start ---->", "task2 start ---->", "task2 end ---->", "task1 end ---->"]
    # Concurrent: the longest sleep, not the sum of both (1.5 s).
    assert 0.9 <= elapsed <= 1.5, elapsed


def test_seed000_two_sleeping_tasks_with_time_ctime_lines(tmp_path: Path) -> None:
    """The seed prints ``time.ctime()`` on each line: start times equal, ends within a second."""
    lines = run_program(
        tmp_path,
        """
        import time

        import treadle


        def task(name, seconds):
            print(name, "start", time.time())
            treadle.sleep(seconds)
            print(name, "end", time.time())


        g1 = treadle.spawn(task, "task1", 1)
        g2 = treadle.spawn(task, "task2", 0.5)
        treadle.joinall([g1, g2])
        """,
    )
    events = [(line.split()[0], line.split()[1], float(line.split()[2])) for line in lines]
    assert [(name, what) for name, what, _ in events] == [
        ("task1", "start"),
        ("task2", "start"),
        ("task2", "end"),
        ("task1", "end"),
    ]
    t1_start, t2_start, t2_end, t1_end = (t for _, _, t in events)
    # Both started before either slept; each slept its own time, side by side.
    assert t2_start - t1_start < 0.4
    assert 0.45 <= t2_end - t2_start <= 1.0
    assert 0.9 <= t1_end - t1_start <= 1.5
    assert t1_end - t2_start < 1.5


# -- seed 000: greenlet 实现方式1 and 2, raw greenlets beside treadle -----------------------


def test_seed000_raw_greenlets_switch_as_the_seed_shows(tmp_path: Path) -> None:
    """task1 switches to task2, which switches back; task1 ends and returns to main: task2 never ends."""
    lines = run_program(
        tmp_path,
        """
        import time
        from greenlet import greenlet

        import treadle


        def task1():
            print("task1 start ---->")
            g2.switch()
            time.sleep(0.05)
            print("task1 end ---->")


        def task2():
            print("task2 start ---->")
            g1.switch()

            time.sleep(0.03)

            print("task2 end ---->")


        def green(n):
            print("green", n)
            treadle.sleep(0)
            print("green", n, "again")
            return n


        if __name__ == "__main__":
            # treadle tasks before, between and after the raw greenlets.
            before = treadle.spawn(green, 1)
            print("joined", treadle.joinall([before])[0].get())

            g1 = greenlet(task1)
            g2 = greenlet(task2)

            g1.switch()

            print("===== back in main", g1.dead, g2.dead)
            after = [treadle.spawn(green, 2), treadle.spawn(green, 3)]
            print("joined", [g.get() for g in treadle.joinall(after)])
        """,
    )
    assert lines == [
        "green 1",
        "green 1 again",
        "joined 1",
        "task1 start ---->",
        "task2 start ---->",
        "task1 end ---->",
        "===== back in main True False",
        "green 2",
        "green 3",
        "green 2 again",
        "green 3 again",
        "joined [2, 3]",
    ]


def test_seed000_raw_greenlet_producer_consumer_with_queue(tmp_path: Path) -> None:
    """The seed's gp/gc pair with queue.Queue and explicit switches, as written (short sleeps)."""
    lines = run_program(
        tmp_path,
        """
        import time
        import queue
        from greenlet import greenlet

        import treadle

        que = queue.Queue()


        def producer(name):

            n = 0

            while n < 10:
                n += 1

                print("[producer: %s ]-->%s" % (name, n))

                que.put(n)

                gc.switch("顾客xxx")

                time.sleep(0.005)


        def consumer(name):
            while True:
                if not que.empty():
                    data = que.get()
                    print("[consumer: %s ]<-- %s" % (name, data))
                    gp.switch()
                time.sleep(0.01)


        if __name__ == "__main__":
            gp = greenlet(producer)
            gc = greenlet(consumer)

            gp.switch("厂商xxxx")

            print("=====done", gp.dead, gc.dead)
            # treadle still works in this process afterwards.
            print(treadle.spawn(lambda: treadle.sleep(0, "green ok")).get())
        """,
    )
    expected = []
    for n in range(1, 11):
        expected += [f"[producer: 厂商xxxx ]-->{n}", f"[consumer: 顾客xxx ]<-- {n}"]
    assert lines == [*expected, "=====done True False", "green ok"]


def test_seed000_raw_greenlets_using_treadle_sleep_beside_a_green_task(tmp_path: Path) -> None:
    """The gp/gc pair with treadle.sleep instead of time.sleep: a green task runs while they sleep."""
    lines = run_program(
        tmp_path,
        """
        import queue
        from greenlet import greenlet

        import treadle

        que = queue.Queue()
        log = []


        def producer(name):
            n = 0
            while n < 3:
                n += 1
                print("[producer: %s ]-->%s" % (name, n))
                que.put(n)
                gc.switch("顾客xxx")
                treadle.sleep(0.02)


        def consumer(name):
            while True:
                if not que.empty():
                    data = que.get()
                    print("[consumer: %s ]<-- %s" % (name, data))
                    gp.switch()
                treadle.sleep(0.01)


        def ticker():
            # Runs while the raw greenlets sleep in treadle.sleep.
            for i in range(3):
                print("tick", i)
                treadle.sleep(0.001)
            return "ticked"


        if __name__ == "__main__":
            t = treadle.spawn(ticker)
            gp = greenlet(producer)
            gc = greenlet(consumer)

            gp.switch("厂商xxxx")

            print("=====done", gp.dead)
            print(t.get())
        """,
    )
    producer_consumer = [line for line in lines if line.startswith("[")]
    expected = []
    for n in range(1, 4):
        expected += [f"[producer: 厂商xxxx ]-->{n}", f"[consumer: 顾客xxx ]<-- {n}"]
    assert producer_consumer == expected
    # The green task ran while the raw greenlets slept in treadle.sleep, before they were done.
    assert [line for line in lines if line.startswith("tick ")] == ["tick 0", "tick 1", "tick 2"]
    assert lines.index("tick 2") < lines.index("=====done True")
    assert lines[-2:] == ["=====done True", "ticked"]


# -- seed 000/003: generator coroutines -----------------------------------------------------


def test_seed000_generator_producer_consumer_with_send_inside_a_green_task(tmp_path: Path) -> None:
    """The seed's yield-based producer/consumer, run in green tasks; the consumer's sleep is treadle's."""
    lines = run_program(
        tmp_path,
        """
        import treadle


        def producer(con, tag):

            next(con)

            n = 0

            while n < 3:
                n += 1
                print("[producer%s]-->%s" % (tag, n))

                cr = con.send(n)

                print("[producer%s] consumer return:%s" % (tag, cr))

            con.close()


        def consumer(tag):

            r = None

            while True:
                n = yield r

                print("[consumer%s]<-- %s" % (tag, n))

                treadle.sleep(0.01)  # the seed's time.sleep(1): switches the whole green task

                r = "ok"


        if __name__ == "__main__":
            # Plain, as in the seed (no green task).
            con = consumer("")
            producer(con, "")
            # Two pairs in two green tasks: their sleeps inside send() let each other run.
            treadle.joinall([treadle.spawn(producer, consumer(t), t) for t in ("A", "B")])
        """,
    )
    plain = []
    for n in range(1, 4):
        plain += [f"[producer]-->{n}", f"[consumer]<-- {n}", "[producer] consumer return:ok"]
    assert lines[:9] == plain
    both = lines[9:]
    for tag in ("A", "B"):
        mine = [line for line in both if tag in line]
        assert mine == [
            line.replace("[producer]", f"[producer{tag}]").replace("[consumer]", f"[consumer{tag}]") for line in plain
        ]
    # Interleaved: B's first line comes before A's consumer finishes its first sleep.
    assert both[:4] == ["[producerA]-->1", "[consumerA]<-- 1", "[producerB]-->1", "[consumerB]<-- 1"]


def test_seed003_generators_with_next_and_send(tmp_path: Path) -> None:
    """seed 003's foo()/next()/send() and produce/consumer, plain generators in a script that uses treadle."""
    lines = run_program(
        tmp_path,
        """
        import treadle


        def foo():
            print("starting...")
            while True:
                res = yield 4
                print("res", res)


        def produce(c):
            for i in range(1, 4):
                print("生产者生产产品%d" % i)
                c.send(str(i))


        def consumer():
            while True:
                res = yield
                print("消费者消费产品", res)


        def main():
            g = foo()
            print(next(g))
            print("*" * 20)
            print(next(g))
            print(g.send(10))
            c = consumer()
            next(c)
            produce(c)
            return "main done"


        # The same program as a green task, then as treadle.run's main function.
        print(treadle.spawn(main).get())
        print(treadle.run(main))
        """,
    )
    once = [
        "starting...",
        "4",
        "********************",
        "res None",
        "4",
        "res 10",
        "4",
        "生产者生产产品1",
        "消费者消费产品 1",
        "生产者生产产品2",
        "消费者消费产品 2",
        "生产者生产产品3",
        "消费者消费产品 3",
        "main done",
    ]
    assert lines == once + once


def test_seed003_bare_yield_generators_alternate_as_treadle_tasks(tmp_path: Path) -> None:
    """seed 003's A/B pair (B drives A with __next__) as two generator tasks: a bare yield lets the other run."""
    lines = run_program(
        tmp_path,
        """
        import treadle


        def A(n):
            for _ in range(n):
                print("---A---")
                yield
            return "A done"


        def B(n):
            for _ in range(n):
                print("---b---")
                yield
            return "b done"


        if __name__ == "__main__":
            a = treadle.spawn(A, 3)
            b = treadle.spawn(B, 3)
            print(type(a).__name__, type(b).__name__)
            print([t.get() for t in treadle.joinall([a, b])])
        """,
    )
    assert lines == [
        "GeneratorTask GeneratorTask",
        "---A---",
        "---b---",
        "---A---",
        "---b---",
        "---A---",
        "---b---",
        "['A done', 'b done']",
    ]


def test_seed003_producer_consumer_as_generator_tasks(tmp_path: Path) -> None:
    """seed 003's produce/consumer with ``x = yield aw`` on an asyncio.Queue; the return value is the result."""
    lines = run_program(
        tmp_path,
        """
        import asyncio

        import treadle


        def produce(q):
            for i in range(1, 4):
                print("生产者生产产品%d" % i)
                yield q.put(str(i))
            yield q.put(None)
            return "produced 3"


        def consumer(q):
            got = []
            while True:
                res = yield q.get()
                if res is None:
                    return got
                print("消费者消费产品", res)
                got.append(res)


        def main():
            q = asyncio.Queue(maxsize=1)
            c = treadle.spawn(consumer, q)
            p = treadle.spawn(produce, q)
            return p.get(), c.get()


        if __name__ == "__main__":
            # In a script's main greenlet, then as treadle.run's generator function and plain function.
            q = asyncio.Queue(maxsize=1)
            c = treadle.spawn(consumer, q)
            p = treadle.spawn(produce, q)
            treadle.joinall([p, c])
            print(p.value, c.value)


            def main_gen():
                q = asyncio.Queue(maxsize=1)
                c = treadle.spawn(consumer, q)
                produced = yield treadle.spawn(produce, q)
                consumed = yield c
                return produced, consumed


            print(treadle.run(main_gen))
            print(treadle.run(main))
        """,
    )
    once = [
        "生产者生产产品1",
        "生产者生产产品2",
        "消费者消费产品 1",
        "生产者生产产品3",
        "消费者消费产品 2",
        "消费者消费产品 3",
    ]
    assert lines == [
        *once,
        "produced 3 ['1', '2', '3']",
        *once,
        "('produced 3', ['1', '2', '3'])",
        *once,
        "('produced 3', ['1', '2', '3'])",
    ]


def test_generator_task_yield_await_result_and_bare_yield(tmp_path: Path) -> None:
    """``x = yield aw`` gets aw's result, exceptions are thrown in at the yield, and return is the result."""
    lines = run_program(
        tmp_path,
        """
        import asyncio

        import treadle


        async def double(x):
            await asyncio.sleep(0)
            return 2 * x


        async def fail():
            raise KeyError("from the awaitable")


        def green_triple(x):
            treadle.sleep(0)
            return 3 * x


        def gen(x):
            a = yield double(x)                          # a coroutine
            b = yield treadle.spawn(green_triple, a)     # a green task
            c = yield asyncio.sleep(0, "slept")          # any awaitable
            d = yield                                    # a bare yield: None back
            try:
                yield fail()
            except KeyError as exc:
                e = exc.args[0]
            return a, b, c, d, e


        print(treadle.run(gen, 5))
        print(treadle.spawn(gen, 7).get())
        """,
    )
    assert lines == [
        "(10, 30, 'slept', None, 'from the awaitable')",
        "(14, 42, 'slept', None, 'from the awaitable')",
    ]


# -- seed 001: gevent.spawn/join, with and without a switch point --------------------------


def parse_current(lines: list[str]) -> list[tuple[str, int]]:
    """``print(getcurrent(), i)`` lines as (task repr, i)."""
    out = []
    for line in lines:
        who, _, i = line.rpartition(" ")
        out.append((who, int(i)))
    return out


def test_seed001_three_tasks_without_a_switch_point_run_one_after_another(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        import treadle

        def f(n):
            for i in range(n):
                print(treadle.getcurrent(), i)

        g1 = treadle.spawn(f, 5)
        g2 = treadle.spawn(f, 5)
        g3 = treadle.spawn(f, 5)
        g1.join()
        g2.join()
        g3.join()
        print("names", g1.name, g2.name, g3.name)
        """,
    )
    names = lines[-1].split()[1:]
    assert len(set(names)) == 3
    rows = parse_current(lines[:-1])
    assert [i for _, i in rows] == [0, 1, 2, 3, 4] * 3
    # Not interleaved: each task's five lines together, in spawn order, and getcurrent() is the task.
    for k, name in enumerate(names):
        block = {who for who, _ in rows[5 * k : 5 * k + 5]}
        assert len(block) == 1 and repr(name) in block.pop(), (name, rows)


def test_seed001_sleep_switches_between_three_tasks_round_robin(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        import treadle

        def f(n):
            for i in range(n):
                print(treadle.getcurrent(), i)
                # the seed's gevent.sleep(1), shortened
                treadle.sleep(0.01)

        g1 = treadle.spawn(f, 5)
        g2 = treadle.spawn(f, 5)
        g3 = treadle.spawn(f, 5)
        g1.join()
        g2.join()
        g3.join()
        print("names", g1.name, g2.name, g3.name)
        """,
    )
    names = lines[-1].split()[1:]
    rows = parse_current(lines[:-1])
    assert len(rows) == 15
    # Interleaved: each round, every task prints once, in spawn order.
    for k, (who, i) in enumerate(rows):
        assert i == k // 3
        assert repr(names[k % 3]) in who, rows


def test_seed001_unpatched_time_sleep_does_not_switch(tmp_path: Path) -> None:
    """The seed's work1/work2 without patch_all: time.sleep blocks, so the tasks run one after another."""
    lines = run_program(
        tmp_path,
        """
        import random
        import time

        import treadle

        def coroutine_work(coroutine_name):
            for i in range(10):
                print(coroutine_name, i)
                time.sleep(random.random() / 200)

        treadle.joinall([
            treadle.spawn(coroutine_work, "work1"),
            treadle.spawn(coroutine_work, "work2"),
        ])
        """,
    )
    assert lines == [f"work1 {i}" for i in range(10)] + [f"work2 {i}" for i in range(10)]


# -- seed 004: greenlet switch, and gevent.sleep(0) ----------------------------------------


def test_seed004_greenlet_switch_prints_in_order(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        import greenlet

        import treadle


        def fun1():
            print("12")
            gr2.switch()
            print("56")
            gr2.switch()

        def fun2():
            print("34")
            gr1.switch()
            print("78")


        gr1 = greenlet.greenlet(fun1)
        gr2 = greenlet.greenlet(fun2)
        gr1.switch()

        # The same raw greenlets again, this time inside a green task, beside another green task.
        def other():
            print("other")
            treadle.sleep(0)
            print("other again")

        def inside():
            global gr1, gr2
            gr1 = greenlet.greenlet(fun1)
            gr2 = greenlet.greenlet(fun2)
            gr1.switch()
            treadle.sleep(0)
            return "inside done"

        o = treadle.spawn(other)
        print(treadle.spawn(inside).get(), o.dead)
        """,
    )
    assert lines == ["12", "34", "56", "78", "other", "12", "34", "56", "78", "other again", "inside done True"]


def test_seed004_sleep_zero_interleaves_two_tasks_line_by_line(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        import treadle

        def fun1():
            print("www.baidu.com")   # 第一步
            treadle.sleep(0)
            print("end the baidu.com")  # 第三步

        def fun2():
            print("www.zhihu.com")   # 第二步
            treadle.sleep(0)
            print("end th zhihu.com")  # 第四步

        treadle.joinall([
            treadle.spawn(fun1),
            treadle.spawn(fun2),
        ])
        """,
    )
    assert lines == ["www.baidu.com", "www.zhihu.com", "end the baidu.com", "end th zhihu.com"]


@pytest.mark.parametrize("rounds", [1, 5])
def test_sleep_zero_interleaves_for_many_rounds(tmp_path: Path, rounds: int) -> None:
    lines = run_program(
        tmp_path,
        f"""
        import treadle

        def f(name):
            for i in range({rounds}):
                print(name, i)
                treadle.sleep(0)

        treadle.joinall([treadle.spawn(f, "a"), treadle.spawn(f, "b")])
        """,
    )
    assert lines == [f"{name} {i}" for i in range(rounds) for name in ("a", "b")]

"""Several green tasks waiting on one descriptor, and the selector classes patched in place.

Each program runs in a fresh interpreter under ``patch_all`` (see
``test_monkey.py`` for the helpers).  What is checked: every task waiting on
one descriptor (``select``, ``poll``, each selector class, a socket's own
``recv``) wakes when it becomes ready, not at its timeout; closing a socket
wakes a ``select`` on it with an error; ``PollSelector`` and
``SelectSelector`` wait on the hub even when a module took the class before
patching (``socketserver``); ``EpollSelector`` is gone, as ``select.epoll``;
and the pipes of ``subprocess.Popen`` (``proc.stdout.read()``,
``proc.stdin.write()``, ``readline`` in text mode) block only their task,
lose no byte, and leave ``Popen`` the standard class.
"""

from __future__ import annotations

from pathlib import Path

from .test_monkey import run_program, values


def test_every_task_waiting_on_one_descriptor_wakes_when_it_is_ready(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        from treadle import monkey

        monkey.patch_all()
        import select
        import selectors
        import socket
        import time

        import treadle

        a, b = socket.socketpair()
        woke = {}


        def with_select():
            select.select([a], [], [], 5)


        def with_poll():
            p = select.poll()
            p.register(a, select.POLLIN)
            p.poll(5000)


        def with_selector(cls):
            def wait():
                with cls() as sel:
                    sel.register(a, selectors.EVENT_READ)
                    sel.select(5)
            return wait


        def timed(name, fn):
            t0 = time.monotonic()
            fn()
            woke[name] = time.monotonic() - t0


        waits = {
            "select": with_select,
            "poll": with_poll,
            "PollSelector": with_selector(selectors.PollSelector),
            "SelectSelector": with_selector(selectors.SelectSelector),
            "DefaultSelector": with_selector(selectors.DefaultSelector),
        }
        tasks = [treadle.spawn(timed, name, fn) for name, fn in waits.items()]
        treadle.sleep(0.2)
        b.send(b"x")
        treadle.joinall(tasks, raise_error=True)
        for name, took in sorted(woke.items()):
            print(f"{name}={took:.3f}")
        a.close()
        b.close()
        """,
    )
    got = values(lines)
    assert sorted(got) == ["DefaultSelector", "PollSelector", "SelectSelector", "poll", "select"]
    for name, took in got.items():
        assert 0.15 <= float(took) < 2.0, (name, took)


def test_select_and_recv_on_one_socket_both_wake(tmp_path: Path) -> None:
    """One task selects on a socket while another is blocked in its recv(): both see the data."""
    lines = run_program(
        tmp_path,
        """
        from treadle import monkey

        monkey.patch_all()
        import select
        import socket
        import time

        import treadle

        a, b = socket.socketpair()
        a.settimeout(5)


        def selecting():
            t0 = time.monotonic()
            r, _, _ = select.select([a], [], [], 5)
            print(f"select={r == [a]} {time.monotonic() - t0:.3f}")


        def receiving():
            t0 = time.monotonic()
            data = a.recv(10)
            print(f"recv={data!r} {time.monotonic() - t0:.3f}")


        tasks = [treadle.spawn(selecting), treadle.spawn(receiving)]
        treadle.sleep(0.2)
        b.send(b"hello")
        treadle.joinall(tasks, raise_error=True)
        a.close()
        b.close()
        """,
    )
    got = values(lines)
    ok, took = got["select"].split()
    assert ok == "True" and 0.15 <= float(took) < 2.0, got
    data, took = got["recv"].split()
    assert data == "b'hello'" and 0.15 <= float(took) < 2.0, got


def test_closing_a_socket_wakes_a_select_on_it_with_an_error(tmp_path: Path) -> None:
    lines = run_program(
        tmp_path,
        """
        from treadle import monkey

        monkey.patch_all()
        import select
        import socket
        import time

        import treadle

        a, b = socket.socketpair()


        def selecting():
            t0 = time.monotonic()
            try:
                select.select([a], [], [], 5)
            except OSError as exc:
                print(f"error={exc.errno} {time.monotonic() - t0:.3f}")
            else:
                print("error=none")


        task = treadle.spawn(selecting)
        treadle.sleep(0.1)
        a.close()
        task.join()
        b.close()
        """,
    )
    import errno

    error, took = values(lines)["error"].split()
    assert int(error) == errno.EBADF
    assert float(took) < 2.0


def test_socketserver_taken_before_patching_serves_green(tmp_path: Path) -> None:
    """socketserver binds PollSelector at import; imported before patch_all, its server still waits green."""
    lines = run_program(
        tmp_path,
        """
        import socketserver  # before patching: it keeps selectors.PollSelector

        from treadle import monkey

        monkey.patch_all()
        import selectors
        import socket
        import threading
        import time

        import treadle

        print("epoll_selector=" + str(hasattr(selectors, "EpollSelector")))
        print("server_selector=" + socketserver._ServerSelector.__name__)


        class Echo(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.sendall(self.request.recv(100))


        ticks = 0
        running = True


        def ticker():
            global ticks
            while running:
                ticks += 1
                time.sleep(0.01)


        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
        serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 5})
        serving.start()
        tick = treadle.spawn(ticker)
        time.sleep(0.2)
        with socket.create_connection(server.server_address, timeout=5) as c:
            c.sendall(b"ping")
            print("echo=" + repr(c.recv(100)))
        t0 = time.monotonic()
        server.shutdown()
        print(f"shutdown={time.monotonic() - t0:.3f}")
        serving.join()
        server.server_close()
        running = False
        tick.join()
        print("ticks=" + str(ticks))
        """,
    )
    got = values(lines)
    assert got["epoll_selector"] == "False"
    assert got["server_selector"] == "PollSelector"
    assert got["echo"] == "b'ping'"
    # shutdown() waits for serve_forever to notice: with a green selector,
    # at most one poll interval, and the ticker kept running meanwhile.
    assert float(got["shutdown"]) < 6.0
    assert int(got["ticks"]) >= 10, got


_PIPE_TICKER = """
from treadle import monkey

monkey.patch_all()
import subprocess
import sys
import time

import treadle

ticks = 0
running = True


def ticker():
    global ticks
    while running:
        ticks += 1
        time.sleep(0.01)


tick = treadle.spawn(ticker)
"""

_PIPE_STOP = """
running = False
tick.join()
"""


def test_reading_a_pipe_to_its_end_blocks_only_the_reading_task(tmp_path: Path) -> None:
    """A child writes 1 MiB in pieces over 0.4 s; ``stdout.read()`` returns all of it while a ticker runs."""
    lines = run_program(
        tmp_path,
        _PIPE_TICKER
        + """
child = (
    "import sys, time\\n"
    "for i in range(8):\\n"
    "    sys.stdout.buffer.write(bytes([65 + i]) * 131072); sys.stdout.flush(); time.sleep(0.05)\\n"
)
n0 = ticks
with subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE) as proc:
    data = proc.stdout.read()
print("size=" + str(len(data)))
print("intact=" + str(data == b"".join(bytes([65 + i]) * 131072 for i in range(8))))
print("ticks=" + str(ticks - n0))
print("status=" + str(proc.returncode))
print("class=" + type(proc).__module__ + "." + type(proc).__qualname__)
print("repr=" + repr(proc).split(":")[0])
"""
        + _PIPE_STOP,
    )
    got = values(lines)
    assert got["size"] == str(8 * 131072)
    assert got["intact"] == "True"
    assert int(got["ticks"]) >= 10, got  # about 40 if the read let the ticker run
    assert got["status"] == "0"
    assert got["class"] == "subprocess.Popen"
    assert got["repr"] == "<Popen"


def test_writing_a_pipe_blocks_only_the_writing_task_and_delivers_every_byte(tmp_path: Path) -> None:
    """4 MiB written to a child that reads slowly: the writer waits on the hub, the child gets it all."""
    lines = run_program(
        tmp_path,
        _PIPE_TICKER
        + """
import hashlib

child = (
    "import hashlib, sys, time\\n"
    "h = hashlib.sha256(); n = 0\\n"
    "while True:\\n"
    "    chunk = sys.stdin.buffer.read1(65536)\\n"
    "    if not chunk: break\\n"
    "    h.update(chunk); n += len(chunk); time.sleep(0.005)\\n"
    "print(n, h.hexdigest())\\n"
)
payload = bytes(range(256)) * (4 * 4096)
n0 = ticks
proc = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
proc.stdin.write(payload)
proc.stdin.close()
print("write_ticks=" + str(ticks - n0))
answer = proc.stdout.read().split()
proc.stdout.close()
proc.wait()
print("size=" + answer[0].decode())
print("digest=" + str(answer[1].decode() == hashlib.sha256(payload).hexdigest()))
"""
        + _PIPE_STOP,
    )
    got = values(lines)
    assert got["size"] == str(4 * 1024 * 1024)
    assert got["digest"] == "True"
    assert int(got["write_ticks"]) >= 5, got


def test_two_tasks_read_lines_from_their_own_children_in_text_mode(tmp_path: Path) -> None:
    """Two children print a line every 0.05 s; two tasks reading ``readline()`` interleave."""
    lines = run_program(
        tmp_path,
        _PIPE_TICKER
        + """
child = "import sys, time\\nfor i in range(5):\\n    print(sys.argv[1], i, flush=True); time.sleep(0.05)\\n"
order = []


def reader(name):
    with subprocess.Popen([sys.executable, "-c", child, name], stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            order.append(line.split()[0])
            assert line.startswith(name + " ") and line.endswith("\\n"), line
    return proc.returncode


tasks = [treadle.spawn(reader, "a"), treadle.spawn(reader, "b")]
treadle.joinall(tasks, raise_error=True)
print("status=" + str([t.get() for t in tasks]))
print("order=" + "".join(order))
"""
        + _PIPE_STOP,
    )
    got = values(lines)
    assert got["status"] == "[0, 0]"
    order = got["order"]
    assert sorted(order) == sorted("aaaaabbbbb")
    # Interleaved: neither reader ran to its end before the other started.
    assert order.index("b") < order.rindex("a") and order.index("a") < order.rindex("b"), order


def test_patch_subprocess_alone_makes_popen_wait_block_only_its_task(tmp_path: Path) -> None:
    """Without the os patch: ``Popen.wait()`` (which calls ``os.waitpid``) still waits on the hub."""
    lines = run_program(
        tmp_path,
        """
        from treadle import monkey

        monkey.patch_subprocess()
        import subprocess
        import sys
        import time

        import treadle

        ticks = 0


        def ticker():
            global ticks
            for _ in range(200):
                ticks += 1
                treadle.sleep(0.01)


        tick = treadle.spawn(ticker)
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.4)"])
        n0 = ticks
        print("status=" + str(proc.wait()))
        print("ticks=" + str(ticks - n0))
        print("patched=" + ",".join(monkey.patched_modules()))
        tick.kill()
        """,
    )
    got = values(lines)
    assert got["status"] == "0"
    assert got["patched"] == "subprocess"
    assert int(got["ticks"]) >= 10, got  # about 40 if wait() let the ticker run


def test_a_pipe_handed_to_another_child_stays_blocking_for_it(tmp_path: Path) -> None:
    """``stdin=proc1.stdout``: the second child reads a blocking pipe, as without the patcher, and gets every byte."""
    lines = run_program(
        tmp_path,
        """
        from treadle import monkey

        monkey.patch_all()
        import subprocess
        import sys

        first = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; time.sleep(0.2); sys.stdout.write('hello' * 20000)"],
            stdout=subprocess.PIPE,
        )
        reader = "import os, sys; print(os.get_blocking(0)); print(len(sys.stdin.buffer.read()))"
        second = subprocess.Popen([sys.executable, "-c", reader], stdin=first.stdout, stdout=subprocess.PIPE)
        first.stdout.close()
        out, _ = second.communicate()
        first.wait()
        blocking, size = out.decode().split()
        print("child_sees_blocking=" + blocking)
        print("size=" + size)
        print("status=" + str((first.returncode, second.returncode)))
        """,
    )
    got = values(lines)
    assert got["child_sees_blocking"] == "True"
    assert got["size"] == str(5 * 20000)
    assert got["status"] == "(0, 0)"

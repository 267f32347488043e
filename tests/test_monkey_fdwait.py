"""Several green tasks waiting on one descriptor, and the selector classes patched in place.

Each program runs in a fresh interpreter under ``patch_all`` (see
``test_monkey.py`` for the helpers).  What is checked: every task waiting on
one descriptor (``select``, ``poll``, each selector class, a socket's own
``recv``) wakes when it becomes ready, not at its timeout; closing a socket
wakes a ``select`` on it with an error; ``PollSelector`` and
``SelectSelector`` wait on the hub even when a module took the class before
patching (``socketserver``); ``EpollSelector`` is gone, as ``select.epoll``.
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

"""Instructions per echo round trip, counted by callgrind: stable where wall time is not.

Run: ``python bench/callgrind_echo.py [--n 2000] [--cases protocol,stream,green] [--modes compiled,pure]``
(valgrind must be installed).  Each case runs in its own process under
``valgrind --tool=callgrind`` twice, with ``n`` and ``2 * n`` round trips of a
64-byte message over loopback TCP (client and server in that one process, on
one treadle loop, after a warm-up); the difference of the two totals divided
by ``n`` is the cost of one round trip, with start-up, imports and warm-up
cancelled out.  Only user-space instructions are counted (the kernel's TCP
stack is not), so the number is the runtime's own cost, and it barely moves
on a busy machine.

The cases:

- ``protocol``: an ``asyncio.Protocol`` echo server; the client, a protocol
  too, writes and awaits a future that ``data_received`` completes.
- ``stream``: ``serve_tcp`` with an async handler and ``open_tcp_stream``
  (``send_all``/``receive_some``) in an async task.
- ``green``: treadle's green sockets: a green task echoes what a plain
  script's main greenlet sends with ``sendall`` and reads with ``recv``.
- ``sock``: the loop's ``sock_recv``/``sock_sendall`` in an async task on
  each side.
- ``generator``: the server is a generator task (``treadle.spawn`` of a
  generator function yielding ``loop.sock_recv``/``sock_sendall``), as in
  ``servers/treadle_generators.py``; the client as in ``sock``.

Modes: ``compiled`` (the extension modules, if they are built) and ``pure``
(``TREADLE_PURE_PYTHON=1``).  Each child prints which mode actually ran
(``treadle.compiled``), so a missing build shows as such instead of passing
for a compiled number.

Owns: the three echo workloads and the arithmetic.  Never: asserts a speed,
or prints a number from a run that failed (its error takes the number's place).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIZE = 64
MESSAGE = bytes(range(SIZE))
WARMUP = 200
CASES = ("protocol", "stream", "green", "sock", "generator")
MODES = ("compiled", "pure")


# -- the workloads (run in the child) -------------------------------------------------


class _EchoServer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _EchoClient(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.got = 0
        self.waiter: asyncio.Future[None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= SIZE:
            self.got -= SIZE
            self.waiter.set_result(None)


async def _protocol_case(rounds: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_EchoServer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, client = await loop.create_connection(lambda: _EchoClient(loop), "127.0.0.1", port)
    for _ in range(rounds):
        client.waiter = loop.create_future()
        transport.write(MESSAGE)
        await client.waiter
    transport.close()
    server.close()
    await server.wait_closed()


async def _stream_case(rounds: int) -> None:
    from treadle.net.stream_connect import open_tcp_stream
    from treadle.net.stream_server import serve_tcp

    async def handler(stream: object) -> None:
        while data := await stream.receive_some():  # type: ignore[attr-defined]
            await stream.send_all(data)  # type: ignore[attr-defined]

    server = await serve_tcp(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stream = await open_tcp_stream("127.0.0.1", port)
    for _ in range(rounds):
        await stream.send_all(MESSAGE)
        got = 0
        while got < SIZE:
            got += len(await stream.receive_some())
    await stream.aclose()
    await server.aclose()


async def _sock_client(loop: asyncio.AbstractEventLoop, port: int, rounds: int) -> None:
    import socket

    client = socket.create_connection(("127.0.0.1", port))
    client.setblocking(False)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with client:
        for _ in range(rounds):
            await loop.sock_sendall(client, MESSAGE)
            got = 0
            while got < SIZE:
                got += len(await loop.sock_recv(client, 4096))


def _sock_listener() -> Any:
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    return listener


async def _sock_case(rounds: int) -> None:
    loop = asyncio.get_running_loop()

    async def echo(conn: Any) -> None:
        with conn:
            while data := await loop.sock_recv(conn, 4096):
                await loop.sock_sendall(conn, data)

    with _sock_listener() as listener:
        client = asyncio.ensure_future(_sock_client(loop, listener.getsockname()[1], rounds))
        conn, _ = await loop.sock_accept(listener)
        await asyncio.gather(echo(conn), client)


async def _generator_case(rounds: int) -> None:
    import treadle

    loop = asyncio.get_running_loop()

    def echo(conn: Any) -> Any:
        with conn:
            while data := (yield loop.sock_recv(conn, 4096)):
                yield loop.sock_sendall(conn, data)

    with _sock_listener() as listener:
        client = asyncio.ensure_future(_sock_client(loop, listener.getsockname()[1], rounds))
        conn, _ = await loop.sock_accept(listener)
        await asyncio.gather(treadle.spawn(echo, conn), client)


def _green_case(rounds: int) -> None:
    import treadle
    from treadle import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    server = treadle.spawn(serve)
    client = socket.create_connection(listener.getsockname())
    for _ in range(rounds):
        client.sendall(MESSAGE)
        got = 0
        while got < SIZE:
            got += len(client.recv(4096))
    client.close()
    server.join()
    listener.close()


def _child(case: str, rounds: int) -> None:
    import treadle

    print(f"compiled={treadle.compiled}", flush=True)
    if case == "green":
        _green_case(WARMUP)
        _green_case(rounds)
        return
    body = {"protocol": _protocol_case, "stream": _stream_case, "sock": _sock_case, "generator": _generator_case}[case]

    async def main() -> None:
        await body(WARMUP)
        await body(rounds)

    treadle.run(main())


# -- the driver ----------------------------------------------------------------------------


def callgrind_total(script_args: list[str], env: dict[str, str], what: str) -> tuple[int, str]:
    """Total instructions of ``python *script_args`` under callgrind, and what it printed.

    Raises RuntimeError (naming ``what``) if it fails or callgrind gives no total.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, *script_args]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"{what} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        match = re.search(r"^(?:summary|totals):\s*(\d+)", out.read_text(), re.MULTILINE)
        if match is None:
            raise RuntimeError(f"{what}: no total in the callgrind output")
        return int(match.group(1)), proc.stdout


def _instructions(case: str, mode: str, rounds: int) -> tuple[int, bool]:
    """Total instructions of one child under callgrind, and whether it ran compiled."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("TREADLE_PURE_PYTHON", None)
    if mode == "pure":
        env["TREADLE_PURE_PYTHON"] = "1"
    script = [str(Path(__file__).resolve()), "--child", case, str(rounds)]
    total, printed = callgrind_total(script, env, f"{case}/{mode}")
    return total, "compiled=True" in printed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="round trips of the shorter run (default 2000)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES))
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, of: " + ", ".join(MODES))
    parser.add_argument("--child", nargs=2, metavar=("CASE", "ROUNDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return
    cases = [c for c in args.cases.split(",") if c]
    modes = [m for m in args.modes.split(",") if m]
    for name, allowed in (("case", CASES), ("mode", MODES)):
        for value in cases if name == "case" else modes:
            if value not in allowed:
                parser.error(f"unknown {name} {value!r}: expected one of {', '.join(allowed)}")
    if args.n < 1:
        parser.error("--n must be at least 1")
    print(f"instructions per round trip ({SIZE}-byte echo over loopback TCP, {args.n} vs {2 * args.n} round trips)")
    print(f"{'case':<10} {'mode':<10} {'ran':<10} {'Ir/round trip':>14}")
    for case in cases:
        for mode in modes:
            try:
                short, compiled = _instructions(case, mode, args.n)
                long, _ = _instructions(case, mode, 2 * args.n)
                per = f"{(long - short) / args.n:,.0f}"
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                compiled = False
                per = f"error: {exc}"
            print(f"{case:<10} {mode:<10} {'compiled' if compiled else 'pure':<10} {per:>14}", flush=True)


if __name__ == "__main__":
    main()

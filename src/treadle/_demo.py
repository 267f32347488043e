"""The demo: seed 002's concurrent echo server, asyncio-style, on treadle and on stock asyncio.

Owns: ``python -m treadle demo``.  A server process (the seed's ``talk``: read up
to 1024 bytes, send them back upper-cased) is started once on treadle's loop and
once on stock asyncio; the same client driver, in this process, opens a few
hundred connections that each send a message, wait for the whole upper-cased
reply, check every byte and repeat for a fixed time.  It prints, for each loop,
round trips per second and the server's CPU time per round trip (from
/proc/PID/stat): on a small machine the client can be the limit, and CPU per
round trip stays comparable when it is.

Never: leaves a server process behind (each is ended by its own pid), or counts a
round trip whose reply was wrong (a wrong reply stops the demo with an error).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import subprocess
import sys
import time

__all__ = ["main"]


async def _talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(1024)
            if not data:
                break
            writer.write(data.upper())
            await writer.drain()
    except ConnectionResetError:
        pass
    finally:
        writer.close()


async def _serve(ready_fd: int) -> None:
    server = await asyncio.start_server(_talk, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    os.write(ready_fd, f"{port}\n".encode())
    os.close(ready_fd)
    async with server:
        await server.serve_forever()


def _server_main(kind: str, ready_fd: int) -> None:
    if kind == "treadle":
        import treadle

        treadle.run(_serve(ready_fd))
    else:
        asyncio.run(_serve(ready_fd))


class _Client(asyncio.Protocol):
    """One connection of the load: send, wait for the whole upper-cased reply, check it, repeat."""

    def __init__(self, index: int, deadline: float, done: asyncio.Future[None]) -> None:
        self.msg = f"client-{index} say hello".encode()
        self.expected = self.msg.upper()
        self.deadline = deadline
        self.done = done
        self.buf = b""
        self.count = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.msg)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if len(self.buf) < len(self.expected):
            return
        if self.buf != self.expected:
            self.fail(AssertionError(f"sent {self.msg!r}, got {self.buf!r}"))
            return
        self.buf = b""
        self.count += 1
        if time.monotonic() < self.deadline:
            self.transport.write(self.msg)
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.fail(exc)
        elif not self.done.done():
            self.done.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


async def _drive(port: int, clients: int, seconds: float) -> tuple[int, float]:
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    protos = [_Client(i, t0 + seconds, loop.create_future()) for i in range(clients)]
    await asyncio.gather(*(loop.create_connection(functools.partial(_same, p), "127.0.0.1", port) for p in protos))
    await asyncio.gather(*(p.done for p in protos))
    return sum(p.count for p in protos), time.monotonic() - t0


def _same(proto: _Client) -> _Client:
    return proto


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(kind: str, clients: int, seconds: float) -> tuple[float, float]:
    import treadle

    rfd, wfd = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "treadle", "_demo_server", kind, str(wfd)],
        pass_fds=(wfd,),
    )
    os.close(wfd)
    try:
        with os.fdopen(rfd) as ready:
            line = ready.readline()
        if not line:
            raise RuntimeError(f"the {kind} demo server exited before listening (status {proc.wait()})")
        cpu0 = _cpu_seconds(proc.pid)
        trips, elapsed = treadle.run(_drive(int(line), clients, seconds))
        cpu = _cpu_seconds(proc.pid) - cpu0
        return trips / elapsed, cpu / trips * 1e6
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m treadle demo", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=300, help="concurrent connections (default 300)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per loop (default 3)")
    args = parser.parse_args(argv)
    if args.clients < 1:
        parser.error("--clients must be at least 1")
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    print(f"seed 002 echo server: {args.clients} concurrent clients, {args.seconds:g} s per loop")
    print(f"  {'server loop':12} {'round trips/s':>14} {'server CPU per round trip':>27}")
    results = {}
    for kind in ("treadle", "asyncio"):
        rate, cpu_us = results[kind] = _measure(kind, args.clients, args.seconds)
        print(f"  {kind:12} {rate:>14,.0f} {cpu_us:>24.1f} us")
    ratio = results["treadle"][1] / results["asyncio"][1]
    print(f"  treadle's server CPU per round trip: {ratio:.2f}x stock asyncio's (lower is better)")
    return 0

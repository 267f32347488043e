"""The echo cases: the servers, the styles they are compared in, and one measured run.

Owns: the list of echo servers (bench/servers/ and the C floor), the styles
(which server is treadle's and which are its peers), starting a server pinned
to one core, running bench/build/loadgen pinned to the other against it (a
server serves the runs of every message size and connection count in turn,
each with fresh connections and its own warm-up), and stopping the server by
its pid.

Never: leaves a server running (each is ended by SIGTERM to its own pid, then
SIGKILL if it lingers), or turns a failed run into a number: a wrong echo, a
server that died or a load generator error is reported as that case's error.
"""

from __future__ import annotations

import importlib.util
import json
import os
import selectors
import shlex
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / "build"
SERVERS_DIR = HERE / "servers"
HOST = "127.0.0.1"
START_TIMEOUT = 30.0  # seconds for a server to print its port


class BenchError(Exception):
    """A run that gave no number, and why."""


@dataclass(frozen=True)
class EchoCase:
    """One message size and connection count, and how it is measured: runs, warm-up and window (seconds)."""

    size: int
    conns: int
    repeat: int
    warmup: float
    duration: float
    headline: bool = False  # the case the README quotes

    def seconds(self) -> float:
        """Load time of one server in this case over all its runs (warm-ups included)."""
        return self.repeat * (self.warmup + self.duration)


@dataclass(frozen=True)
class Server:
    """One echo server program: ``key`` is style/runtime, ``argv`` is after the interpreter (or the binary)."""

    key: str
    runtime: str
    argv: tuple[str, ...]
    needs: str | None = None  # the module it imports, when that may not be installed

    def command(self) -> list[str]:
        if self.runtime == "C":
            return [str(BUILD / self.argv[0]), *self.argv[1:]]
        return [sys.executable, str(SERVERS_DIR / self.argv[0]), *self.argv[1:]]

    def available(self) -> str | None:
        """None when it can run here; else why not."""
        if self.runtime == "C":
            return None if (BUILD / self.argv[0]).exists() else "not built (make bench)"
        if self.needs and importlib.util.find_spec(self.needs) is None:
            return f"{self.needs} not installed"
        return None


def _loops(style: str, script: str) -> list[Server]:
    needs = {"uvloop": "uvloop"}
    return [
        Server(f"{style}/{loop}", loop, (script, "--loop", loop), needs.get(loop))
        for loop in ("treadle", "asyncio", "uvloop")
    ]


SERVERS: list[Server] = [
    Server("floor/C", "C", ("floor_echo",)),
    *_loops("sock", "asyncio_sock.py"),
    *_loops("protocol", "asyncio_protocol.py"),
    *_loops("asyncio-streams", "asyncio_streams.py"),
    Server("streams/treadle", "treadle", ("treadle_streams.py",), "treadle.net.stream_server"),
    Server("streams/trio", "trio", ("trio_streams.py",), "trio"),
    Server("green/treadle", "treadle", ("treadle_green.py",)),
    Server("green/gevent", "gevent", ("gevent_green.py",), "gevent"),
    Server("generators/treadle", "treadle", ("treadle_generators.py",)),
]
BY_KEY = {server.key: server for server in SERVERS}


@dataclass(frozen=True)
class Style:
    """An API style: treadle's server in it and the peers it is compared with (some borrowed from other styles)."""

    name: str
    title: str
    treadle: str
    peers: tuple[str, ...]


STYLES: list[Style] = [
    Style("sock", "low-level `loop.sock_*` coroutines", "sock/treadle", ("sock/asyncio", "sock/uvloop")),
    Style("protocol", "`asyncio.Protocol` callbacks", "protocol/treadle", ("protocol/asyncio", "protocol/uvloop")),
    Style(
        "asyncio-streams",
        "asyncio's streams (`start_server`, reader/writer)",
        "asyncio-streams/treadle",
        ("asyncio-streams/asyncio", "asyncio-streams/uvloop"),
    ),
    Style(
        "streams",
        "treadle's streams (`serve_tcp`, `receive_some`/`send_all`) against trio's and asyncio's",
        "streams/treadle",
        ("streams/trio", "asyncio-streams/asyncio", "asyncio-streams/uvloop"),
    ),
    Style("green", "green sockets and `StreamServer`", "green/treadle", ("green/gevent",)),
    Style(
        "generators",
        "generator tasks yielding `loop.sock_*` (peers: the same calls in coroutines)",
        "generators/treadle",
        ("sock/asyncio", "sock/uvloop"),
    ),
]


def pin(cpu: int | None) -> list[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def cpus() -> tuple[int | None, int | None]:
    """The server's core and the load generator's: the first two this process may use (none if only one)."""
    mine = sorted(os.sched_getaffinity(0))
    return (mine[0], mine[1]) if len(mine) >= 2 else (None, None)


def display(argv: list[str]) -> str:
    """A command as a person would type it from the repository's root."""
    out = []
    for arg in argv:
        if arg.startswith(str(ROOT) + os.sep):
            arg = os.path.relpath(arg, ROOT)
        elif arg == sys.executable:
            arg = os.path.relpath(arg, ROOT) if arg.startswith(str(ROOT)) else "python"
        out.append(arg)
    return shlex.join(out)


class RunningServer:
    """A server process pinned to a core; ``port`` once it printed it.  Use as a context manager."""

    def __init__(self, argv: list[str], cpu: int | None) -> None:
        self.argv = pin(cpu) + argv
        self._log = tempfile.TemporaryFile(mode="w+")
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, text=True
            )
        except BaseException:
            self._log.close()
            raise
        try:
            self.port = self._read_port()
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_port(self) -> int:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(START_TIMEOUT):
                raise BenchError(f"no port printed within {START_TIMEOUT:.0f} s{self.log_tail()}")
        line = self.proc.stdout.readline()
        try:
            return int(line)
        except ValueError:
            status = self.stop()
            raise BenchError(f"the server printed {line!r} instead of its port (status {status}){self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        self._log.seek(0)
        tail = self._log.read().strip().splitlines()[-lines:]
        return (": " + " | ".join(tail)) if tail else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        """SIGTERM to its pid, SIGKILL after 5 s; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self) -> RunningServer:
        return self

    def close(self) -> None:
        self.stop()
        self._log.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def loadgen_argv(port: int, size: int, conns: int, warmup: float, duration: float, pid: int | str) -> list[str]:
    return [
        str(BUILD / "loadgen"),
        *("--host", HOST, "--port", str(port), "--connections", str(conns), "--size", str(size)),
        *("--warmup", str(warmup), "--duration", str(duration), "--server-pid", str(pid)),
    ]


def start(server: Server) -> RunningServer:
    """Start ``server`` on any free port, pinned to the server's core; returns once it printed its port."""
    return RunningServer(server.command() + [HOST, "0"], cpus()[0])


def load(srv: RunningServer, size: int, conns: int, warmup: float, duration: float) -> dict[str, float]:
    """One run against a running server: the load generator's numbers plus the server's CPU µs per round trip."""
    argv = pin(cpus()[1]) + loadgen_argv(srv.port, size, conns, warmup, duration, srv.pid)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=warmup + duration + 120)
    except subprocess.TimeoutExpired:
        raise BenchError("the load generator did not finish")
    if proc.returncode != 0:
        why = proc.stderr.strip().splitlines()[-1:] or [f"status {proc.returncode}"]
        dead = "" if srv.alive() else f" (the server exited with status {srv.proc.returncode}{srv.log_tail()})"
        raise BenchError(f"{why[0]}{dead}")
    if not srv.alive():
        raise BenchError(f"the server exited during the run{srv.log_tail()}")
    result: dict[str, float] = json.loads(proc.stdout)
    if result["round_trips"] <= 0:
        raise BenchError("no round trip completed in the window")
    result["cpu_us_per_rt"] = result["server_cpu_s"] / result["round_trips"] * 1e6
    return result


def example_commands(size: int, conns: int, warmup: float, duration: float) -> list[str]:
    """The commands of one run, for RESULTS.md."""
    server_cpu, client_cpu = cpus()
    server = BY_KEY["sock/treadle"]
    return [
        display(pin(server_cpu) + server.command() + [HOST, "0"]) + "   # prints its port",
        display(pin(client_cpu) + loadgen_argv(0, size, conns, warmup, duration, 0))
        .replace("--port 0", "--port PORT")
        .replace("--server-pid 0", "--server-pid SERVER_PID"),
    ]

"""Ctrl-C (SIGINT) and SIGTERM on a real ``treadle.run`` process.

The program runs green and async tasks that sit inside open files and
connections (to a listener of the test's own); the test sends the signal and
checks that every ``finally`` ran (each writes a line), that the connection
was closed (the listener reads EOF), and that the process ended with the
conventional status: killed by the signal, as a Python program ends on an
uncaught ``KeyboardInterrupt`` or on SIGTERM.  A second signal while the
cleanup is still running ends the process at once.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PROGRAM = """
import asyncio
import socket
import sys

import treadle

PORT, LOG, SLOW = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])


def note(line):
    with open(LOG, "a") as f:
        f.write(line + "\\n")


green_started = treadle.Event()
async_started = treadle.Event()


def green_worker(path):
    f = open(path, "w")
    try:
        with f:
            f.write("working")
            green_started.set()
            treadle.sleep(60)
    finally:
        note("green finally, file closed=" + str(f.closed))


async def async_worker(conn):
    try:
        async_started.set()
        await asyncio.sleep(60)
    finally:
        conn.close()
        note("async finally")


async def main():
    conn = socket.create_connection(("127.0.0.1", PORT))
    conn.setblocking(False)
    task = asyncio.ensure_future(async_worker(conn))
    green = treadle.spawn(green_worker, LOG + ".data")
    try:
        # Both workers inside their try blocks (a task cancelled before it
        # starts never enters its own), then the test may signal.
        await green_started.wait()
        await async_started.wait()
        print("ready", flush=True)
        await asyncio.gather(task, green)
    finally:
        note("main finally")
        if SLOW:
            await asyncio.sleep(SLOW)  # a long cleanup: a second signal must not wait for it
            note("slow cleanup done")


treadle.run(main())
"""


def start(tmp_path: Path, slow: float = 0.0) -> tuple[subprocess.Popen[str], socket.socket, Path]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(PROGRAM), encoding="utf-8")
    log = tmp_path / "log.txt"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(listener.getsockname()[1]), str(log), str(slow)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    conn, _ = listener.accept()
    listener.close()
    return proc, conn, log


def finish(proc: subprocess.Popen[str]) -> str:
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_cancels_the_main_task_every_finally_runs_and_the_status_is_the_signals(
    tmp_path: Path, sig: signal.Signals
) -> None:
    proc, conn, log = start(tmp_path)
    with conn:
        proc.send_signal(sig)
        err = finish(proc)
        conn.settimeout(10)
        assert conn.recv(10) == b""  # the program closed its end in a finally
    assert proc.returncode == -sig, (proc.returncode, err)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == ["async finally", "green finally, file closed=True", "main finally"], lines
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_during_the_cleanup_ends_the_process_at_once(tmp_path: Path, sig: signal.Signals) -> None:
    proc, conn, log = start(tmp_path, slow=30.0)
    with conn:
        proc.send_signal(sig)
        deadline = time.monotonic() + 20
        while "main finally" not in (log.read_text(encoding="utf-8") if log.exists() else ""):
            assert time.monotonic() < deadline, "the first signal did not start the cleanup"
            time.sleep(0.05)
        started = time.monotonic()
        proc.send_signal(sig)
        finish(proc)
        waited = time.monotonic() - started
    assert proc.returncode == -sig
    assert "slow cleanup done" not in log.read_text(encoding="utf-8")
    assert waited < 20  # far below the 30 s cleanup: the second signal did not wait for it

"""Real client libraries, unmodified, under ``treadle.monkey.patch_all()``, against real servers.

Each client program runs in a fresh interpreter (patching cannot be undone),
as a plain script that patches first and then imports the client library.
The servers are real and run in processes of their own, on loopback:

- a threaded ``http.server`` (``ThreadingMixIn``, a backlog of 256) whose every
  request sleeps 0.5 s before it answers, for ``urllib.request``,
  ``http.client`` and ``requests``: 100 green tasks making one request each
  must take about one request's time, not 100 of them (the bound, 2.5 s, is
  about concurrency: sequential calls would take 50 s);
- Debian's ``redis-server`` on a free port, for redis-py: 200 green tasks with
  their own keys, and BLPOPs that other green tasks unblock;
- an ``aiosmtpd`` SMTP server that appends every message it receives to a
  file, for ``smtplib``: 20 green tasks sending one mail each.

Every server is ended by its pid when the module's tests are done.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = 60.0


def client_env() -> dict[str, str]:
    """The environment of the client programs: no proxy between them and the loopback servers."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k != "PYTHONWARNINGS"}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    return env


def run_client(tmp_path: Path, source: str, *args: str) -> dict[str, str]:
    """Run ``source`` as a script with ``args``; it must exit 0 with empty stderr; its ``key=value`` lines."""
    script = tmp_path / "client.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        cwd=tmp_path,
        env=client_env(),
    )
    assert proc.returncode == 0, f"exit status {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.stderr == "", proc.stderr
    found = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key] = value
    return found


def start_server(args: list[str], log: Path) -> tuple[subprocess.Popen[str], str]:
    """Start a server process that prints its port on its first line; return it and that line."""
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True, env=client_env())
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        stop_process(proc)
        pytest.fail(f"server {args} did not start:\n{log.read_text(encoding='utf-8')}")
    return proc, line


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """End ``proc`` by its pid (SIGTERM, then SIGKILL if it lingers) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


# -- the slow HTTP server ----------------------------------------------------------------------------

HTTP_SERVER = """
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn


class Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    request_queue_size = 256


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.5)
        body = ("hello " + self.path).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


server = Server(("127.0.0.1", 0), Handler)
if len(sys.argv) > 1:  # TLS: certificate chain and key files; handshakes in the handler threads
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@pytest.fixture(scope="module")
def http_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of a threaded HTTP server on 127.0.0.1 whose every GET sleeps 0.5 s."""
    folder = tmp_path_factory.mktemp("http_server")
    script = folder / "server.py"
    script.write_text(HTTP_SERVER, encoding="utf-8")
    proc, line = start_server([sys.executable, str(script)], folder / "stderr.txt")
    try:
        yield int(line)
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """The same server over TLS, with a certificate for localhost from a trustme CA: (port, CA file)."""
    import trustme

    folder = tmp_path_factory.mktemp("https_server")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(folder / "chain.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    script = folder / "server.py"
    script.write_text(HTTP_SERVER, encoding="utf-8")
    args = [sys.executable, str(script), str(folder / "chain.pem"), str(folder / "key.pem")]
    proc, line = start_server(args, folder / "stderr.txt")
    try:
        yield int(line), str(folder / "ca.pem")
    finally:
        stop_process(proc)


_HTTP_CLIENT = """
from treadle import monkey

monkey.patch_all()

import sys
import time

import treadle

HOST, PORT = sys.argv[1], int(sys.argv[2])
CA = sys.argv[3] if len(sys.argv) > 3 else None
N = 100

{fetch}


start = time.monotonic()
tasks = [treadle.spawn(fetch, f"/item/{{i}}") for i in range(N)]
treadle.joinall(tasks, raise_error=True)
elapsed = time.monotonic() - start
results = [t.get() for t in tasks]
bad = [(i, r) for i, r in enumerate(results) if r != (200, f"hello /item/{{i}}")]
print("count=" + str(len(results)))
print("bad=" + repr(bad[:3]))
print("elapsed=" + str(elapsed))
"""

_FETCH = {
    "urllib": """
import urllib.request


def fetch(path):
    with urllib.request.urlopen(f"http://{HOST}:{PORT}{path}", timeout=30) as resp:
        return resp.status, resp.read().decode()
""",
    "http.client": """
import http.client


def fetch(path):
    conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()
""",
    "requests.get": """
import requests


def fetch(path):
    resp = requests.get(f"http://{HOST}:{PORT}{path}", timeout=30)
    return resp.status_code, resp.text
""",
    "requests.Session": """
import requests


def fetch(path):
    with requests.Session() as session:
        resp = session.get(f"http://{HOST}:{PORT}{path}", timeout=30)
        return resp.status_code, resp.text
""",
    "urllib-https": """
import ssl
import urllib.request

CONTEXT = ssl.create_default_context(cafile=CA)


def fetch(path):
    with urllib.request.urlopen(f"https://{HOST}:{PORT}{path}", timeout=30, context=CONTEXT) as resp:
        return resp.status, resp.read().decode()
""",
    "requests-https": """
import requests


def fetch(path):
    resp = requests.get(f"https://{HOST}:{PORT}{path}", timeout=30, verify=CA)
    return resp.status_code, resp.text
""",
}


@pytest.mark.parametrize("client", ["urllib-https", "requests-https"])
def test_https_clients_make_100_concurrent_slow_requests(
    tmp_path: Path, https_server: tuple[int, str], client: str
) -> None:
    """The same over TLS, the certificate checked against a CA of the test's own."""
    port, ca = https_server
    got = run_client(tmp_path, _HTTP_CLIENT.format(fetch=_FETCH[client]), "localhost", str(port), ca)
    assert got["count"] == "100"
    assert got["bad"] == "[]"
    elapsed = float(got["elapsed"])
    assert 0.45 <= elapsed < 2.5, elapsed


@pytest.mark.parametrize(
    "client, host",
    [
        ("urllib", "127.0.0.1"),
        ("urllib", "localhost"),
        ("http.client", "127.0.0.1"),
        ("requests.get", "127.0.0.1"),
        ("requests.Session", "127.0.0.1"),
    ],
)
def test_http_clients_make_100_concurrent_slow_requests(tmp_path: Path, http_port: int, client: str, host: str) -> None:
    """100 green tasks, one 0.5 s request each: about 0.5 s in all, far below the 50 s of one after another."""
    got = run_client(tmp_path, _HTTP_CLIENT.format(fetch=_FETCH[client]), host, str(http_port))
    assert got["count"] == "100"
    assert got["bad"] == "[]"
    elapsed = float(got["elapsed"])
    assert 0.45 <= elapsed < 2.5, elapsed


# -- redis-py against redis-server -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(100).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of a fresh redis-server on 127.0.0.1 (no persistence), ended by its pid afterwards."""
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    with open(folder / "redis.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [
                "/usr/bin/redis-server",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
                "--dir",
                str(folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not redis_answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start:\n" + (folder / "redis.log").read_text(encoding="utf-8"))
            time.sleep(0.05)
        yield port
    finally:
        stop_process(proc)


REDIS_CLIENT = """
from treadle import monkey

monkey.patch_all()

import sys
import time

import redis

import treadle

PORT = int(sys.argv[1])
N, QUEUES = 200, 10
# One client for all tasks; its pool (100 connections by default) has room for every task at once.
r = redis.Redis(host="127.0.0.1", port=PORT, socket_timeout=30, max_connections=N + QUEUES + 10)
order = []


def work(i):
    key, counter = f"key:{i}", f"counter:{i}"
    r.set(key, f"value-{i}")
    got = r.get(key)
    counts = [r.incr(counter) for _ in range(3)]
    counts.append(r.incrby(counter, i))
    order.append("work")
    return got, counts


def pop(i):
    # Blocks on the server until push(i) runs: the other tasks must go on meanwhile.
    item = r.blpop([f"queue:{i}"], timeout=20)
    order.append("pop")
    return item


def push(i):
    time.sleep(0.2)
    order.append("push")
    return r.rpush(f"queue:{i}", f"item-{i}")


poppers = [treadle.spawn(pop, i) for i in range(QUEUES)]
workers = [treadle.spawn(work, i) for i in range(N)]
pushers = [treadle.spawn(push, i) for i in range(QUEUES)]
treadle.joinall(poppers + workers + pushers, raise_error=True)

errors = []
for i, t in enumerate(workers):
    expected = (f"value-{i}".encode(), [1, 2, 3, 3 + i])
    if t.get() != expected:
        errors.append((i, t.get(), expected))
for i, t in enumerate(poppers):
    expected = (f"queue:{i}".encode(), f"item-{i}".encode())
    if t.get() != expected:
        errors.append((i, t.get(), expected))
for i, t in enumerate(pushers):
    if t.get() != 1:
        errors.append((i, t.get(), 1))
print("errors=" + repr(errors[:5]))
print("done=" + str(len(workers)) + "," + str(len(poppers)))
# The BLPOPs, spawned first, stayed blocked until the pushes came, while the workers ran.
print("pops_after_pushes=" + str(order.index("pop") > order.index("push") and order.index("work") < order.index("pop")))
print("dbsize=" + str(r.dbsize()))
print("connections=" + str(len(r.connection_pool._available_connections) >= QUEUES))
r.close()
"""


def test_redis_py_200_tasks_and_blpop_unblocked_by_other_tasks(tmp_path: Path, redis_port: int) -> None:
    got = run_client(tmp_path, REDIS_CLIENT, str(redis_port))
    assert got["errors"] == "[]"
    assert got["done"] == "200,10"
    assert got["pops_after_pushes"] == "True"
    assert got["dbsize"] == "400"  # 200 keys and 200 counters; the queues are empty again
    assert got["connections"] == "True"  # the BLPOPs each held a connection of their own


# -- smtplib against aiosmtpd --------------------------------------------------------------------------

SMTP_SERVER = """
import asyncio
import json
import sys

from aiosmtpd.smtp import SMTP

OUT = sys.argv[1]


class Recorder:
    async def handle_DATA(self, server, session, envelope):
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "content": envelope.content.decode("utf-8", "replace"),
        }
        with open(OUT, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\\n")
        return "250 Message accepted for delivery"


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Recorder(), hostname="localhost"), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
"""


@pytest.fixture(scope="module")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """An aiosmtpd server on 127.0.0.1 in its own process; the port and the file its messages go to."""
    folder = tmp_path_factory.mktemp("smtp")
    script = folder / "server.py"
    script.write_text(SMTP_SERVER, encoding="utf-8")
    messages = folder / "messages.jsonl"
    proc, line = start_server([sys.executable, str(script), str(messages)], folder / "stderr.txt")
    try:
        yield int(line), messages
    finally:
        stop_process(proc)


SMTP_CLIENT = """
from treadle import monkey

monkey.patch_all()

import smtplib
import sys
from email.message import EmailMessage

import treadle

PORT = int(sys.argv[1])
N = 20


def send(i):
    msg = EmailMessage()
    msg["From"] = f"sender{i}@example.com"
    msg["To"] = f"rcpt{i}@example.com"
    msg["Subject"] = f"message {i}"
    msg.set_content(f"body of message {i}\\n")
    with smtplib.SMTP("127.0.0.1", PORT, timeout=30) as smtp:
        smtp.ehlo()
        refused = smtp.send_message(msg)
    return refused


tasks = [treadle.spawn(send, i) for i in range(N)]
treadle.joinall(tasks, raise_error=True)
print("refused=" + repr([t.get() for t in tasks if t.get()]))
print("sent=" + str(len(tasks)))
"""


def test_smtplib_20_tasks_each_send_a_mail(tmp_path: Path, smtp_server: tuple[int, Path]) -> None:
    port, messages = smtp_server
    got = run_client(tmp_path, SMTP_CLIENT, str(port))
    assert got["refused"] == "[]"
    assert got["sent"] == "20"
    records = [json.loads(line) for line in messages.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 20
    by_sender = {r["from"]: r for r in records}
    assert sorted(by_sender) == sorted(f"sender{i}@example.com" for i in range(20))
    for i in range(20):
        record = by_sender[f"sender{i}@example.com"]
        assert record["to"] == [f"rcpt{i}@example.com"]
        assert f"Subject: message {i}" in record["content"]
        assert f"body of message {i}" in record["content"]

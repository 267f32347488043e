"""The HTTP cases: a plaintext endpoint in each framework (uvicorn, aiohttp) on each loop, loaded by wrk.

Owns: the frameworks and their servers (bench/servers/http_uvicorn.py,
bench/servers/http_aiohttp.py), running one pinned to one core and wrk
(Debian's package) pinned to the other, reading wrk's report (requests/s,
p50/p99 latency, errors) and the server's CPU time per request from
/proc/PID/stat.

Never: counts a run with socket errors or non-2xx answers: that run is an error.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys

from echo import HOST, SERVERS_DIR, BenchError, RunningServer, cpus, display, pin

LOOPS = ("treadle", "asyncio", "uvloop")
# framework -> (its server program, the modules it imports, what it is)
FRAMEWORKS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "uvicorn": ("http_uvicorn.py", ("uvicorn", "httptools"), "httptools parser, a minimal ASGI app"),
    "aiohttp": ("http_aiohttp.py", ("aiohttp",), "`aiohttp.web`, its C parser, one handler"),
}
_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def key(framework: str, loop: str) -> str:
    return f"{framework}/{loop}"


def unavailable() -> str | None:
    """None when the HTTP cases can run here; else why not (a missing framework is its own rows' reason)."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (apt-get install wrk)"
    return None


def framework_unavailable(framework: str, loop: str) -> str | None:
    """None when ``framework`` can run on ``loop`` here; else why not."""
    needs = FRAMEWORKS[framework][1] + (("uvloop",) if loop == "uvloop" else ())
    for module in needs:
        if importlib.util.find_spec(module) is None:
            return f"{module} not installed"
    return None


def server_argv(framework: str, loop: str) -> list[str]:
    return [sys.executable, str(SERVERS_DIR / FRAMEWORKS[framework][0]), "--loop", loop, HOST, "0"]


def wrk_argv(port: int | str, conns: int, seconds: float) -> list[str]:
    return ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency", f"http://{HOST}:{port}/"]


def _latency_us(text: str, percent: str) -> float:
    match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if match is None:
        raise BenchError(f"no {percent}% latency in wrk's report")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(text: str) -> dict[str, float]:
    """requests, seconds, rps, p50_us, p99_us from wrk's report; errors raise BenchError."""
    done = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s)", text, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if done is None or rps is None:
        raise BenchError(f"unexpected wrk report: {text.strip()[-200:]!r}")
    for problem in ("Socket errors", "Non-2xx or 3xx responses"):
        line = re.search(rf"^\s*{problem}:.*$", text, re.M)
        if line is not None:
            raise BenchError(f"wrk: {line.group(0).strip()}")
    return {
        "requests": float(done.group(1)),
        "seconds": float(done.group(2)) * _UNITS[done.group(3)] / 1e6,
        "rps": float(rps.group(1)),
        "p50_us": _latency_us(text, "50"),
        "p99_us": _latency_us(text, "99"),
    }


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(argv: list[str], seconds: float) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise BenchError("wrk did not finish")
    if proc.returncode != 0:
        raise BenchError(f"wrk: {(proc.stderr.strip() or proc.stdout.strip())[-200:]}")
    return proc.stdout


def run_http(framework: str, loop: str, conns: int, warmup: float, duration: float) -> dict[str, float]:
    """One run of ``framework`` on ``loop``: a warm-up load, then the measured one, with the server CPU per request."""
    server_cpu, client_cpu = cpus()
    with RunningServer(server_argv(framework, loop), server_cpu) as srv:
        if warmup > 0:
            _wrk(pin(client_cpu) + wrk_argv(srv.port, conns, warmup), warmup)
        cpu0 = _cpu_seconds(srv.pid)
        result = parse_wrk(_wrk(pin(client_cpu) + wrk_argv(srv.port, conns, duration), duration))
        cpu = _cpu_seconds(srv.pid) - cpu0
        if not srv.alive():
            raise BenchError(f"the server exited during the run{srv.log_tail()}")
    if result["requests"] <= 0:
        raise BenchError("no request completed")
    result["server_cpu_s"] = cpu
    result["cpu_us_per_rt"] = cpu / result["requests"] * 1e6
    return result


def example_commands(conns: int, duration: float) -> list[str]:
    server_cpu, client_cpu = cpus()
    return [
        *(display(pin(server_cpu) + server_argv(name, "treadle")) + "   # prints its port" for name in FRAMEWORKS),
        display(pin(client_cpu) + wrk_argv("PORT", conns, duration)),
    ]

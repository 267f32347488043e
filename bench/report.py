"""The report: bench/RESULTS.md (machine, versions, commands, tables) and bench/ratios.png.

Owns: describing the machine and the versions, turning the runs' samples into
medians, spreads and ratios, the Markdown tables, and the chart of treadle's
advantage over each peer per case.

Never: runs anything that is measured; a case without a number is shown with
its reason, not left out.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import micro
from echo import BY_KEY, STYLES, EchoCase
from httpbench import FRAMEWORKS

EchoResults = dict[str, Any]  # "key|size|conns" -> list of run dicts, or an error string
PEER_PACKAGES = (
    "treadle",
    "greenlet",
    "uvloop",
    "gevent",
    "trio",
    "uvicorn",
    "httptools",
    "aiohttp",
    "multidict",
    "yarl",
    "matplotlib",
)


def key(server: str, size: int, conns: int) -> str:
    return f"{server}|{size}|{conns}"


def size_name(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def combo_name(size: int, conns: int) -> str:
    return f"{size_name(size)} × {conns}"


# -- the machine -----------------------------------------------------------------------------------


def _first_line(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return ((out.stdout or out.stderr).strip().splitlines() or ["unknown"])[0]


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "CPU": model,
        "cores": f"{os.cpu_count()} (this run may use {len(os.sched_getaffinity(0))})",
        "kernel": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
    }
    for name in PEER_PACKAGES:
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = "not installed"
    info["asyncio"] = "the standard library's"
    info["cc"] = _first_line(["cc", "--version"])
    info["wrk"] = _first_line(["wrk", "-v"])
    return info


# -- echo tables -----------------------------------------------------------------------------------


def _runs(results: EchoResults, server: str, size: int, conns: int) -> list[dict[str, float]] | str:
    got = results.get(key(server, size, conns), "not run")
    return got  # type: ignore[no-any-return]


def _median(runs: list[dict[str, float]], field: str) -> float:
    return statistics.median(run[field] for run in runs)


def _ratio_cells(mine: Any, rps: float, cpu: float) -> list[str]:
    """treadle's two ratios to a peer's row: its rate over the peer's, the peer's CPU over its own.

    Blank without treadle's runs.
    """
    if not isinstance(mine, list):
        return ["", ""]
    return [f"{_median(mine, 'rps') / rps:.2f}x", f"{cpu / _median(mine, 'cpu_us_per_rt'):.2f}x"]


def _spread(runs: list[dict[str, float]], field: str) -> str:
    return micro.spread([run[field] for run in runs])


def advantages(results: EchoResults, size: int, conns: int) -> list[tuple[str, str, float, float]]:
    """(style, peer, throughput ratio, CPU ratio) of treadle's server in each style over each peer."""
    rows = []
    for style in STYLES:
        mine = _runs(results, style.treadle, size, conns)
        if isinstance(mine, str):
            continue
        for peer in style.peers:
            theirs = _runs(results, peer, size, conns)
            if isinstance(theirs, str):
                continue
            rows.append(
                (
                    style.name,
                    peer,
                    _median(mine, "rps") / _median(theirs, "rps"),
                    _median(theirs, "cpu_us_per_rt") / _median(mine, "cpu_us_per_rt"),
                )
            )
    return rows


def echo_table(results: EchoResults, size: int, conns: int) -> list[str]:
    floor = _runs(results, "floor/C", size, conns)
    lines = [
        "| style | server | round trips/s | spread | p50 µs | p99 µs | server CPU µs/rt | "
        "rt/s vs floor | CPU vs floor | treadle's rt/s ratio | treadle's CPU ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(style: str, server: str, mine: list[dict[str, float]] | str | None) -> None:
        runs = _runs(results, server, size, conns)
        label = BY_KEY[server].runtime if server != "floor/C" else "C epoll (floor)"
        if isinstance(runs, str):
            lines.append(f"| {style} | {label} | {runs} | | | | | | | | |")
            return
        rps, cpu = _median(runs, "rps"), _median(runs, "cpu_us_per_rt")
        cells = [style, label, f"{rps:,.0f}", _spread(runs, "rps"), f"{_median(runs, 'p50_us'):,.0f}"]
        starved = max(int(run.get("starved", 0)) for run in runs)
        p99 = f"{_median(runs, 'p99_us'):,.0f}" + (f" ({starved} starved)" if starved else "")
        cells += [p99, f"{cpu:.1f}"]
        if isinstance(floor, list):
            cells += [f"{rps / _median(floor, 'rps'):.2f}", f"{cpu / _median(floor, 'cpu_us_per_rt'):.1f}x"]
        else:
            cells += ["", ""]
        cells += ["(treadle)", "(treadle)"] if mine is None else _ratio_cells(mine, rps, cpu)
        lines.append("| " + " | ".join(cells) + " |")

    row("floor", "floor/C", "floor")
    for style in STYLES:
        mine = _runs(results, style.treadle, size, conns)
        row(style.name, style.treadle, None)
        for peer in style.peers:
            shown = peer.split("/", 1)[0]
            row(style.name if shown == style.name else f"{style.name} (peer: {shown})", peer, mine)
    return lines


def _http_split(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """framework -> loop -> runs (or why not), in the order run."""
    out: dict[str, dict[str, Any]] = {}
    for name, runs in results.items():
        framework, loop = name.split("/", 1)
        out.setdefault(framework, {})[loop] = runs
    return out


def http_table(results: dict[str, Any]) -> list[str]:
    """One row per framework and loop; treadle's ratios are to the same framework on the other loop."""
    lines = [
        "| framework | loop | requests/s | spread | p50 µs | p99 µs | server CPU µs/request | treadle's req/s ratio "
        "| treadle's CPU ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for framework, per_loop in _http_split(results).items():
        mine = per_loop.get("treadle")
        for loop, runs in per_loop.items():
            if isinstance(runs, str):
                lines.append(f"| {framework} | {loop} | {runs} | | | | | | |")
                continue
            rps, cpu = _median(runs, "rps"), _median(runs, "cpu_us_per_rt")
            cells = [framework, loop, f"{rps:,.0f}", _spread(runs, "rps"), f"{_median(runs, 'p50_us'):,.0f}"]
            cells += [f"{_median(runs, 'p99_us'):,.0f}", f"{cpu:.1f}"]
            cells += ["(treadle)", "(treadle)"] if loop == "treadle" else _ratio_cells(mine, rps, cpu)
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def http_advantages(results: dict[str, Any], framework: str) -> list[tuple[str, float, float]]:
    """(loop, throughput ratio, CPU ratio) of ``framework`` on treadle's loop over it on each other loop."""
    per_loop = _http_split(results).get(framework, {})
    mine = per_loop.get("treadle")
    if not isinstance(mine, list):
        return []
    return [
        (
            loop,
            _median(mine, "rps") / _median(runs, "rps"),
            _median(runs, "cpu_us_per_rt") / _median(mine, "cpu_us_per_rt"),
        )
        for loop, runs in per_loop.items()
        if loop != "treadle" and isinstance(runs, list)
    ]


def peer_label(case: str, peer: str) -> str:
    """ "sock/asyncio" in a sock case is "asyncio"; borrowed from another style, "asyncio's sock"."""
    if "/" not in peer:
        return peer
    style, runtime = peer.split("/", 1)
    return runtime if case.split(" ", 1)[0] == style else f"{runtime}'s {style}"


# -- the chart -------------------------------------------------------------------------------------


def chart(
    path: Path,
    echo_rows: Sequence[tuple[str, str, float, float]],
    micro_rows: Sequence[tuple[str, str, float]],
    title: str,
) -> None:
    """Horizontal bars of treadle's advantage (log scale, 1 = even): echo and HTTP left, micro right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    left_h = max(3.0, 0.22 * len(echo_rows) + 1.5)
    right_h = max(3.0, 0.22 * len(micro_rows) + 1.5)
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(15, max(left_h, right_h)), gridspec_kw={"width_ratios": [1.1, 1]}, squeeze=True
    )
    values = [r[2] for r in echo_rows] + [r[3] for r in echo_rows] + [r[2] for r in micro_rows]
    if echo_rows:
        ys = list(range(len(echo_rows)))[::-1]
        # Bars grow from 1 (even) to the ratio: right is better for treadle, left worse.
        cpu = [r[3] for r in echo_rows]
        rps = [r[2] for r in echo_rows]
        ax1.barh([y + 0.2 for y in ys], [v - 1 for v in cpu], left=1, height=0.4, label="server CPU per round trip")
        ax1.barh([y - 0.2 for y in ys], [v - 1 for v in rps], left=1, height=0.4, label="round trips per second")
        ax1.set_yticks(ys, [f"{case} vs {peer_label(case, peer)}" for case, peer, _, _ in echo_rows], fontsize=7)
        # A thin line between the groups of one message size and connection count (and each HTTP framework's).
        groups = [case.split(" ", 1)[1] for case, _, _, _ in echo_rows]
        for i in range(1, len(groups)):
            if groups[i] != groups[i - 1]:
                ax1.axhline(ys[i] + 0.5, color="grey", linewidth=0.5, alpha=0.6)
        ax1.legend(loc="best", fontsize=8)
    ax1.set_title("Echo and HTTP: treadle's ratio to each peer", fontsize=10)
    if micro_rows:
        ys = list(range(len(micro_rows)))[::-1]
        ax2.barh(ys, [r[2] - 1 for r in micro_rows], left=1, height=0.6, color="tab:green")
        ax2.set_yticks(ys, [f"{case} vs {peer}" for case, peer, _ in micro_rows], fontsize=7)
    ax2.set_title("Loop micro-benchmarks: treadle's ratio to each peer", fontsize=10)
    low = min([0.5, *values]) / 1.2
    high = max([2.0, *values]) * 1.2
    ticks = [2.0**k for k in range(-8, 9) if low <= 2.0**k <= high]
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        ax.set_xticks(ticks, [f"{t:g}x" for t in ticks], fontsize=8)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xlabel("treadle's ratio: right of 1x treadle is better, left worse (log scale)", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def case_settings(case: EchoCase) -> str:
    """ "3 runs of 0.5 s warm-up + 1.5 s measured" (and "headline" for the README's case)."""
    runs = f"{case.repeat} run{'s' if case.repeat != 1 else ''}"
    text = f"{runs} of {case.warmup:.1f} s warm-up + {case.duration:.1f} s measured"
    return f"headline, {text}" if case.headline else text


def plan_note(cases: Sequence[EchoCase]) -> str:
    """One sentence: which echo cases got which runs and windows."""
    groups: dict[tuple[int, float, float, bool], list[str]] = {}
    for case in cases:
        groups.setdefault((case.repeat, case.warmup, case.duration, case.headline), []).append(
            combo_name(case.size, case.conns)
        )
    parts = []
    for (repeat, warmup, duration, headline), names in groups.items():
        which = ", ".join(names) + (" (the headline case)" if headline else "")
        runs = f"{repeat} run{'s' if repeat != 1 else ''}"
        parts.append(f"{which}: {runs} of {warmup:.1f} s warm-up + {duration:.1f} s measured")
    return "Echo cases: " + "; ".join(parts) + "."


def case_plan(cases: Sequence[EchoCase]) -> list[str]:
    """The echo cases and how each is measured, as a Markdown table."""
    lines = ["| echo case | runs | warm-up s | measured s |", "|---|---:|---:|---:|"]
    for case in cases:
        name = combo_name(case.size, case.conns) + (" (headline)" if case.headline else "")
        lines.append(f"| {name} | {case.repeat} | {case.warmup:.1f} | {case.duration:.1f} |")
    return lines


# -- RESULTS.md --------------------------------------------------------------------------------------


def markdown(
    *,
    info: dict[str, str],
    settings: dict[str, Any],
    commands: list[str],
    notes: list[str],
    cases: Sequence[EchoCase],
    echo_results: EchoResults,
    http_results: dict[str, Any] | str | None,
    micro_results: micro.Results | None,
    not_yet: list[str],
    failures: list[str],
    chart_name: str | None,
) -> str:
    out = ["# treadle's benchmark results", ""]
    out += [
        f"Made by `{settings['invocation']}` on {settings['date']} in {settings['elapsed']}. Rerun with "
        "`make bench` (under 15 minutes) or `make bench QUICK=1` (under 2); bench/README.md says what "
        "each case does.",
        "",
    ]
    out += [f"> **{note}**" for note in notes]
    if notes:
        out.append("")
    out += ["## Machine and versions", "", "| | |", "|---|---|"]
    out += [f"| {name} | {value} |" for name, value in info.items()]
    out += ["", "## How it is measured", ""]
    out += [
        f"- Echo: each server runs pinned to core {settings['server_cpu']} and the C load generator "
        f"(`bench/loadgen.c`) to core {settings['client_cpu']}. Each connection sends a message, waits for the "
        "whole echo, checks every byte and sends the next; a run with any wrong byte or lost connection "
        "gives no number. Each case has its own number of runs, warm-up and measured window (the table below "
        "and each case's heading); the runs are interleaved (every server once, then again) and the median is "
        "shown. *spread* is (max - min) / median of round trips per second over the runs.",
        "- *starved*: connections that completed no round trip in the whole run (warm-up included); their "
        "waits are not in the percentiles. A wait of over 10 s would be an error (lost data).",
        "- *server CPU µs/rt* is the server's user + system CPU time (from /proc/PID/stat, over the measured "
        "window) per round trip. On a 2-core machine the load generator itself can be the limit; CPU per round "
        "trip stays comparable when it is, so it is the fairer of the two numbers.",
        "- *treadle's ratio*: treadle's round trips/s over the peer's, and the peer's CPU per round trip over "
        "treadle's: above 1 is better for treadle in both. *vs floor*: the row's round trips/s over the C "
        "server's, and its CPU per round trip as a multiple of the C server's.",
        "- The same server code runs on each asyncio loop (`--loop treadle|asyncio|uvloop`), so a style's rows "
        "differ only by the loop.",
        "- HTTP: a plaintext `Hello, World!` endpoint in each framework ("
        + "; ".join(f"{name} ({what})" for name, (_, _, what) in FRAMEWORKS.items())
        + "), on each loop, loaded by wrk "
        f"({settings['http_conns']} connections, one thread, {settings['http_duration']} s) after a "
        f"{settings['http_warmup']} s warm-up load; {settings['http_repeat']} run(s) each, interleaved, a fresh "
        "server per run. treadle's ratios compare a framework on treadle's loop with the same framework on the "
        "other loops.",
        "- Micro-benchmarks: each runtime in a process of its own (each memory sample in a fresh one), the "
        "median of several samples after a warm-up.",
        "",
        *case_plan(cases),
        "",
        "Commands of one echo run and one HTTP run (PORT and SERVER_PID are the server's):",
        "",
        "```sh",
        *commands,
        "```",
        "",
    ]
    if chart_name:
        out += [f"![treadle's ratio to each peer per case]({chart_name})", ""]
    out += ["## Echo", ""]
    for case in cases:
        out += [f"### {size_name(case.size)} messages, {case.conns} connections ({case_settings(case)})", ""]
        out += echo_table(echo_results, case.size, case.conns)
        out.append("")
    out += ["## HTTP plaintext (" + ", ".join(FRAMEWORKS) + ")", ""]
    if isinstance(http_results, dict):
        out += http_table(http_results)
    else:
        out.append(f"Not run: {http_results or 'left out of this run'}.")
    out.append("")
    out += ["## Loop micro-benchmarks", ""]
    if micro_results is None:
        out += ["Left out of this run.", ""]
    else:
        out += micro.tables(micro_results)
    if not_yet:
        out += ["## Not measured yet", ""]
        out += [f"- {item}" for item in not_yet]
        out.append("")
    if failures:
        out += ["## Runs that failed", ""]
        out += [f"- {item}" for item in failures]
        out.append("")
    return "\n".join(out)

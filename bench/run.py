"""treadle's benchmark suite: echo in every API style, HTTP on uvicorn and aiohttp, loop micro-benchmarks.

Run: ``make bench`` (or ``make bench QUICK=1``), which builds the C programs
into bench/build/ and the environment .venv-bench with the peers, then runs
``.venv-bench/bin/python bench/run.py [--quick]``.  Writes bench/RESULTS.md,
bench/ratios.png and bench/results.json (the samples).  Exits 1 if any run
failed (its error is in RESULTS.md); it never fails on a speed.

Owns: the plan (which cases, how long, how many repeats), running it in an
interleaved order, and handing the samples to bench/report.py.

Never: builds anything (make does), judges a speed, or hides a failed run: its
error goes into RESULTS.md and the exit status.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import resource
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import echo  # noqa: E402
import httpbench  # noqa: E402
import micro  # noqa: E402
import report  # noqa: E402

KIB = 1024
SIZES = (1 * KIB, 10 * KIB, 100 * KIB)
CONNS = (10, 100, 1000)
# The full run measures all nine sizes x connection counts.  The headline case (the
# one the README quotes) gets three runs of a 0.5 s warm-up and a 1.5 s window; the
# eight others two runs of 0.3 s + 1.0 s each, which keeps `make bench` under 15
# minutes on 2 cores.  QUICK=1: the headline case alone, one run of 0.3 s + 1.0 s.
HEADLINE = (1 * KIB, 100)
HEADLINE_RUNS = (3, 0.5, 1.5)  # repeat, warm-up s, window s
OTHER_RUNS = (2, 0.3, 1.0)
QUICK_RUNS = (1, 0.3, 1.0)


def plan(args: argparse.Namespace) -> list[echo.EchoCase]:
    """The echo cases, the headline first; --repeat, --warmup and --duration override every case's own."""
    combos = [HEADLINE] if args.quick else [HEADLINE] + [(s, c) for s in SIZES for c in CONNS if (s, c) != HEADLINE]
    cases = []
    for size, conns in combos:
        headline = (size, conns) == HEADLINE
        repeat, warmup, duration = QUICK_RUNS if args.quick else HEADLINE_RUNS if headline else OTHER_RUNS
        cases.append(
            echo.EchoCase(
                size,
                conns,
                args.repeat or repeat,
                warmup if args.warmup is None else args.warmup,
                args.duration or duration,
                headline,
            )
        )
    return cases


def raise_fd_limit() -> None:
    """1000 connections need more than 1024 descriptors: the servers inherit this limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def run_echo_cases(
    args: argparse.Namespace, cases: list[echo.EchoCase], failures: list[str]
) -> dict[str, list[dict[str, float]] | str]:
    """Every server on every case, each case its own number of times, interleaved (every server once, then again).

    A server is started once per round and serves the cases of that round in
    turn (a case with fewer runs drops out of the later rounds), each with fresh
    connections and its own warm-up; after a failure it is started anew.
    """
    servers = [s for s in echo.SERVERS if not args.only or any(part in s.key for part in args.only)]
    results: dict[str, list[dict[str, float]] | str] = {}
    for server in servers:
        why = server.available()
        if why is not None:
            for case in cases:
                results[report.key(server.key, case.size, case.conns)] = why
    todo = [s for s in servers if s.available() is None]
    total, done = len(todo) * sum(case.repeat for case in cases), 0
    load = len(todo) * sum(case.seconds() for case in cases)
    print(
        f"echo: {len(cases)} case(s) x {len(todo)} servers, {total} runs, {load / 60:.1f} minutes of load", flush=True
    )

    def fail(server: echo.Server, case: echo.EchoCase, why: str) -> None:
        name = report.combo_name(case.size, case.conns)
        results[report.key(server.key, case.size, case.conns)] = f"failed: {why}"
        failures.append(f"{server.key}, {name}: {why}")
        print(f"  {server.key} {name}: FAILED: {why}", flush=True)

    for round_ in range(max(case.repeat for case in cases)):
        this_round = [case for case in cases if case.repeat > round_]
        for server in todo:
            srv: echo.RunningServer | None = None
            try:
                for case in this_round:
                    done += 1
                    k = report.key(server.key, case.size, case.conns)
                    if isinstance(results.get(k), str):
                        continue  # it failed once: its error stands
                    try:
                        if srv is None or not srv.alive():
                            if srv is not None:
                                srv.close()
                            srv = echo.start(server)
                        run = echo.load(srv, case.size, case.conns, case.warmup, case.duration)
                    except echo.BenchError as exc:
                        fail(server, case, str(exc))
                        if srv is not None:
                            srv.close()
                            srv = None
                        continue
                    runs = results.setdefault(k, [])
                    assert isinstance(runs, list)
                    runs.append(run)
                    print(
                        f"[{done}/{total}] {server.key} {report.combo_name(case.size, case.conns)}: "
                        f"{run['rps']:,.0f} rt/s, p99 {run['p99_us']:,.0f} µs, "
                        f"server {run['cpu_us_per_rt']:.1f} µs CPU/rt",
                        flush=True,
                    )
            finally:
                if srv is not None:
                    srv.close()
    return results


def run_http_cases(args: argparse.Namespace, failures: list[str]) -> dict[str, list[dict[str, float]] | str] | str:
    """Every framework on every loop, ``args.http_repeat`` times, interleaved; keys are framework/loop."""
    why = httpbench.unavailable()
    if why is not None:
        return why
    results: dict[str, list[dict[str, float]] | str] = {}
    pairs = [(fw, loop) for fw in httpbench.FRAMEWORKS for loop in httpbench.LOOPS]
    for framework, loop in pairs:
        missing = httpbench.framework_unavailable(framework, loop)
        if missing is not None:
            results[httpbench.key(framework, loop)] = missing
    for _ in range(args.http_repeat):
        for framework, loop in pairs:
            k = httpbench.key(framework, loop)
            if isinstance(results.get(k), str):
                continue
            try:
                run = httpbench.run_http(framework, loop, args.http_conns, args.http_warmup, args.http_duration)
            except echo.BenchError as exc:
                results[k] = f"failed: {exc}"
                failures.append(f"HTTP {framework} on {loop}: {exc}")
                print(f"http {k}: FAILED: {exc}", flush=True)
                continue
            runs = results.setdefault(k, [])
            assert isinstance(runs, list)
            runs.append(run)
            print(f"http {k}: {run['rps']:,.0f} req/s, server {run['cpu_us_per_rt']:.1f} µs CPU/req", flush=True)
    return results


def not_yet(echo_results: Mapping[str, object]) -> list[str]:
    items = []
    if any("treadle.net.stream_server not installed" in str(v) for v in echo_results.values()):
        items.append("treadle's own streams (`treadle.net.streams`): not in this version of treadle yet.")
    return items


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def seconds(floor: float | None) -> Callable[[str], float]:
    """A parser of a number of seconds: at least ``floor``, or above 0 when ``floor`` is None."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
        if not math.isfinite(value) or (value < floor if floor is not None else value <= 0):
            raise argparse.ArgumentTypeError(
                f"{text} s: must be {'at least ' + str(floor) if floor is not None else 'above 0'}"
            )
        return value

    return parse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 KiB x 100 connections, one run of each server, a few micro"
    )
    parser.add_argument(
        "--repeat", type=positive_int, help="runs of every echo and HTTP case (default: the plan's, bench/README.md)"
    )
    parser.add_argument(
        "--warmup", type=seconds(0.0), help="seconds of load before every echo window (default: plan's)"
    )
    parser.add_argument("--duration", type=seconds(None), help="seconds measured per echo run (default: the plan's)")
    parser.add_argument("--only", nargs="+", metavar="TEXT", help="only the echo servers whose key contains TEXT")
    parser.add_argument("--no-echo", action="store_true")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-micro", action="store_true")
    parser.add_argument("--note", action="append", default=[], help="a line to put at the top of RESULTS.md")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    args.http_conns, args.http_warmup, args.http_duration = 100, 1.0, (1.0 if args.quick else 2.0)
    args.http_repeat = args.repeat or (1 if args.quick else 3)
    if not args.out.parent.is_dir():
        parser.error(f"--out: the folder {args.out.parent} does not exist")
    for binary in ("loadgen", "floor_echo"):
        if not args.no_echo and not (echo.BUILD / binary).exists():
            parser.error(f"{echo.BUILD / binary} is missing: build it with `make bench`")

    raise_fd_limit()
    started = time.monotonic()
    load_before = os.getloadavg()
    cases = plan(args)
    failures: list[str] = []
    echo_results = {} if args.no_echo else run_echo_cases(args, cases, failures)
    http_results = None if args.no_http else run_http_cases(args, failures)
    micro_results = None
    if not args.no_micro:
        print("micro-benchmarks...", flush=True)
        micro_results = micro.run_all(quick=args.quick, repeat=1 if args.quick else 3)
        failures += [
            f"micro {case} on {rt}: {got}"
            for case, per in micro_results.items()
            for rt, got in per.items()
            if isinstance(got, str) and got.startswith(("failed", "no result"))
        ]
    load_after = os.getloadavg()
    elapsed = time.monotonic() - started

    server_cpu, client_cpu = echo.cpus()
    ncpu = os.cpu_count() or 1
    notes = list(args.note)
    if cases and not args.no_echo:
        notes.append(report.plan_note(cases))
    if max(load_before[0], load_after[0]) > 0.5 * ncpu:
        notes.append(
            f"The machine was busy while these numbers were taken (load average {load_before[0]:.1f} before, "
            f"{load_after[0]:.1f} after, on {ncpu} cores): they are noisy; ratios are steadier than absolute "
            "numbers, and CPU per round trip steadier than throughput."
        )
    if args.quick:
        notes.append("A QUICK=1 run: one echo case, one run per server, short windows.")
    settings = {
        "invocation": "make bench QUICK=1" if args.quick else "make bench",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed": f"{elapsed / 60:.1f} minutes",
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "echo_cases": [dataclasses.asdict(case) for case in cases],
        "http_conns": args.http_conns,
        "http_warmup": args.http_warmup,
        "http_duration": args.http_duration,
        "http_repeat": args.http_repeat,
    }
    first = cases[0]
    commands = echo.example_commands(first.size, first.conns, first.warmup, first.duration)
    commands += httpbench.example_commands(args.http_conns, args.http_duration)

    echo_rows: list[tuple[str, str, float, float]] = []
    for case in cases:
        for style, peer, rps_ratio, cpu_ratio in report.advantages(echo_results, case.size, case.conns):
            echo_rows.append((f"{style} {report.combo_name(case.size, case.conns)}", peer, rps_ratio, cpu_ratio))
    if isinstance(http_results, dict):
        for framework in httpbench.FRAMEWORKS:
            echo_rows += [
                (f"HTTP {framework} × {args.http_conns}", loop, r, c)
                for loop, r, c in report.http_advantages(http_results, framework)
            ]
    micro_rows = micro.summary(micro_results) if micro_results else []
    chart_path = args.out.parent / "ratios.png"
    chart_name = None
    if echo_rows or micro_rows:
        report.chart(
            chart_path,
            echo_rows,
            micro_rows,
            f"treadle against its peers ({settings['date']}, {settings['invocation']})",
        )
        chart_name = chart_path.name

    text = report.markdown(
        info=report.machine(),
        settings=settings,
        commands=commands,
        notes=notes,
        cases=cases,
        echo_results=echo_results,
        http_results=http_results,
        micro_results=micro_results,
        not_yet=not_yet(echo_results),
        failures=failures,
        chart_name=chart_name,
    )
    args.out.write_text(text + "\n")
    samples = {"settings": settings, "echo": echo_results, "http": http_results, "micro": micro_results}
    (args.out.parent / "results.json").write_text(json.dumps(samples, indent=1) + "\n")
    print(f"\nwrote {args.out}" + (f" and {chart_path}" if chart_name else "") + f" in {elapsed:.0f} s")
    if failures:
        print(f"{len(failures)} run(s) failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

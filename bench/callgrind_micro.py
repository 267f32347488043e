"""Instructions per operation of the loop micro-benchmarks, counted by callgrind, treadle against its peers.

Run: ``python bench/callgrind_micro.py [--n 20000] [--seeds 2] [--cases "NAME;NAME"]``
with the bench environment's Python (``make bench`` makes it: treadle, uvloop
and gevent installed; valgrind must be installed too).  The workloads are
bench/micro_cases.py's, one sample each: every case runs for treadle and for
its peer (uvloop for the async cases, gevent for the green ones), each in its
own process under ``valgrind --tool=callgrind``, with ``n`` and ``2 * n``
operations; the difference of the two totals divided by ``n`` is the cost of
one operation, start-up and imports cancelled out.  Only user-space
instructions are counted, so the numbers barely move on a busy machine, where
wall-clock rates swing by tens of percent.  What does move them is the hash
seed (the layout of sets and dictionaries, and so when the collector runs): each
count is taken with ``PYTHONHASHSEED`` 0, 1, ... and the mean and range shown.
The counts also depend on ``n``: more pending callbacks and tasks give the
collector more to traverse per operation, and with a small ``n`` a one-off
difference between the two runs (a string interned, a lock taken) shows in
the quotient; 20,000 keeps it below the spread of the seeds.

Owns: which micro cases are counted and against which peer, and the table.
Never: asserts a speed, or prints a number from a run that failed (its error
takes the number's place).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from callgrind_echo import callgrind_total  # noqa: E402
from micro_cases import BY_NAME  # noqa: E402

# (case of micro_cases, treadle's runtime there, the peer compared with)
COUNTED = [
    ("call_soon", "treadle", "uvloop"),
    ("call_soon_threadsafe", "treadle", "uvloop"),
    ("timer schedule + cancel", "treadle", "uvloop"),
    ("sleep(0), async", "treadle", "uvloop"),
    ("sleep(0), green", "treadle-green", "gevent"),
    ("spawn + join tasks, async", "treadle", "uvloop"),
    ("spawn + join tasks, green", "treadle-green", "gevent"),
    ("Event ping-pong, async", "treadle", "uvloop"),
    ("Event ping-pong, green", "treadle-green", "gevent"),
    ("Queue ping-pong, async", "treadle", "uvloop"),
    ("Queue ping-pong, green", "treadle-green", "gevent"),
]


def _child(case: str, runtime: str, n: int) -> None:
    if runtime.startswith("treadle"):
        import treadle

        print(f"compiled={treadle.compiled}", flush=True)
    BY_NAME[case].runtimes[runtime]()(n)


def _per_op(case: str, runtime: str, n: int, seed: int) -> float:
    """Instructions per operation: the difference of a 2n and an n run, over n."""
    script = [str(Path(__file__).resolve()), "--child", case, runtime]
    env = dict(os.environ, PYTHONHASHSEED=str(seed))
    short, _ = callgrind_total([*script, str(n)], env, f"{case}/{runtime}")
    long, _ = callgrind_total([*script, str(2 * n)], env, f"{case}/{runtime}")
    return (long - short) / n


def _summary(values: list[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:,.0f}"
    return f"{mean:,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="operations of the shorter run (default 20000)")
    parser.add_argument("--seeds", type=int, default=2, help="hash seeds counted per case (default 2)")
    names = [c for c, _, _ in COUNTED]
    parser.add_argument("--cases", default=";".join(names), help="separated by ';', of: " + "; ".join(names))
    parser.add_argument("--child", nargs=3, metavar=("CASE", "RUNTIME", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]))
        return
    if args.n < 1 or args.seeds < 1:
        parser.error("--n and --seeds must be at least 1")
    wanted = [c.strip() for c in args.cases.split(";") if c.strip()]
    for case in wanted:
        if case not in names:
            parser.error(f"unknown case {case!r}: expected one of {'; '.join(names)}")
    jobs = [(c, rt) for c, ours, peer in COUNTED if c in wanted for rt in (ours, peer)]
    results: dict[tuple[str, str], str] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {
            (case, rt, seed): pool.submit(_per_op, case, rt, args.n, seed)
            for case, rt in jobs
            for seed in range(args.seeds)
        }
        for case, rt in jobs:
            try:
                values = [futures[(case, rt, seed)].result() for seed in range(args.seeds)]
                results[(case, rt)] = _summary(values)
            except RuntimeError as exc:
                results[(case, rt)] = f"error: {exc}"
    print(f"instructions per operation ({args.n} vs {2 * args.n} operations; mean (range) of {args.seeds} hash seeds)")
    print()
    print("| case | treadle | peer |")
    print("|---|---:|---:|")
    for case, ours, peer in COUNTED:
        if case in wanted:
            print(f"| {case} | {results[(case, ours)]} | {peer} {results[(case, peer)]} |")


if __name__ == "__main__":
    main()

"""``marconi verify``: run a workload with faults against a driver URI and check its history, or re-check one.

    marconi verify URI [--producers 2 --observers 2 --consumers 3 --queues 1] [--ops 10000 --seconds 60]
                       [--faults kill-producer,kill-consumer,connections,kill-writer] [--fault-every 1.5]
                       [--quiet-every 5] [--history FILE] [--seed N] [--option NAME=VALUE ...]
    marconi verify --check FILE

Exit codes: 0 no anomaly, 1 anomalies (or the run failed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

from marconi.tests.verify import faults, journal, runner
from marconi.tests.verify.checker import check_run
from marconi.transport.command import option

USAGE_ERROR = 2
BAR_WIDTH = 30


def _positive(kind: Callable[[str], float], low: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low:g}, got {text}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uri", nargs="?", metavar="URI", help="driver URI to verify, e.g. sqlite:///verify.db")
    parser.add_argument("--check", metavar="FILE", help="re-check a saved history instead of running")
    parser.add_argument("--producers", type=_positive(int, 0), default=2, help="producer workers (default 2)")
    parser.add_argument("--observers", type=_positive(int, 0), default=2, help="observer workers (default 2)")
    parser.add_argument("--consumers", type=_positive(int, 0), default=3, help="consumer workers (default 3)")
    parser.add_argument("--queues", type=_positive(int, 1), default=1, help="queues (default 1)")
    parser.add_argument("--ops", type=_positive(int, 1), default=10_000, help="operations in all (default 10000)")
    parser.add_argument("--seconds", type=_positive(float, 0.1), default=60.0, help="at most this long (60)")
    parser.add_argument(
        "--faults",
        default="",
        metavar="LIST",
        help="comma-separated faults: kill-producer, kill-consumer, connections (PostgreSQL, MariaDB, Redis), "
        "kill-writer (a SQLite file); default none",
    )
    parser.add_argument("--fault-every", type=_positive(float, 0.1), default=1.5, help="seconds between faults")
    parser.add_argument("--quiet-every", type=_positive(float, 0), default=5.0, help="seconds between quiet points")
    parser.add_argument("--history", metavar="FILE", default="marconi-verify.jsonl", help="the history file")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random choices (default: random)")
    parser.add_argument(
        "--option", dest="options", type=option, action="append", default=[], metavar="NAME=VALUE",
        help="a driver option (repeatable; VALUE is JSON when it parses as JSON)",
    )  # fmt: skip


class ProgressBar:
    """On a terminal, a bar redrawn in place; otherwise a line every 10% of the operations or 10 seconds."""

    def __init__(self, total: int, seconds: float, stream: TextIO | None = None) -> None:
        self.total, self.seconds = total, seconds
        self.stream: TextIO = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_line = (0.0, -1)

    def __call__(self, progress: runner.Progress) -> None:
        share = min(1.0, max(progress.ops / self.total, progress.elapsed / self.seconds))
        text = (
            f"{progress.ops}/{self.total} ops, {progress.elapsed:.0f}/{self.seconds:.0f} s, "
            f"{progress.faults} faults, {progress.quiet_points} quiet points"
        )
        if self.tty:
            filled = int(share * BAR_WIDTH)
            self.stream.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} {text}")
            self.stream.flush()
            return
        tenth = int(share * 10)
        if tenth > self.last_line[1] or time.monotonic() - self.last_line[0] >= 10:
            self.last_line = (time.monotonic(), tenth)
            print(f"marconi verify: {share:4.0%} {text}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def summary(recorded: journal.Recorded, anomalies: list[tuple[str, int]]) -> str:
    """The summary table: operations by kind and outcome, faults injected, anomalies by category."""
    counts = Counter((op.kind.value, op.outcome.value) for op in recorded.history)
    kinds = sorted({kind for kind, _ in counts})
    outcomes = ["ok", "fail", "unknown"]
    lines = ["operations", f"  {'kind':<10}" + "".join(f"{o:>10}" for o in outcomes) + f"{'total':>10}"]
    for kind in kinds:
        row = [counts[(kind, o)] for o in outcomes]
        lines.append(f"  {kind:<10}" + "".join(f"{n:>10}" for n in row) + f"{sum(row):>10}")
    lines.append(f"  {'all':<10}" + "".join(f"{sum(counts[(k, o)] for k in kinds):>10}" for o in outcomes)
                 + f"{len(recorded.history):>10}")  # fmt: skip
    injected = Counter(fault.name for fault in recorded.faults)
    lines.append("faults injected" + ("" if injected else ": none"))
    lines += [f"  {name:<20}{count:>6}" for name, count in sorted(injected.items())]
    lines.append("anomalies" + ("" if anomalies else ": none"))
    lines += [f"  {name:<24}{count:>6}" for name, count in anomalies]
    return "\n".join(lines)


def report(recorded: journal.Recorded, out: TextIO) -> int:
    started = time.monotonic()
    result = check_run(recorded.history)
    took = time.monotonic() - started
    by_kind = sorted(Counter(str(anomaly.kind) for anomaly in result.anomalies).items())
    print(summary(recorded, by_kind), file=out)
    print(f"checked {len(recorded.history)} operations in {took:.2f} s", file=out)
    for problem in recorded.errors:
        print(f"worker error: {problem.strip().splitlines()[-1]}", file=out)
    if recorded.damaged:
        print(f"{len(recorded.damaged)} damaged lines in the history (first at line {recorded.damaged[0]})", file=out)
    if not result.ok:
        print(result.summary(), file=out)
    return 0 if result.ok and not recorded.errors else 1


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.check:
        if args.uri:
            parser.error("--check FILE re-checks a history: give no URI with it")
        try:
            recorded = journal.read(args.check)
        except (OSError, ValueError) as error:
            print(f"{parser.prog}: error: cannot read {args.check}: {error}", file=sys.stderr)
            return USAGE_ERROR
        return report(recorded, sys.stdout)
    if not args.uri:
        parser.error("give a driver URI to verify, or --check FILE")
    names = tuple(name.strip() for name in args.faults.split(",") if name.strip())
    kinds = faults.available(args.uri)
    unknown = sorted(set(names) - set(kinds))
    if unknown:
        parser.error(f"no fault {', '.join(unknown)} for {args.uri}; this URI can have: {', '.join(sorted(kinds))}")
    if args.producers == 0:
        parser.error("--producers must be at least 1: nothing would be posted")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    plan = runner.Plan(
        args.uri,
        producers=args.producers,
        observers=args.observers,
        consumers=args.consumers,
        queues=args.queues,
        ops=args.ops,
        seconds=args.seconds,
        faults=names,
        fault_every=args.fault_every,
        quiet_every=args.quiet_every,
        seed=seed,
        options=dict(args.options),
    )
    bar = ProgressBar(args.ops, args.seconds)
    started = time.monotonic()
    try:
        result = runner.run(plan, args.history, {name: kinds[name] for name in names}, bar)
    except runner.RunError as error:
        bar.close()
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    bar.close()
    print(f"ran {result.progress.ops} operations in {time.monotonic() - started:.1f} s (seed {seed}); "
          f"history in {result.path}")  # fmt: skip
    for problem in result.errors:
        print(f"run error: {problem}")
    status = report(journal.read(result.path), sys.stdout)
    return 1 if result.errors else status

"""``marconi bench``: every driver against its raw floor and its peer, alternating, checked, with a table, JSON, PNG.

    marconi bench [URI ...] [--reachable URI ...] [--set default|full] [--workload NAME ...] [--repetitions N]

Without URIs it measures the memory driver and SQLite in a file of a fresh temporary directory; ``--reachable``
adds a backend only if it answers (``make run`` adds the PostgreSQL and MariaDB of the test setup so). Each
backend gets its driver, its raw floor and its peer (``contenders.CONTENDERS``). The run's tables and queues carry
a prefix of their own and are removed at the end. Exit codes: 0 done (whatever the check found: the table says
VALID or INVALID), 1 a backend given as a URI could not be used, 2 bad usage.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from marconi.storage import StorageError

from . import environment, report
from .contenders import Contender, backend_of, contenders_for, run_prefix
from .runner import Results, Runner, prove_equivalence
from .workers import WorkerError
from .workloads import WorkloadError, catalogue, select

ROLES = ("driver", "floor", "peer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marconi bench",
        description="Compare every driver with its backend's raw floor and peer, alternating, each run checked.",
    )
    parser.add_argument("uris", nargs="*", metavar="URI", help="driver URIs (default: memory:// and a SQLite file)")
    parser.add_argument(
        "--reachable", action="append", default=[], metavar="URI", help="add this backend if it answers"
    )
    parser.add_argument("--set", dest="set_name", default="default", help="workload set: default or full")
    parser.add_argument("--workload", action="append", metavar="NAME", help="run only these workloads (repeatable)")
    parser.add_argument("--workloads-file", metavar="TOML", help="read the workloads from this file")
    parser.add_argument("--repetitions", type=int, default=3, help="runs of each contender per workload (default 3)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply each workload's messages (default 1)")
    parser.add_argument("--roles", default=",".join(ROLES), help="contender roles to run (default driver,floor,peer)")
    parser.add_argument("--output", default="bench-results", metavar="DIR", help="where bench.json/.png/.md go")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    return parser


def _usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> frozenset[str]:
    if args.repetitions < 1:
        parser.error("--repetitions must be at least 1")
    if not 0 < args.scale <= 100:
        parser.error("--scale must be above 0 and at most 100")
    roles = frozenset(part.strip() for part in args.roles.split(",") if part.strip())
    if not roles or not roles <= set(ROLES):
        parser.error(f"--roles takes a comma-separated subset of {', '.join(ROLES)}")
    return roles


def _prepare(contenders: list[Contender], results: Results, required: bool) -> list[Contender]:
    """Prepare each backend's contenders; a backend that fails is an error if required, else skipped with why."""
    ready: list[Contender] = []
    for backend in dict.fromkeys(c.backend for c in contenders):
        mine = [c for c in contenders if c.backend == backend]
        try:
            for contender in mine:
                results.facts[contender.label] = contender.client_class.prepare(
                    contender.target, contender.prefix, **contender.options
                )
        except Exception as error:  # an unreachable server, a missing package: named in the report
            why = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            _cleanup(mine)
            if required:
                raise StorageError(f"cannot benchmark {mine[0].target}: {why}") from error
            for contender in mine:
                results.skipped[contender.label] = why
            continue
        ready += mine
    return ready


def _cleanup(contenders: list[Contender]) -> None:
    for contender in contenders:
        try:
            contender.client_class.cleanup(contender.target, contender.prefix, **contender.options)
        except Exception as error:
            print(f"marconi bench: could not clean up after {contender.label}: {error}", file=sys.stderr)


def _facts_and_proofs(contenders: list[Contender], results: Results) -> None:
    """Each backend's version and durability settings; each floor's proof of equivalence with its driver."""
    for backend in dict.fromkeys(c.backend for c in contenders):
        mine = {c.role: c for c in contenders if c.backend == backend}
        clients = {role: contender.open() for role, contender in mine.items()}
        try:
            for role, client in clients.items():
                results.facts[mine[role].label] = {**results.facts.get(mine[role].label, {}), **client.facts()}
            if "driver" in clients and "floor" in clients:
                results.equivalence[mine["floor"].label] = prove_equivalence(clients["driver"], clients["floor"])
        finally:
            for client in clients.values():
                client.close()


def bench(
    uris: list[str],
    reachable: list[str],
    workloads: list[Any],
    repetitions: int,
    roles: frozenset[str],
    output: Path,
    progress: bool = True,
    command: str = "marconi bench",
) -> Results:
    """Run the benchmark and write ``bench.json``, ``bench.png`` and ``bench.md`` into ``output``; the results."""
    started, clock = datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic()
    prefix = run_prefix()
    with tempfile.TemporaryDirectory(prefix="marconi-bench-") as scratch:
        if not uris:
            uris = ["memory://", f"sqlite:///{scratch}/bench.db"]
        required = [c for uri in uris for c in contenders_for(uri, prefix, roles)]
        optional = [
            c
            for uri in reachable
            for c in contenders_for(uri, prefix, roles)
            if backend_of(uri) not in {backend_of(u) for u in uris}
        ]
        results = Results([], workloads)
        contenders = _prepare(required, results, required=True)
        contenders += _prepare(optional, results, required=False)
        results.contenders = contenders
        try:
            _facts_and_proofs(contenders, results)
            multiprocess = {c.label: bool(results.facts.get(c.label, {}).get("multiprocess", True)) for c in contenders}
            for c in contenders:
                capabilities = results.facts.get(c.label, {}).get("capabilities")
                if capabilities is not None:
                    multiprocess[c.label] = "multiprocess" in capabilities
            runner = Runner(contenders, workloads, repetitions, multiprocess=multiprocess)
            bar = _progress(runner.total(), progress)
            runner.progress = bar
            try:
                runner.run(results)
            finally:
                bar.close()
        finally:
            _cleanup(contenders)
    output.mkdir(parents=True, exist_ok=True)
    data = report.as_json(results, environment.machine(), command, started, time.monotonic() - clock)
    report.write_json(output / "bench.json", data)
    report.chart(results, output / "bench.png")
    (output / "bench.md").write_text(report.markdown_table(results) + "\n")
    return results


class _Bar:
    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.tqdm = tqdm(total=total, unit="run", disable=None if enabled else True, file=sys.stderr, leave=False)
        self.started = False

    def __call__(self, label: str) -> None:
        if self.started:
            self.tqdm.update(1)
        self.started = True
        self.tqdm.set_postfix_str(label, refresh=True)

    def close(self) -> None:
        if self.started:
            self.tqdm.update(1)
        self.tqdm.close()


def _progress(total: int, enabled: bool) -> _Bar:
    return _Bar(total, enabled)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    roles = _usage(parser, args)
    try:
        workloads = select(catalogue(args.workloads_file), args.workload, args.set_name)
    except WorkloadError as error:
        print(f"marconi bench: error: {error}", file=sys.stderr)
        return 2
    if args.list:
        for workload in workloads:
            print(f"{workload.name:<24} {workload.description}")
        return 0
    if args.scale != 1.0:
        workloads = [workload.scaled(args.scale) for workload in workloads]
    command = "marconi bench " + shlex.join(list(sys.argv[1:] if argv is None else argv))
    try:
        results = bench(
            args.uris,
            args.reachable,
            workloads,
            args.repetitions,
            roles,
            Path(args.output),
            not args.no_progress,
            command.strip(),
        )
    except WorkloadError as error:
        print(f"marconi bench: error: {error}", file=sys.stderr)
        return 2
    except (StorageError, WorkerError) as error:
        print(f"marconi bench: error: {error}", file=sys.stderr)
        return 1
    print(report.text_table(results))
    for note in report.notes(results):
        print(f"  {note}")
    written = ", ".join(str(Path(args.output) / name) for name in ("bench.json", "bench.png", "bench.md"))
    print(f"\nwritten: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where a driver's time goes, per operation: ``python -m marconi_benchmarks.profile URI [--iterations N]``.

Runs each hot operation (post of 10, a page of 10, a claim of 10 with a delete of each, a pop of 10) alone on a
fresh queue, first timed without a profiler, then under cProfile, and splits the profiled time into what runs it:
marconi's core (validation, the base), the driver's hooks, SQLAlchemy building and compiling statements,
SQLAlchemy's engine and pool, the DBAPI, and waiting for the server. For SQLAlchemy drivers it also says how each
statement was served from SQLAlchemy's compiled cache (hit, miss, or no key: compiled every time).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from .contenders import PROJECT, DriverClient, body, run_prefix

#: (category, test on a profiled function's file and name), first match wins.
CATEGORIES: list[tuple[str, Callable[[str, str], bool]]] = [
    ("waiting for the server", lambda f, n: f == "~" and any(w in n for w in ("recv", "select", "poll", "wait"))),
    ("waiting for the server", lambda f, n: "/psycopg/" in f and n == "wait"),  # psycopg waits in C, in here
    ("waiting for the server", lambda f, n: f.endswith("/socket.py") and n == "readinto"),
    ("DBAPI (sqlite3 engine)", lambda f, n: f == "~" and "sqlite3" in n),
    ("DBAPI", lambda f, n: any(p in f for p in ("/psycopg/", "/psycopg_binary/", "/pymysql/"))),
    ("SQLAlchemy statements + compiler", lambda f, n: "/sqlalchemy/sql/" in f),
    ("SQLAlchemy engine, pool, dialect", lambda f, n: "/sqlalchemy/" in f),
    ("marconi core (validation, base)", lambda f, n: "/marconi/storage/" in f),
    ("driver hooks", lambda f, n: "/drivers/" in f or "/marconi_drivers/" in f),
]


def categorise(stats: pstats.Stats) -> tuple[dict[str, float], list[tuple[float, str]]]:
    """Seconds of own time per category, and the functions that are in no category, costliest first."""
    found: Counter[str] = Counter()
    other: list[tuple[float, str]] = []
    for (filename, line, name), (_, _, own, _, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if filename == "~" and callers and not any(test(filename, name) for _, test in CATEGORIES):
            # A builtin (isinstance, getattr, dict.get...) counts for whoever called it most.
            filename, line, name = max(callers.items(), key=lambda item: item[1][2])[0]
        for category, test in CATEGORIES:
            if test(filename, name):
                found[category] += own
                break
        else:
            found["other Python"] += own
            other.append((own, f"{filename.rsplit('/', 2)[-1] if filename != '~' else ''}:{line} {name}"))
    return dict(found), sorted(other, reverse=True)


def operations(client: DriverClient, queue: str) -> dict[str, Callable[[], Any]]:
    seq = iter(range(10**9))

    def post() -> None:
        client.post(queue, [body("p", next(seq), 100) for _ in range(10)])

    def page() -> None:
        client.list(queue, None, 10, False)

    def claim_delete() -> None:
        claim_id, items = client.claim(queue, 10)
        for item in items:
            client.delete(queue, item.id, claim_id)

    def pop() -> None:
        client.pop(queue, 10)

    return {"post 10": post, "list 10": page, "claim 10 + delete each": claim_delete, "pop 10": pop}


def cache_outcomes(client: DriverClient) -> Counter[str] | None:
    engine = getattr(client.driver, "engine", None)
    if engine is None:
        return None
    from sqlalchemy import event

    outcomes: Counter[str] = Counter()

    def record(connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        hit = getattr(context, "cache_hit", None)
        outcomes[str(getattr(hit, "name", hit))] += 1

    event.listen(engine, "before_cursor_execute", record)
    return outcomes


def profile(uri: str, iterations: int) -> None:
    prefix = run_prefix()
    DriverClient.prepare(uri, prefix)
    client = DriverClient(uri, prefix)
    outcomes = cache_outcomes(client)
    try:
        for name, call in operations(client, "profiled").items():
            client.create_queue("profiled")
            filler = operations(client, "profiled")["post 10"]
            for _ in range(iterations * 2 if name != "post 10" else 0):  # enough for the consumers and the pages
                filler()
            for _ in range(10):  # warm: connections, prepared statements, caches
                call()
            start = time.perf_counter()
            for _ in range(iterations):
                call()
            plain = (time.perf_counter() - start) / iterations
            if outcomes is not None:
                outcomes.clear()
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(iterations):
                call()
            profiler.disable()
            spent, other = categorise(pstats.Stats(profiler))
            total = sum(spent.values()) or 1.0
            print(f"{uri} {name}: {plain * 1000:.2f} ms per op unprofiled")
            for category, seconds in sorted(spent.items(), key=lambda item: -item[1]):
                print(f"    {100 * seconds / total:5.1f}%  {category}")
            print("    other Python, costliest: " + "; ".join(where for _, where in other[:4]))
            if outcomes:
                cache = ", ".join(f"{k.lower()} {v / iterations:g}" for k, v in sorted(outcomes.items()))
                print(f"    statements per op by SQLAlchemy's compiled cache: {cache}")
            client.delete_queue("profiled")
    finally:
        client.close()
        DriverClient.cleanup(uri, prefix)
        from .floors import drop_tables

        if uri.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "mysql", "mariadb"):
            drop_tables(uri, prefix)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marconi_benchmarks.profile", description=__doc__.split("\n")[0])
    parser.add_argument("uris", nargs="+", metavar="URI")
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args(argv)
    for uri in args.uris:
        profile(uri, args.iterations)
    print(f"(project {PROJECT!r}; profiled time is own time per function, split by where the function lives)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

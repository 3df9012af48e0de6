"""The benchmark's output: the table (terminal and Markdown), the JSON file with every figure, the PNG chart."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .contenders import Contender, backend_name
from .runner import Results, Summary, summarise

#: Ratios above this are cut off in the chart (and labelled with their value).
CHART_TOP = 3.0

#: The op whose latency a workload's row shows, by the role it measures.
LEAD_OP = {"producer": "post", "observer": "list"}

HEADERS = (
    "workload",
    "backend",
    "driver msg/s",
    "floor msg/s",
    "driver/floor",
    "peer msg/s",
    "driver/peer",
    "p50/p99 ms driver",
    "floor",
    "peer",
    "round trips d/f/p",
    "check",
)


@dataclasses.dataclass
class Row:
    workload: str
    backend: str
    driver: Summary | None
    floor: Summary | None
    peer: Summary | None
    peer_name: str | None
    lead_op: str
    not_equivalent: bool = False  # the floor failed its proof of equivalence with the driver

    def ratio(self, other: Summary | None) -> float | None:
        if self.driver is None or other is None or not self.driver.rate or not other.rate:
            return None
        return self.driver.rate / other.rate

    @property
    def check(self) -> str:
        bad = [s.contender for s in (self.driver, self.floor, self.peer) if s is not None and not s.valid]
        if self.not_equivalent and self.floor is not None and self.floor.contender not in bad:
            bad.append(f"{self.floor.contender} (not equivalent)")
        return "VALID" if not bad else "INVALID: " + ", ".join(bad)


def rows(results: Results) -> list[Row]:
    summaries = summarise(results)
    backends: list[str] = []
    for contender in results.contenders:
        if contender.backend not in backends:
            backends.append(contender.backend)
    found = []
    for workload in results.workloads:
        for backend in backends:
            mine = {c.role: c for c in results.contenders if c.backend == backend}
            picked = {role: summaries.get((workload.name, c.label)) for role, c in mine.items()}
            if not any(picked.values()):
                continue
            lead = LEAD_OP.get(workload.measures) or ("pop" if workload.consume == "pop" else "claim")
            peer, floor = mine.get("peer"), mine.get("floor")
            found.append(
                Row(
                    workload.name,
                    backend_name(backend),
                    picked.get("driver"),
                    picked.get("floor"),
                    picked.get("peer"),
                    peer.name if peer is not None else None,
                    lead,
                    floor is not None and bool(results.equivalence.get(floor.label)),
                )
            )
    return found


def _rate(summary: Summary | None) -> str:
    return "-" if summary is None or summary.rate is None else f"{summary.rate:,.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _latency(summary: Summary | None, op: str) -> str:
    if summary is None or op not in summary.latency_ms:
        return "-"
    figures = summary.latency_ms[op]
    return f"{figures['p50']:.2f}/{figures['p99']:.2f}"


def _trips(row: Row) -> str:
    parts = []
    for summary in (row.driver, row.floor, row.peer):
        unit = None if summary is None else summary.round_trips.get("unit")
        parts.append("-" if unit is None else f"{unit:.0f}" if abs(unit - round(unit)) < 0.05 else f"{unit:.1f}")
    while parts and parts[-1] == "-" and len(parts) > 1:
        parts.pop()
    return "/".join(parts)


def cells(row: Row) -> list[str]:
    peer_rate = _rate(row.peer)
    if row.peer is not None and row.peer_name:
        peer_rate = f"{row.peer_name} {peer_rate}"
    return [
        row.workload,
        row.backend,
        _rate(row.driver),
        _rate(row.floor),
        _ratio(row.ratio(row.floor)),
        peer_rate,
        _ratio(row.ratio(row.peer)),
        _latency(row.driver, row.lead_op),
        _latency(row.floor, row.lead_op),
        _latency(row.peer, row.lead_op),
        _trips(row),
        row.check,
    ]


def text_table(results: Results) -> str:
    table = [list(HEADERS)] + [cells(row) for row in rows(results)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    numeric = set(range(2, 11))
    lines = []
    for index, line in enumerate(table):
        lines.append(
            "  ".join(cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(line))
        )
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(results: Results) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join(" --- " for _ in HEADERS) + "|"]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in rows(results)]
    return "\n".join(lines)


def notes(results: Results) -> list[str]:
    """What the table cannot show: skipped contenders, failed equivalence proofs, the first problems found."""
    producers = {workload.name: workload.producers for workload in results.workloads}
    runs = {run.repetition for run in results.runs}
    found = [f"medians of {len(runs)} repetition(s) per contender, run alternating"] if runs else []
    found += [f"{label}: not run ({why})" for label, why in results.skipped.items()]
    for label, problems in results.equivalence.items():
        found.append(
            f"{label}: "
            + (
                "reads what its driver wrote and the other way round"
                if not problems
                else "NOT equivalent to its driver: " + "; ".join(problems)
            )
        )
    for (workload, contender), summary in summarise(results).items():
        for problem in summary.problems[:2]:
            found.append(f"{contender} on {workload}: {problem}")
        if producers.get(workload, 0) > 1 or summary.tallies.get("post_retries"):
            found += _conflicts(workload, contender, summary)
    return found


def _conflicts(workload: str, contender: str, summary: Summary) -> list[str]:
    """A line on a contender's post conflicts, where it tallies them."""
    posts, retries = summary.tallies.get("posts", 0), summary.tallies.get("post_retries", 0)
    if not posts:
        return []
    p99 = summary.latency_ms.get("post", {}).get("p99")
    latency = f", post p99 {p99:.2f} ms" if p99 is not None else ""
    return [
        f"{contender} on {workload}: {retries} conflicts in {posts} posts "
        f"({retries / (posts + retries):.1%} of attempts, {retries / posts:.2f} retries per post){latency}"
    ]


def _contender(contender: Contender) -> dict[str, Any]:
    return {
        "label": contender.label,
        "name": contender.name,
        "role": contender.role,
        "backend": contender.backend,
        "client": contender.client,
        "target": contender.target,
    }


def as_json(results: Results, machine: dict[str, Any], command: str, started: str, seconds: float) -> dict[str, Any]:
    summaries = summarise(results)
    return {
        "command": command,
        "started": started,
        "seconds": round(seconds, 1),
        "machine": machine,
        "contenders": [{**_contender(c), "facts": results.facts.get(c.label, {})} for c in results.contenders],
        "skipped": results.skipped,
        "equivalence": {
            label: {"proven": not problems, "problems": problems} for label, problems in results.equivalence.items()
        },
        "workloads": [dataclasses.asdict(w) for w in results.workloads],
        "summary": [dataclasses.asdict(s) for s in summaries.values()],
        "table": [
            {
                **dict(zip(HEADERS, cells(row), strict=True)),
                "driver_floor": row.ratio(row.floor),
                "driver_peer": row.ratio(row.peer),
            }
            for row in rows(results)
        ],
        "runs": [{**dataclasses.asdict(run), "valid": run.valid} for run in results.runs],
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def chart(results: Results, path: Path) -> None:
    """Bars of driver/floor and driver/peer per workload, one colour per backend; a line at 1.0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = rows(results)
    workloads = list(dict.fromkeys(row.workload for row in table))
    panels = [("driver / raw floor", "floor"), ("driver / peer", "peer")]
    panels = [(title, which) for title, which in panels if any(row.ratio(getattr(row, which)) for row in table)]
    if not panels:
        panels = [("driver / raw floor", "floor")]
    figure, axes = plt.subplots(
        len(panels), 1, figsize=(max(8.0, 0.75 * len(workloads) + 3), 3.6 * len(panels)), squeeze=False
    )
    for axis, (title, which) in zip(axes[:, 0], panels, strict=True):
        backends = [
            b
            for b in dict.fromkeys(row.backend for row in table)
            if any(r.ratio(getattr(r, which)) for r in table if r.backend == b)
        ]
        width = 0.8 / max(1, len(backends))
        for k, backend in enumerate(backends):
            values = []
            for workload in workloads:
                row = next((r for r in table if r.workload == workload and r.backend == backend), None)
                ratio = row.ratio(getattr(row, which)) if row is not None else None
                values.append(ratio or 0.0)
            positions = [i + (k - (len(backends) - 1) / 2) * width for i in range(len(workloads))]
            peer = next((r.peer_name for r in table if r.backend == backend and r.peer_name), None)
            axis.bar(positions, values, width, label=f"{backend} ({peer})" if which == "peer" and peer else backend)
        axis.axhline(1.0, color="black", linewidth=0.8)
        tallest = max((patch.get_height() for patch in axis.patches), default=1.0)
        if tallest > CHART_TOP:  # a bar far above the rest (a floor that walks a claimed head) is cut and labelled
            axis.set_ylim(0, CHART_TOP)
            for patch in axis.patches:
                if patch.get_height() > CHART_TOP:
                    x = patch.get_x() + patch.get_width() / 2
                    axis.text(x, CHART_TOP * 0.97, f"{patch.get_height():.0f}x", ha="center", va="top", fontsize=6)
        axis.set_title(title)
        axis.set_ylabel("ratio of messages/s")
        axis.set_xticks(range(len(workloads)))
        axis.set_xticklabels(workloads, rotation=30, ha="right", fontsize=8)
        axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def load(path: Path) -> Results:
    """The results of an earlier run, from its JSON file (to render its table and chart again)."""
    from .runner import Measured
    from .workloads import Workload

    data = json.loads(path.read_text())
    contenders = [
        Contender(c["name"], c["role"], c["backend"], c["client"], c["target"], "", {}) for c in data["contenders"]
    ]
    workloads = [Workload(**{**w, "sets": tuple(w["sets"])}) for w in data["workloads"]]
    results = Results(contenders, workloads)
    results.runs = [Measured(**{k: v for k, v in run.items() if k != "valid"}) for run in data["runs"]]
    results.equivalence = {label: entry["problems"] for label, entry in data["equivalence"].items()}
    results.skipped = data["skipped"]
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m marconi_benchmarks.report bench.json [--chart out.png]``: the table (and chart) of a run again."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m marconi_benchmarks.report", description=main.__doc__)
    parser.add_argument("json", type=Path)
    parser.add_argument("--chart", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print the Markdown table")
    args = parser.parse_args(argv)
    results = load(args.json)
    print(markdown_table(results) if args.markdown else text_table(results))
    if args.chart:
        chart(results, args.chart)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

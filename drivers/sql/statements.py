"""The SQL driver's statements: named SQL in sibling files, prepared once per backend and table prefix.

``sql/common.sql`` holds what every backend runs as written; ``sql/<kind>.sql`` adds a backend's own statements
and overrides common ones by name. Placeholders ``{queues}``, ``{messages}``, ``{claims}``, ``{free}`` and
``{free_hint}`` name the driver's tables and its index of eligible messages (validated identifiers, filled in
once), and ``{part_...}`` the text of a ``part_...`` section, a fragment shared by statements; ``:name`` marks a
bound parameter, never text spliced in. Preparing a statement for a backend:

- its DBAPI's parameter style: ``%(name)s`` for psycopg and PyMySQL; ``?`` for sqlite3, with the values in a list
  in order (sqlite3 looks each named parameter up by name: an 80-parameter INSERT bound by name cost 25-35 us
  more than the same one bound by position);
- ``IN (:list)`` takes a list: an array (``= ANY(...)``) on PostgreSQL, one parameter per item elsewhere;
- SQLite drops ``FOR UPDATE``: its write transactions (``BEGIN IMMEDIATE``) already exclude every other writer;
- PostgreSQL's pages (``GENERIC_PLAN_PAGES``) have their ``LIMIT`` written as a number, one text per limit from 1
  to MAX_LIMIT (an int, checked): with a bound LIMIT its plan cache never keeps their plan;
- PostgreSQL takes an array cast from a parameter (``CAST(:bodies AS TEXT[])``) in psycopg's binary format, whose
  elements need no quoting (the text format escapes each one with a regular expression).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from marconi.storage.validation import MAX_LIMIT

_SECTION = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_IN_LIST = re.compile(r"\bIN \(:([A-Za-z_]\w*)\)")
_FOR_UPDATE = re.compile(r"\s+FOR UPDATE\b")
_VALUES = re.compile(r"\bVALUES \((?P<row>[^()]*)\)\s*$")
_ARRAY_CAST = re.compile(r"CAST\(:([A-Za-z_]\w*) AS [\w ]+\[\]\)")


def parse(text: str) -> dict[str, str]:
    """``{name: sql}`` of a statements file; comment lines are dropped."""
    parts = _SECTION.split(text)
    statements = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("--")]
        statements[name] = "\n".join(lines)
    return statements


def load(kind: str) -> dict[str, str]:
    """Every statement of backend ``kind``: the common ones, overridden and extended by the backend's file."""
    folder = resources.files(__package__).joinpath("sql")
    statements = parse(folder.joinpath("common.sql").read_text())
    statements.update(parse(folder.joinpath(f"{kind}.sql").read_text()))
    return statements


@dataclass
class Statement:
    """One statement, ready for the backend's DBAPI: ``render(params)`` gives the SQL text and its parameters."""

    name: str
    raw: str  # with :name parameters
    style: str  # "pyformat" (%(name)s, a mapping of values) or "qmark" (?, a list of values in order)
    lists: frozenset[str]  # parameters that take a list, expanded one per item
    binary: frozenset[str] = frozenset()  # parameters sent in the DBAPI's binary format (psycopg's %(name)b)
    #: ``LIMIT :limit`` is written as a number, one text per limit (see ``GENERIC_PLAN_PAGES``).
    literal_limit: bool = False
    #: Whether it returns rows, learnt from the DBAPI's cursor the first time it runs (asking each time costs
    #: psycopg a description of every column).
    returns_rows: bool | None = None
    _texts: dict[tuple[Any, ...], str] = field(default_factory=dict, repr=False)
    _row_names: dict[tuple[Any, ...], list[str]] = field(default_factory=dict, repr=False)  # pyformat: per rows key
    _order: dict[tuple[Any, ...], list[str]] = field(default_factory=dict, repr=False)  # qmark: names, in order

    def rows(self, rows: Sequence[Sequence[Any]]) -> tuple[str, Any]:
        """An ``INSERT ... VALUES (...)`` for all of ``rows`` at once: one statement, one VALUES group per row. Each
        row holds its values in the order of the statement's VALUES group (``row_names``)."""
        key = ("rows", len(rows))
        text = self._texts.get(key)
        if text is None:
            values_group = self._values_group()
            groups = ", ".join(
                "(" + _PARAMETER.sub(rf":\1_{index}", values_group["row"]) + ")" for index in range(len(rows))
            )
            text = self._prepare(key, self.raw[: values_group.start("row") - 1] + groups, named=False)
        values = [value for row in rows for value in row]
        if self.style == "qmark":
            return text, values
        names = self._row_names.get(key)
        if names is None:
            names = self._row_names[key] = [f"{name}_{i}" for i in range(len(rows)) for name in self.row_names]
        return text, dict(zip(names, values, strict=True))

    @property
    def row_names(self) -> list[str]:
        """The parameters of the statement's one VALUES group, in order: what each row of ``rows`` holds."""
        return _PARAMETER.findall(self._values_group()["row"])

    def _values_group(self) -> re.Match[str]:
        match = _VALUES.search(self.raw)
        assert match is not None, f"{self.name}: only a statement ending in one VALUES group takes rows"
        return match

    def _prepare(self, key: tuple[Any, ...], sql: str, named: bool = True) -> str:
        """The text of ``sql`` in the DBAPI's style, kept under ``key``; for qmark also the names of its values in
        order, unless its values come in order already (not ``named``: ``rows``)."""
        if self.style == "qmark":
            if named:
                self._order[key] = _PARAMETER.findall(sql)
            text = _PARAMETER.sub("?", sql)
        else:
            binary = self.binary
            text = _PARAMETER.sub(
                lambda match: f"%({match[1]})b" if match[1] in binary else f"%({match[1]})s", sql.replace("%", "%%")
            )
        self._texts[key] = text
        return text

    def _limited(self, limit: Any) -> str:
        # A number from a closed set, never a caller's text: an int the core has checked, checked again here, on
        # every call (True and 7.0 would find the texts of 1 and 7: they are equal keys).
        if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"{self.name}: the limit must be an int from 1 to {MAX_LIMIT}, got {limit!r}")
        key = ("limit", limit)
        text = self._texts.get(key)
        if text is None:
            text = self._prepare(key, self.raw.replace("LIMIT :limit", f"LIMIT {limit}"))
        return text

    def render(self, params: Mapping[str, Any]) -> tuple[str, Any]:
        """The statement's text and its values in the DBAPI's style."""
        if self.literal_limit:
            return self._limited(params["limit"]), params
        if not self.lists:
            text = self._texts.get(())
            if text is None:
                text = self._prepare((), self.raw)
            if self.style == "qmark":
                return text, [params[name] for name in self._order[()]]
            return text, params
        lists = sorted(self.lists)
        lengths = tuple(len(params[name]) for name in lists)
        text = self._texts.get(lengths)
        if text is None:
            sql = self.raw
            for name, length in zip(lists, lengths, strict=True):
                items = ", ".join(f":{name}_{i}" for i in range(length)) or "NULL"
                sql = sql.replace(f"IN (:{name})", f"IN ({items})")
            text = self._prepare(lengths, sql)
        expanded = {key: value for key, value in params.items() if key not in self.lists}
        for name in self.lists:
            expanded.update((f"{name}_{i}", item) for i, item in enumerate(params[name]))
        if self.style == "qmark":
            return text, [expanded[name] for name in self._order[lengths]]
        return text, expanded


#: PostgreSQL's pages, whose plan is planned once per connection when their LIMIT is a number. With ``LIMIT $n`` the
#: planner costs a generic plan as if it returned a tenth of the queue, never picks it, and plans every page anew:
#: 0.19 ms of planning on a page that runs in 0.07 ms (a page of 10 took 0.73 ms against 0.32 ms, 1,000,000
#: queued). Their generic plans stay index scans under any parameters (the ended-claims branch, whose generic plan
#: is a sequential scan, is the separate page_unclaimed_lapsed, left out here).
GENERIC_PLAN_PAGES = frozenset({"page", "page_unclaimed"})


class Statements:
    """The prepared statements of one driver: ``statements["page"]``."""

    def __init__(self, kind: str, names: Mapping[str, str], style: str) -> None:
        self._prepared: dict[str, Statement] = {}
        statements = load(kind)
        parts = {name: statements.pop(name).format_map(names) for name in list(statements) if name.startswith("part_")}
        names = {**names, **parts}
        for name, sql in statements.items():
            sql = sql.format_map(names)
            lists: frozenset[str] = frozenset(_IN_LIST.findall(sql))
            if kind == "postgresql":
                sql, lists = _IN_LIST.sub(r"= ANY(:\1)", sql), frozenset()
            elif kind == "sqlite":
                sql = _FOR_UPDATE.sub("", sql)
            binary = frozenset(_ARRAY_CAST.findall(sql)) if kind == "postgresql" else frozenset()
            literal_limit = kind == "postgresql" and name in GENERIC_PLAN_PAGES
            assert not literal_limit or (not lists and "LIMIT :limit" in sql), name
            self._prepared[name] = Statement(name, sql, style, lists, binary, literal_limit)

    def __getitem__(self, name: str) -> Statement:
        return self._prepared[name]

    def __contains__(self, name: object) -> bool:
        return name in self._prepared

    def __iter__(self) -> Iterator[str]:
        return iter(self._prepared)

"""The benchmark's own tests: not timing anything, they run the harness end to end on tiny workloads."""

from __future__ import annotations

import pytest

from marconi.tests.plugin import driver_uris


@pytest.fixture
def bench_uris(request: pytest.FixtureRequest, tmp_path) -> list[str]:
    """The backends under test (``--marconi-uri``), each once; SQLite as a file of its own (the floor needs one).
    MongoDB is left to ``test_mongodb``, whose smaller workloads suit the slow test server."""
    uris, seen = [], set()
    for uri in driver_uris(request.config) or ["memory://", "sqlite://"]:
        scheme = uri.split(":", 1)[0].split("+", 1)[0]
        kind = "mysql" if scheme == "mariadb" else scheme
        if kind in seen or kind == "mongodb":
            continue
        seen.add(kind)
        uris.append(f"sqlite:///{tmp_path}/bench.db" if kind == "sqlite" else uri)
    return uris


def uri_for(request: pytest.FixtureRequest, backend: str) -> str:
    """The URI under test for ``backend``; the test is skipped, saying why, when the run names none."""
    from marconi_benchmarks.contenders import backend_of

    for uri in driver_uris(request.config):
        if backend_of(uri) == backend:
            return uri
    pytest.skip(f"no {backend} URI under test (--marconi-uri)")


@pytest.fixture
def redis_uri(request: pytest.FixtureRequest) -> str:
    return uri_for(request, "redis")


@pytest.fixture
def mongo_uri(request: pytest.FixtureRequest) -> str:
    return uri_for(request, "mongodb")

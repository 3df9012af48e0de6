"""Contenders with a bug planted in front of them, and the check that the harness catches it."""

from __future__ import annotations

import builtins
from typing import Any

from marconi_benchmarks.contenders import Client, Contender
from marconi_benchmarks.floors.mongodb import MongoFloor
from marconi_benchmarks.floors.redis import RedisFloor
from marconi_benchmarks.runner import Results, Runner, prove_equivalence, summarise
from marconi_benchmarks.workloads import Workload


class ReversingPosts(Client):
    """Posts each batch back to front (a FIFO bug)."""

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        ids: builtins.list[str] = super().post(queue, bodies[::-1])
        return ids[::-1]


class ReversingRedisFloor(ReversingPosts, RedisFloor):
    pass


class ReversingMongoFloor(ReversingPosts, MongoFloor):
    pass


def proof_fails(driver: Client, floor: Client, planted: Client) -> None:
    """The real floor proves its equivalence with the driver; the planted one cannot."""
    try:
        assert prove_equivalence(driver, floor) == []
        problems = prove_equivalence(driver, planted)
        assert problems and "pages differ" in problems[0]
    finally:
        for client in (driver, floor, planted):
            client.close()


def check_catches(real: Contender, *planted: Contender) -> None:
    """On a producer with an observer, ``real`` is VALID and every planted contender INVALID."""
    contenders = [real, *planted]
    workload = Workload("post", "producer", producers=1, observers=1, messages=40, warmup=2)
    results = Results(contenders, [workload])
    Runner(contenders, [workload], 1).run(results)
    summaries = summarise(results)
    assert summaries[(workload.name, real.label)].valid, summaries[(workload.name, real.label)].problems
    for contender in planted:
        assert not summaries[(workload.name, contender.label)].valid, contender.label

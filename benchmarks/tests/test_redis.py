"""Redis's contenders beyond the tiny whole-harness run: a floor with a planted bug fails its proof of equivalence
with the driver and is INVALID in the history check; so is Zaqar's driver with the same bug planted in front of
it (the check sees what comes back from its worker process)."""

from __future__ import annotations

import builtins
from typing import Any

from marconi_benchmarks.contenders import Contender, run_prefix
from marconi_benchmarks.floors.redis import RedisFloor
from marconi_benchmarks.peers.zaqar import ZaqarPeer
from marconi_benchmarks.redis_client import RedisDriverClient, delete_keys
from marconi_benchmarks.runner import Results, Runner, prove_equivalence, summarise
from marconi_benchmarks.workloads import Workload


class ReversingFloor(RedisFloor):
    """Posts each batch back to front (a FIFO bug)."""

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        ids: builtins.list[str] = super().post(queue, bodies[::-1])
        return ids[::-1]


class ReversingZaqar(ZaqarPeer):
    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        ids: builtins.list[str] = super().post(queue, bodies[::-1])
        return ids[::-1]


def test_a_floor_with_a_planted_bug_fails_its_proof_and_the_check(redis_uri):
    prefix = run_prefix()
    driver, floor, buggy = (cls(redis_uri, prefix) for cls in (RedisDriverClient, RedisFloor, ReversingFloor))
    try:
        assert prove_equivalence(driver, floor) == []
        problems = prove_equivalence(driver, buggy)
        assert problems and "pages differ" in problems[0]
    finally:
        for client in (driver, floor, buggy):
            client.close()

    real = Contender("redis-py", "floor", "redis", "marconi_benchmarks.floors.redis:RedisFloor", redis_uri, prefix)
    planted = Contender("reversing", "floor", "redis", f"{__name__}:ReversingFloor", redis_uri, prefix)
    peer = Contender("reversing-zaqar", "peer", "redis", f"{__name__}:ReversingZaqar", redis_uri, prefix)
    contenders = [real, planted, peer]
    workload = Workload("post", "producer", producers=1, observers=1, messages=40, warmup=2)
    results = Results(contenders, [workload])
    try:
        Runner(contenders, [workload], 1).run(results)
    finally:
        delete_keys(redis_uri, prefix)
        ZaqarPeer.cleanup(redis_uri, prefix)
    summaries = summarise(results)
    assert summaries[(workload.name, real.label)].valid, summaries[(workload.name, real.label)].problems
    assert not summaries[(workload.name, planted.label)].valid
    assert not summaries[(workload.name, peer.label)].valid

"""Redis's contenders beyond the tiny whole-harness run: a floor with a planted bug fails its proof of equivalence
with the driver and is INVALID in the history check. (Zaqar's answers cross a process boundary: test_smoke
checks every history of it VALID, which a wrong order or a lost message would not be.)"""

from __future__ import annotations

from marconi_benchmarks.contenders import Contender, run_prefix
from marconi_benchmarks.floors.redis import RedisFloor
from marconi_benchmarks.redis_client import RedisDriverClient, delete_keys

from .planted import ReversingRedisFloor, check_catches, proof_fails


def test_a_floor_with_a_planted_bug_fails_its_proof_and_the_check(redis_uri):
    prefix = run_prefix()
    proof_fails(*(cls(redis_uri, prefix) for cls in (RedisDriverClient, RedisFloor, ReversingRedisFloor)))
    planted = "marconi_benchmarks.tests.planted:"
    try:
        check_catches(
            Contender("redis-py", "floor", "redis", "marconi_benchmarks.floors.redis:RedisFloor", redis_uri, prefix),
            Contender("reversing", "floor", "redis", planted + "ReversingRedisFloor", redis_uri, prefix),
        )
    finally:
        delete_keys(redis_uri, prefix)

"""The commands each hot call sends, counted with pymongo command monitoring and asserted exactly; and the
indexes that serve them, asserted with ``explain`` of exactly what the driver sent.

The counts are the design's budget: a change that adds a round trip fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ..store import SCAN_SPAN, WINDOW
from .conftest import Commands, empty_project, fresh_clock, open_driver, post

if TYPE_CHECKING:
    from .. import MongoDriver

pytestmark = pytest.mark.driver("mongodb")

QUEUES, MESSAGES, CLAIMS = "marconi_queues", "marconi_messages", "marconi_claims"
#: post of 10: read the queue (counter, window), insert the batch, commit (move the counter).
POST = [("find", QUEUES), ("insert", MESSAGES), ("update", QUEUES)]
#: ... and once every WINDOW commits, the window's txns are materialized before the commit: their documents read
#: by the partial index, then updated by _id.
POST_MATERIALIZING = [
    ("find", QUEUES),
    ("insert", MESSAGES),
    ("find", MESSAGES),
    ("update", MESSAGES),
    ("update", QUEUES),
]
#: one page: the queue, then the page.
LIST_PAGE = [("find", QUEUES), ("find", MESSAGES)]
#: claim of 10: the queue, unclaimed messages, messages whose claim lapsed, the guarded updates, the claim.
CLAIM = [("find", QUEUES), ("find", MESSAGES), ("find", MESSAGES), ("update", MESSAGES), ("insert", CLAIMS)]
#: pop of 10: the queue, unclaimed messages, lapsed claims, then one guarded find-and-delete per message (a pop
#: never holds a message it has not removed, so a pop cut off midway leaves nothing held).
POP = [*CLAIM[:3], *[("findAndModify", MESSAGES)] * 10]
#: delete: the queue (incarnation, committed txns), then one guarded delete.
DELETE = [("find", QUEUES), ("delete", MESSAGES)]
#: stats: the queue, one aggregation for the counts and both ends' positions, the two end messages.
STATS = [("find", QUEUES), ("aggregate", MESSAGES), ("find", MESSAGES)]
GET = [("find", QUEUES), ("find", MESSAGES)]


@pytest.fixture
def commands() -> Commands:
    return Commands()


@pytest.fixture
def counted(mongo_uri: str, commands: Commands, project: str) -> Iterator[MongoDriver]:
    with open_driver(mongo_uri, clock=fresh_clock(), event_listeners=[commands]) as opened:
        yield opened
        empty_project(opened, project)


@pytest.fixture
def queue(counted: MongoDriver, project: str, commands: Commands) -> str:
    counted.queue_controller.upsert("counted", {}, project=project)
    post(counted, "counted", project, ["warm"])  # the client is connected, the queue has a commit
    commands.clear()
    return "counted"


def sent(commands: Commands, call: Callable[[], Any], label: str) -> list[tuple[str, str]]:
    commands.clear()
    call()
    found = commands.clear()
    print(f"\n{label}: {len(found)} command(s): {found}")
    return found


def test_post_of_10(counted: MongoDriver, queue: str, project: str, commands: Commands) -> None:
    ten = [{"n": i} for i in range(10)]
    assert sent(commands, lambda: post(counted, queue, project, ten), "post 10") == POST


def test_every_window_th_post_materializes_the_window(counted, queue, project, commands) -> None:
    seen = [sent(commands, lambda: post(counted, queue, project, [1]), "post 1") for _ in range(WINDOW)]
    # The warm-up post was the first commit: commits 2..WINDOW fill the window, commit WINDOW + 1 empties it.
    assert seen == [POST] * (WINDOW - 1) + [POST_MATERIALIZING]


def test_list_page(counted: MongoDriver, queue: str, project: str, commands: Commands) -> None:
    post(counted, queue, project, list(range(20)))
    page = lambda: counted.message_controller.list(queue, project=project, limit=10)  # noqa: E731
    assert sent(commands, page, "list page") == LIST_PAGE
    assert len(page().items) == 10


def test_claim_of_10(counted: MongoDriver, queue: str, project: str, commands: Commands) -> None:
    post(counted, queue, project, list(range(20)))
    claim = lambda: counted.claim_controller.create(queue, {"ttl": 60}, project=project, limit=10)  # noqa: E731
    assert sent(commands, claim, "claim 10") == CLAIM
    claim_id, messages = claim()
    assert claim_id is not None and len(messages) == 10


def test_pop_of_10(counted: MongoDriver, queue: str, project: str, commands: Commands) -> None:
    post(counted, queue, project, list(range(20)))
    pop = lambda: counted.message_controller.pop(queue, 10, project=project)  # noqa: E731
    assert sent(commands, pop, "pop 10") == POP
    assert [message["body"] for message in pop()] == list(range(9, 19))  # the first pop took "warm" and 0-8


def test_claim_of_an_empty_queue_writes_nothing(counted, project, commands) -> None:
    counted.queue_controller.upsert("empty", {}, project=project)
    claim = lambda: counted.claim_controller.create("empty", {"ttl": 60}, project=project)  # noqa: E731
    # Nothing was ever posted (counter 0): only the read of lapsed claims is left to look at; nothing is written.
    assert sent(commands, claim, "claim of nothing") == [CLAIM[0], CLAIM[2]]


def test_delete_and_get(counted: MongoDriver, queue: str, project: str, commands: Commands) -> None:
    message_id = post(counted, queue, project, ["x"])[0]
    messages = counted.message_controller
    assert sent(commands, lambda: messages.get(queue, message_id, project=project), "get") == GET
    assert sent(commands, lambda: messages.delete(queue, message_id, project=project), "delete") == DELETE
    assert messages.bulk_get(queue, [message_id], project=project) == []


def test_stats(counted: MongoDriver, queue: str, project: str, commands: Commands) -> None:
    post(counted, queue, project, list(range(5)))
    stats = lambda: counted.queue_controller.stats(queue, project=project)  # noqa: E731
    assert sent(commands, stats, "stats") == STATS
    assert stats()["messages"]["total"] == 6


# -- indexes -------------------------------------------------------------------------------------------------------


class Recorder(Commands):
    """Keeps the reads the driver sends to the messages collection, to explain them afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[dict[str, Any]] = []

    def started(self, event: Any) -> None:
        super().started(event)
        if event.command_name in ("find", "aggregate") and event.command.get(event.command_name) == MESSAGES:
            keep = ("find", "filter", "sort", "limit", "aggregate", "pipeline")
            self.reads.append({key: event.command[key] for key in keep if key in event.command})


def plan_of(driver: MongoDriver, command: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The winning plan's stages (``IXSCAN:index`` for index scans) and the execution statistics."""
    explainable = dict(command)
    if "aggregate" in explainable:
        explainable["cursor"] = {}
    database = driver.store.messages.database
    explained = database.command("explain", explainable, verbosity="executionStats")
    planner = explained.get("queryPlanner") or explained["stages"][0]["$cursor"]["queryPlanner"]
    stats = explained.get("executionStats") or explained["stages"][0]["$cursor"].get("executionStats", {})
    stages: list[str] = []
    stack = [planner["winningPlan"]]
    while stack:
        stage = stack.pop()
        name = stage.get("stage", "?")
        stages.append(f"{name}:{stage['indexName']}" if name == "IXSCAN" else name)
        stack += [stage[key] for key in ("inputStage", "queryPlan") if key in stage]
        stack += stage.get("inputStages", [])
    return stages, stats


def recorded(driver_uri: str, project: str, work: Callable[[MongoDriver], Any]) -> list[tuple[list[str], Any]]:
    recorder = Recorder()
    with open_driver(driver_uri, clock=fresh_clock(), event_listeners=[recorder]) as opened:
        opened.queue_controller.upsert("explained", {}, project=project)
        post(opened, "explained", project, list(range(30)))
        recorder.reads.clear()
        work(opened)
        try:
            return [plan_of(opened, command) for command in recorder.reads]
        finally:
            empty_project(opened, project)


def test_list_claim_and_stats_are_served_by_indexes(mongo_uri: str, project: str) -> None:
    def work(driver: MongoDriver) -> None:
        driver.message_controller.list("explained", project=project, limit=5)
        driver.claim_controller.create("explained", {"ttl": 60}, project=project, limit=5)
        driver.queue_controller.stats("explained", project=project)

    plans = [stages for stages, _ in recorded(mongo_uri, project, work)]
    print("\n" + "\n".join(map(str, plans)))
    scans = [[stage for stage in stages if stage.startswith(("IXSCAN", "COLLSCAN"))] for stages in plans]
    assert scans == [
        ["IXSCAN:marker"],  # list: one marker range
        ["IXSCAN:claimable"],  # claim: unclaimed messages, ce = 0, in marker order
        ["IXSCAN:claimable"],  # claim: messages whose claim lapsed, 0 < ce <= now
        [scans[3][0]],  # stats: one pass over the queue's messages by any (q, ...) index
        ["IXSCAN:marker"],  # stats: the two ends by position
    ]
    assert scans[3][0].startswith("IXSCAN:")


def test_claim_cost_does_not_grow_with_messages_claimed_at_the_head(mongo_uri: str, project: str) -> None:
    """The claim's reads of unclaimed messages never examine a held one: with 20 messages held at the head of the
    queue, as with none, they examine at most the unclaimed backlog behind them (30, less the 5 it took; a server
    may read a whole window of markers). The held head costs at most one more read (a window with nothing to take).
    """
    examined, reads = {}, {}
    for head in (0, 20):
        recorder = Recorder()
        with open_driver(mongo_uri, clock=fresh_clock(), event_listeners=[recorder]) as opened:
            name = f"head{head}"
            opened.queue_controller.upsert(name, {}, project=project)
            post(opened, name, project, list(range(30 + head)))
            for _ in range(head // 10):  # claims take the head: these stay held under live claims
                opened.claim_controller.create(name, {"ttl": 600}, project=project, limit=10)
            recorder.reads.clear()
            opened.claim_controller.create(name, {"ttl": 60}, project=project, limit=5)
            unclaimed = [command for command in recorder.reads if command.get("filter", {}).get("ce") == 0]
            plans = [plan_of(opened, command) for command in unclaimed]
            assert all("IXSCAN:claimable" in stages for stages, _ in plans)
            examined[head] = sum(stats.get("totalDocsExamined", 0) for _, stats in plans)
            reads[head] = len(unclaimed)
            empty_project(opened, project)
    print(f"\ndocuments examined by the claim's reads of unclaimed messages: {examined}, in {reads} reads")
    assert max(examined.values()) <= 30 - 5
    assert reads[0] <= reads[20] <= reads[0] + 1


def test_the_marker_index_is_unique(driver: MongoDriver) -> None:
    indexes = {index["name"]: index for index in driver.store.messages.list_indexes()}
    assert indexes["marker"]["key"] == {"q": 1, "m": 1} and indexes["marker"]["unique"]
    assert indexes["number"]["key"] == {"q": 1, "n": 1} and indexes["number"]["unique"]
    assert "expireAfterSeconds" in indexes["expiry"]


def test_client_uuid_is_kept_as_text(driver: MongoDriver, project: str) -> None:
    """Not a budget: a check that the echo filter compares the canonical text the base hands over."""
    driver.queue_controller.upsert("echo", {}, project=project)
    client = uuid.uuid4()
    driver.message_controller.post("echo", [{"ttl": 60, "body": 1}], client, project=project)
    hidden = driver.message_controller.list("echo", project=project, client_uuid=client)
    assert hidden.items == []


def test_a_page_reads_a_window_of_markers_not_the_rest_of_the_queue(mongo_uri: str, project: str) -> None:
    """A page of 5 from the head of a queue of 200 examines at most its window's documents, on a server that
    applies the limit as it scans and on one that reads the whole range first alike."""
    recorder = Recorder()
    with open_driver(mongo_uri, clock=fresh_clock(), event_listeners=[recorder]) as opened:
        opened.queue_controller.upsert("deep", {}, project=project)
        for start in range(0, 200, 50):
            post(opened, "deep", project, list(range(start, start + 50)))
        recorder.reads.clear()
        assert len(opened.message_controller.list("deep", project=project, limit=5).items) == 5
        (page,) = [command for command in recorder.reads if command.get("find") == opened.store.messages.name]
        _, stats = plan_of(opened, page)
        empty_project(opened, project)
    assert stats.get("totalDocsExamined", 0) <= SCAN_SPAN * 5

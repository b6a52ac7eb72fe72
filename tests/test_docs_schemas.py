"""The JSON Schemas in docs/ (records, commands, events) hold for what agencies publish
(the example records) and for what the connector really sends: records and status notices
it delivers, and the events of a whole flow between agencies A and B."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from connector.cli import main
from connector.daemon import inbound, outbound, sender
from connector.daemon.retry import DependencyBackoff
from connector.daemon.wiring import Runtime
from tests.e2e.harness import World
from tests.e2e.inprocess import daemon_pki, runtime, world  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "mappings" / "examples" / "qlvb-json"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((REPO / "docs" / f"{name}.schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def problems(name: str, document: object) -> list[str]:
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator(name).iter_errors(document)]


def schema_for(document: dict[str, Any]) -> str:
    return "command" if document.get("loai_ban_ghi") == "trang_thai" else "record"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_example_records_and_commands_follow_their_schema(path: Path) -> None:
    document = json.loads(path.read_text("utf-8"))
    assert problems(schema_for(document), document) == []


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.edxml")), ids=lambda p: p.name)
def test_what_the_connector_delivers_follows_the_schema(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["map", "--reverse", "--mapping", "qlvb-json", str(path)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert problems(schema_for(document), document) == []


def test_schemas_refuse_what_the_connector_refuses() -> None:
    record = json.loads((EXAMPLES / "01-ordinary.json").read_text("utf-8"))
    del record["id"]
    assert problems("record", record)  # neither your id nor a DocumentId
    command = json.loads((EXAMPLES / "20-command-accepted.json").read_text("utf-8"))
    command["ma_trang_thai"] = "07"
    assert problems("command", command)
    assert problems("event", {"event": "outbound.sent", "time": "now", "extra": 1})


@pytest.fixture
def agencies(world: World) -> Iterator[tuple[Runtime, Runtime]]:  # noqa: F811
    a, b = runtime(world, world.a), runtime(world, world.b)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def test_events_of_a_whole_flow_follow_the_schema(
    world: World,  # noqa: F811
    agencies: tuple[Runtime, Runtime],
) -> None:
    a, b = agencies
    for name in ("03-attachments.json", "08-secret.json"):
        world.a.drop_record(world.json_record(name))
    for item in a.services.intake.fetch(2, 5.0):
        outbound.handle(a.services, item)
    sender.send_round(a.services, DependencyBackoff(a.services.retry))
    assert inbound.poll_once(b.services) == 1
    sender.send_round(b.services, DependencyBackoff(b.services.retry))
    assert inbound.poll_once(a.services) == 1
    events = world.a.events() + world.b.events()
    kinds = {e["event"] for e in events}
    assert {"outbound.ready", "outbound.sent", "outbound.refused", "inbound.delivered",
            "status.01"} <= kinds, kinds
    for event in events:
        assert problems("event", event) == [], event
    (document,) = world.b.deliveries()
    assert problems("record", document.record()) == []
    (notice,) = world.a.deliveries("status")
    assert problems("command", notice.record()) == []

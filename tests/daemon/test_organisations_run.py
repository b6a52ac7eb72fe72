"""The province connector running (its supervisor's workers, in this process): records
dropped in the spool's ``outbound/<OrganId>/`` go out through each organisation's hub
account, B's 01s come back through one inbox loop per account, and a document from B to an
organisation lands in ``inbound/<OrganId>/``."""

from __future__ import annotations

import json
from pathlib import Path

from connector.config import load_config
from connector.daemon import runner, wiring
from connector.store.states import Direction, PackageKind, RecipientState
from connector.trust.pki import DemoPki
from tests.daemon.province import (
    C_ID,
    D_ID,
    OURS,
    org_record,
    pki,  # noqa: F401
    province_config,
    province_world,  # noqa: F401
)
from tests.e2e.harness import B_ID, World
from tests.e2e.inprocess import runtime


def _drop(folder: Path, record: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{record['id']}.tmp"
    temporary.write_text(json.dumps(record, ensure_ascii=False), "utf-8")
    temporary.rename(folder / f"{record['id']}.json")


def test_the_running_province_connector_serves_each_organisation(
        province_world: World, pki: DemoPki, tmp_path: Path) -> None:  # noqa: F811
    world = province_world
    config = load_config(province_config(world, tmp_path / "p.yaml", None), environ=world.env)
    ours, b = wiring.build(config, start_metrics=False), runtime(world, world.b)
    ours_supervisor, b_supervisor = runner.supervise(ours), runner.supervise(b)
    assert {w.name for w in ours_supervisor.workers} >= {"inbound", "inbound-1", "inbound-2"}
    ours_supervisor.start()
    b_supervisor.start()
    try:
        outbound = world.a.spool / "outbound"
        for number, organ_id in enumerate(OURS):
            _drop(outbound / organ_id, org_record(pki, organ_id, f"run-{number}", [B_ID],
                                                  980 + number))
        _drop(world.b.spool / "outbound", org_record(pki, B_ID, "run-b", [C_ID, D_ID], 990))

        def arrived() -> bool:
            packages = [p for p in ours.services.store.find(direction=Direction.OUTBOUND)
                        if p.kind is PackageKind.EDOC]
            states = [r.state for p in packages for r in ours.services.store.recipients(p.id)]
            return len(packages) == 3 and set(states) == {RecipientState.ARRIVED}

        world.wait("B's 01 for each organisation's document", arrived, timeout=90)
        world.wait("B's document in C's and D's folders", lambda: sorted(
            p.parent.parent.name for p in (world.a.spool / "inbound").glob("*/in-*/record.json")
            if json.loads((p.parent / "delivery.json").read_text("utf-8"))["kind"] == "document"
        ) == sorted([C_ID, D_ID]), timeout=90)
        assert sorted(d.headers["from"] for d in world.b.deliveries("document")) == sorted(OURS)
    finally:
        ours_supervisor.shutdown()
        b_supervisor.shutdown()

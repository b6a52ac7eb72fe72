"""Real national-axis samples (read from ../shared, never copied) routed through the emulator."""

from __future__ import annotations

import secrets
from pathlib import Path

from connector.edxml import peek
from connector.hub import Account, HubConfig, HubEmulator
from connector.interconnect import MessageType, Secret, VxpClient, VxpSettings
from tests.samples import require_samples, sample_paths


def test_every_sample_is_routed_to_its_recipients(tmp_path: Path) -> None:
    require_samples()
    samples = [(path, path.read_bytes()) for path in sample_paths()]
    summaries = {path.name: peek(data) for path, data in samples}
    senders = sorted({s.from_organ_id for s in summaries.values()})
    accounts = {
        organ: (f"vxp.sample-{i}", Secret(secrets.token_hex(16))) for i, organ in enumerate(senders)
    }
    config = HubConfig(
        port=0,
        db=tmp_path / "hub.sqlite",
        accept_unknown_recipients=True,
        accounts=[
            Account(systemid=systemid, organ_id=organ, secret=secret)
            for organ, (systemid, secret) in accounts.items()
        ],
    )
    with HubEmulator(config) as hub:
        for path, data in samples:
            summary = summaries[path.name]
            systemid, secret = accounts[summary.from_organ_id]
            settings = VxpSettings(endpoint=hub.url, systemid=systemid, secret=secret)
            with VxpClient(settings) as client:
                kind: MessageType = "status" if summary.kind == "status" else "edoc"
                doc_id = client.send(data, message_type=kind, sender=summary.from_organ_id)
            delivered = {d.recipient for d in hub.deliveries() if d.doc_id == doc_id}
            if summary.kind == "status" and summary.response_for_organ_id != summary.from_organ_id:
                assert delivered == {summary.response_for_organ_id}, path.name
            elif summary.kind == "edoc":
                assert delivered == set(summary.to_organ_ids), path.name
            stored = next(p for p in hub.packages() if p.doc_id == doc_id)
            assert stored.data == data  # byte for byte, stray prefix bytes included
    assert len(samples) >= 1

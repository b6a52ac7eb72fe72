"""An organisation's token pulled out while packages arrive for it on a shared hub account.

A and C share one hub account (one inbox); C's seal is in a SoftHSM2 token, pulled out. A
package from B to both arrives: each organisation's copy is fetched, verified, delivered and
acknowledged; A's 01 goes out at once, C's 01 waits in the outbox (ACCEPTED, the same
``waiting_keys`` mechanism as C's outbound documents) and leaves once the token is back.
The inbox never stalls (a second package for A goes through while C's token is still out),
and the component down is ``keys`` — never ``hub`` — in the metrics and in /readyz.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization

from connector.config import load_config
from connector.daemon import inbox, organisations, outbound, sender, waiting_keys, wiring
from connector.daemon.retry import DependencyBackoff
from connector.store.states import Direction, InboundState, OutboundState, PackageKind
from connector.trust.pkcs11_softhsm import SoftHsm
from connector.trust.pki import PROVINCE_AGENCIES, DemoPki, issue_seal_certificate
from connector.trust.truststore import TrustStore
from connector.trust.xmldsig import verify_package
from tests.daemon.province import (
    C_ID,
    PIN,
    PIN_ENV,
    hsm,  # noqa: F401
    local_record,
    org_record,
    pki,  # noqa: F401
    province_config,
    province_world,  # noqa: F401
)
from tests.e2e.harness import A_ID, B_ID, World
from tests.e2e.inprocess import ListItem, runtime

C_TOKEN = "seal-33"


def _enrol_c(hsm: SoftHsm, pki: DemoPki) -> list[Path]:  # noqa: F811
    """A second token holding C's seal key; returns its folders (to pull it out)."""
    before = set(hsm.token_folders())
    agency = next(a for a in PROVINCE_AGENCIES if a.organ_id == C_ID)
    hsm.init_token(C_TOKEN, PIN)
    public = hsm.generate_key(C_TOKEN, PIN, "seal", key_id=b"\x01", kind="ec")
    certificate = issue_seal_certificate(pki, agency, public)
    hsm.store_certificate(C_TOKEN, PIN, "seal", key_id=b"\x01", certificate=certificate)
    cert_file = hsm.token_dir.parent / f"{C_TOKEN}-seal.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return [f for f in hsm.token_folders() if f not in before]


def _config(world: World, pki: DemoPki, hsm: SoftHsm, tmp_path: Path) -> Any:  # noqa: F811
    path = province_config(world, tmp_path / "p.yaml", hsm.module, shared=True)
    raw = yaml.safe_load(path.read_text("utf-8"))
    c = next(o for o in raw["organisations"] if o["organ_id"] == C_ID)
    assert "hub" not in c  # C on A's account: one inbox for both
    c["seal"] = {"pkcs11": {"module": str(hsm.module), "token_label": C_TOKEN,
                            "key_label": "seal", "pin_env": PIN_ENV},
                 "chain": [str(pki.intermediate_cert)]}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), "utf-8")
    return load_config(path, environ=world.env)


def _inbox_rounds(services: Any, box: inbox.Inbox, backoff: DependencyBackoff,
                  rounds: int = 3) -> None:
    """Inbox rounds as ``inbox.inbound_loop`` runs them, each settled to the end."""
    for _ in range(rounds):
        inbox._round(services, box, backoff)
        deadline = time.monotonic() + 60
        while box.window.in_flight and time.monotonic() < deadline:
            box.window.settle(0.2)


def _send_all(services: Any) -> None:
    backoff = DependencyBackoff(services.retry)
    while sender.send_round(services, backoff):
        pass


def _from_b(b: Any, pki: DemoPki, record_id: str, to: list[str], number: int) -> None:  # noqa: F811
    item = ListItem(local_record(org_record(pki, B_ID, record_id, to, number)))
    outbound.handle(b.services, item)
    assert item.settled == "ack", item.error
    _send_all(b.services)


def _notices(services: Any) -> dict[str, Any]:
    return {p.sender: p for p in services.store.find(direction=Direction.OUTBOUND)
            if p.kind is PackageKind.STATUS}


def test_a_pulled_token_holds_only_its_organisations_01_on_a_shared_inbox(
        province_world: World, pki: DemoPki, hsm: SoftHsm,  # noqa: F811
        tmp_path: Path) -> None:
    world = province_world
    c_folders = _enrol_c(hsm, pki)
    config = _config(world, pki, hsm, tmp_path)
    ours, b = wiring.build(config, start_metrics=False), runtime(world, world.b)
    try:
        services = ours.services
        registry = services.organisations
        assert registry is not None
        shared = next(s for s, ids in organisations.inboxes(services) if C_ID in ids)
        assert A_ID in next(ids for _, ids in organisations.inboxes(services) if C_ID in ids)
        box, backoff = inbox.Inbox(shared), DependencyBackoff(shared.retry)
        _from_b(b, pki, "kt-1", [A_ID, C_ID], 880)
        for folder in c_folders:  # C's token pulled out
            shutil.move(folder, tmp_path / folder.name)
        try:
            _inbox_rounds(shared, box, backoff)
            states = {organ: services.store.get(p.id).inbound_state
                      for organ, p in _inbound_by_organ(services).items()}
            assert states == {A_ID: InboundState.NOTIFIED, C_ID: InboundState.NOTIFIED}
            received = world.a.spool / "inbound"
            folders = sorted(p.parent.parent.name for p in received.glob("*/in-*/delivery.json"))
            assert folders == sorted([A_ID, C_ID])  # C's delivered too: no seal needed
            notices = _notices(services)
            assert notices[A_ID].state is OutboundState.READY
            assert notices[C_ID].state is OutboundState.ACCEPTED  # waits in the outbox
            events = [e.event for e in services.store.events(notices[C_ID].id)]
            assert "waiting_for_keys" in events
            assert registry.waiting.keys() == {C_ID}
            _send_all(services)
            assert _notices(services)[A_ID].state is OutboundState.SENT
            assert _notices(services)[C_ID].state is OutboundState.ACCEPTED

            # The shared inbox goes on while C's token is out: A's next package arrives.
            _from_b(b, pki, "kt-2", [A_ID], 881)
            _inbox_rounds(shared, box, backoff)
            by_key = {p.key: p for p in b.services.store.find(
                direction=Direction.OUTBOUND) if p.kind is PackageKind.EDOC}
            arrived = [p for p in services.store.find(direction=Direction.INBOUND)
                       if p.document_id == by_key["kt-2"].document_id]
            assert [p.inbound_state for p in arrived] == [InboundState.NOTIFIED]

            components = ours.metrics.components()
            assert components.get("keys") is False and components.get("hub") is True
            ready = wiring._health(config, ours.metrics).ready().body()["components"]
            assert ready["keys"]["status"] == "down" and ready["hub"]["status"] == "up"
            assert ready[f"token_seal_{C_ID}"]["status"] == "down"
            assert waiting_keys.resume_waiting(services) == 0

            # Restarted with the token still out: the 01 left ACCEPTED waits for it again.
            ours.close()
            ours = wiring.build(config, start_metrics=False)
            services = ours.services
            registry = services.organisations
            assert registry is not None and registry.waiting == {}
            assert outbound.resume_accepted(services) == 0
            assert registry.waiting.keys() == {C_ID}
            assert ours.metrics.components().get("keys") is False
            assert _notices(services)[C_ID].state is OutboundState.ACCEPTED
        finally:
            for folder in c_folders:
                shutil.move(tmp_path / folder.name, folder)
        assert waiting_keys.resume_waiting(services) == 1  # back: C's 01 signed
        assert registry.waiting == {}
        _send_all(services)
        sent = _notices(services)[C_ID]
        assert sent.state is OutboundState.SENT
        raw = services.store.raw(sent.id)
        assert raw is not None
        trust = TrustStore.from_dirs(pki.trust_dir, pki.crl_dir)
        assert verify_package(raw, trust, legacy_policy="refuse").signer_organ_id == C_ID

        from connector.daemon import inbound as inbound_module

        inbound_module.poll_once(b.services)
        document = next(p for p in b.services.store.find(direction=Direction.OUTBOUND)
                        if p.key == "kt-1")
        recipients = {r.organ_id: r.state.value for r in b.services.store.recipients(document.id)}
        assert recipients == {A_ID: "ARRIVED", C_ID: "ARRIVED"}
        assert ours.metrics.components().get("hub") is True
        failed = [p for p in services.store.find() if p.state.value in ("FAILED", "REFUSED")]
        assert failed == []
    finally:
        b.close()
        ours.close()


def _inbound_by_organ(services: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for package in services.store.find(direction=Direction.INBOUND):
        if package.kind is not PackageKind.EDOC:
            continue
        for recipient in services.store.recipients(package.id):
            found[recipient.organ_id] = package
    return found


def test_a_key_error_on_the_inbox_names_the_keys_not_the_hub() -> None:
    from connector.daemon.inbound import _component_of
    from connector.errors import UnavailableError

    for reason in ("token_unavailable", "token_pin_refused", "key_password"):
        assert _component_of(UnavailableError("x", reason=reason)) == "keys"
    assert _component_of(UnavailableError("x", reason="hub_unreachable")) == "hub"

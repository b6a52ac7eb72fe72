"""Several organisations in one connector: the configuration, routing at intake, each
organisation's own keys, hub account and inbound folder, statuses matched per organisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.config import load_config
from connector.daemon import inbound, organisations, outbound, sender, waiting_keys, wiring
from connector.daemon.retry import DependencyBackoff
from connector.errors import ConfigurationError
from connector.local import spool
from connector.store.states import Direction, OutboundState, PackageKind
from connector.trust.pki import DemoPki
from connector.trust.truststore import TrustStore
from connector.trust.xmldsig import verify_package
from tests.daemon.province import (
    C_ID,
    D_ID,
    OURS,
    local_record,
    org_record,
    pki,  # noqa: F401
    province_config,
    province_world,  # noqa: F401
)
from tests.e2e.harness import A_ID, B_ID, CONFIG_A, World
from tests.e2e.inprocess import ListItem


def _raw_config(world: World, tmp_path: Path) -> dict[str, Any]:
    path = province_config(world, tmp_path / "province.yaml", None)
    raw: dict[str, Any] = yaml.safe_load(path.read_text("utf-8"))
    return raw


def _load(raw: dict[str, Any], tmp_path: Path, world: World) -> Any:
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    return load_config(path, environ=world.env)


# -- configuration ---------------------------------------------------------------------------


def test_the_single_agency_configuration_is_one_organisation(province_world: World) -> None:  # noqa: F811
    config = load_config(CONFIG_A, environ=province_world.env)
    assert config.organisations == []
    assert config.trust.seal.key is not None


def test_organisations_give_the_agency_and_its_keys(province_world: World,  # noqa: F811
                                                    tmp_path: Path) -> None:
    raw = _raw_config(province_world, tmp_path)
    del raw["agency"]["organ_id"], raw["agency"]["name"]
    del raw["agency"]  # omitted: the first organisation
    config = _load(raw, tmp_path, province_world)
    assert [o.organ_id for o in config.organisations] == list(OURS)
    assert config.agency.organ_id == A_ID
    assert config.trust.seal == config.organisations[0].seal
    assert config.encryption.decryption_key == config.organisations[0].decryption_key


@pytest.mark.parametrize("change, message", [
    (lambda raw: raw["organisations"].append(dict(raw["organisations"][1])), "listed twice"),
    (lambda raw: raw["agency"].update(organ_id="000.00.00.H41"), "not one of the organisations"),
    (lambda raw: raw["trust"].update(seal=raw["organisations"][0]["seal"]), "trust.seal"),
    (lambda raw: raw["organisations"][1]["hub"].pop("systemid"), "systemid"),
    (lambda raw: raw["organisations"][1]["hub"].pop("secret_env"), "secret"),
    (lambda raw: raw["organisations"][2].pop("seal"), "seal"),
    (lambda raw: raw["organisations"][2].update(organ_id="not an id!"), "OrganId"),
])
def test_inconsistent_organisations_are_refused(province_world: World, tmp_path: Path,  # noqa: F811
                                                change: Any, message: str) -> None:
    raw = _raw_config(province_world, tmp_path)
    change(raw)
    with pytest.raises(ConfigurationError) as caught:
        _load(raw, tmp_path, province_world)
    assert message in str(caught.value)


# -- outbound: routing at intake, each organisation's keys -------------------------------------


@pytest.fixture
def province(province_world: World, tmp_path: Path) -> Any:  # noqa: F811
    config = load_config(province_config(province_world, tmp_path / "p.yaml", None),
                         environ=province_world.env)
    built = wiring.build(config, start_metrics=False)
    yield built
    built.close()


def _handle(services: Any, *items: ListItem) -> None:
    for item in items:
        outbound.handle(services, item)


def _signer_organ(raw: bytes, pki: DemoPki) -> str | None:  # noqa: F811
    trust = TrustStore.from_dirs(pki.trust_dir, pki.crl_dir)
    return verify_package(raw, trust, legacy_policy="refuse").signer_organ_id


@pytest.mark.parametrize("naming", ["from", "header", "folder"])
def test_each_record_is_sealed_and_signed_by_its_own_organisation(
        province: Any, pki: DemoPki, naming: str) -> None:  # noqa: F811
    services = province.services
    items = []
    for number, organ_id in enumerate(OURS):
        record = org_record(pki, organ_id, f"{naming}-{number}", [B_ID], 500 + number)
        ways: dict[str, dict[str, Any]] = {
            "header": {"headers": {organisations.RECORD_HEADER: organ_id}},
            "folder": {"mapping": organ_id}}
        named = ways.get(naming, {})
        items.append(ListItem(local_record(record, **named)))
    _handle(services, *items)
    assert [i.settled for i in items] == ["ack"] * 3, [i.error for i in items]
    ready = services.store.find(direction=Direction.OUTBOUND, states=(OutboundState.READY,))
    by_sender = {p.sender: p for p in ready}
    assert sorted(by_sender) == sorted(OURS)
    for organ_id, package in by_sender.items():
        raw = services.store.raw(package.id)
        assert raw is not None and _signer_organ(raw, pki) == organ_id


def test_records_for_organisations_not_served_are_refused(province: Any,
                                                          pki: DemoPki) -> None:  # noqa: F811
    services = province.services
    unknown_header = ListItem(local_record(org_record(pki, A_ID, "u-1", [B_ID], 601),
                                           headers={"x-organ-id": "000.00.99.H12"}))
    unknown_folder = ListItem(local_record(org_record(pki, A_ID, "u-2", [B_ID], 602),
                                           mapping="000.00.99.H12"))
    from_peer = ListItem(local_record(org_record(pki, B_ID, "u-3", [A_ID], 603)))
    mismatch = ListItem(local_record(org_record(pki, A_ID, "u-4", [B_ID], 604),
                                     headers={"x-organ-id": C_ID}))
    _handle(services, unknown_header, unknown_folder, from_peer, mismatch)
    reasons = [i.error.reason if i.error else i.settled
               for i in (unknown_header, unknown_folder, from_peer, mismatch)]
    assert reasons == ["unknown_organisation"] * 3 + ["organisation_mismatch"]
    assert "000.00.99.H12" in str(unknown_header.error)
    assert services.store.find(direction=Direction.OUTBOUND,
                               states=(OutboundState.READY,)) == []


@pytest.mark.parametrize("broken_index", [1, 0])
def test_one_organisation_with_an_unusable_key_waits_and_the_others_go_on(
        province_world: World, pki: DemoPki, tmp_path: Path,  # noqa: F811
        broken_index: int) -> None:
    broken = tmp_path / "broken-seal.key"
    broken.write_text("not a key\n")
    config_path = province_config(province_world, tmp_path / "p.yaml", None)
    raw = yaml.safe_load(config_path.read_text("utf-8"))
    raw["organisations"][broken_index]["seal"]["key"] = str(broken)
    waiting, going = (C_ID, A_ID) if broken_index == 1 else (A_ID, C_ID)
    config = _load(raw, tmp_path, province_world)
    built = wiring.build(config, start_metrics=False)  # starts: only that one waits
    try:
        services = built.services
        c_item = ListItem(local_record(org_record(pki, waiting, "w-c", [B_ID], 701)))
        a_item = ListItem(local_record(org_record(pki, going, "w-a", [B_ID], 702)))
        _handle(services, c_item, a_item)
        assert (c_item.settled, a_item.settled) == ("ack", "ack")  # one waits in the store
        states = {p.key: p.state for p in services.store.find(direction=Direction.OUTBOUND)}
        assert states == {"w-c": OutboundState.ACCEPTED, "w-a": OutboundState.READY}
        assert services.organisations is not None
        assert waiting in services.organisations.waiting
        assert waiting_keys.resume_waiting(services) == 0  # still broken: still waiting
        assert services.organisations.waiting.keys() == {waiting}
        assert built.metrics.components()["keys"] is False
    finally:
        built.close()


# -- the hub account, statuses and inbound folders per organisation ----------------------------


def test_each_organisation_sends_through_its_own_hub_account(province: Any, pki: DemoPki,  # noqa: F811
                                                             province_world: World) -> None:  # noqa: F811
    services = province.services
    items = [ListItem(local_record(org_record(pki, o, f"h-{o}", [B_ID], 800 + n)))
             for n, o in enumerate(OURS)]
    _handle(services, *items)
    backoff = DependencyBackoff(services.retry)
    sender.send_round(services, backoff)
    sent = services.store.find(direction=Direction.OUTBOUND, states=(OutboundState.SENT,))
    assert sorted(p.sender for p in sent) == sorted(OURS)
    assert province_world.hub is not None
    accounts = {p.sender: p.systemid for p in province_world.hub.store.packages()}
    assert accounts == {A_ID: "vxp.agency-a", C_ID: "vxp.org-33", D_ID: "vxp.org-34"}
    registry = province.metrics.registry
    for organ_id in OURS:  # the organ label: each organisation's documents under its OrganId
        for outcome in ("accepted", "sent"):
            labels = {"organ": organ_id, "direction": "outbound", "outcome": outcome}
            assert registry.get_sample_value(
                "connector_organisation_documents_total", labels) == 1, labels
    assert registry.get_sample_value(
        "connector_documents_total", {"direction": "outbound", "outcome": "sent"}) == 3


def test_refusals_are_counted_under_the_organisation_named(province: Any,
                                                           pki: DemoPki) -> None:  # noqa: F811
    services = province.services
    secret = org_record(pki, C_ID, "s-1", [B_ID], 810)
    secret["do_mat"] = "Mật"
    item = ListItem(local_record(secret, headers={organisations.RECORD_HEADER: C_ID}))
    _handle(services, item)
    assert item.settled == "dead_letter"
    assert item.error is not None
    value = province.metrics.registry.get_sample_value(
        "connector_organisation_refused_records_total",
        {"organ": C_ID, "reason": item.error.reason})
    assert value == 1


def test_inboxes_are_one_per_hub_account(province: Any) -> None:
    inboxes = list(organisations.inboxes(province.services))
    assert sorted(ids for _, ids in inboxes) == [(A_ID,), (C_ID,), (D_ID,)]
    assert len({id(inbox.hub) for inbox, _ in inboxes}) == 3


def test_the_spool_writes_a_delivery_into_its_organisation_folder(tmp_path: Path) -> None:
    from connector.local.base import DeliveryKind, LocalDelivery

    folder = spool.SpoolFolder(tmp_path / "spool")
    try:
        for organ_id in (C_ID, D_ID, None):
            headers = {organisations.DELIVERY_HEADER: organ_id} if organ_id else {}
            folder.deliver(LocalDelivery(f"in-{organ_id}", DeliveryKind.DOCUMENT, b"{}",
                                         "application/json", headers=headers))
    finally:
        folder.close()
    inbound = tmp_path / "spool" / "inbound"
    assert (inbound / C_ID / f"in-{C_ID}" / "delivery.json").is_file()
    assert (inbound / D_ID / f"in-{D_ID}" / "delivery.json").is_file()
    assert (inbound / "in-None" / "delivery.json").is_file()
    assert organisations.DELIVERY_HEADER == spool.ORGANISATION_HEADER


def test_status_packages_of_each_organisation_are_its_own(province: Any) -> None:
    kinds = {p.kind for p in province.services.store.find(direction=Direction.OUTBOUND)}
    assert PackageKind.STATUS not in kinds


def test_a_platform_account_serves_several_organisations(
        province_world: World, pki: DemoPki, tmp_path: Path) -> None:  # noqa: F811
    """A and C on one hub account (as a VXP account serving a list of organisations): each
    sends as itself through it; a package to both is listed twice in its one inbox and
    delivered to each, each answering its own 01 through the same account."""
    from tests.e2e.inprocess import runtime

    world = province_world
    config = load_config(province_config(world, tmp_path / "p.yaml", None, shared=True),
                         environ=world.env)
    ours, b = wiring.build(config, start_metrics=False), runtime(world, world.b)
    try:
        services = ours.services
        inboxes = list(organisations.inboxes(services))
        assert sorted(ids for _, ids in inboxes) == [(A_ID, C_ID), (D_ID,)]
        _handle(services, ListItem(local_record(org_record(pki, C_ID, "pa-c", [B_ID], 820))))
        sender.send_round(services, DependencyBackoff(services.retry))
        assert province_world.hub is not None
        sent = {p.sender: p.systemid for p in province_world.hub.store.packages()}
        assert sent == {C_ID: "vxp.agency-a"}

        _handle(b.services, ListItem(local_record(org_record(pki, B_ID, "pa-b", [A_ID, C_ID],
                                                             821))))
        sender.send_round(b.services, DependencyBackoff(b.services.retry))
        for inbox, _ in inboxes:
            inbound.poll_once(inbox)
        received = world.a.spool / "inbound"
        folders = sorted(p.parent.parent.name for p in received.glob("*/in-*/delivery.json"))
        assert folders == sorted([A_ID, C_ID])
        notices = [p for p in services.store.find(direction=Direction.OUTBOUND)
                   if p.kind is PackageKind.STATUS]
        assert sorted(p.sender for p in notices) == sorted([A_ID, C_ID])
        sender.send_round(services, DependencyBackoff(services.retry))
        inbound.poll_once(b.services)
        document = next(p for p in b.services.store.find(direction=Direction.OUTBOUND)
                        if p.key == "pa-b")
        states = {r.organ_id: r.state.value for r in b.services.store.recipients(document.id)}
        assert states == {A_ID: "ARRIVED", C_ID: "ARRIVED"}
    finally:
        b.close()
        ours.close()


def test_a_package_listed_for_one_organisation_is_not_taken_by_another(
        province: Any, pki: DemoPki, province_world: World) -> None:  # noqa: F811
    """A delivery for D never reaches C: checked against the organisation it was listed for,
    a package addressed to D alone is refused for C (a hub misrouting it)."""
    from connector.trust.origin import Refusal
    from tests.e2e.inprocess import runtime

    b = runtime(province_world, province_world.b)
    try:
        _handle(b.services, ListItem(local_record(org_record(pki, B_ID, "mr-1", [D_ID], 830))))
        sender.send_round(b.services, DependencyBackoff(b.services.retry))
        assert province_world.hub is not None
        raw = next(p.data for p in province_world.hub.store.packages() if p.sender == B_ID)
        registry = province.services.organisations
        assert registry is not None
        as_d = organisations.scoped(province.services, registry.members[D_ID])
        as_c = organisations.scoped(province.services, registry.members[C_ID])
        assert inbound.authenticate(as_d, raw).package.document_id
        with pytest.raises(Refusal) as refused:
            inbound.authenticate(as_c, raw)
        assert refused.value.reason == "not_addressed_to_us"
    finally:
        b.close()

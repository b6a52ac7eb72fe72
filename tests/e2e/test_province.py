"""End to end, in process against the real hub emulator: one connector serving three
organisations (31 and 33 with their seals in files, 34 with its seal in a SoftHSM2 token)
exchanging with connector B.

* each organisation's document reaches B signed (xmlsec1) and its PDFs sealed (pyHanko and
  pdfsig) with that organisation's own certificate; B's 01s come back to each organisation;
* a record naming an organisation that is not served is refused;
* one package from B addressed to two of our organisations is delivered to both (spool
  ``inbound/<OrganId>/``), and both send their own 01;
* the token pulled out mid-run: 34's documents wait (stored, acknowledged) while 31's go
  out at once; once the token is back they go out; nothing lost or duplicated.
"""

from __future__ import annotations

import base64
import collections
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from pyhanko.pdf_utils.reader import PdfFileReader

from connector.cli import main
from connector.config import load_config
from connector.daemon import inbound, organisations, outbound, sender, waiting_keys, wiring
from connector.daemon.retry import DependencyBackoff
from connector.store.states import Direction, OutboundState, PackageKind, RecipientState
from connector.trust.keys import load_certificate
from connector.trust.pdf_policy import is_pdf
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pkcs11_softhsm import SoftHsm
from connector.trust.pki import DemoPki
from connector.trust.truststore import TrustStore
from tests.daemon.province import (
    C_ID,
    D_ID,
    OURS,
    TOKEN_LABEL,
    hsm,  # noqa: F401
    local_record,
    org_record,
    pki,  # noqa: F401
    province_config,
    province_world,  # noqa: F401
)
from tests.e2e.harness import A_ID, B_ID, World
from tests.e2e.inprocess import ListItem, runtime, status_notices

XMLSEC1 = shutil.which("xmlsec1")
PDFSIG = shutil.which("pdfsig")
DS = "{http://www.w3.org/2000/09/xmldsig#}"


def _send_all(services: Any) -> None:
    backoff = DependencyBackoff(services.retry)
    while sender.send_round(services, backoff):
        pass


def _poll(services: Any) -> None:
    for inbox, _ in organisations.inboxes(services):
        inbound.poll_once(inbox)


def _seal_certificate(pki: DemoPki, hsm: SoftHsm, organ_id: str) -> x509.Certificate:  # noqa: F811
    if organ_id == D_ID:
        return load_certificate(hsm.token_dir.parent / f"{TOKEN_LABEL}-seal.pem")
    return load_certificate(pki.agency(organ_id).seal.cert)


def _check_package(raw: bytes, expected: x509.Certificate, pki: DemoPki,  # noqa: F811
                   tmp_path: Path) -> None:
    """xmlsec1 verifies the signature; the certificate it carries is the organisation's."""
    embedded = etree.fromstring(raw).find(f".//{DS}X509Certificate")
    assert embedded is not None and embedded.text is not None
    der = expected.public_bytes(serialization.Encoding.DER)
    assert base64.b64decode("".join(embedded.text.split())) == der
    if XMLSEC1 is None:
        return
    target = tmp_path / "package.edxml"
    target.write_bytes(raw)
    done = subprocess.run([XMLSEC1, "--verify", "--trusted-pem", str(pki.root_cert),
                           "--untrusted-pem", str(pki.intermediate_cert), str(target)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def _check_pdf(data: bytes, expected: x509.Certificate, organ_id: str, trust: TrustStore,
               tmp_path: Path) -> None:
    report = verify_pdf(data, trust)
    seal = report.signatures[-1]
    assert report.all_ok and seal.organ_id == organ_id
    # The seal's certificate, read by pyHanko, is the organisation's own (byte for byte).
    reader = PdfFileReader(io.BytesIO(data))
    signer_cert = reader.embedded_signatures[-1].signer_cert
    assert signer_cert.dump() == expected.public_bytes(serialization.Encoding.DER)
    if PDFSIG is None:
        return
    path = tmp_path / "document.pdf"
    path.write_bytes(data)
    done = subprocess.run([PDFSIG, "-nocert", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    output = done.stdout + done.stderr
    assert output.count("Signature Validation: Signature is Valid.") == 2, output


def test_three_organisations_exchange_with_b(province_world: World, pki: DemoPki,  # noqa: F811
                                             hsm: SoftHsm, tmp_path: Path,  # noqa: F811
                                             capsys: pytest.CaptureFixture[str]) -> None:
    world = province_world
    config = load_config(province_config(world, tmp_path / "p.yaml", hsm.module),
                         environ=world.env)
    ours, b = wiring.build(config, start_metrics=False), runtime(world, world.b)
    try:
        services = ours.services
        trust = TrustStore.from_dirs(pki.trust_dir, pki.crl_dir)
        # One document from each organisation, named three ways; one for no organisation.
        items = [ListItem(local_record(org_record(pki, A_ID, "p-31", [B_ID], 931))),
                 ListItem(local_record(org_record(pki, C_ID, "p-33", [B_ID], 933),
                                       headers={organisations.RECORD_HEADER: C_ID})),
                 ListItem(local_record(org_record(pki, D_ID, "p-34", [B_ID], 934),
                                       mapping=D_ID))]
        unknown = ListItem(local_record(org_record(pki, A_ID, "p-x", [B_ID], 999),
                                        headers={organisations.RECORD_HEADER: "000.00.98.H12"}))
        for item in [*items, unknown]:
            outbound.handle(services, item)
        assert [i.settled for i in items] == ["ack"] * 3, [i.error for i in items]
        assert unknown.settled == "dead_letter" and unknown.error is not None
        assert unknown.error.reason == "unknown_organisation"
        _send_all(services)
        sent = [p for p in services.store.find(direction=Direction.OUTBOUND, limit=100)
                if p.kind is PackageKind.EDOC and p.state is OutboundState.SENT]
        assert sorted(p.sender for p in sent) == sorted(OURS)
        for package in sent:
            raw = services.store.raw(package.id)
            assert raw is not None
            _check_package(raw, _seal_certificate(pki, hsm, package.sender), pki, tmp_path)

        inbound.poll_once(b.services)  # B receives and verifies the three documents
        documents = world.b.deliveries("document")
        assert sorted(d.headers["from"] for d in documents) == sorted(OURS)
        for delivery in documents:
            organ_id = delivery.headers["from"]
            pdfs = [data for data in delivery.files().values() if is_pdf(data)]
            assert pdfs
            for data in pdfs:
                _check_pdf(data, _seal_certificate(pki, hsm, organ_id), organ_id, trust, tmp_path)

        _send_all(b.services)  # B's 01s, one per organisation, reach each through its inbox
        _poll(services)
        for package in sent:
            states = [r.state for r in services.store.recipients(package.id)]
            assert states == [RecipientState.ARRIVED], (package.sender, states)

        # One package from B to two of ours: delivered to both, both answer 01.
        outbound.handle(b.services, ListItem(local_record(
            org_record(pki, B_ID, "b-2", [C_ID, D_ID], 952))))
        _send_all(b.services)
        _poll(services)
        _poll(services)  # a second look delivers nothing twice
        received = world.a.spool / "inbound"
        folders = collections.Counter(
            path.parent.parent.name for path in received.glob("*/in-*/delivery.json")
            if json.loads(path.read_text("utf-8"))["kind"] == "document")
        assert folders == {C_ID: 1, D_ID: 1}
        statuses = collections.Counter(
            path.parent.parent.name for path in received.glob("*/in-*/delivery.json")
            if json.loads(path.read_text("utf-8"))["kind"] == "status")
        assert statuses == {A_ID: 1, C_ID: 1, D_ID: 1}  # B's 01s: each to its organisation
        assert not list(received.glob("in-*"))  # nothing at the top
        notices = [p for p in status_notices(ours) if p.status_code == "01"]
        assert sorted(p.sender for p in notices) == sorted([C_ID, D_ID])
        _send_all(services)
        inbound.poll_once(b.services)
        b_document = next(p for p in b.services.store.find(direction=Direction.OUTBOUND)
                          if p.key == "b-2")
        reached = {r.organ_id: r.state for r in b.services.store.recipients(b_document.id)}
        assert reached == {C_ID: RecipientState.ARRIVED, D_ID: RecipientState.ARRIVED}

        # `connector messages list --organ`: one organisation's packages, both directions.
        assert main(["messages", "--store", str(world.a.spool.parent / "store.sqlite"),
                     "list", "--organ", C_ID, "--json"]) == 0
        listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        mine = {(p["direction"], p["kind"]) for p in listed}
        assert mine == {("out", "edoc"), ("in", "edoc"), ("in", "status"), ("out", "status")}
        assert all(p["sender"] == C_ID for p in listed if p["direction"] == "out")
    finally:
        b.close()
        ours.close()


def test_a_token_out_mid_run_holds_its_organisation_only(province_world: World,  # noqa: F811
                                                         pki: DemoPki, hsm: SoftHsm,  # noqa: F811
                                                         tmp_path: Path) -> None:
    world = province_world
    config = load_config(province_config(world, tmp_path / "p.yaml", hsm.module),
                         environ=world.env)
    ours, b = wiring.build(config, start_metrics=False), runtime(world, world.b)
    try:
        services = ours.services
        assert services.organisations is not None
        outbound.handle(services, ListItem(local_record(
            org_record(pki, D_ID, "t-0", [B_ID], 960))))  # the token works: sealed, READY
        folders = hsm.token_folders()
        for folder in folders:
            shutil.move(folder, tmp_path / folder.name)
        try:
            held = [ListItem(local_record(org_record(pki, D_ID, f"t-d{n}", [B_ID], 961 + n)))
                    for n in range(2)]
            others = [ListItem(local_record(org_record(pki, o, f"t-{o}", [B_ID], 970 + n)))
                      for n, o in enumerate((A_ID, C_ID))]
            for item in [held[0], *others, held[1]]:
                outbound.handle(services, item)
            assert [i.settled for i in [*held, *others]] == ["ack"] * 4
            assert services.organisations.waiting.keys() == {D_ID}
            _send_all(services)  # the others are not delayed
            states = {p.key: p.state for p in services.store.find(direction=Direction.OUTBOUND)}
            assert states == {"t-0": OutboundState.SENT, f"t-{A_ID}": OutboundState.SENT,
                              f"t-{C_ID}": OutboundState.SENT, "t-d0": OutboundState.ACCEPTED,
                              "t-d1": OutboundState.ACCEPTED}
            assert waiting_keys.resume_waiting(services) == 0
        finally:
            for folder in folders:
                shutil.move(tmp_path / folder.name, folder)
        assert waiting_keys.resume_waiting(services) == 2  # back: both prepared
        assert services.organisations.waiting == {}
        _send_all(services)
        inbound.poll_once(b.services)
        got = collections.Counter((d.headers["from"], d.document_id)
                                  for d in world.b.deliveries("document"))
        assert sum(got.values()) == 5 and set(got.values()) == {1}  # none lost, none twice
        assert collections.Counter(organ for organ, _ in got) == {D_ID: 3, A_ID: 1, C_ID: 1}
        events = [e for p in services.store.find(direction=Direction.OUTBOUND)
                  if p.key == "t-d0" for e in services.store.events(p.id)]
        assert any(e.event == "waiting_for_keys" for e in events)
    finally:
        b.close()
        ours.close()


def test_worker_processes_seal_with_each_organisations_own_key(
        province_world: World, pki: DemoPki, hsm: SoftHsm, tmp_path: Path) -> None:  # noqa: F811
    """As ``connector run`` does: seals made in spawned worker processes, each opening the
    key source (file or token) of the organisation whose document it seals."""
    world = province_world
    config = load_config(province_config(world, tmp_path / "p.yaml", hsm.module,
                                         {"workers": {"pool_size": 1, "kind": "process"}}),
                         environ=world.env)
    ours, b = wiring.build(config, start_metrics=False), runtime(world, world.b)
    try:
        services = ours.services
        items = [ListItem(local_record(org_record(pki, o, f"wp-{n}", [B_ID], 940 + n)))
                 for n, o in enumerate((D_ID, A_ID, D_ID, C_ID))]
        for item in items:
            outbound.handle(services, item)
        assert [i.settled for i in items] == ["ack"] * 4, [i.error for i in items]
        _send_all(services)
        inbound.poll_once(b.services)
        trust = TrustStore.from_dirs(pki.trust_dir, pki.crl_dir)
        documents = world.b.deliveries("document")
        assert sorted(d.headers["from"] for d in documents) == sorted([D_ID, A_ID, D_ID, C_ID])
        for delivery in documents:
            organ_id = delivery.headers["from"]
            for data in (d for d in delivery.files().values() if is_pdf(d)):
                _check_pdf(data, _seal_certificate(pki, hsm, organ_id), organ_id, trust, tmp_path)
    finally:
        b.close()
        ours.close()

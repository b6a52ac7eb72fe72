"""A province for the tests: one connector serving three organisations, peer B beside it.

Organisations 31 (files, the shared hub account ``vxp.agency-a``), 33 (files, its own
account) and 34 (its seal in a SoftHSM2 token, its own account), all issued by the demo
PKI; the hub emulator knows an account for each. ``province_config`` writes the connector's
configuration from the shipped ``config/connector.yaml`` with its ``organisations:``;
``org_record`` makes a JSON record issued by one organisation, its main PDF signed by that
organisation's personal signer.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from connector.hub import config as hub_config
from connector.hub.server import HubEmulator
from connector.local.base import LocalRecord
from connector.timeutil import now_vn
from connector.trust import pkcs11_token
from connector.trust.keys import KeySource
from connector.trust.pdf_seal import sign_pdf
from connector.trust.pkcs11_keys import forget_identities
from connector.trust.pkcs11_softhsm import SoftHsm, softhsm_module
from connector.trust.pki import (
    PROVINCE_AGENCIES,
    DemoPki,
    create_demo_pki,
    issue_seal_certificate,
)
from tests.e2e.harness import A_ID, B_ID, CONFIG_A, EXAMPLES, HUB_CONFIG, World
from tests.e2e.inprocess import IN_PROCESS

C_ID = "000.00.33.H12"  # Sở Tư pháp (demo): files, own hub account
D_ID = "000.00.34.H12"  # Sở Giáo dục và Đào tạo (demo): seal in a token, own hub account
OURS = (A_ID, C_ID, D_ID)
TOKEN_LABEL = "seal-34"
PIN = "2468-1357"
PIN_ENV = "CONNECTOR_SEAL_PIN_34"

def province_pki(directory: Path) -> DemoPki:
    return create_demo_pki(directory, PROVINCE_AGENCIES)


def start_hub(world: World, environ: Callable[[str, str], None]) -> HubEmulator:
    """The hub emulator with an account for A (a platform account: also C's), B and each
    organisation with its own."""
    accounts = [
        {"systemid": "vxp.agency-a", "organ_id": A_ID, "secret_env": "HUB_SECRET_AGENCY_A",
         "also_serves": [C_ID]},
        {"systemid": "vxp.agency-b", "organ_id": B_ID, "secret_env": "HUB_SECRET_AGENCY_B"},
    ]
    for organ_id in (C_ID, D_ID):
        name = f"HUB_SECRET_{organ_id[7:9]}"
        secret = secrets.token_hex(24)
        environ(name, secret)
        world.env[name] = secret
        accounts.append({"systemid": f"vxp.org-{organ_id[7:9]}", "organ_id": organ_id,
                         "secret_env": name})
    hub = HubEmulator(hub_config.load(HUB_CONFIG, {
        "port": 0, "db": str(world.tmp / "hub" / "hub.sqlite"), "accounts": accounts}))
    world.hub = hub
    world.env["CONNECTOR_HUB_URL"] = hub.start()
    return hub


def _files(pki: DemoPki, organ_id: str, role: str) -> dict[str, Any]:
    pair = getattr(pki.agency(organ_id), role)
    return {"key": str(pair.key), "cert": str(pair.cert), "chain": [str(pki.intermediate_cert)]}


def organisations(pki: DemoPki, module: Path | None) -> list[dict[str, Any]]:
    """The three organisations; D's seal in the token when ``module`` is given."""
    d_seal: dict[str, Any] = _files(pki, D_ID, "seal")
    if module is not None:
        d_seal = {"pkcs11": {"module": str(module), "token_label": TOKEN_LABEL,
                             "key_label": "seal", "pin_env": PIN_ENV},
                  "chain": [str(pki.intermediate_cert)]}
    return [
        {"organ_id": A_ID, "name": pki.agency(A_ID).name, "seal": _files(pki, A_ID, "seal"),
         "decryption_key": _files(pki, A_ID, "encryption")},
        {"organ_id": C_ID, "name": pki.agency(C_ID).name, "seal": _files(pki, C_ID, "seal"),
         "decryption_key": _files(pki, C_ID, "encryption"),
         "hub": {"systemid": "vxp.org-33", "secret_env": "HUB_SECRET_33"},
         "stamp": {"visible": False}},
        {"organ_id": D_ID, "name": pki.agency(D_ID).name, "seal": d_seal,
         "decryption_key": _files(pki, D_ID, "encryption"),
         "hub": {"systemid": "vxp.org-34", "secret_env": "HUB_SECRET_34"},
         "encryption": {"default": "off"}},
    ]


def province_config(world: World, target: Path, module: Path | None,
                    changes: Mapping[str, Any] | None = None, *, shared: bool = False) -> Path:
    """Agency A's shipped configuration turned into the three organisations' connector;
    ``shared``: C without an account of its own (the platform account serves it)."""
    raw = yaml.safe_load(CONFIG_A.read_text("utf-8"))
    base = CONFIG_A.parent
    raw["agency"]["directory"] = str((base / raw["agency"]["directory"]).resolve())
    raw["mappings"]["dir"] = str((base / raw["mappings"]["dir"]).resolve())
    raw["trust"].pop("seal")
    raw["encryption"].pop("decryption_key")
    raw["organisations"] = organisations(world.pki, module)
    if shared:
        del raw["organisations"][1]["hub"]
    for key, value in {**IN_PROCESS, **(changes or {})}.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), "utf-8")
    return target


def org_record(pki: DemoPki, organ_id: str, record_id: str, to: list[str],
               number: int) -> dict[str, Any]:
    """A JSON record issued by ``organ_id`` to ``to``, dated today, its main PDF signed."""
    record: dict[str, Any] = json.loads(
        (EXAMPLES / "qlvb-json" / "01-ordinary.json").read_text("utf-8"))
    agency = pki.agency(organ_id)
    record["id"] = record_id
    record["so"] = str(number)
    record["co_quan_ban_hanh"] = {"ma": organ_id, "ten": agency.name}
    record["noi_nhan"] = [{"ma": organ_id_to} for organ_id_to in to]
    record["ngay_ban_hanh"] = now_vn().date().isoformat()
    signer = KeySource(agency.signer.key, agency.signer.cert, (pki.intermediate_cert,))
    main = record["van_ban_chinh"]
    pdf = base64.b64decode(main["noi_dung_base64"])
    main["noi_dung_base64"] = base64.b64encode(sign_pdf(pdf, signer)).decode("ascii")
    return record


def local_record(record: Mapping[str, Any], *, mapping: str | None = None,
                 headers: Mapping[str, str] | None = None) -> LocalRecord:
    return LocalRecord(record_id=str(record["id"]),
                       body=json.dumps(record, ensure_ascii=False).encode("utf-8"),
                       content_type="application/json", mapping=mapping,
                       headers=dict(headers or {}))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return province_pki(Path(tmp_path_factory.mktemp("province-pki")) / "pki")


@pytest.fixture
def province_world(tmp_path: Path, pki: DemoPki,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    created = World(tmp_path, pki, monkeypatch.setenv)
    start_hub(created, monkeypatch.setenv)
    try:
        yield created
    finally:
        created.close()


def enrol_token_seal(hsm: SoftHsm, pki: DemoPki, organ_id: str = D_ID) -> Path:
    """A token holding ``organ_id``'s seal key, made inside it, with its demo-PKI
    certificate beside it in the token (and in a file, whose path is returned)."""
    agency = next(a for a in PROVINCE_AGENCIES if a.organ_id == organ_id)
    hsm.init_token(TOKEN_LABEL, PIN)
    public = hsm.generate_key(TOKEN_LABEL, PIN, "seal", key_id=b"\x01", kind="ec")
    certificate = issue_seal_certificate(pki, agency, public)
    hsm.store_certificate(TOKEN_LABEL, PIN, "seal", key_id=b"\x01", certificate=certificate)
    cert_file = hsm.token_dir.parent / f"{TOKEN_LABEL}-seal.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_file


@pytest.fixture
def hsm(tmp_path: Path, pki: DemoPki, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:
    """A SoftHSM2 token with D's seal (skipped where SoftHSM2 is not installed)."""
    if softhsm_module() is None:
        pytest.skip("SoftHSM2 is not installed (Debian package softhsm2; .ci/run installs it)")
    created = SoftHsm.create(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(created.conf))
    monkeypatch.setenv(PIN_ENV, PIN)
    monkeypatch.setattr(pkcs11_token, "RESCAN_INTERVAL", 0.0)
    pkcs11_token.close_all()
    forget_identities()
    enrol_token_seal(created, pki)
    yield created
    pkcs11_token.close_all()
    forget_identities()

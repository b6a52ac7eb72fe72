"""Test harness shared by the hub and interconnect tests: tiny packages, accounts, clients.

Packages are written by hand as bytes (only what routing reads), so these tests do not
depend on the edXML builder. Secrets are generated per test run.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from connector.hub import Account, DirectoryEntry, HubConfig, HubEmulator
from connector.interconnect import Secret, VxpClient, VxpSettings

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
A = "000.00.31.H12"
B = "000.00.32.H12"
C = "000.00.33.H12"
OUTSIDER = "000.00.99.H99"
SYSTEMS = {A: "vxp.agency-a", B: "vxp.agency-b", C: "vxp.agency-c"}
SECRETS = {systemid: Secret(secrets.token_hex(24)) for systemid in SYSTEMS.values()}


def _org(tag: str, organ_id: str) -> str:
    return (
        f"<edXML:{tag}><edXML:OrganId>{organ_id}</edXML:OrganId>"
        f"<edXML:OrganName>Đơn vị {organ_id}</edXML:OrganName></edXML:{tag}>"
    )


def edoc_bytes(
    sender: str = A,
    recipients: Sequence[str] = (B,),
    document_id: str | None = None,
    priority: int = 0,
    subject: str = "V/v thử nghiệm liên thông",
) -> bytes:
    doc_id = document_id or f"{sender},2026/11/20,{secrets.randbelow(10**6)}/TEST"
    tos = "".join(_org("To", r) for r in recipients)
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="{NS}">'
        f'<edXML:edXMLEnvelope xmlns:edXML="{NS}"><edXML:edXMLHeader><edXML:MessageHeader>'
        f"{_org('From', sender)}{tos}<edXML:DocumentId>{doc_id}</edXML:DocumentId>"
        f"<edXML:Subject>{subject}</edXML:Subject>"
        f"<edXML:OtherInfo><edXML:Priority>{priority}</edXML:Priority></edXML:OtherInfo>"
        "</edXML:MessageHeader></edXML:edXMLHeader></edXML:edXMLEnvelope></edXML>"
    )
    return xml.encode("utf-8")


def status_bytes(
    sender: str = B,
    original_sender: str = A,
    document_id: str = f"{A},2026/11/20,1/TEST",
    code: str = "01",
) -> bytes:
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="{NS}">'
        f'<edXML:edXMLEnvelope xmlns:edXML="{NS}"><edXML:edXMLHeader><edXML:MessageHeader>'
        f"{_org('From', sender)}<edXML:ResponseFor><edXML:OrganId>{original_sender}"
        f"</edXML:OrganId><edXML:DocumentId>{document_id}</edXML:DocumentId></edXML:ResponseFor>"
        f"<edXML:StatusCode>{code}</edXML:StatusCode>"
        "<edXML:Timestamp>2026/11/20 09:00:00</edXML:Timestamp>"
        "</edXML:MessageHeader></edXML:edXMLHeader></edXML:edXMLEnvelope></edXML>"
    )
    return xml.encode("utf-8")


def hub_config(db: Path | None, **overrides: Any) -> HubConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "db": db,
        "accounts": [
            Account(systemid=systemid, organ_id=organ, secret=SECRETS[systemid])
            for organ, systemid in SYSTEMS.items()
        ],
        "directory": [
            DirectoryEntry(code=A, name="Sở Nội vụ (thử nghiệm)", mail="snv@example.gov.vn"),
            DirectoryEntry(code=B, name="Sở Tài chính (thử nghiệm)", pid=A),
            DirectoryEntry(code=C, name="Sở Y tế (thử nghiệm)"),
        ],
    }
    values.update(overrides)
    return HubConfig.model_validate(values)


def client_for(url: str, organ: str = A, **settings: Any) -> VxpClient:
    systemid = SYSTEMS[organ]
    values: dict[str, Any] = {"read_timeout": 10.0, "connect_timeout": 2.0}
    values.update(settings)
    return VxpClient(
        VxpSettings(endpoint=url, systemid=systemid, secret=SECRETS[systemid], **values)
    )


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubEmulator]:
    emulator = HubEmulator(hub_config(tmp_path / "hub.sqlite"))
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def client_a(hub: HubEmulator) -> Iterator[VxpClient]:
    with client_for(hub.url, A) as client:
        yield client


@pytest.fixture
def client_b(hub: HubEmulator) -> Iterator[VxpClient]:
    with client_for(hub.url, B) as client:
        yield client

"""The demo PKI: every promised file exists, keys are private, roles are right."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from connector.errors import ConfigurationError
from connector.trust.keys import load_certificate, load_private_key
from connector.trust.pki import DEMO_AGENCIES, DemoPki, create_demo_pki


def test_layout_and_permissions(demo_pki: DemoPki) -> None:
    assert [a.organ_id for a in DEMO_AGENCIES] == list(demo_pki.agencies)
    key_files = [demo_pki.revoked.key, demo_pki.expired.key, demo_pki.wrong_usage.key,
                 demo_pki.untrusted.key]
    for agency in demo_pki.agencies.values():
        key_files += [agency.seal.key, agency.signer.key, agency.encryption.key, agency.seal_p12,
                      agency.seal_p12_password_file]
    for path in key_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert sorted(p.name for p in demo_pki.crl_dir.iterdir()) == ["intermediate.crl", "root.crl"]
    assert [p.name for p in demo_pki.trust_dir.iterdir()] == ["root.pem"]


def test_recipient_key_kinds(demo_pki: DemoPki) -> None:
    assert isinstance(load_private_key(demo_pki.first.encryption.key), rsa.RSAPrivateKey)
    assert isinstance(load_private_key(demo_pki.second.encryption.key),
                      ec.EllipticCurvePrivateKey)


def test_seal_subject_carries_organ_id_and_name(demo_pki: DemoPki) -> None:
    for agency in demo_pki.agencies.values():
        subject = load_certificate(agency.seal.cert).subject
        org_ids = subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_IDENTIFIER)
        assert [a.value for a in org_ids] == [agency.organ_id]
        assert subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == agency.name


def test_crl_lists_the_revoked_signer(demo_pki: DemoPki) -> None:
    crl = x509.load_der_x509_crl((demo_pki.crl_dir / "intermediate.crl").read_bytes())
    revoked = load_certificate(demo_pki.revoked.cert)
    assert crl.get_revoked_certificate_by_serial_number(revoked.serial_number) is not None
    assert crl.is_signature_valid(load_certificate(demo_pki.intermediate_cert).public_key())  # type: ignore[arg-type]


def test_refuses_non_empty_directory_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "pki"
    target.mkdir()
    (target / "something").write_text("x")
    with pytest.raises(ConfigurationError) as caught:
        create_demo_pki(target)
    assert caught.value.reason == "pki_exists"
    created = create_demo_pki(target, force=True)
    assert not (target / "something").exists()
    assert created.first.seal.cert.exists()

"""Trust store: chain, validity, key usage, revocation, signer kind, stable reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import ConfigurationError, PermanentError
from connector.trust.keys import load_certificate
from connector.trust.pki import DemoPki, KeyPair
from connector.trust.truststore import (
    Purpose,
    SignerKind,
    TrustStore,
    certificate_kind,
    organ_id_of,
)


def _check(store: TrustStore, pki: DemoPki, pair: KeyPair, purpose: Purpose) -> None:
    store.validate(load_certificate(pair.cert), [load_certificate(pki.intermediate_cert)],
                   purpose=purpose)


def test_agency_certificates_validate(demo_pki: DemoPki, trust_store: TrustStore) -> None:
    inter = load_certificate(demo_pki.intermediate_cert)
    for agency in demo_pki.agencies.values():
        seal = trust_store.validate(load_certificate(agency.seal.cert), [inter],
                                    purpose=Purpose.SEAL)
        assert seal.kind is SignerKind.ORGANISATION
        assert [c.subject for c in seal.path[1:]] == [
            inter.subject, load_certificate(demo_pki.root_cert).subject]
        signer = trust_store.validate(load_certificate(agency.signer.cert), [inter],
                                      purpose=Purpose.PERSONAL)
        assert signer.kind is SignerKind.PERSONAL
        trust_store.validate(load_certificate(agency.encryption.cert), [inter],
                             purpose=Purpose.ENCRYPTION)


@pytest.mark.parametrize(
    ("case", "purpose", "reason"),
    [
        ("expired", Purpose.SIGNING, "cert_expired"),
        ("revoked", Purpose.SIGNING, "cert_revoked"),
        ("untrusted", Purpose.SIGNING, "untrusted_root"),
        ("wrong_usage", Purpose.SEAL, "wrong_key_usage"),
    ],
)
def test_refusals_have_stable_reasons(
    demo_pki: DemoPki, trust_store: TrustStore, case: str, purpose: Purpose, reason: str
) -> None:
    pair: KeyPair = getattr(demo_pki, case)
    with pytest.raises(PermanentError) as caught:
        _check(trust_store, demo_pki, pair, purpose)
    assert caught.value.reason == reason
    subject_cn = load_certificate(pair.cert).subject.rfc4514_string().split(",")[0]
    assert subject_cn in caught.value.message


def test_signing_certificate_refused_for_encryption_and_wrong_kind(
    demo_pki: DemoPki, trust_store: TrustStore
) -> None:
    with pytest.raises(PermanentError) as caught:
        _check(trust_store, demo_pki, demo_pki.first.signer, Purpose.ENCRYPTION)
    assert caught.value.reason == "wrong_key_usage"
    with pytest.raises(PermanentError) as caught:
        _check(trust_store, demo_pki, demo_pki.first.signer, Purpose.SEAL)
    assert caught.value.reason == "wrong_certificate_kind"


def test_missing_intermediate_is_untrusted(demo_pki: DemoPki, trust_store: TrustStore) -> None:
    with pytest.raises(PermanentError) as caught:
        trust_store.validate(load_certificate(demo_pki.first.seal.cert))
    assert caught.value.reason == "untrusted_root"


def test_intermediate_in_trust_folder_helps_but_is_not_an_anchor(
    demo_pki: DemoPki, tmp_path: Path
) -> None:
    folder = tmp_path / "only-intermediate"
    folder.mkdir()
    (folder / "intermediate.pem").write_bytes(demo_pki.intermediate_cert.read_bytes())
    with pytest.raises(ConfigurationError) as caught:
        TrustStore.from_dirs(folder, demo_pki.crl_dir)
    assert caught.value.reason == "trust_empty"
    (folder / "root.pem").write_bytes(demo_pki.root_cert.read_bytes())
    store = TrustStore.from_dirs(folder, demo_pki.crl_dir)
    store.validate(load_certificate(demo_pki.first.seal.cert), purpose=Purpose.SEAL)


def test_without_crls_hard_fail_refuses_unknown_revocation(demo_pki: DemoPki) -> None:
    store = TrustStore.from_dirs(demo_pki.trust_dir)
    with pytest.raises(PermanentError) as caught:
        _check(store, demo_pki, demo_pki.first.seal, Purpose.SEAL)
    assert caught.value.reason == "revocation_unknown"
    lenient = TrustStore.from_dirs(demo_pki.trust_dir, revocation_mode="soft-fail")
    _check(lenient, demo_pki, demo_pki.first.seal, Purpose.SEAL)


def test_kind_rule_and_organ_id(demo_pki: DemoPki) -> None:
    for organ_id, agency in demo_pki.agencies.items():
        seal = load_certificate(agency.seal.cert)
        assert certificate_kind(seal) is SignerKind.ORGANISATION
        assert organ_id_of(seal) == organ_id
        assert certificate_kind(load_certificate(agency.signer.cert)) is SignerKind.PERSONAL


def test_ca_pem_file_bundles_the_cas(demo_pki: DemoPki, trust_store: TrustStore) -> None:
    bundle = trust_store.ca_pem_file()
    assert bundle.read_bytes() == demo_pki.root_cert.read_bytes()
    assert trust_store.ca_pem_file() == bundle


def test_concurrent_checks_on_a_fresh_store_all_reach_the_same_verdict(demo_pki: DemoPki) -> None:
    """The parsed CAs and CRLs are shared by every check: threads starting together (the
    in-flight windows do) must never see a half-parsed value."""
    import sys
    import threading

    inter = load_certificate(demo_pki.intermediate_cert)
    certificates = [load_certificate(a.seal.cert) for a in demo_pki.agencies.values()]
    revoked = load_certificate(demo_pki.revoked.cert)
    for _round in range(5):
        store = TrustStore.from_dirs(demo_pki.trust_dir, demo_pki.crl_dir)
        start = threading.Barrier(8)
        outcomes: list[str] = []

        def check(store: TrustStore = store, start: threading.Barrier = start,
                  outcomes: list[str] = outcomes) -> None:
            start.wait()
            for certificate in certificates:
                store.validate(certificate, [inter], purpose=Purpose.SEAL)
            try:
                store.validate(revoked, [inter], purpose=Purpose.SIGNING)
            except PermanentError as exc:
                outcomes.append(exc.reason)
            except Exception as exc:  # what this test is about
                outcomes.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=check) for _ in range(8)]
        switch = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # threads interleave as often as they can
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(switch)
        assert outcomes == ["cert_revoked"] * 8

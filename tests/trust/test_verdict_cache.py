"""Kept path verdicts: reused for the same certificate only, dropped when a CRL or a CA changes."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from connector.errors import PermanentError
from connector.trust import verdict_cache
from connector.trust.keys import SigningIdentity, load_certificate
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pki import DemoPki
from connector.trust.truststore import Purpose, TrustStore

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def store_dirs(demo_pki: DemoPki, tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the demo trust and CRL folders that a test may change."""
    trust, crls = tmp_path / "trust", tmp_path / "crl"
    shutil.copytree(demo_pki.trust_dir, trust)
    shutil.copytree(demo_pki.crl_dir, crls)
    return trust, crls


def _chain(pki: DemoPki) -> list[x509.Certificate]:
    return [load_certificate(pki.intermediate_cert)]


def _counts() -> tuple[int, int]:
    return verdict_cache.stats["hits"], verdict_cache.stats["misses"]


def _publish_crl(pki: DemoPki, folder: Path, revoked: list[x509.Certificate]) -> None:
    """A new intermediate CRL revoking ``revoked`` (and the demo's revoked signer)."""
    issuer = load_certificate(pki.intermediate_cert)
    key = serialization.load_pem_private_key(pki.intermediate_key.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
               .last_update(now - dt.timedelta(minutes=1))
               .next_update(now + dt.timedelta(days=30))
               .add_extension(x509.CRLNumber(2), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   key.public_key()), critical=False))
    for certificate in [*revoked, load_certificate(pki.revoked.cert)]:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(certificate.serial_number)
            .revocation_date(now - dt.timedelta(minutes=1)).build())
    target = folder / "intermediate.crl"
    target.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.DER))
    stat = target.stat()  # a later mtime even on a coarse clock: the store must notice
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_same_certificate_reuses_its_verdict(demo_pki: DemoPki, store_dirs: tuple[Path, Path],
                                             seal_a: SigningIdentity) -> None:
    store = TrustStore.from_dirs(*store_dirs)
    store.validate(seal_a.certificate, _chain(demo_pki))
    hits, misses = _counts()
    again = store.validate(seal_a.certificate, _chain(demo_pki))
    assert _counts() == (hits + 1, misses)
    assert again.path[0] == seal_a.certificate and len(again.path) == 3


def test_a_verdict_never_lends_an_intermediate_the_signer_did_not_give(
    demo_pki: DemoPki, trust_store: TrustStore, seal_a: SigningIdentity,
) -> None:
    trust_store.validate(seal_a.certificate, _chain(demo_pki))
    with pytest.raises(PermanentError) as refused:
        trust_store.validate(seal_a.certificate)
    assert refused.value.reason == "untrusted_root"


def test_pdf_signatures_reuse_verdicts(sealed_pdf: bytes, trust_store: TrustStore) -> None:
    verify_pdf(sealed_pdf, trust_store)
    hits, misses = _counts()
    report = verify_pdf(sealed_pdf, trust_store)
    assert report.all_ok
    assert _counts() == (hits + 2, misses)  # the personal signature and the seal


def test_a_new_crl_revoking_the_certificate_is_seen_at_once(
    demo_pki: DemoPki, store_dirs: tuple[Path, Path], seal_a: SigningIdentity, sealed_pdf: bytes,
) -> None:
    store = TrustStore.from_dirs(*store_dirs)
    store.validate(seal_a.certificate, _chain(demo_pki))
    assert verify_pdf(sealed_pdf, store).all_ok
    _publish_crl(demo_pki, store_dirs[1], [seal_a.certificate])
    with pytest.raises(PermanentError) as refused:
        store.validate(seal_a.certificate, _chain(demo_pki))
    assert refused.value.reason == "cert_revoked"
    report = verify_pdf(sealed_pdf, store)
    assert [s.reason for s in report.signatures] == [None, "cert_revoked"]


def test_a_changed_trust_folder_never_sees_older_verdicts(
    demo_pki: DemoPki, store_dirs: tuple[Path, Path], seal_a: SigningIdentity, sealed_pdf: bytes,
) -> None:
    TrustStore.from_dirs(*store_dirs).validate(seal_a.certificate, _chain(demo_pki))
    trust_dir = store_dirs[0]
    for path in trust_dir.iterdir():  # the demo root replaced by another CA
        path.unlink()
    shutil.copy(demo_pki.untrusted_root_cert, trust_dir / "other-root.pem")
    rebuilt = TrustStore.from_dirs(*store_dirs)
    with pytest.raises(PermanentError) as refused:
        rebuilt.validate(seal_a.certificate, _chain(demo_pki))
    assert refused.value.reason == "untrusted_root"
    assert not verify_pdf(sealed_pdf, rebuilt).all_ok


def _forged_twin(original: x509.Certificate) -> x509.Certificate:
    """Same subject, issuer name, serial, validity and extensions; another key, self-made."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(original.subject)
               .issuer_name(original.issuer).serial_number(original.serial_number)
               .not_valid_before(original.not_valid_before_utc)
               .not_valid_after(original.not_valid_after_utc).public_key(key.public_key()))
    for extension in original.extensions:
        if not isinstance(extension.value, x509.AuthorityKeyIdentifier | x509.SubjectKeyIdentifier):
            builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(key, hashes.SHA256())


@dataclass(frozen=True)
class Case:
    name: str
    reason: str | None  # None: any refusal


def test_a_verdict_for_one_certificate_is_never_used_for_another(
    demo_pki: DemoPki, trust_store: TrustStore, seal_a: SigningIdentity,
) -> None:
    trust_store.validate(seal_a.certificate, _chain(demo_pki))
    others = {
        Case("revoked", "cert_revoked"): load_certificate(demo_pki.revoked.cert),
        Case("expired", "cert_expired"): load_certificate(demo_pki.expired.cert),
        Case("same subject, untrusted root", "untrusted_root"):
            load_certificate(demo_pki.untrusted.cert),
        Case("forged twin of the seal", None): _forged_twin(seal_a.certificate),
    }
    for case, certificate in others.items():
        for _ in range(2):  # and a refusal is never kept either
            with pytest.raises(PermanentError) as refused:
                trust_store.validate(certificate, _chain(demo_pki), purpose=Purpose.SIGNING)
            if case.reason is not None:
                assert refused.value.reason == case.reason, case.name
    trust_store.validate(seal_a.certificate, _chain(demo_pki))  # still valid itself


def test_only_contexts_for_now_without_fetching_keep_verdicts(trust_store: TrustStore) -> None:
    assert trust_store.validation_context() in verdict_cache._contexts
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert trust_store.validation_context(moment=past) not in verdict_cache._contexts


@dataclass(frozen=True)
class _Cert:
    not_valid_after: dt.datetime


@dataclass(frozen=True)
class _Path:
    certs: tuple[_Cert, ...]

    def iter_certs(self, include_root: bool) -> tuple[_Cert, ...]:
        return self.certs


def test_window_closes_at_expiry_stale_crl_or_a_crl_coming_into_force() -> None:
    now = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
    day = dt.timedelta(days=1)
    path = _Path((_Cert(now + 30 * day), _Cert(now + 3 * day), _Cert(now + 900 * day)))

    def until(*crl_times: tuple[dt.datetime, dt.datetime | None]) -> dt.datetime:
        return verdict_cache.window(path, verdict_cache._Basis(b"k", crl_times), now)[1]

    assert until() == now + 3 * day  # the earliest certificate expiry
    assert until((now - day, now + day)) == now + day  # the CRL's nextUpdate
    assert until((now - day, None), (now + 2 * dt.timedelta(hours=1), None)) == (
        now + 2 * dt.timedelta(hours=1))  # a CRL coming into force later

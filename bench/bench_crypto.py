"""Benchmark: package signature and payload encryption next to their primitives.

For a ~10 KB package and packages carrying a 1 MB and a 20 MB attachment, measures in one run
the cost per operation of: signing the package (XML-DSig, RSA-2048 and ECDSA P-256), verifying
it (signature, pinned shape, chain and CRL check), encrypting the attachment (CMS
AuthEnvelopedData for one RSA and one EC recipient), decrypting it (RSA-OAEP and ECDH
recipient), and at-rest seal/open; next to the primitives measured on the same bytes:
one RSA-2048 signature, SHA-256, AES-256-GCM, exclusive c14n, hardened parsing. Prints a table
with the ratio of each operation to its primitive baseline; asserts nothing.

    .venv/bin/python bench/bench_crypto.py [--repeat-scale 1.0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from connector.edxml.builder import build_package
from connector.edxml.model import (
    Attachment,
    Code,
    DocumentType,
    EdocPackage,
    Organization,
    PromulgationInfo,
    compose_document_id,
)
from connector.edxml.xmlsafe import parse_untrusted
from connector.trust import cms, xmldsig
from connector.trust.atrest import AtRestKey, PayloadCipher
from connector.trust.keys import PrivateKey, load_certificate, load_identity, load_private_key
from connector.trust.pki import create_demo_pki
from connector.trust.truststore import TrustStore

SIZES = (("10 KB package", 6 * 1024, 40), ("1 MB attachment", 1024 * 1024, 10),
         ("20 MB attachment", 20 * 1024 * 1024, 3))


def package_with(attachment_bytes: int) -> tuple[bytes, bytes]:
    """A package whose one attachment has ``attachment_bytes`` random bytes; (package, data)."""
    sender = Organization("000.00.31.H12", organ_name="Sở Nội vụ tỉnh Cà Mau (demo)")
    code, date = Code("12", "SNV-VP"), dt.date(2026, 11, 20)
    data = b"%PDF-1.7\n" + os.urandom(attachment_bytes)
    package = EdocPackage(
        from_=sender, to=(Organization("000.00.32.H12"),),
        document_id=compose_document_id(sender.organ_id, date, code), code=code,
        promulgation_info=PromulgationInfo("Cà Mau", date),
        document_type=DocumentType(1, "Công văn"), subject="V/v đo hiệu năng ký và mã hóa",
        content="Nội dung " * 60,
        attachments=(Attachment("1", "cong-van.signed.pdf", "application/pdf", data),),
    )
    return build_package(package), data


def per_op_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm-up (imports, caches)
    samples = []
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000.0


Row = tuple[str, str, float, str, float | None]


@dataclass(frozen=True)
class Subjects:
    """What is measured: signers, trust store, encryption keys, ciphers (loaded once)."""

    trust: TrustStore
    rsa_signer: xmldsig.PackageSigner
    ec_signer: xmldsig.PackageSigner
    rsa_enc: tuple[PrivateKey, x509.Certificate]
    ec_enc: tuple[PrivateKey, x509.Certificate]
    raw_rsa_key: rsa.RSAPrivateKey
    at_rest: PayloadCipher
    gcm: AESGCM


def bench_size(subjects: Subjects, label: str, size: int, base_repeat: int,
               scale: float) -> list[Row]:
    trust, rsa_signer, ec_signer = subjects.trust, subjects.rsa_signer, subjects.ec_signer
    rsa_enc, ec_enc, raw_rsa_key = subjects.rsa_enc, subjects.ec_enc, subjects.raw_rsa_key
    at_rest, gcm = subjects.at_rest, subjects.gcm
    repeat = max(1, round(base_repeat * scale))

    def measure(name: str, action: Callable[[], object]) -> float:
        return per_op_ms(action, repeat)

    package, data = package_with(size)
    signed_rsa = rsa_signer.sign(package)
    signed_ec = ec_signer.sign(package)
    envelope = cms.encrypt(data, [rsa_enc[1], ec_enc[1]])
    blob = at_rest.seal(data)
    nonce = os.urandom(12)

    sha_pkg = measure("sha", lambda: hashlib.sha256(signed_rsa).digest())
    gcm_data = measure("gcm", lambda: gcm.encrypt(nonce, data, None))
    rsa_sig = measure("rsa", lambda: raw_rsa_key.sign(
        b"x" * 32, padding.PKCS1v15(), hashes.SHA256()))
    rsa_pub = raw_rsa_key.public_key()
    one_sig = raw_rsa_key.sign(b"x" * 32, padding.PKCS1v15(), hashes.SHA256())
    rsa_ver = measure("rsa-verify", lambda: rsa_pub.verify(
        one_sig, b"x" * 32, padding.PKCS1v15(), hashes.SHA256()))
    tree = parse_untrusted(package)
    c14n = measure("c14n", lambda: etree.tostring(tree, method="c14n", exclusive=True))
    parse = measure("parse", lambda: parse_untrusted(signed_rsa))
    sign_base = rsa_sig + sha_pkg
    verify_base = rsa_ver + sha_pkg
    kb = f"{len(signed_rsa) / 1024:,.0f} KB signed"
    return [
        (label, "primitive: SHA-256 (package)", sha_pkg, kb, None),
        (label, "primitive: AES-256-GCM (attachment)", gcm_data, "", None),
        (label, "primitive: RSA-2048 sign (one)", rsa_sig, "", None),
        (label, "primitive: RSA-2048 verify (one)", rsa_ver, "", None),
        (label, "primitive: exclusive c14n (package)", c14n, "", None),
        (label, "primitive: hardened parse (package)", parse, "", None),
        (label, "sign package, RSA-2048", measure("sign", lambda: rsa_signer.sign(package)),
         "RSA sign + SHA-256", sign_base),
        (label, "sign package, ECDSA P-256", measure("sign-ec",
                                                     lambda: ec_signer.sign(package)),
         "RSA sign + SHA-256", sign_base),
        (label, "verify package (RSA, chain+CRL)", measure(
            "verify", lambda: xmldsig.verify_package(signed_rsa, trust,
                                                     legacy_policy="refuse")),
         "RSA verify + SHA-256", verify_base),
        (label, "verify package (ECDSA, chain+CRL)", measure(
            "verify-ec", lambda: xmldsig.verify_package(signed_ec, trust,
                                                        legacy_policy="refuse")),
         "RSA verify + SHA-256", verify_base),
        (label, "CMS encrypt (RSA + EC recipient)", measure(
            "encrypt", lambda: cms.encrypt(data, [rsa_enc[1], ec_enc[1]])),
         "AES-256-GCM", gcm_data),
        (label, "CMS decrypt (RSA-OAEP recipient)", measure(
            "decrypt-rsa", lambda: cms.decrypt(envelope, *rsa_enc)),
         "AES-256-GCM", gcm_data),
        (label, "CMS decrypt (ECDH recipient)", measure(
            "decrypt-ec", lambda: cms.decrypt(envelope, *ec_enc)),
         "AES-256-GCM", gcm_data),
        (label, "at-rest seal", measure("seal", lambda: at_rest.seal(data)),
         "AES-256-GCM", gcm_data),
        (label, "at-rest open", measure("open", lambda: at_rest.open(blob)),
         "AES-256-GCM", gcm_data),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat-scale", type=float, default=1.0,
                        help="multiply the number of repetitions per size")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-crypto-") as folder:
        pki = create_demo_pki(Path(folder) / "pki")
        trust = TrustStore.from_dirs(pki.trust_dir, pki.crl_dir)
        rsa_signer = xmldsig.PackageSigner(load_identity(pki.first.seal.key, pki.first.seal.cert,
                                                         [pki.intermediate_cert]))
        ec_signer = xmldsig.PackageSigner(load_identity(pki.second.seal.key,
                                                        pki.second.seal.cert,
                                                        [pki.intermediate_cert]))
        rsa_enc = (load_private_key(pki.first.encryption.key),
                   load_certificate(pki.first.encryption.cert))
        ec_enc = (load_private_key(pki.second.encryption.key),
                  load_certificate(pki.second.encryption.cert))
        raw_rsa_key = load_private_key(pki.first.seal.key)
        assert isinstance(raw_rsa_key, rsa.RSAPrivateKey)
        subjects = Subjects(trust, rsa_signer, ec_signer, rsa_enc, ec_enc, raw_rsa_key,
                            PayloadCipher([AtRestKey("bench", os.urandom(32))]),
                            AESGCM(os.urandom(32)))
        rows = [row for label, size, repeat in SIZES
                for row in bench_size(subjects, label, size, repeat, args.repeat_scale)]

    print(f"{'size':<17} {'operation':<38} {'ms/op':>10}  {'baseline':<22} {'ratio':>8}")
    print("-" * 100)
    previous = None
    for label, name, ms, baseline, base_ms in rows:
        shown = label if label != previous else ""
        previous = label
        ratio = f"{ms / base_ms:,.1f}x" if base_ms else ""
        base = f"{baseline} {base_ms:,.2f} ms" if base_ms else baseline
        print(f"{shown:<17} {name:<38} {ms:>10,.3f}  {base:<22} {ratio:>8}")


if __name__ == "__main__":
    main()

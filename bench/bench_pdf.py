"""Benchmark: PDF seal and verification next to their primitives, for 1 MB and 20 MB PDFs.

In one run, per PDF size: applying the organisation seal (PAdES B, incremental update) with the
key-caching signer (RSA-2048 and EC P-256) and with pyHanko's stock SimpleSigner (re-parses its
key per signature), verifying a personally signed and sealed PDF (two signatures: chain, CRL,
diff analysis), next to the primitives on the same bytes: one RSA-2048 signature, one ECDSA
P-256 signature, loading an RSA key, SHA-256 over the whole file. Prints a table of medians
and the ratio of each operation to SHA-256 over the same bytes; asserts nothing.

    .venv/bin/python bench/bench_pdf.py [--sizes 1,20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign import signers

from connector.trust.keys import SigningIdentity, load_identity
from connector.trust.pdf_sample import make_pdf
from connector.trust.pdf_seal import CachedKeySigner, StampOptions, seal_pdf, sign_pdf
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pki import DemoPki, create_demo_pki
from connector.trust.truststore import TrustStore


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm-up: imports, caches
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def _stock_signer(identity: SigningIdentity) -> signers.SimpleSigner:
    """pyHanko's SimpleSigner as it comes: it re-parses the DER key on every signature."""
    base = CachedKeySigner(identity)
    key_der = identity.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return signers.SimpleSigner(
        signing_cert=base.signing_cert,
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=base.cert_registry,
    )


def _seal_with_stock(data: bytes, identity: SigningIdentity) -> bytes:
    import io

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields

    meta = signers.PdfSignatureMetadata(
        field_name="StockSeal", md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    output = signers.PdfSigner(meta, signer=_stock_signer(identity)).sign_pdf(writer)
    result: bytes = output.getvalue()
    return result


def _rows_for_size(size_mb: int, pki: DemoPki, trust: TrustStore,
                   repeat: int) -> list[tuple[str, float]]:
    agency_a, agency_b = pki.first, pki.second
    seal_rsa = load_identity(agency_a.seal.key, agency_a.seal.cert, [agency_a.chain])
    seal_ec = load_identity(agency_b.seal.key, agency_b.seal.cert, [agency_b.chain])
    signer = load_identity(agency_a.signer.key, agency_a.signer.cert, [agency_a.chain])
    assert isinstance(seal_rsa.private_key, rsa.RSAPrivateKey)
    assert isinstance(seal_ec.private_key, ec.EllipticCurvePrivateKey)
    rsa_key, ec_key = seal_rsa.private_key, seal_ec.private_key
    pdf = make_pdf(("Benchmark document",), image_bytes=size_mb * 1_000_000)
    signed = sign_pdf(pdf, signer)
    sealed = seal_pdf(signed, seal_rsa)
    digest = hashlib.sha256(pdf).digest()
    key_pem = agency_a.seal.key.read_bytes()
    return [
        ("SHA-256 over the file", _median_ms(lambda: hashlib.sha256(pdf).digest(), repeat)),
        ("RSA-2048 signature (one)", _median_ms(
            lambda: rsa_key.sign(digest, padding.PKCS1v15(), hashes.SHA256()), repeat)),
        ("ECDSA P-256 signature (one)", _median_ms(
            lambda: ec_key.sign(digest, ec.ECDSA(hashes.SHA256())), repeat)),
        ("load RSA-2048 key (PEM)", _median_ms(
            lambda: serialization.load_pem_private_key(key_pem, None), repeat)),
        ("seal, RSA, cached key", _median_ms(lambda: seal_pdf(signed, seal_rsa), repeat)),
        ("seal, RSA, cached key, visible", _median_ms(
            lambda: seal_pdf(signed, seal_rsa, stamp=StampOptions(visible=True)), repeat)),
        ("seal, RSA, stock SimpleSigner", _median_ms(
            lambda: _seal_with_stock(signed, seal_rsa), repeat)),
        ("seal, EC P-256, cached key", _median_ms(lambda: seal_pdf(signed, seal_ec), repeat)),
        ("verify personal + seal (2 sigs)", _median_ms(
            lambda: verify_pdf(sealed, trust), repeat)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1,20", help="PDF sizes in MB, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per operation")
    args = parser.parse_args(argv)
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory() as folder:
        pki = create_demo_pki(Path(folder) / "pki")
        trust = TrustStore.from_dirs(pki.trust_dir, pki.crl_dir)
        results = {size: _rows_for_size(size, pki, trust, args.repeat) for size in sizes}
    names = [name for name, _ in results[sizes[0]]]
    header = f"{'operation (median ms)':34}" + "".join(
        f"{f'{s} MB':>12}{'x SHA-256':>11}" for s in sizes)
    print(header)
    print("-" * len(header))
    for index, name in enumerate(names):
        cells = ""
        for size in sizes:
            value = results[size][index][1]
            baseline = results[size][0][1]
            cells += f"{value:12.2f}{value / baseline:11.1f}"
        print(f"{name:34}{cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

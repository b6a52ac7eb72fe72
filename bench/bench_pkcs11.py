"""Benchmark: seal and sign with a key in a PKCS#11 token (SoftHSM2) next to the same kind of
key in a file, in one run.

A throw-away SoftHSM2 configuration in a temporary folder holds one token with an RSA-2048 and
an EC P-256 key generated inside it, certified by a demo PKI made for the run. Per key kind:
one raw signature, the organisation seal on a 1 MB PDF, the package XML signature on a 10 KB
and a 1 MB package, each with the file key and the token key; then what a session costs: the
first use (open, login, find the key) and the re-open after the module was finalised. Prints
medians and the token/file ratio; asserts nothing. Skips (exit 0) where SoftHSM2 is absent.

    .venv/bin/python -m bench.bench_pkcs11 [--repeat 15]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pkcs11 import Mechanism

from bench.bench_crypto import package_with
from connector.trust import pkcs11_token, xmldsig
from connector.trust.keys import SigningIdentity, load_identity
from connector.trust.pdf_sample import make_pdf
from connector.trust.pdf_seal import seal_pdf
from connector.trust.pkcs11_keys import TokenKeySource, forget_identities
from connector.trust.pkcs11_softhsm import SoftHsm, softhsm_module
from connector.trust.pkcs11_token import TokenSpec
from connector.trust.pki import DEMO_AGENCIES, DemoPki, create_demo_pki, issue_seal_certificate

PIN_ENV = "BENCH_TOKEN_PIN"


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm-up: imports, caches, the session
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def _raw_sign(identity: SigningIdentity) -> Callable[[], bytes]:
    key = identity.private_key
    if isinstance(key, rsa.RSAPrivateKey):
        return lambda: key.sign(b"x" * 64, padding.PKCS1v15(), hashes.SHA256())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return lambda: key.sign(b"x" * 64, ec.ECDSA(hashes.SHA256()))


def _token_sources(folder: Path, pki: DemoPki) -> dict[str, TokenKeySource]:
    hsm = SoftHsm.create(folder)
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)  # before the module is first initialised
    os.environ[PIN_ENV] = pin = "bench-1234"
    pkcs11_token.close_all()
    hsm.init_token("bench", pin)
    sources = {}
    for kind, agency, key_id in (("rsa", DEMO_AGENCIES[0], b"\x01"),
                                 ("ec", DEMO_AGENCIES[1], b"\x02")):
        public = hsm.generate_key("bench", pin, f"seal-{kind}", key_id=key_id,
                                  kind="rsa" if kind == "rsa" else "ec")
        cert_file = folder / f"seal-{kind}.pem"
        cert_file.write_bytes(issue_seal_certificate(pki, agency, public).public_bytes(
            serialization.Encoding.PEM))
        sources[kind] = TokenKeySource(TokenSpec(hsm.module, "bench", pin_env=PIN_ENV),
                                       key_label=f"seal-{kind}", cert_file=cert_file,
                                       chain=(pki.intermediate_cert,))
    return sources


def _rows(pki: DemoPki, sources: dict[str, TokenKeySource],
          repeat: int) -> list[tuple[str, float, float]]:
    files = {
        "rsa": load_identity(pki.first.seal.key, pki.first.seal.cert, [pki.first.chain]),
        "ec": load_identity(pki.second.seal.key, pki.second.seal.cert, [pki.second.chain]),
    }
    pdf = make_pdf(("Benchmark document",), image_bytes=1_000_000)
    small, _ = package_with(6 * 1024)
    large, _ = package_with(1024 * 1024)
    rows = []
    for kind, label in (("rsa", "RSA-2048"), ("ec", "EC P-256")):
        file_identity, token_identity = files[kind], sources[kind].load()
        file_xml = xmldsig.PackageSigner(file_identity)
        token_xml = xmldsig.PackageSigner(token_identity)
        operations: list[tuple[str, Callable[[SigningIdentity, xmldsig.PackageSigner],
                                             object]]] = [
            ("one raw signature", lambda i, _s: _raw_sign(i)()),
            ("seal 1 MB PDF", lambda i, _s: seal_pdf(pdf, i)),
            ("XML-sign 10 KB package", lambda _i, s: s.sign(small)),
            ("XML-sign 1 MB package", lambda _i, s: s.sign(large)),
        ]
        for name, operation in operations:
            file_ms = _median_ms(partial(operation, file_identity, file_xml), repeat)
            token_ms = _median_ms(partial(operation, token_identity, token_xml), repeat)
            rows.append((f"{label}: {name}", file_ms, token_ms))
    source = sources["rsa"]

    def first_use() -> None:
        pkcs11_token.close_all()  # no session, module finalised: open, log in, find the key
        forget_identities()
        source.sign(b"x" * 64, Mechanism.SHA256_RSA_PKCS)

    rows.append(("token: first use (open+login+sign)", float("nan"),
                 _median_ms(first_use, max(3, repeat // 3))))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per operation")
    args = parser.parse_args(argv)
    if softhsm_module() is None:
        print("(skipped: SoftHSM2 is not installed: apt-get install softhsm2)")
        return 0
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as folder:
        pki = create_demo_pki(Path(folder) / "pki")
        sources = _token_sources(Path(folder) / "softhsm", pki)
        try:
            rows = _rows(pki, sources, args.repeat)
        finally:
            pkcs11_token.close_all()
    header = f"{'operation (median ms)':40}{'file key':>10}{'token key':>11}{'token/file':>12}"
    print(header)
    print("-" * len(header))
    for name, file_ms, token_ms in rows:
        if file_ms != file_ms:  # NaN: token only
            print(f"{name:40}{'-':>10}{token_ms:11.2f}{'-':>12}")
        else:
            print(f"{name:40}{file_ms:10.2f}{token_ms:11.2f}{token_ms / file_ms:12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

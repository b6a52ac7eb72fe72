"""Shared fixtures of the trust tests: one demo PKI per test session."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from connector.trust.keys import SigningIdentity, load_identity
from connector.trust.pdf_sample import make_pdf
from connector.trust.pdf_seal import StampOptions, seal_pdf, sign_pdf
from connector.trust.pki import DemoPki, KeyPair, create_demo_pki
from connector.trust.truststore import TrustStore


@pytest.fixture(scope="session")
def demo_pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    """A complete demo PKI (root, intermediate, two agencies, negative cases), made once."""
    return create_demo_pki(Path(tmp_path_factory.mktemp("demo-pki")) / "pki")


@pytest.fixture(scope="session")
def trust_store(demo_pki: DemoPki) -> TrustStore:
    """A trust store over the demo root and its CRLs (revocation: hard-fail, no fetching)."""
    return TrustStore.from_dirs(demo_pki.trust_dir, demo_pki.crl_dir)


def _identity_of(pki: DemoPki, pair: KeyPair) -> SigningIdentity:
    """Load a demo key pair with the demo intermediate as its chain."""
    return load_identity(pair.key, pair.cert, [pki.intermediate_cert])


@pytest.fixture(scope="session")
def seal_a(demo_pki: DemoPki) -> SigningIdentity:
    """Agency A's organisation seal (RSA-2048)."""
    return _identity_of(demo_pki, demo_pki.first.seal)


@pytest.fixture(scope="session")
def signer_a(demo_pki: DemoPki) -> SigningIdentity:
    """Agency A's personal signer (EC P-256)."""
    return _identity_of(demo_pki, demo_pki.first.signer)


@pytest.fixture(scope="session")
def seal_b(demo_pki: DemoPki) -> SigningIdentity:
    """Agency B's organisation seal (EC P-256)."""
    return _identity_of(demo_pki, demo_pki.second.seal)


@pytest.fixture(scope="session")
def plain_pdf() -> bytes:
    """An unsigned two-page PDF."""
    return make_pdf(("Cong van so 12/SNV-VP", "Demo document"), pages=2)


@pytest.fixture(scope="session")
def signed_pdf(plain_pdf: bytes, signer_a: SigningIdentity) -> bytes:
    """The PDF with agency A's personal signature."""
    return sign_pdf(plain_pdf, signer_a)


@pytest.fixture(scope="session")
def sealed_pdf(signed_pdf: bytes, seal_a: SigningIdentity) -> bytes:
    """Personal signature, then agency A's visible organisation seal."""
    return seal_pdf(signed_pdf, seal_a, stamp=StampOptions(visible=True))


def _swap_page_content(data: bytes, text: bytes = b"Pay 1,000,000,000 VND to account 42") -> bytes:
    """The shadow attack: an incremental update pointing page 1 at a new content stream."""
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    content = b"BT /F1 14 Tf 72 770 Td (" + text + b") Tj ET"
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=content))
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def _flip_signed_byte(data: bytes, marker: bytes = b"(Demo document)") -> bytes:
    """Change one byte of page text inside the first signed revision."""
    at = data.index(marker) + 1
    tampered = bytearray(data)
    tampered[at] ^= 0x20
    return bytes(tampered)


PdfAttack = Callable[[bytes], bytes]


@pytest.fixture(scope="session")
def swap_page_content() -> PdfAttack:
    """The shadow attack as a function: signed bytes kept, page content replaced."""
    return _swap_page_content


@pytest.fixture(scope="session")
def flip_signed_byte() -> PdfAttack:
    """One changed byte inside the signed page text, as a function."""
    return _flip_signed_byte


@pytest.fixture(scope="session")
def identity_of(demo_pki: DemoPki) -> Callable[[KeyPair], SigningIdentity]:
    """Load any demo key pair (with the demo intermediate as chain)."""
    return lambda pair: _identity_of(demo_pki, pair)

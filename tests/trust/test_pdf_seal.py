"""Sealing: incremental update, visible stamp, cached signer, and independent pdfsig checks."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from connector.errors import ConfigurationError
from connector.trust import pdf_seal
from connector.trust.keys import KeySource, SigningIdentity
from connector.trust.pdf_seal import StampOptions, seal_pdf
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pki import DemoPki
from connector.trust.truststore import TrustStore

pytestmark = pytest.mark.filterwarnings("ignore")


def _unescape(data: bytes) -> bytes:
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), data)


def _reader(data: bytes) -> PdfFileReader:
    import io

    return PdfFileReader(io.BytesIO(data))


def test_seal_is_an_incremental_update(signed_pdf: bytes, sealed_pdf: bytes) -> None:
    assert sealed_pdf.startswith(signed_pdf)
    assert [s.field_name for s in _reader(sealed_pdf).embedded_signatures] == [
        "Signature1", "OrganisationSeal1"]


def test_visible_stamp_shows_organisation_and_vietnam_time(sealed_pdf: bytes) -> None:
    seal = _reader(sealed_pdf).embedded_signatures[-1]
    appearance = _unescape(seal.sig_field["/AP"]["/N"].data)
    assert b"So Noi vu tinh Ca Mau (demo)" in appearance  # folded for the standard font
    assert re.search(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", appearance)


def test_invisible_seal_has_no_appearance_box(plain_pdf: bytes, seal_b: SigningIdentity) -> None:
    sealed = seal_pdf(plain_pdf, seal_b)
    field = _reader(sealed).embedded_signatures[0].sig_field
    rect = [float(x) for x in field.get("/Rect", [0, 0, 0, 0])]
    assert rect[2] - rect[0] == 0 and rect[3] - rect[1] == 0


def test_second_seal_gets_a_new_field(sealed_pdf: bytes, seal_b: SigningIdentity,
                                      trust_store: TrustStore) -> None:
    twice = seal_pdf(sealed_pdf, seal_b)
    report = verify_pdf(twice, trust_store)
    assert [s.field_name for s in report.signatures][-1] == "OrganisationSeal2"
    assert report.all_ok


def test_signer_keeps_its_key_object(seal_a: SigningIdentity,
                                     monkeypatch: pytest.MonkeyPatch, plain_pdf: bytes) -> None:
    calls: list[int] = []
    import cryptography.hazmat.primitives.serialization as serialization

    original = serialization.load_der_private_key

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(serialization, "load_der_private_key", counting)
    first = pdf_seal.signer_for(seal_a)
    seal_pdf(plain_pdf, seal_a)
    seal_pdf(plain_pdf, seal_a)
    assert pdf_seal.signer_for(seal_a) is first
    assert calls == []


def test_seal_from_pkcs12_key_source(demo_pki: DemoPki, plain_pdf: bytes,
                                     trust_store: TrustStore) -> None:
    agency = demo_pki.second
    source = KeySource(agency.seal_p12, password_file=agency.seal_p12_password_file)
    report = verify_pdf(seal_pdf(plain_pdf, source), trust_store)
    assert report.all_ok and report.signatures[0].organ_id == agency.organ_id


# ---------------------------------------------------------------- independent check: pdfsig

needs_pdfsig = pytest.mark.skipif(shutil.which("pdfsig") is None, reason="pdfsig not installed")


def _pdfsig(path: Path, *options: str) -> str:
    done = subprocess.run(["pdfsig", *options, str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    return done.stdout + done.stderr


@needs_pdfsig
@pytest.mark.tools
def test_pdfsig_reports_both_signatures_intact(sealed_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "sealed.pdf"
    path.write_bytes(sealed_pdf)
    output = _pdfsig(path, "-nocert")
    assert output.count("Signature Validation: Signature is Valid.") == 2, output
    assert "Signature Type: ETSI.CAdES.detached" in output
    assert output.rstrip().split("Signature #2:")[1].count("Total document signed") == 1


@needs_pdfsig
@pytest.mark.tools
def test_pdfsig_detects_tampered_byte(
    sealed_pdf: bytes, tmp_path: Path, flip_signed_byte: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "tampered.pdf"
    path.write_bytes(flip_signed_byte(sealed_pdf))
    output = _pdfsig(path, "-nocert")
    assert "Signature is Valid." not in output
    assert "Digest Mismatch" in output, output


@needs_pdfsig
@pytest.mark.tools
@pytest.mark.skipif(shutil.which("certutil") is None or shutil.which("crlutil") is None,
                    reason="NSS tools (certutil, crlutil; package libnss3-tools) not installed")
def test_pdfsig_trusts_our_seal_through_the_demo_root(
    demo_pki: DemoPki, plain_pdf: bytes, seal_a: SigningIdentity, tmp_path: Path
) -> None:
    """NSS, given only the demo root and its CRLs, accepts the seal's chain and signature.

    (A one-signature file: poppler 22 reports "Unknown issue" for the certificate of every
    signature after the first in a file, even when the same signer signs twice.)
    """
    db = tmp_path / "nss"
    db.mkdir()
    sql = f"sql:{db}"

    def run(*command: str) -> None:
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    run("certutil", "-N", "-d", sql, "--empty-password")
    run("certutil", "-A", "-d", sql, "-n", "demo-root", "-t", "C,C,C", "-i",
        str(demo_pki.root_cert))
    for crl in sorted(demo_pki.crl_dir.iterdir()):
        run("crlutil", "-I", "-d", sql, "-i", str(crl), "-t", "1", "-B")
    path = tmp_path / "sealed.pdf"
    path.write_bytes(seal_pdf(plain_pdf, seal_a, stamp=StampOptions(visible=True)))
    output = _pdfsig(path, "-nssdir", sql, "-no-ocsp")
    assert "Signature Validation: Signature is Valid." in output, output
    assert "Certificate Validation: Certificate is Trusted." in output, output


def test_stamp_font_with_wrong_units_is_a_configuration_error(
    plain_pdf: bytes, seal_a: SigningIdentity
) -> None:
    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # 2048 units per em
    if not font.exists():
        pytest.skip("DejaVu Sans is not installed")
    with pytest.raises(ConfigurationError) as caught:
        seal_pdf(plain_pdf, seal_a, stamp=StampOptions(visible=True, font_file=font))
    assert caught.value.reason in {"font_unsupported", "font_unavailable"}
    assert str(font) in caught.value.message or "opentype" in caught.value.message

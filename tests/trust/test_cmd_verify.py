"""``connector verify``: readable report and exit code for PDFs and signed edXML packages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from connector.cli import main
from connector.edxml.builder import build_package
from connector.edxml.model import Attachment
from connector.trust import xmldsig
from connector.trust.keys import SigningIdentity
from connector.trust.pdf_seal import seal_pdf
from connector.trust.pki import DemoPki
from tests.edxml.factories import edoc


def _verify(demo_pki: DemoPki, path: Path, *extra: str) -> int:
    return main(["verify", str(path), "--trust", str(demo_pki.trust_dir), "--crl",
                 str(demo_pki.crl_dir), *extra])


def test_valid_pdf_report(
    demo_pki: DemoPki, sealed_pdf: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "doc.signed.pdf"
    path.write_bytes(sealed_pdf)
    assert _verify(demo_pki, path, "--role", "main") == 0
    out = capsys.readouterr().out
    assert "[1] Signature1: personal signature" in out
    assert f"[2] OrganisationSeal1: organisation signature OrganId {demo_pki.first.organ_id}" in out
    assert "policy (main): met" in out
    assert out.rstrip().endswith("VERDICT: VALID")


def test_swapped_pdf_is_invalid(
    demo_pki: DemoPki, sealed_pdf: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    swap_page_content: Callable[[bytes], bytes],
) -> None:
    path = tmp_path / "swapped.pdf"
    path.write_bytes(swap_page_content(sealed_pdf))
    assert _verify(demo_pki, path) == 1
    out = capsys.readouterr().out
    assert "INVALID [document_modified]" in out and "VERDICT: INVALID" in out


def test_attachment_role_needs_the_seal(
    demo_pki: DemoPki, signed_pdf: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "signed-only.pdf"
    path.write_bytes(signed_pdf)
    assert _verify(demo_pki, path) == 0  # any: one valid signature
    assert _verify(demo_pki, path, "--role", "attachment") == 1
    assert "organisation_signature_missing" in capsys.readouterr().out


def test_signed_package_with_pdfs(
    demo_pki: DemoPki, sealed_pdf: bytes, plain_pdf: bytes, seal_a: SigningIdentity,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    appendix = seal_pdf(plain_pdf, seal_a)
    package = edoc(attachments=(
        Attachment("1", "cong-van.signed.pdf", "application/pdf", sealed_pdf),
        Attachment("2", "phu-luc.signed.pdf", "application/pdf", appendix),
    ))
    signed = xmldsig.sign_package(build_package(package), seal_a)
    path = tmp_path / "package.edxml"
    path.write_bytes(signed)
    assert _verify(demo_pki, path, "--sender", demo_pki.first.organ_id) == 0
    out = capsys.readouterr().out
    assert "main document: cong-van.signed.pdf" in out
    assert "policy (main): met" in out and "policy (attachment): met" in out

    unsealed = edoc(attachments=(
        Attachment("1", "cong-van.signed.pdf", "application/pdf", sealed_pdf),
        Attachment("2", "phu-luc.pdf", "application/pdf", plain_pdf),
    ))
    path.write_bytes(xmldsig.sign_package(build_package(unsealed), seal_a))
    assert _verify(demo_pki, path) == 1
    assert "organisation_signature_missing" in capsys.readouterr().out

    tampered = signed.replace(b"<edXML:Subject>", b"<edXML:Subject>X", 1)
    assert tampered != signed
    path.write_bytes(tampered)
    assert _verify(demo_pki, path) == 1
    assert "package signature:\n    INVALID" in capsys.readouterr().out

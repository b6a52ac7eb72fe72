"""``connector sign-pdf``: seal from PEM or PKCS#12, policy with --trust, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.cli import main
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pki import DemoPki
from connector.trust.truststore import SignerKind, TrustStore


def test_seal_with_pkcs12_and_password_env(
    demo_pki: DemoPki, signed_pdf: bytes, tmp_path: Path, trust_store: TrustStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agency = demo_pki.first
    monkeypatch.setenv("SEAL_PW", agency.seal_p12_password_file.read_text().strip())
    source, target = tmp_path / "in.pdf", tmp_path / "out.signed.pdf"
    source.write_bytes(signed_pdf)
    code = main(["sign-pdf", str(source), str(target), "--key", str(agency.seal_p12),
                 "--password-env", "SEAL_PW", "--visible", "--trust", str(demo_pki.trust_dir),
                 "--crl", str(demo_pki.crl_dir), "--role", "main"])
    assert code == 0
    report = verify_pdf(target.read_bytes(), trust_store)
    assert report.all_ok
    assert [s.kind for s in report.signatures] == [SignerKind.PERSONAL, SignerKind.ORGANISATION]


def test_main_without_personal_signature_is_refused(
    demo_pki: DemoPki, plain_pdf: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agency = demo_pki.first
    source, target = tmp_path / "in.pdf", tmp_path / "out.pdf"
    source.write_bytes(plain_pdf)
    code = main(["sign-pdf", str(source), str(target), "--key", str(agency.seal.key),
                 "--cert", str(agency.seal.cert), "--chain", str(agency.chain),
                 "--trust", str(demo_pki.trust_dir), "--crl", str(demo_pki.crl_dir),
                 "--role", "main"])
    assert code == 1 and not target.exists()
    assert "personal_signature_missing" in capsys.readouterr().err


def test_personal_certificate_cannot_seal(
    demo_pki: DemoPki, plain_pdf: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agency = demo_pki.second
    source = tmp_path / "in.pdf"
    source.write_bytes(plain_pdf)
    code = main(["sign-pdf", str(source), str(tmp_path / "out.pdf"), "--key",
                 str(agency.signer.key), "--cert", str(agency.signer.cert)])
    assert code == 1
    assert "wrong_certificate_kind" in capsys.readouterr().err


def test_wrong_password_file(
    demo_pki: DemoPki, plain_pdf: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, wrong = tmp_path / "in.pdf", tmp_path / "wrong.pw"
    source.write_bytes(plain_pdf)
    wrong.write_text("definitely-wrong\n")
    code = main(["sign-pdf", str(source), str(tmp_path / "out.pdf"), "--key",
                 str(demo_pki.first.seal_p12), "--password-file", str(wrong)])
    assert code == 1
    err = capsys.readouterr().err
    assert "key_password" in err and "definitely-wrong" not in err

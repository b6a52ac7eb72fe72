"""The adapters between the real parts and the daemon's ports."""

from __future__ import annotations

import pickle

import pytest

from connector.daemon.adapters import PdfAdapter
from connector.edxml.model import Attachment
from connector.errors import PermanentError
from connector.trust.keys import KeySource
from connector.trust.pdf_sample import make_pdf
from connector.trust.pdf_seal import sign_pdf
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pki import DemoPki
from connector.trust.truststore import SignerKind, TrustStore
from tests.e2e.inprocess import daemon_pki  # noqa: F401

A = "000.00.31.H12"


def _adapter(pki: DemoPki) -> PdfAdapter:
    agency = pki.agency(A)
    seal = KeySource(agency.seal.key, agency.seal.cert, (agency.chain,))
    return PdfAdapter(seal=seal, trust_dir=str(pki.trust_dir), crl_dir=str(pki.crl_dir))


def _signed_main(pki: DemoPki) -> bytes:
    agency = pki.agency(A)
    signer = KeySource(agency.signer.key, agency.signer.cert, (agency.chain,))
    return sign_pdf(make_pdf(("Cong van 1",)), signer)


def test_pdf_adapter_is_picklable_for_worker_processes(daemon_pki: DemoPki) -> None:  # noqa: F811
    adapter = _adapter(daemon_pki)
    assert pickle.loads(pickle.dumps(adapter)) == adapter


def test_seals_the_main_pdf_and_attachments_and_leaves_other_files(daemon_pki: DemoPki) -> None:  # noqa: F811
    adapter = _adapter(daemon_pki)
    files = (
        Attachment("1", "main.signed.pdf", "application/pdf", _signed_main(daemon_pki)),
        Attachment("2", "annex.pdf", "application/pdf", make_pdf(("Phu luc",))),
        Attachment("3", "table.xlsx", "application/vnd.ms-excel", b"PK\x03\x04 not a pdf"),
    )
    main, annex, table = adapter.seal_outbound(files)
    trust = TrustStore.from_dirs(daemon_pki.trust_dir, daemon_pki.crl_dir)
    kinds = [s.kind for s in verify_pdf(main.data, trust).signatures]
    assert kinds == [SignerKind.PERSONAL, SignerKind.ORGANISATION]
    assert [s.kind for s in verify_pdf(annex.data, trust).signatures] == [SignerKind.ORGANISATION]
    assert table == files[2]
    notes = adapter.verify_inbound((main, annex, table), A)
    assert any("table.xlsx: not a PDF" in note for note in notes)
    assert sum("valid signature" in note for note in notes) == 2


def test_main_document_without_personal_signature_is_refused(daemon_pki: DemoPki) -> None:  # noqa: F811
    adapter = _adapter(daemon_pki)
    unsigned = Attachment("1", "main.pdf", "application/pdf", make_pdf(("Chua ky",)))
    with pytest.raises(PermanentError) as caught:
        adapter.seal_outbound((unsigned,))
    assert caught.value.reason == "personal_signature_missing"

"""Damaged XML signatures: every one is a verdict with a reason, never an exception.

Seeded mutations of the ds:Signature of a package XML-signed by A's seal (certificate bytes,
names, SignedInfo, values, markup) found ValueError (asn1 in a KeyInfo certificate),
UnicodeDecodeError (its names) and XMLSyntaxError escaping ``verify_package``: the package
stayed RECEIVED and was retried with a traceback each round. Now each is refused.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from connector.edxml import build_package
from connector.errors import PermanentError
from connector.trust import xmldsig
from connector.trust.pki import DemoPki
from connector.trust.truststore import TrustStore
from tests.hostile.trust_kit import Kit, document, pdf, three_agency_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return three_agency_pki(Path(tmp_path_factory.mktemp("three-agencies")) / "pki")


@pytest.fixture(scope="module")
def trust(pki: DemoPki) -> TrustStore:
    return TrustStore.from_dirs(pki.trust_dir, pki.crl_dir)


@pytest.mark.parametrize("signer", ["seal:A", "personal:C"])
def test_damaged_xml_signatures_are_verdicts(pki: DemoPki, trust: TrustStore, signer: str
                                             ) -> None:
    raw = xmldsig.sign_package(build_package(document("A", attachments=(
        pdf("1", b"%PDF-1.7 x"),))), Kit(pki).identity(signer))
    start = raw.index(b"Signature")
    rng = random.Random(7 if signer == "seal:A" else 11)
    escaped: list[str] = []
    for _ in range(150):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            data[start + rng.randrange(len(raw) - start)] = rng.choice(
                b"ABCDEFabcdef0123456789+/=<>\"' \n")
        try:
            xmldsig.verify_package(bytes(data), trust, legacy_policy="accept",
                                   unsigned_policy="accept")
        except PermanentError:
            pass
        except Exception as exc:  # what this test exists to find
            escaped.append(f"{type(exc).__name__}: {exc}"[:200])
    assert not escaped, "\n".join(escaped)


@pytest.mark.parametrize("surprise", [ValueError("asn1"), UnicodeDecodeError(
    "utf-8", b"\xe5", 0, 1, "invalid"), KeyError("x"), AttributeError("y")])
def test_a_library_surprise_is_signature_invalid(
    trust: TrustStore, monkeypatch: pytest.MonkeyPatch, surprise: Exception
) -> None:
    def raising(*_args: object, **_kwargs: object) -> None:
        raise surprise

    monkeypatch.setattr(xmldsig, "_verify_package", raising)
    with pytest.raises(PermanentError) as refused:
        xmldsig.verify_package(b"<edXML/>", trust, legacy_policy="accept")
    assert refused.value.reason == "signature_invalid"
    assert type(surprise).__name__ in refused.value.message

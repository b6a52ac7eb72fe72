"""A signed package re-encoded on its way (another hub's software declaring UTF-16,
ISO-8859-1, windows-1258, or UTF-8 bytes labelled UTF-16 as .NET writes them; CRLF lines as
the SDK sends) still verifies, and the verified bytes read as the same package: the digest
covers the canonical form, which is UTF-8 whatever the declaration said. Before, UTF-8 bytes
labelled UTF-16 made signxml raise an untyped XMLSyntaxError out of the verifier.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from connector.edxml import check_package
from connector.edxml.xmlsafe import strip_stray_prefix
from connector.trust import xmldsig
from connector.trust.keys import load_identity
from connector.trust.pki import DemoPki
from connector.trust.truststore import TrustStore
from tests.samples import sample_paths


def _declared(text: str, label: str) -> str:
    head, rest = text.split("?>", 1)
    head = head.replace("'", '"').replace('encoding="UTF-8"', f'encoding="{label}"')
    return head + "?>" + rest


FORMS: dict[str, Callable[[str], bytes]] = {
    "utf-16": lambda t: _declared(t, "UTF-16").encode("utf-16"),
    "iso-8859-1": lambda t: _declared(t, "ISO-8859-1").encode("latin-1", "xmlcharrefreplace"),
    "windows-1258": lambda t: _declared(t, "windows-1258").encode("cp1258", "xmlcharrefreplace"),
    "utf-8 labelled utf-16": lambda t: _declared(t, "utf-16").encode(),
    "crlf": lambda t: t.replace("\n", "\r\n").encode(),
}


@pytest.fixture(scope="module")
def signed(demo_pki: DemoPki) -> str:
    paths = sample_paths("edoc_update.edxml")
    if not paths:
        pytest.skip("national axis samples (../shared) are absent")
    seal = load_identity(demo_pki.first.seal.key, demo_pki.first.seal.cert,
                         [demo_pki.intermediate_cert])
    text = strip_stray_prefix(xmldsig.sign_package(paths[0].read_bytes(), seal))[0].decode()
    return text if text.startswith("<?xml") else '<?xml version="1.0" encoding="UTF-8"?>' + text


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_re_encoded_signed_package_verifies_as_the_same(
    form: str, signed: str, trust_store: TrustStore, tmp_path: Path
) -> None:
    original = xmldsig.verify_package(signed.encode(), trust_store, legacy_policy="refuse")
    verified = xmldsig.verify_package(FORMS[form](signed), trust_store, legacy_policy="refuse")
    assert verified.signed
    assert verified.data == original.data
    result = check_package(verified.data)
    assert result.ok and result.package == check_package(original.data).package

"""X.509 name comparison without preparing the same strings again and again.

asn1crypto compares names (issuer of a certificate against a signature's issuer-and-serial,
the ESS signing-certificate attribute, path building) by RFC 4518 string preparation of every
attribute value, a pure-Python pass over each character through :mod:`stringprep`, repeated
for every freshly parsed certificate: about half the CPU of checking a PDF signature whose
certificates carry Vietnamese names. The preparation is a pure function of the string, so
:func:`install` keeps its results (strings up to :data:`MAX_LENGTH` characters, at most
:data:`MAX_ENTRIES` of them); a string it refuses (prohibited characters) raises every time,
exactly as before. Names still compare by the prepared values asn1crypto computes; this module
must not change what is equal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from asn1crypto import x509 as asn1_x509

MAX_LENGTH = 512
MAX_ENTRIES = 8192

_original: Callable[[Any, str], str] = asn1_x509.NameTypeAndValue._ldap_string_prep
_prepared: dict[str, str] = {}
_lock = threading.Lock()


def prepare(self: Any, string: str) -> str:
    """``NameTypeAndValue._ldap_string_prep``, remembered per string."""
    found = _prepared.get(string)
    if found is not None:
        return found
    result = _original(self, string)
    if len(string) <= MAX_LENGTH:
        with _lock:
            if len(_prepared) >= MAX_ENTRIES:
                _prepared.clear()
            _prepared[string] = result
    return result


def install() -> None:
    """Use :func:`prepare` for asn1crypto's name values (once per process)."""
    with _lock:
        asn1_x509.NameTypeAndValue._ldap_string_prep = prepare


def original() -> Callable[[Any, str], str]:
    """asn1crypto's own preparation (for tests comparing both)."""
    return _original

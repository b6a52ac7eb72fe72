"""X.509 name comparison without preparing the same strings again and again.

asn1crypto compares names (issuer of a certificate against a signature's issuer-and-serial,
the ESS signing-certificate attribute, path building) by RFC 4518 string preparation of every
attribute value, a pure-Python pass over each character through :mod:`stringprep`, repeated
for every freshly parsed certificate: about half the CPU of checking a PDF signature whose
certificates carry Vietnamese names. The preparation is a pure function of the string, and a
comparison of two names a pure function of their two encodings, so :func:`install` keeps
both results (bounded sizes, at most :data:`MAX_ENTRIES` each); a string or name asn1crypto
refuses (prohibited characters) raises every time, exactly as before. Names still compare by
the prepared values asn1crypto computes; this module must not change what is equal.
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


_original_eq: Callable[[Any, Any], bool] = asn1_x509.Name.__eq__
_compared: dict[tuple[bytes, bytes], bool] = {}


def names_equal(self: Any, other: Any) -> bool:
    """``Name.__eq__``, remembered per pair of encodings (a pure function of the two DER
    values); a comparison that raises raises every time."""
    if not isinstance(other, asn1_x509.Name):
        return False
    key = (self.dump(), other.dump())
    found = _compared.get(key)
    if found is None:
        found = bool(_original_eq(self, other))
        if len(key[0]) + len(key[1]) <= 2 * MAX_LENGTH * 8:
            with _lock:
                if len(_compared) >= MAX_ENTRIES:
                    _compared.clear()
                _compared[key] = found
    return found


_original_hashable: Callable[[Any], str] = asn1_x509.Name.hashable.fget
_hashables: dict[bytes, str] = {}


def name_key(self: Any) -> str:
    """``Name.hashable`` (the prepared form certificate stores index subjects by), remembered
    per encoding; a name that cannot be prepared raises every time."""
    der = self.dump()
    found = _hashables.get(der)
    if found is None:
        found = _original_hashable(self)
        if len(der) <= MAX_LENGTH * 8:
            with _lock:
                if len(_hashables) >= MAX_ENTRIES:
                    _hashables.clear()
                _hashables[der] = found
    return found


def install() -> None:
    """Use :func:`prepare`, :func:`names_equal` and :func:`name_key` in asn1crypto (once per
    process)."""
    with _lock:
        asn1_x509.NameTypeAndValue._ldap_string_prep = prepare
        asn1_x509.Name.__eq__ = names_equal
        asn1_x509.Name.hashable = property(name_key)


def original() -> Callable[[Any, str], str]:
    """asn1crypto's own preparation (for tests comparing both)."""
    return _original


def original_equal() -> Callable[[Any, Any], bool]:
    """asn1crypto's own name comparison (for tests comparing both)."""
    return _original_eq


def original_key() -> Callable[[Any], str]:
    """asn1crypto's own ``Name.hashable`` (for tests comparing both)."""
    return _original_hashable

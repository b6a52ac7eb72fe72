"""Certificate-path verdicts kept until a CRL, a trusted certificate or the clock says otherwise.

Every signature checked on a document (three PDF signatures, the package signature, and the
outbound check of the personal signature) used to build and validate its signer's path from
scratch: path building, the CA signatures, the CRLs' signatures and entries. For the same
certificate against the same trust store that verdict does not change until

* the CRLs change (a new CRL file: :meth:`TrustStore.refresh_crls` reads it), or the trust
  anchors or helper CA certificates change (a store built from other files): both are part of
  the key, so a new store or a new CRL set never sees an older verdict;
* a certificate of the path expires, a CRL reaches its ``nextUpdate`` (hard-fail would then
  refuse as stale) or a CRL not yet in force at the time of the verdict comes into force: the
  verdict's window closes at the earliest of these, and at :data:`MAX_AGE` in any case.

Only successes of contexts made by :meth:`TrustStore.validation_context` for *now* (no explicit
moment, no fetching of revocation information, no PKIX parameters) are kept, keyed by the
SHA-256 of the whole leaf certificate: a verdict is never used for another certificate, not
even one with the same issuer, serial or subject, and only where every intermediate of its
path is at hand again (given by the signer or in the trust folder). Failures are never kept
(they are rare and must give their precise reason every time). Key usage, certificate kind
and every signature-level check still run on every signature.

:func:`install` puts :func:`find_valid_path` in place of pyhanko-certvalidator's function of the
same name where pyHanko and the certificate validator call it; contexts not registered here go
straight to the original. This module must not decide trust itself: every verdict it keeps was
reached by pyhanko-certvalidator.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyhanko_certvalidator
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.validation import generic_cms
from pyhanko_certvalidator import ValidationContext

MAX_AGE = 600.0  # seconds: a kept verdict is validated again from scratch at least this often
MAX_ENTRIES = 4096

_original = pyhanko_certvalidator.find_valid_path
_lock = threading.Lock()
_contexts: weakref.WeakKeyDictionary[ValidationContext, _Basis] = weakref.WeakKeyDictionary()
_verdicts: dict[tuple[bytes, bytes], _Verdict] = {}
stats = {"hits": 0, "misses": 0}


@dataclass(frozen=True)
class _Basis:
    """What a context's verdicts rest on: its fingerprint and its CRLs' times."""

    fingerprint: bytes
    crl_times: tuple[tuple[dt.datetime, dt.datetime | None], ...]  # (thisUpdate, nextUpdate)


@dataclass(frozen=True)
class _Verdict:
    path: Any  # pyhanko_certvalidator.path.ValidationPath
    valid_from: dt.datetime
    valid_until: dt.datetime
    expires: float  # time.monotonic() deadline (MAX_AGE)


def fingerprint(anchors: Iterable[x509.Certificate], helpers: Iterable[x509.Certificate],
                crls: Iterable[bytes], revocation_mode: str) -> bytes:
    """A digest of everything a verdict depends on in a trust store."""
    digest = hashlib.sha256(revocation_mode.encode())
    for label, ders in ((b"anchor", (c.public_bytes(serialization.Encoding.DER) for c in anchors)),
                        (b"helper", (c.public_bytes(serialization.Encoding.DER) for c in helpers)),
                        (b"crl", crls)):
        for der in ders:
            digest.update(label + len(der).to_bytes(8, "big") + hashlib.sha256(der).digest())
    return digest.digest()


def _crl_times(crls: Sequence[bytes]) -> tuple[tuple[dt.datetime, dt.datetime | None], ...]:
    times = []
    for der in crls:
        crl = x509.load_der_x509_crl(der)
        times.append((crl.last_update_utc, crl.next_update_utc))
    return tuple(times)


_times_memo: dict[bytes, tuple[tuple[dt.datetime, dt.datetime | None], ...]] = {}


def register(context: ValidationContext, key: bytes, crls: Sequence[bytes]) -> ValidationContext:
    """Let ``context`` (made for now, from a store whose fingerprint is ``key``) use verdicts."""
    install()
    with _lock:
        times = _times_memo.get(key)
        if times is None:
            times = _crl_times(crls)
            if len(_times_memo) > 64:
                _times_memo.clear()
            _times_memo[key] = times
        _contexts[context] = _Basis(key, times)
    return context


def window(path: Any, basis: _Basis, moment: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """From ``moment`` until a certificate of ``path`` expires or a CRL goes stale or starts."""
    until = moment + dt.timedelta(days=36500)
    for certificate in path.iter_certs(include_root=True):
        until = min(until, certificate.not_valid_after)
    for this_update, next_update in basis.crl_times:
        if next_update is not None:
            until = min(until, next_update)
        if this_update > moment:
            until = min(until, this_update)
    return moment, until


def _at_hand(path: Any, context: ValidationContext) -> bool:
    """Whether every intermediate of ``path`` is among this context's certificates: a verdict
    never lends a signer an intermediate it did not supply (nor the trust folder holds)."""
    registry = context.certificate_registry
    for certificate in list(path.iter_certs(include_root=False))[:-1]:
        present = registry.retrieve_by_issuer_serial(  # type: ignore[no-untyped-call]
            certificate.issuer_serial)
        if present is None or present.dump() != certificate.dump():
            return False
    return True


def forget() -> None:
    """Drop every kept verdict (tests; an operator's reload)."""
    with _lock:
        _verdicts.clear()


async def find_valid_path(
    certificate: Any,
    paths: Any,
    validation_context: ValidationContext,
    pkix_validation_params: Any = None,
) -> Any:
    """pyhanko-certvalidator's ``find_valid_path``, answered from a kept verdict when one holds."""
    with _lock:
        basis = _contexts.get(validation_context)
    if basis is None or pkix_validation_params is not None:
        return await _original(certificate, paths, validation_context, pkix_validation_params)
    key = (basis.fingerprint, hashlib.sha256(certificate.dump()).digest())
    moment = validation_context.moment
    with _lock:
        kept = _verdicts.get(key)
    if (kept is not None and kept.valid_from <= moment < kept.valid_until
            and time.monotonic() < kept.expires and _at_hand(kept.path, validation_context)):
        stats["hits"] += 1
        await paths.cancel()
        return kept.path
    stats["misses"] += 1
    path = await _original(certificate, paths, validation_context, pkix_validation_params)
    start, until = window(path, basis, moment)
    with _lock:
        if len(_verdicts) >= MAX_ENTRIES:
            _verdicts.clear()
        _verdicts[key] = _Verdict(path, start, until, time.monotonic() + MAX_AGE)
    return path


def install() -> None:
    """Route pyHanko's and the certificate validator's path validation through this cache."""
    if generic_cms.find_valid_path is not find_valid_path:  # type: ignore[attr-defined]
        pyhanko_certvalidator.find_valid_path = find_valid_path
        generic_cms.find_valid_path = find_valid_path  # type: ignore[attr-defined]

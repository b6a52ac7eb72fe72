"""At-rest encryption of the payloads the connector keeps (AES-256-GCM, rotating keys).

Keys: 32 random bytes written as base64 or hex, never in YAML. They come from a key file or
an environment variable (its *name* is configuration), in one format: one key per line,
``<key-id> <material>`` or just ``<material>`` (its id is then derived from the key, see
:func:`derive_key_id`); ``#`` starts a comment, and in a variable ``;`` also separates keys.
Keys are listed oldest first: the last one (the newest) encrypts, every one decrypts, so
rotating means appending a key and keeping the old ones until nothing sealed with them
remains. ``generate_key()`` prints new material.

Blob format (all integers big-endian)::

    b"EDCR" | version 0x01 | key-id length (1 byte) | key id (ASCII) | nonce (12) |
    ciphertext | GCM tag (16)

The header (everything before the ciphertext) is authenticated as GCM associated data together
with the caller's ``aad`` (e.g. the message id), so a blob cannot be relabelled to another key
or swapped to another record. Nonces are random; with 2^32 seals per key as the safe limit,
rotate keys long before.

Errors: an unknown key id is a ``ConfigurationError`` (``atrest_key_unknown``: a key was
removed too early); a wrong ``aad`` or an altered blob is a ``PermanentError``
(``decrypt_failed``); bytes that are not a blob, ``blob_malformed``. This module must not
decide what is stored or where.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connector.errors import ConfigurationError, PermanentError

__all__ = [
    "AtRestKey",
    "PayloadCipher",
    "derive_key_id",
    "generate_key",
    "parse_keyring",
]

MAGIC = b"EDCR"
VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_KEY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass(frozen=True)
class AtRestKey:
    """One key: a short public id (stored in each blob) and the secret."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not _KEY_ID.match(self.key_id):
            raise ConfigurationError(
                f"at-rest key id {self.key_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ : -",
                reason="atrest_key_invalid")
        if len(self.secret) != KEY_BYTES:
            raise ConfigurationError(
                f"at-rest key {self.key_id} is {len(self.secret)} bytes; AES-256 needs "
                f"{KEY_BYTES}", reason="atrest_key_invalid")


def derive_key_id(secret: bytes) -> str:
    """A stable id for a key given without one (a one-way fingerprint, not the key)."""
    return "k" + hashlib.sha256(b"edoc-connector at-rest key id\x00" + secret).hexdigest()[:12]


def generate_key() -> str:
    """New key material, base64 (for an operator's key file or variable)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _decode_material(text: str, where: str) -> bytes:
    compact = "".join(text.split())
    if re.fullmatch(r"[0-9A-Fa-f]{64}", compact):
        return bytes.fromhex(compact)
    try:
        decoded = base64.b64decode(compact.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"{where}: key material is neither base64 nor hex", reason="atrest_key_invalid"
        ) from None
    if len(decoded) != KEY_BYTES:
        raise ConfigurationError(
            f"{where}: key material decodes to {len(decoded)} bytes, {KEY_BYTES} are needed "
            "(base64 or 64 hex digits)", reason="atrest_key_invalid")
    return decoded


def parse_keyring(text: str, where: str) -> list[AtRestKey]:
    """Keys from the keyring text format of the module docstring (oldest first)."""
    keys: list[AtRestKey] = []
    entries = (part for line in text.splitlines() for part in line.split(";"))
    for number, raw in enumerate(entries, start=1):
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        fields = entry.split()
        if len(fields) == 1:
            secret = _decode_material(fields[0], f"{where}, entry {number}")
            keys.append(AtRestKey(derive_key_id(secret), secret))
        elif len(fields) == 2:
            secret = _decode_material(fields[1], f"{where}, entry {number}")
            keys.append(AtRestKey(fields[0], secret))
        else:
            raise ConfigurationError(f"{where}, entry {number}: expected '<key-id> <material>' "
                                     "or '<material>'", reason="atrest_key_invalid")
    return keys


class PayloadCipher:
    """Seals and opens stored payloads; the newest key seals, any loaded key opens."""

    def __init__(self, keys: Sequence[AtRestKey]) -> None:
        if not keys:
            raise ConfigurationError("at-rest encryption needs at least one key",
                                     reason="atrest_key_missing")
        by_id: dict[str, AtRestKey] = {}
        for key in keys:
            known = by_id.get(key.key_id)
            if known is not None and known.secret != key.secret:
                raise ConfigurationError(f"at-rest key id {key.key_id} is given twice with "
                                         "different material", reason="atrest_key_invalid")
            by_id[key.key_id] = key
        self._ciphers = {key_id: AESGCM(key.secret) for key_id, key in by_id.items()}
        self.active_key_id = keys[-1].key_id
        self._active_header_prefix = (MAGIC + bytes([VERSION, len(self.active_key_id)])
                                      + self.active_key_id.encode("ascii"))

    @classmethod
    def from_sources(
        cls, *, key_file: str | Path | None = None, key_env: str | None = None
    ) -> PayloadCipher:
        """Keys from a keyring file and/or the variable named ``key_env`` (file keys first)."""
        keys: list[AtRestKey] = []
        if key_file is not None:
            path = Path(key_file)
            try:
                text = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"cannot read at-rest key file {path}: {exc}",
                                         reason="atrest_key_missing") from exc
            keys.extend(parse_keyring(text, f"at-rest key file {path}"))
        if key_env is not None:
            value = os.environ.get(key_env)
            if not value:
                raise ConfigurationError(f"environment variable {key_env} (at-rest keys) is not "
                                         "set", reason="atrest_key_missing")
            keys.extend(parse_keyring(value, f"environment variable {key_env}"))
        return cls(keys)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._ciphers)

    def seal(self, data: bytes, *, aad: bytes = b"") -> bytes:
        """Encrypt ``data`` with the newest key; ``aad`` must be given again to open."""
        header = self._active_header_prefix + os.urandom(NONCE_BYTES)
        nonce = header[-NONCE_BYTES:]
        sealed = self._ciphers[self.active_key_id].encrypt(nonce, data, header + aad)
        return header + sealed

    def open(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        """Decrypt a blob made by :meth:`seal` (with any loaded key)."""
        key_id, header_length = self._parse_header(blob)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ConfigurationError(
                f"stored payload was sealed with at-rest key {key_id!r}, which is not loaded "
                f"(loaded: {', '.join(self._ciphers)}); restore that key to read it",
                reason="atrest_key_unknown")
        header = blob[:header_length]
        try:
            plaintext: bytes = cipher.decrypt(header[-NONCE_BYTES:], blob[header_length:],
                                              header + aad)
        except InvalidTag:
            raise PermanentError(
                f"stored payload (key {key_id}) failed authentication: it was altered or "
                "belongs to another record (associated data differs)", reason="decrypt_failed",
            ) from None
        return plaintext

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        """The id of the key a blob was sealed with (for rotation jobs)."""
        return PayloadCipher._parse_header(blob)[0]

    @staticmethod
    def _parse_header(blob: bytes) -> tuple[str, int]:
        if len(blob) < len(MAGIC) + 2 or not blob.startswith(MAGIC):
            raise PermanentError("not an at-rest encrypted blob (magic EDCR missing)",
                                 reason="blob_malformed")
        version, id_length = blob[4], blob[5]
        if version != VERSION:
            raise PermanentError(f"at-rest blob version {version} is not supported",
                                 reason="blob_malformed")
        header_length = 6 + id_length + NONCE_BYTES
        if id_length == 0 or len(blob) < header_length + TAG_BYTES:
            raise PermanentError("at-rest blob is truncated", reason="blob_malformed")
        try:
            key_id = blob[6:6 + id_length].decode("ascii")
        except UnicodeDecodeError:
            raise PermanentError("at-rest blob key id is not ASCII",
                                 reason="blob_malformed") from None
        return key_id, header_length

    def reseal(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        """Re-encrypt a blob with the newest key (a no-op copy if it already uses it)."""
        if self.key_id_of(blob) == self.active_key_id:
            return blob
        return self.seal(self.open(blob, aad=aad), aad=aad)

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connector.store.sqlite import SqliteStore


class FakeClock:
    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class AesGcmTestCipher:
    """A real AEAD with AAD, standing in for connector.trust.atrest in these tests."""

    def __init__(self) -> None:
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def seal(self, data: bytes, *, aad: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, aad)

    def open(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        return self._aead.decrypt(blob[:12], blob[12:], aad)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cipher() -> AesGcmTestCipher:
    return AesGcmTestCipher()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "store.sqlite"


@pytest.fixture
def store(store_path: Path, cipher: AesGcmTestCipher, clock: FakeClock) -> Iterator[SqliteStore]:
    instance = SqliteStore(store_path, cipher, clock=clock)
    yield instance
    instance.close()

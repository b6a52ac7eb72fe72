"""At-rest encryption: blob format, rotation, key sources and refusals."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from connector.errors import ConfigurationError, PermanentError
from connector.trust.atrest import (
    MAGIC,
    AtRestKey,
    PayloadCipher,
    derive_key_id,
    generate_key,
    parse_keyring,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))


def test_seal_open_round_trip_with_aad() -> None:
    cipher = PayloadCipher([AtRestKey("a", KEY_A)])
    blob = cipher.seal(b"package bytes", aad=b"msg-1")
    assert blob.startswith(MAGIC)
    assert b"package bytes" not in blob
    assert cipher.open(blob, aad=b"msg-1") == b"package bytes"
    assert PayloadCipher.key_id_of(blob) == "a"


def test_each_seal_uses_a_fresh_nonce() -> None:
    cipher = PayloadCipher([AtRestKey("a", KEY_A)])
    assert cipher.seal(b"same") != cipher.seal(b"same")


def test_newest_key_seals_and_old_keys_still_open() -> None:
    old = PayloadCipher([AtRestKey("2024", KEY_A)])
    old_blob = old.seal(b"kept since last year")
    rotated = PayloadCipher([AtRestKey("2024", KEY_A), AtRestKey("2025", KEY_B)])
    assert rotated.active_key_id == "2025"
    assert rotated.open(old_blob) == b"kept since last year"
    new_blob = rotated.reseal(old_blob)
    assert PayloadCipher.key_id_of(new_blob) == "2025"
    assert rotated.open(new_blob) == b"kept since last year"


def test_removed_key_is_a_configuration_error() -> None:
    blob = PayloadCipher([AtRestKey("2024", KEY_A)]).seal(b"x")
    with pytest.raises(ConfigurationError) as info:
        PayloadCipher([AtRestKey("2025", KEY_B)]).open(blob)
    assert info.value.reason == "atrest_key_unknown"
    assert "2024" in info.value.message


@pytest.mark.parametrize("position", [0, 5, 8, 30, -1])
def test_any_altered_byte_is_refused(position: int) -> None:
    cipher = PayloadCipher([AtRestKey("a", KEY_A)])
    blob = bytearray(cipher.seal(b"payload" * 10))
    blob[position] ^= 0x01
    with pytest.raises((PermanentError, ConfigurationError)) as info:
        cipher.open(bytes(blob))
    assert info.value.reason in {"decrypt_failed", "blob_malformed", "atrest_key_unknown"}


def test_wrong_aad_is_refused() -> None:
    cipher = PayloadCipher([AtRestKey("a", KEY_A)])
    blob = cipher.seal(b"x", aad=b"msg-1")
    with pytest.raises(PermanentError) as info:
        cipher.open(blob, aad=b"msg-2")
    assert info.value.reason == "decrypt_failed"


def test_not_a_blob() -> None:
    with pytest.raises(PermanentError) as info:
        PayloadCipher([AtRestKey("a", KEY_A)]).open(b"%PDF-1.7 plain")
    assert info.value.reason == "blob_malformed"


def test_keyring_text_formats() -> None:
    text = (
        "# rotated yearly\n"
        f"2024 {KEY_A.hex()}\n"
        f"{base64.b64encode(KEY_B).decode()}   # newest, id derived\n"
    )
    keys = parse_keyring(text, "test")
    assert [k.key_id for k in keys] == ["2024", derive_key_id(KEY_B)]
    assert [k.secret for k in keys] == [KEY_A, KEY_B]
    urlsafe = base64.urlsafe_b64encode(KEY_B).decode()
    assert parse_keyring(f"a {KEY_A.hex()}; b {urlsafe}", "env")[1].secret == KEY_B


@pytest.mark.parametrize("bad", ["short " + "ab" * 10, "x not-base64!!", "a b c"])
def test_bad_key_material_is_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_keyring(bad, "test")
    assert info.value.reason == "atrest_key_invalid"


def test_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "atrest.keys"
    key_file.write_text(f"old {KEY_A.hex()}\n")
    monkeypatch.setenv("TEST_ATREST_KEYS", f"new {generate_key()}")
    cipher = PayloadCipher.from_sources(key_file=key_file, key_env="TEST_ATREST_KEYS")
    assert cipher.key_ids == ("old", "new")
    assert cipher.active_key_id == "new"
    monkeypatch.delenv("TEST_ATREST_KEYS")
    with pytest.raises(ConfigurationError) as info:
        PayloadCipher.from_sources(key_env="TEST_ATREST_KEYS")
    assert info.value.reason == "atrest_key_missing"


def test_key_repr_hides_secret() -> None:
    assert KEY_A.hex() not in repr(AtRestKey("a", KEY_A))
    assert str(list(KEY_A)) not in repr(AtRestKey("a", KEY_A))

"""Secrets for hub accounts: read from an environment variable or a file, never printed.

A ``Secret`` keeps its value out of ``repr``/``str`` so that it cannot leak into logs,
exception messages or tracebacks by accident. The configuration layer decides where a
secret comes from (``${VAR}`` interpolation, a file path) and hands a ``Secret`` to the
transport. This module must not log anything.
"""

from __future__ import annotations

import os
from pathlib import Path

from connector.errors import ConfigurationError


class Secret:
    """An opaque credential. Use ``reveal()`` only where the raw value is consumed."""

    __slots__ = ("_source", "_value")

    def __init__(self, value: str | bytes, *, source: str = "inline") -> None:
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if not raw:
            raise ConfigurationError(f"the secret from {source} is empty", reason="secret_empty")
        self._value = raw
        self._source = source

    @classmethod
    def from_env(cls, name: str) -> Secret:
        value = os.environ.get(name)
        if value is None or value == "":
            raise ConfigurationError(
                f"environment variable {name} holding a secret is not set or empty",
                reason="secret_missing",
            )
        return cls(value, source=f"environment variable {name}")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Secret:
        file = Path(path)
        try:
            content = file.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the secret file {file}: {exc.strerror or exc}",
                reason="secret_missing",
            ) from None
        # A trailing newline from `echo secret > file` is not part of the secret.
        return cls(content.rstrip(b"\r\n"), source=f"file {file}")

    @property
    def source(self) -> str:
        """Where the secret came from (safe to print)."""
        return self._source

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<hidden>, source={self._source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

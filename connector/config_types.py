"""Value types shared by the configuration schema: resolved paths, names, secret references.

``ConfigPath`` resolves a relative path against the configuration file's folder (given by
the loader as validation context). ``SecretRef`` says where a secret is (an environment
variable or a file) and reads it only when asked; configuration never holds secret values.
This module must not read files or the environment except in :meth:`SecretRef.read`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

from connector.errors import ConfigurationError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ORGAN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,34}$")


def _resolve(value: Path, info: ValidationInfo) -> Path:
    value = value.expanduser()
    base = (info.context or {}).get("base_dir")
    if not value.is_absolute() and isinstance(base, Path):
        value = base / value
    return Path(os.path.normpath(value))


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            "must be the NAME of an environment variable (letters, digits, _), not its value"
        )
    return value


def _organ_id(value: str) -> str:
    if not _ORGAN_ID.match(value):
        raise ValueError(
            f"{value!r} is not an OrganId (QĐ 20/2020 form like 000.00.31.H12, ≤ 35 characters)"
        )
    return value


ConfigPath = Annotated[Path, AfterValidator(_resolve)]
EnvName = Annotated[str, AfterValidator(_env_name)]
OrganId = Annotated[str, AfterValidator(_organ_id)]
Seconds = Annotated[float, Field(gt=0)]
EncryptionPolicy = Literal["off", "when-possible", "required"]


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: an environment variable or a file. Never holds the value."""

    env: str | None = None
    file: Path | None = None

    @property
    def given(self) -> bool:
        return self.env is not None or self.file is not None

    def describe(self) -> str:
        if self.env is not None:
            return f"environment variable {self.env}"
        return f"file {self.file}" if self.file is not None else "nowhere"

    def problem(self) -> str | None:
        """Why the secret cannot be read now, or ``None`` (used by ``connector check``)."""
        try:
            self.read()
        except ConfigurationError as exc:
            return exc.message
        return None

    def read(self) -> bytes:
        """The secret's bytes (a file's trailing line break removed). Never log the result."""
        if self.env is not None:
            value = os.environ.get(self.env, "")
            if not value:
                raise ConfigurationError(
                    f"environment variable {self.env} is not set or empty", reason="secret_missing"
                )
            return value.encode("utf-8")
        if self.file is not None:
            try:
                data = self.file.read_bytes().rstrip(b"\r\n")
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read secret file {self.file}: {exc.strerror}", reason="secret_missing"
                ) from None
            if not data:
                raise ConfigurationError(
                    f"secret file {self.file} is empty", reason="secret_missing"
                )
            return data
        raise ConfigurationError("no secret source configured", reason="secret_missing")


def one_of(env: str | None, file: Path | None, what: str, *, required: bool) -> SecretRef:
    if env is not None and file is not None:
        raise ValueError(f"give {what}_env or {what}_file, not both")
    if required and env is None and file is None:
        raise ValueError(f"give {what}_env (an environment variable) or {what}_file (a file)")
    return SecretRef(env, file)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

"""Loading a connector's YAML configuration: interpolation, validation, every problem at once.

``load_config(path)`` reads one YAML file, replaces ``${VAR}`` and ``${VAR:default}`` in
string values from the environment (``$${`` writes a literal ``${``), validates the result
against :mod:`connector.config_schema`, resolves relative paths against the file's folder,
and raises :class:`InvalidConfiguration` listing every problem found (file, line, key path,
what is expected) instead of stopping at the first. Secret values are refused wherever they
appear (keys such as ``password`` or ``secret``, PEM blocks, passwords in URLs): the file
names an environment variable or a file instead.

``check_paths(config)`` lists what is missing on disk or in the environment right now (key
files, trust folder, secrets); ``connector check`` uses it. This module must not start
components or load keys.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from connector.config_schema import Config, KeyConfig
from connector.config_types import SecretRef
from connector.edxml.inputfile import InputFileError, read_package_file
from connector.errors import ConfigurationError
from connector.yamlguard import MAX_YAML_BYTES, YamlTooComplex, check_yaml

__all__ = [
    "Config",
    "ConfigProblem",
    "InvalidConfiguration",
    "SecretRef",
    "check_paths",
    "load_config",
    "parse_config",
    "require_paths",
]

KeyPath = tuple[str | int, ...]

_VARIABLE = re.compile(r"\$\$\{|\$\{([^}:]*)(?::([^}]*))?\}")
# Keys that would hold a secret value. Secrets live in the environment or in files.
_SECRET_KEYS = frozenset(
    {
        "secret",
        "password",
        "passphrase",
        "token",
        "api_key",
        "apikey",
        "client_secret",
        "private_key",
        "key_password",
        "at_rest_key",
        "authorization",
        "hmac_secret",
    }
)
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----")


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    key: str  # dotted key path, "(top)" for the document itself
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}"


class InvalidConfiguration(ConfigurationError):
    """The configuration has problems; ``problems`` lists every one of them."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        count = len(problems)
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"{source}: {count} configuration problem{'s' if count != 1 else ''}:\n{lines}",
            reason="config_invalid",
            stage="config",
        )
        self.problems = problems


def _plain(exc: Exception) -> str:
    """The reader's message without its hint about package files."""
    return str(exc).split(" (name the package files", 1)[0]


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate the configuration file at ``path``."""
    file = Path(path)
    try:
        # Looks before it opens: a folder, FIFO or device gets an exact message, never a hang.
        text = read_package_file(str(file), max_bytes=MAX_YAML_BYTES).decode("utf-8")
    except InputFileError as exc:
        raise ConfigurationError(
            f"cannot read the configuration file: {_plain(exc)}", reason="config_unreadable"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigurationError(
            f"cannot read the configuration file {file}: {reason}", reason="config_unreadable"
        ) from None
    return parse_config(text, source=str(file), base_dir=file.resolve().parent, environ=environ)


def parse_config(
    text: str, *, source: str, base_dir: Path, environ: Mapping[str, str] | None = None
) -> Config:
    """Validate configuration text; relative paths resolve against ``base_dir``."""
    env = os.environ if environ is None else environ
    problems: list[ConfigProblem] = []
    try:
        check_yaml(text)  # depth and alias expansion bounded before anything recurses
    except YamlTooComplex as exc:
        raise InvalidConfiguration(
            source, [ConfigProblem(source, exc.line, "(top)", f"refused: the YAML {exc}")]
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        detail = getattr(exc, "problem", None) or str(exc)
        raise InvalidConfiguration(
            source, [ConfigProblem(source, line, "(top)", f"not valid YAML: {detail}")]
        ) from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _index_lines(node, (), lines, problems, source)
    if not isinstance(data, dict):
        problems.append(ConfigProblem(source, 1, "(top)", "expected a mapping of sections"))
        raise InvalidConfiguration(source, problems)

    def report(key: KeyPath, message: str) -> None:
        problems.append(ConfigProblem(source, _line_of(key, lines), _dotted(key), message))

    broken: set[KeyPath] = set()
    data = _interpolate(data, (), env, report, broken)
    _refuse_inline_secrets(data, (), report, broken)
    try:
        config = Config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        for error in exc.errors():
            key = tuple(error["loc"])
            if any(key[: len(b)] == b for b in broken):
                continue  # already reported as an interpolation problem
            report(key, _explain(error, key))
        config = None
    if problems or config is None:
        problems.sort(key=lambda p: (p.line or 0, p.key))
        raise InvalidConfiguration(source, problems)
    config._source = Path(source)
    config._lines = {_dotted(key): line for key, line in lines.items()}
    return config


def _index_lines(
    node: yaml.Node,
    key: KeyPath,
    lines: dict[KeyPath, int],
    problems: list[ConfigProblem],
    source: str,
) -> None:
    """Line of every key path, and duplicate keys (which YAML loaders silently merge)."""
    lines.setdefault(key, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            name = str(key_node.value)
            if name in seen:
                problems.append(
                    ConfigProblem(
                        source,
                        key_node.start_mark.line + 1,
                        _dotted((*key, name)),
                        "this key appears twice",
                    )
                )
            seen.add(name)
            lines[(*key, name)] = key_node.start_mark.line + 1
            _index_lines(value_node, (*key, name), lines, problems, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*key, index), lines, problems, source)


def _line_of(key: KeyPath, lines: Mapping[KeyPath, int]) -> int | None:
    for end in range(len(key), -1, -1):
        if key[:end] in lines:
            return lines[key[:end]]
    return None


def _dotted(key: KeyPath) -> str:
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top)"


def _interpolate(
    value: object,
    key: KeyPath,
    env: Mapping[str, str],
    report: typing.Callable[[KeyPath, str], None],
    broken: set[KeyPath],
) -> object:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*key, str(k)), env, report, broken) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*key, i), env, report, broken) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            report(key, f"{match.group(0)!r}: {name!r} is not an environment variable name")
            broken.add(key)
            return match.group(0)
        found = env.get(name, "")
        if found:
            return found
        if default is not None:
            return default
        report(
            key,
            f"environment variable {name} is not set (write ${{{name}:default}} to give a default)",
        )
        broken.add(key)
        return match.group(0)

    if "${" in re.sub(r"\$\{[^}]*\}", "", value.replace("$${", "")):
        report(key, "unclosed ${ in the value (write $${ for a literal ${)")
        broken.add(key)
        return value
    return _VARIABLE.sub(substitute, value)


def _refuse_inline_secrets(
    value: object,
    key: KeyPath,
    report: typing.Callable[[KeyPath, str], None],
    broken: set[KeyPath],
) -> None:
    if isinstance(value, dict):
        for name, item in value.items():
            if str(name).lower() in _SECRET_KEYS:
                broken.add((*key, str(name)))
                report(
                    (*key, str(name)),
                    "secret values are never written in the configuration: "
                    f"use {name}_env (an environment variable) or {name}_file (a file "
                    "readable only by the connector)",
                )
            else:
                _refuse_inline_secrets(item, (*key, str(name)), report, broken)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_inline_secrets(item, (*key, index), report, broken)
    elif isinstance(value, str) and _PEM.search(value):
        broken.add(key)
        report(
            key,
            "key or certificate material does not belong in the configuration: "
            "give the path of a file",
        )


def _explain(error: Mapping[str, typing.Any], key: KeyPath) -> str:
    kind, message = error["type"], str(error["msg"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        known = _fields_at(key[:-1])
        hint = ""
        if known:
            close = difflib.get_close_matches(str(key[-1]), known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (known keys: {', '.join(known)})"
        return f"unknown key{hint}"
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        message += f", got {error.get('input')!r}"
    return message


def _fields_at(key: KeyPath) -> list[str]:
    """Field names of the section model at ``key`` (for "did you mean" hints)."""
    model: type[BaseModel] | None = Config
    for part in key:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


# -- what must exist on disk / in the environment ------------------------------------------


def _files(config: Config) -> Iterator[tuple[str, Path | None, str]]:
    """``(key, path, kind)`` for every configured path; kind: file, dir, creatable (a folder
    the connector makes if missing)."""
    yield "agency.directory", config.agency.directory, "file"
    yield "mappings.dir", config.mappings.dir, "dir"
    yield "store.path", config.store.path.parent if config.store.path else None, "creatable"
    yield "store.at_rest_key_file", config.store.at_rest_key_file, "file"
    yield "trust.trust_dir", config.trust.trust_dir, "dir"
    yield "trust.crl_dir", config.trust.crl_dir, "dir"
    yield "trust.pdf.outbound.stamp.font_file", config.trust.pdf.outbound.stamp.font_file, "file"
    for organ_id, peer in config.trust.sender_binding.peers.items():
        for index, pinned in enumerate(peer.pinned_certificates):
            where = f"trust.sender_binding.peers.{organ_id}.pinned_certificates[{index}]"
            yield where, pinned, "file"
    keys: list[tuple[str, KeyConfig | None]] = [
        ("trust.seal", config.trust.seal),
        ("trust.xml_signer", config.trust.xml_signer),
        ("encryption.decryption_key", config.encryption.decryption_key),
    ]
    for where, key in keys:
        if key is not None:
            yield f"{where}.key", key.key, "file"
            yield f"{where}.cert", key.cert, "file"
            if key.pkcs11 is not None:
                yield f"{where}.pkcs11.module", key.pkcs11.module, "file"
                yield f"{where}.pkcs11.cert_file", key.pkcs11.cert_file, "file"
            for index, chain in enumerate(key.chain):
                yield f"{where}.chain[{index}]", chain, "file"
    for organ_id, path in config.encryption.certificates.items():
        yield f"encryption.certificates.{organ_id}", path, "file"
    yield "encryption.certificates_dir", config.encryption.certificates_dir, "dir"
    tls = config.hub.tls
    yield "hub.tls.ca_file", tls.ca_file, "file"
    yield "hub.tls.client_cert", tls.client_cert, "file"
    yield "hub.tls.client_key", tls.client_key, "file"
    if config.local.type == "spool" and config.local.spool is not None:
        yield "local.spool.root", config.local.spool.root, "creatable"
    if config.local.type == "amqp" and config.local.amqp is not None:
        amqp = config.local.amqp
        yield "local.amqp.tls_ca_file", amqp.tls_ca_file, "file"
        yield "local.amqp.tls_cert_file", amqp.tls_cert_file, "file"
        yield "local.amqp.tls_key_file", amqp.tls_key_file, "file"
        yield "local.amqp.claim_check_dir", amqp.claim_check_dir, "creatable"


def _secrets(config: Config) -> Iterator[tuple[str, SecretRef]]:
    yield "hub.secret", config.hub.secret
    yield "hub.tls.client_key_password", config.hub.tls.client_key_password
    yield "store.at_rest_key", SecretRef(env=config.store.at_rest_key_env)
    yield "store.dsn", config.store.dsn_secret
    for where, key in (
        ("trust.seal", config.trust.seal),
        ("trust.xml_signer", config.trust.xml_signer),
        ("encryption.decryption_key", config.encryption.decryption_key),
    ):
        if key is not None:
            yield f"{where}.password", key.password
            if key.pkcs11 is not None:
                yield f"{where}.pkcs11.pin", key.pkcs11.pin
    if config.local.type == "amqp" and config.local.amqp is not None:
        yield "local.amqp.password", config.local.amqp.password


def check_paths(config: Config) -> list[ConfigProblem]:
    """What is missing now: files, folders, secrets. An empty list means all present."""
    source = str(config.source or "configuration")
    problems: list[ConfigProblem] = []
    for key, path, kind in _files(config):
        problem = _path_problem(path, kind) if path is not None else None
        if path is None or problem is None:
            continue
        if "pki" in path.parts:
            problem += " (the demo PKI is made by `connector pki init DIR`)"
        problems.append(ConfigProblem(source, config.line_of(key), key, problem))
    encryption = config.encryption
    for organ_id, policy in encryption.destinations.items():
        if policy == "required" and encryption.certificate_for(organ_id) is None:
            key = f"encryption.destinations.{organ_id}"
            problems.append(
                ConfigProblem(
                    source,
                    config.line_of(key),
                    key,
                    "encryption is required but no certificate is configured for this OrganId "
                    "(encryption.certificates or <OrganId>.pem in encryption.certificates_dir)",
                )
            )
    for key, ref in _secrets(config):
        missing = ref.problem() if ref.given else None
        if missing is not None:
            written = f"{key}_env" if ref.env is not None else f"{key}_file"
            problems.append(ConfigProblem(source, config.line_of(written), written, missing))
    return problems


def _path_problem(path: Path, kind: str) -> str | None:
    if kind == "file" and not path.is_file():
        return f"file {path} does not exist" if not path.exists() else f"{path} is not a file"
    if kind == "dir" and not path.is_dir():
        return f"folder {path} does not exist"
    if kind == "creatable":
        return _not_creatable(path)
    return None


def _not_creatable(folder: Path) -> str | None:
    """Why the connector could not create ``folder`` (or use it), or ``None``."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot create folder {folder}: {existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "folder" if existing == folder else f"folder {folder}: {existing}"
        return f"cannot write in {what} (no permission)"
    return None


def require_paths(config: Config) -> None:
    """Raise :class:`InvalidConfiguration` listing everything :func:`check_paths` finds."""
    problems = check_paths(config)
    if problems:
        raise InvalidConfiguration(str(config.source or "configuration"), problems)

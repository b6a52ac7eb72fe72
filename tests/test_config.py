"""Connector configuration: interpolation, every problem at once, paths, secrets."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from connector.config import (
    InvalidConfiguration,
    check_paths,
    load_config,
    parse_config,
    require_paths,
)
from connector.config_types import SecretRef
from connector.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """\
agency:
  organ_id: "000.00.31.H12"
  name: "Sở Nội vụ tỉnh Cà Mau (demo)"
local:
  type: spool
  spool:
    root: spool
hub:
  endpoint: http://127.0.0.1:8780
  systemid: vxp.agency-a
  secret_env: HUB_SECRET
store:
  path: state/store.sqlite
  at_rest_key_file: keys/at-rest.keys
mappings:
  dir: mappings
  default: qlvb-json
trust:
  seal:
    key: pki/seal.key
    cert: pki/seal.pem
  trust_dir: pki/trust
"""


def write(folder: Path, text: str, name: str = "connector.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(InvalidConfiguration) as caught:
        parse_config(text, source="c.yaml", base_dir=Path("/etc/c"), environ=environ or {})
    assert caught.value.reason == "config_invalid"
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("name", ["connector.yaml", "connector-b.yaml", "connector.example.yaml"])
def test_shipped_configurations_are_valid(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("CONNECTOR_VAR", "CONNECTOR_PKI", "CONNECTOR_HUB_URL"):
        monkeypatch.delenv(variable, raising=False)
    config = load_config(REPO / "config" / name)
    assert config.source == REPO / "config" / name
    assert config.store.path.is_absolute()
    assert config.trust.seal.key.is_absolute()


def test_demo_agencies_on_the_embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("CONNECTOR_VAR", "CONNECTOR_PKI", "CONNECTOR_HUB_URL"):
        monkeypatch.delenv(variable, raising=False)
    a = load_config(REPO / "config" / "connector.yaml", environ={})
    b = load_config(REPO / "config" / "connector-b.yaml", environ={})
    assert (a.agency.organ_id, b.agency.organ_id) == ("000.00.31.H12", "000.00.32.H12")
    assert a.agency.name == "Sở Nội vụ tỉnh Cà Mau (demo)"
    assert b.agency.name == "Sở Tài chính tỉnh Cà Mau (demo)"
    assert a.local.type == b.local.type == "spool"
    assert a.hub.endpoint == b.hub.endpoint == "http://127.0.0.1:8780"
    assert a.store.path == REPO / "var" / "demo" / "agency-a" / "store.sqlite"
    assert a.trust.seal.key == REPO / "var/pki/agencies/000.00.31.H12/seal.key"
    assert b.encryption.certificate_for("000.00.31.H12") == (
        REPO / "var/pki/agencies/000.00.31.H12/encryption.pem"
    )
    assert a.metrics.port != b.metrics.port
    assert a.local.spool is not None and b.local.spool is not None
    assert a.local.spool.root != b.local.spool.root
    assert a.local.spool.folder("failed") == REPO / "var/demo/agency-a/spool/failed"
    assert a.xml_signer == a.trust.seal

    moved = load_config(
        REPO / "config" / "connector.yaml",
        environ={"CONNECTOR_VAR": "/tmp/run-1", "CONNECTOR_A_METRICS_PORT": "19464"},
    )
    assert moved.store.path == Path("/tmp/run-1/demo/agency-a/store.sqlite")
    assert moved.metrics.port == 19464


def test_production_example_uses_amqp_https_and_secret_references() -> None:
    config = load_config(REPO / "config" / "connector.example.yaml", environ={})
    assert config.local.type == "amqp" and config.local.amqp is not None
    assert config.local.amqp.password == SecretRef(file=Path("/run/secrets/edoc-amqp-password"))
    assert config.local.amqp.settings_overrides()["prefetch"] == 32
    assert config.hub.endpoint.startswith("https://")
    assert config.hub.secret == SecretRef(env="EDOC_HUB_SECRET")
    assert config.encryption.policy_for("000.00.32.H12") == "required"
    assert config.encryption.policy_for("000.00.99.H12") == "when-possible"
    assert config.hub.zip_attachments.for_peer("000.00.32.H12") is False
    assert config.hub.zip_attachments.for_peer("000.00.00.G22") is True
    assert config.deadlines.next_morning_until == dt.time(12, 0)
    assert config.deadlines.public_holidays  # Tết etc. from the holidays package
    assert dt.date(2027, 2, 20) in config.deadlines.working_days  # a swapped Saturday


def test_interpolation() -> None:
    text = MINIMAL.replace(
        "endpoint: http://127.0.0.1:8780",
        "endpoint: http://${HUB_HOST:127.0.0.1}:${HUB_PORT}/vxp",
    ).replace("default: qlvb-json", "default: ${MAPPING:qlvb-json}")
    text += "metrics:\n  port: ${METRICS_PORT:9100}\n  host: '$${not-a-variable}'\n"
    config = parse_config(
        text, source="c.yaml", base_dir=Path("/etc/c"), environ={"HUB_PORT": "9000", "MAPPING": ""}
    )
    assert config.hub.endpoint == "http://127.0.0.1:9000/vxp"
    assert config.mappings.default == "qlvb-json"  # empty counts as unset
    assert config.metrics.port == 9100  # interpolated text still validated as an integer
    assert config.metrics.host == "${not-a-variable}"


def test_interpolation_problems_name_the_key_and_line() -> None:
    text = MINIMAL.replace("systemid: vxp.agency-a", "systemid: ${HUB_ACCOUNT}")
    text = text.replace("default: qlvb-json", "default: ${MAPPING")
    text = text.replace("root: spool", "root: ${1BAD}")
    problems = problems_of(text)
    assert problems == [
        "c.yaml:7: local.spool.root: '${1BAD}': '1BAD' is not an environment variable name",
        "c.yaml:10: hub.systemid: environment variable HUB_ACCOUNT is not set (write "
        "${HUB_ACCOUNT:default} to give a default)",
        "c.yaml:17: mappings.default: unclosed ${ in the value (write $${ for a literal ${)",
    ]


def test_every_problem_is_reported_at_once() -> None:
    text = """\
agency:
  organ_id: "not an organ id"
  name: ""
local:
  type: amqp
hub:
  endpoint: ftp://hub.example
  systemid: vxp.a
  secret_env: HUB_SECRET
  timeouts: { connect: -1 }
  max_conections: 3
store:
  path: store.sqlite
mappings:
  dir: mappings
trust:
  seal:
    key: seal.key
  trust_dir: trust
retry:
  max_attempts: many
  base_delay: 10
  max_delay: 5
"""
    problems = problems_of(text)
    joined = "\n".join(problems)
    expected = [
        "c.yaml:2: agency.organ_id: 'not an organ id' is not an OrganId",
        "c.yaml:3: agency.name: String should have at least 1 character",
        "c.yaml:4: local: local.type is amqp: the local.amqp section is missing",
        "c.yaml:7: hub.endpoint: expected an http:// or https:// URL with a host",
        "c.yaml:10: hub.timeouts.connect: Input should be greater than 0",
        "c.yaml:11: hub.max_conections: unknown key (did you mean max_connections?)",
        "c.yaml:12: store: payloads are encrypted at rest: give at_rest_key_file or "
        "at_rest_key_env",
        "c.yaml:14: mappings.default: required key is missing",
        "c.yaml:17: trust.seal: cert is required unless key is a PKCS#12 file",
        "c.yaml:21: retry.max_attempts: Input should be a valid integer, unable to parse string "
        "as an integer, got 'many'",
    ]
    for fragment in expected:
        assert fragment in joined, f"missing {fragment!r} in:\n{joined}"
    assert len(problems) == len(expected)
    assert all(p.startswith("c.yaml:") for p in problems)


def test_relative_paths_resolve_against_the_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "connector"
    folder.mkdir(parents=True)
    path = write(folder, MINIMAL + "encryption:\n  certificates_dir: ../peers\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(path.relative_to(tmp_path), environ={})
    assert config.store.path == folder / "state" / "store.sqlite"
    assert config.trust.trust_dir == folder / "pki" / "trust"
    assert config.encryption.certificates_dir == tmp_path / "etc" / "peers"
    assert config.local.spool is not None and config.local.spool.root == folder / "spool"


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (("secret_env: HUB_SECRET", "secret: s3cr3t"), "hub.secret: secret values are never"),
        (("secret_env: HUB_SECRET", "secret_env: 's3cr3t!value'"), "NAME of an environment"),
        (
            ("secret_env: HUB_SECRET", "secret_env: HUB_SECRET\n  secret_file: secret.txt"),
            "give secret_env or secret_file, not both",
        ),
        (("secret_env: HUB_SECRET", "tls: {}"), "give secret_env (an environment variable)"),
        (
            ("cert: pki/seal.pem", "cert: pki/seal.pem\n    password: hunter2"),
            "trust.seal.password",
        ),
        (
            ("endpoint: http://127.0.0.1:8780", "endpoint: https://user:pw@hub.example"),
            "credentials do not belong in the URL",
        ),
        (
            ("key: pki/seal.key", "key: '-----BEGIN " + "PRIVATE KEY-----\\nMIIB'"),
            "key or certificate material does not belong",
        ),
    ],
)
def test_secret_values_are_refused(edit: tuple[str, str], fragment: str) -> None:
    problems = problems_of(MINIMAL.replace(*edit))
    assert any(fragment in p for p in problems), problems
    assert len(problems) == 1, problems  # reported once, not again as an unknown key


def test_amqp_password_never_in_the_url() -> None:
    text = MINIMAL.replace(
        "  type: spool", "  type: amqp\n  amqp:\n    url: amqp://edoc:pa55@mq.example:5672//"
    )
    [problem] = problems_of(text)
    assert "local.amqp.url" in problem and "password_env or password_file" in problem
    ok = MINIMAL.replace(
        "  type: spool",
        "  type: amqp\n  amqp:\n    url: amqp://edoc@mq.example:5672//\n"
        "    password_env: AMQP_PASSWORD\n    prefetch: 16\n    topology: {prefix: test.}",
    )
    config = parse_config(ok, source="c.yaml", base_dir=Path("/"), environ={})
    assert config.local.amqp is not None
    assert config.local.amqp.settings_overrides() == {
        "url": "amqp://edoc@mq.example:5672//",
        "prefetch": 16,
    }
    assert config.local.amqp.topology.prefix == "test."


def test_plain_http_only_to_loopback() -> None:
    text = MINIMAL.replace("http://127.0.0.1:8780", "http://lgsp.example.gov.vn/vxp")
    [problem] = problems_of(text)
    assert "plain http to lgsp.example.gov.vn" in problem
    allowed = text.replace("  systemid:", "  allow_plain_http: true\n  systemid:")
    parse_config(allowed, source="c.yaml", base_dir=Path("/"), environ={})
    for host in ("localhost", "[::1]", "127.0.0.2"):
        parse_config(
            MINIMAL.replace("127.0.0.1:8780", host), source="c", base_dir=Path("/"), environ={}
        )


def test_yaml_problems() -> None:
    [syntax] = problems_of(MINIMAL + "extra: [unclosed\n")
    assert syntax.startswith("c.yaml:") and "not valid YAML" in syntax
    duplicated = MINIMAL.replace("  systemid: vxp.agency-a", "  systemid: a\n  systemid: b")
    [twice] = problems_of(duplicated)
    assert twice == "c.yaml:11: hub.systemid: this key appears twice"
    [top] = problems_of("- just\n- a list\n")
    assert "expected a mapping of sections" in top
    unquoted = MINIMAL + "deadlines:\n  next_morning_until: 12:00\n"
    [time_problem] = problems_of(unquoted)
    assert "write the time in quotes" in time_problem


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(tmp_path / "missing.yaml")
    assert caught.value.reason == "config_unreadable"
    assert "missing.yaml" in caught.value.message


def test_configuration_is_immutable() -> None:
    config = parse_config(MINIMAL, source="c.yaml", base_dir=Path("/etc/c"), environ={})
    with pytest.raises(ValidationError):
        config.hub.systemid = "other"


def make_deployment(folder: Path) -> Path:
    for sub in ("mappings", "pki/trust", "state"):
        (folder / sub).mkdir(parents=True)
    for name in ("pki/seal.key", "pki/seal.pem"):
        (folder / name).write_text("placeholder")
    (folder / "keys").mkdir()
    (folder / "keys/at-rest.keys").write_text("k1 " + "A" * 44 + "\n")
    return write(folder, MINIMAL)


def test_check_paths_lists_everything_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_deployment(tmp_path)
    monkeypatch.setenv("HUB_SECRET", "shared-hmac-secret")
    config = load_config(path)
    assert check_paths(config) == []
    require_paths(config)

    monkeypatch.delenv("HUB_SECRET")
    (tmp_path / "pki/seal.pem").unlink()
    (tmp_path / "mappings").rmdir()
    problems = [str(p) for p in check_paths(config)]
    assert problems == [
        f"{path}:16: mappings.dir: folder {tmp_path / 'mappings'} does not exist",
        f"{path}:21: trust.seal.cert: file {tmp_path / 'pki/seal.pem'} does not exist (the demo "
        "PKI is made by `connector pki init DIR`)",
        f"{path}:11: hub.secret_env: environment variable HUB_SECRET is not set or empty",
    ]
    with pytest.raises(InvalidConfiguration) as caught:
        require_paths(config)
    assert len(caught.value.problems) == 3
    assert "shared-hmac-secret" not in caught.value.message


def test_secret_refs_read_env_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(b"from-a-file\n")
    assert SecretRef(file=secret_file).read() == b"from-a-file"
    monkeypatch.setenv("SOME_SECRET", "from-env")
    assert SecretRef(env="SOME_SECRET").read() == b"from-env"
    assert SecretRef(env="SOME_SECRET").describe() == "environment variable SOME_SECRET"
    secret_file.write_bytes(b"\n")
    assert "is empty" in (SecretRef(file=secret_file).problem() or "")
    assert "cannot read" in (SecretRef(file=tmp_path / "none").problem() or "")


def test_required_encryption_needs_a_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_SECRET", "x")
    path = make_deployment(tmp_path)
    peers = tmp_path / "peers"
    peers.mkdir()
    (peers / "000.00.32.H12.pem").write_text("placeholder")
    path.write_text(
        MINIMAL + "encryption:\n  certificates_dir: peers\n  destinations:\n"
        '    "000.00.32.H12": required\n    "000.00.33.H12": required\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.encryption.certificate_for("000.00.32.H12") == peers / "000.00.32.H12.pem"
    [problem] = check_paths(config)
    assert problem.key == "encryption.destinations.000.00.33.H12"
    assert "no certificate" in problem.message and problem.line == 27

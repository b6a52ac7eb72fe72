"""The container and the agency stack, checked without a container engine.

The Dockerfile and deploy/compose.yaml are parsed; every path, port and variable they name
is compared with the code and with config/connector.example.yaml (the production example
the container is built for), so the three cannot drift apart unnoticed.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from connector import cli
from connector.config import load_config

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
EXAMPLE = REPO / "config" / "connector.example.yaml"
# Written by the dashboard's owner; the stack only refers to it by path.
PROVIDED_ELSEWHERE = {DEPLOY / "grafana" / "dashboard.json"}
# Agency-provided (keys, certificates, secrets): never in the repository.
AGENCY_PROVIDED = {DEPLOY / "agency", DEPLOY / "agency" / "tls", DEPLOY / "secrets"}
# Debian packages -> the folder their files land in (the image's only system packages).
PACKAGE_FILES = {"fonts-cantarell": "/usr/share/fonts/opentype/cantarell/"}
STANDARD_VARIABLES = {"PYTHONUNBUFFERED"}
TEST_TOOLS = ("pytest", "hypothesis", "xmlsec1", "poppler-utils", "ruff", "mypy", "[test")


# --- parsing ---------------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    found = []
    for line in logical:
        word, _, rest = line.partition(" ")
        found.append((word.upper(), rest.strip()))
    return found


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions:
        if instruction[0] == "FROM":
            result.append([])
        result[-1].append(instruction)
    return result


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    found = {}
    for word, rest in stage:
        if word == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                found[name] = value
    return found


def example_strings(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, value) of every string of the example configuration, recursively."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from example_strings(v, str(k))
    elif isinstance(node, list):
        for item in node:
            yield from example_strings(item, key)
    elif isinstance(node, str):
        yield key, node


def code_text() -> str:
    return "\n".join(p.read_text("utf-8") for p in (REPO / "connector").rglob("*.py"))


def read_by_code(name: str, code: str) -> bool:
    return f'"{name}"' in code or f"'{name}'" in code


def under(path: str, folders: list[str]) -> bool:
    return any(PurePosixPath(path).is_relative_to(folder) for folder in folders)


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def example_paths(example: dict[str, Any]) -> list[str]:
    return sorted({v for _, v in example_strings(example) if v.startswith("/")})


@pytest.fixture(scope="module")
def example_env(example: dict[str, Any]) -> set[str]:
    return {v for k, v in example_strings(example) if k.endswith("_env")}


@pytest.fixture(scope="module")
def runtime_stage() -> list[tuple[str, str]]:
    return stages(dockerfile_instructions(REPO / "Dockerfile"))[-1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    return loaded


# --- the example the container is built for ---------------------------------------------------


def test_example_configuration_loads_and_listens_on_every_interface() -> None:
    config = load_config(EXAMPLE, environ={})
    assert config.metrics.enabled and config.metrics.host == "0.0.0.0"


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_non_root_and_installs_the_wheel(
    runtime_stage: list[tuple[str, str]],
) -> None:
    everything = dockerfile_instructions(REPO / "Dockerfile")
    assert len(stages(everything)) >= 2, "multi-stage: the build tools stay in the build stage"
    users = [rest for word, rest in runtime_stage if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(rest for word, rest in everything if word == "RUN")
    assert not re.search(r"pip install[^&]*(\s-e\s|--editable)", runs), "never editable"
    final_runs = " ".join(rest for word, rest in runtime_stage if word == "RUN")
    assert "--no-index" in final_runs and "edoc-connector" in final_runs  # from the wheels
    for tool in TEST_TOOLS:
        assert tool not in " ".join(r for _, r in everything), f"{tool}: a test-only tool"
    for word, rest in everything:
        if word == "COPY" and "--from" not in rest:
            for source in shlex.split(rest)[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"


def test_dockerfile_ports_and_probe_match_the_example(
    runtime_stage: list[tuple[str, str]], example: dict[str, Any]
) -> None:
    port = str(example["metrics"]["port"])
    exposed = [rest for word, rest in runtime_stage if word == "EXPOSE"]
    assert exposed == [port]
    checks = [rest for word, rest in runtime_stage if word == "HEALTHCHECK"]
    assert len(checks) == 1
    assert f"127.0.0.1:{port}/livez" in checks[0], "the container probe is the liveness probe"


def test_dockerfile_paths_are_the_example_paths(
    runtime_stage: list[tuple[str, str]], example: dict[str, Any], example_paths: list[str]
) -> None:
    env = env_of(runtime_stage)
    config_file = PurePosixPath(env["CONNECTOR_CONFIG"])
    assert config_file.parent == PurePosixPath(example["agency"]["directory"]).parent
    volumes = [v for word, rest in runtime_stage if word == "VOLUME" for v in yaml.safe_load(rest)]
    state = [
        example["store"]["path"], example["trust"]["crl_dir"],
        example["local"]["amqp"]["claim_check_dir"],
    ]
    for path in state:  # written at run time: on a volume, created for the connector's user
        assert under(path, volumes), f"{path}: not on a volume of the image"
    created = " ".join(rest for word, rest in runtime_stage if word == "RUN")
    for path in (str(PurePosixPath(example["store"]["path"]).parent), example["trust"]["crl_dir"],
                 example["local"]["amqp"]["claim_check_dir"]):
        assert path in created, f"{path}: not created (owned by the connector) in the image"
    system = [p for p in example_paths if p.startswith("/usr/")]
    installed = [
        folder for package, folder in PACKAGE_FILES.items() if package in created
    ]
    for path in system:
        assert under(path, installed), f"{path}: no package of the image provides it"


def test_dockerfile_variables_are_read_by_the_code(runtime_stage: list[tuple[str, str]]) -> None:
    code = code_text()
    env = env_of(runtime_stage)
    assert env["CONNECTOR_CONFIG"] and cli.CONFIG_ENV == "CONNECTOR_CONFIG"
    assert env["CONNECTOR_LOG_FORMAT"] in ("text", "json")
    for name in env:
        assert name in STANDARD_VARIABLES or read_by_code(name, code), f"{name}: nothing reads it"


def test_default_command_runs_on_the_configured_file(runtime_stage: list[tuple[str, str]]) -> None:
    entry = [yaml.safe_load(rest) for word, rest in runtime_stage if word == "ENTRYPOINT"]
    command = [yaml.safe_load(rest) for word, rest in runtime_stage if word == "CMD"]
    assert entry == [["connector"]] and command == [["run"]]  # --config from CONNECTOR_CONFIG


def test_every_subcommand_with_a_config_reads_connector_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECTOR_CONFIG", "/etc/edoc-connector/connector.yaml")
    with_config = []
    for name, (module_name, _) in cli.COMMANDS.items():
        parser = argparse.ArgumentParser()
        try:
            importlib.import_module(module_name).configure(parser)
        except ImportError as exc:  # an optional dependency of one command
            pytest.skip(f"{name}: {exc}")
        if not any("--config" in a.option_strings for a in parser._actions):
            continue
        with_config.append(name)
        monkeypatch.setattr("sys.argv", ["connector", name])
        top = cli.build_parser()
        sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
        chosen = sub.choices[name]
        action = next(a for a in chosen._actions if "--config" in a.option_strings)
        assert not action.required, name
        assert action.default == "/etc/edoc-connector/connector.yaml", name
    assert {"run", "check"} <= set(with_config)


# --- deploy/compose.yaml ----------------------------------------------------------------------


def test_the_stack_has_every_service(compose: dict[str, Any]) -> None:
    assert {"connector", "rabbitmq", "postgres", "prometheus", "grafana"} <= set(compose["services"])
    build = compose["services"]["connector"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == REPO / "Dockerfile"


def test_connector_service_matches_the_example(
    compose: dict[str, Any], example: dict[str, Any], example_paths: list[str],
    example_env: set[str], runtime_stage: list[tuple[str, str]],
) -> None:
    service = compose["services"]["connector"]
    port = example["metrics"]["port"]
    assert [p.rsplit(":", 1)[-1] for p in service["ports"]] == [str(port)]
    assert f"127.0.0.1:{port}/livez" in " ".join(service["healthcheck"]["test"])

    mounts = [v.split(":")[1] for v in service["volumes"]]
    secrets = [f"/run/secrets/{name}" for name in service["secrets"]]
    for path in example_paths:
        if path.startswith("/usr/"):
            continue  # from the image (test above)
        assert under(path, mounts + secrets), f"{path}: not mounted into the connector"
    env = service["environment"]
    assert PurePosixPath(env["CONNECTOR_CONFIG"]).parent.as_posix() in mounts
    assert env["CONNECTOR_CONFIG"] == env_of(runtime_stage)["CONNECTOR_CONFIG"]
    code = code_text()
    for name in env:
        assert name in example_env or read_by_code(name, code), f"{name}: nothing reads it"
    assert example_env <= set(env), f"variables the example names: {sorted(example_env)}"
    declared = set(compose["secrets"])
    assert set(service["secrets"]) <= declared


def test_broker_service_matches_the_example_url(
    compose: dict[str, Any], example: dict[str, Any]
) -> None:
    url = urlsplit(example["local"]["amqp"]["url"])
    broker = compose["services"]["rabbitmq"]
    assert any(p.endswith(f":{url.port}") for p in broker["ports"])
    assert broker["environment"]["RABBITMQ_DEFAULT_USER"] == url.username
    assert broker["environment"]["RABBITMQ_DEFAULT_VHOST"] == url.path.strip("/")
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text("utf-8")
    assert f"listeners.ssl.default = {url.port}" in conf
    ca = PurePosixPath(example["local"]["amqp"]["tls_ca_file"]).name
    assert f"/etc/rabbitmq/tls/{ca}" in conf  # the CA the connector trusts signs the broker


def test_prometheus_scrapes_the_connector_with_the_alert_rules(
    compose: dict[str, Any], example: dict[str, Any]
) -> None:
    prometheus = compose["services"]["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
    assert mounts["../config/alerts.yml"] in yaml.safe_load(
        (DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8")
    )["rule_files"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8"))
    job = scrape["scrape_configs"][0]
    assert job["static_configs"][0]["targets"] == [f"connector:{example['metrics']['port']}"]
    alerts = (REPO / "config" / "alerts.yml").read_text("utf-8")
    assert f'job="{job["job_name"]}"' in alerts


def test_every_host_path_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                continue  # a named volume
            path = (DEPLOY / source).resolve()
            if path in PROVIDED_ELSEWHERE and not path.exists():
                continue
            if any(path == p or path.is_relative_to(p) for p in AGENCY_PROVIDED):
                continue
            assert path.exists(), f"{name}: {source} does not exist"
    for name, secret in compose["secrets"].items():
        if "file" in secret:
            assert (DEPLOY / secret["file"]).resolve().is_relative_to(DEPLOY / "secrets"), name


def test_every_interpolated_variable_is_listed_in_env_example() -> None:
    text = (DEPLOY / "compose.yaml").read_text("utf-8")
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    used |= set(re.findall(r"environment: ([A-Z_][A-Z0-9_]*)", text))  # secrets from variables
    listed = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", (DEPLOY / "env.example").read_text("utf-8"),
                            re.MULTILINE))
    assert used == listed

"""``connector check``: read-only; every problem of every phase at once, sorted by file and
line, each with the line that caused it; exit 2 for an invalid configuration (as ``run``);
what it would run with; ``--online`` names the root cause of each dependency failure."""

from __future__ import annotations

import argparse
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.daemon import cmd_check
from tests.e2e.harness import A_ID, B_ID, CONFIG_A, ROOT, World, derive_config
from tests.e2e.inprocess import daemon_pki, world  # noqa: F401

ENV_NAMES = ("CONNECTOR_VAR", "CONNECTOR_PKI", "CONNECTOR_HUB_URL")


@pytest.fixture
def env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:  # noqa: F811
    for name in ENV_NAMES:
        monkeypatch.setenv(name, world.env[name])
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    return world


def _check(
    config: Path, capsys: pytest.CaptureFixture[str], *, online: bool = False
) -> tuple[int, str, str]:
    code = cmd_check.run(argparse.Namespace(config=str(config), online=online))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _line(config: Path, fragment: str) -> int:
    return next(
        n for n, text in enumerate(config.read_text("utf-8").splitlines(), 1) if fragment in text
    )


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def test_shipped_configuration_checks_ok_and_says_what_it_would_run_with(
    env: World, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files_under(env.tmp)
    code, out, err = _check(CONFIG_A, capsys)
    assert code == 0, err
    assert f"agency: {A_ID} (Sở Nội vụ tỉnh Cà Mau (demo))" in out
    assert "hub: vxp http://127.0.0.1:" in out and "(account vxp.agency-a, secret from file" in out
    assert f"local: spool folder {env.var}/demo/agency-a/spool" in out
    assert "does not exist yet: created at the first run" in out
    assert "metrics: http://127.0.0.1:" in out and "metrics: off" not in out
    for label in ("seal", "encryption", f"peer_encryption {B_ID}", "trust_anchor root.pem"):
        assert f"certificate {label}: " in out and "notAfter 20" in out, label
    assert "crl intermediate.crl: " in out and "next update" in out
    assert out.rstrip().endswith(f"{CONFIG_A}: OK")
    # Read-only: no store, no spool folders, no lock file were created.
    assert _files_under(env.tmp) == before


def test_missing_secret_file_is_named_with_its_key_and_line(
    env: World, capsys: pytest.CaptureFixture[str]
) -> None:
    (env.a.home / "hub.secret").unlink()
    code, _, err = _check(CONFIG_A, capsys)
    assert code == 2
    assert f"{CONFIG_A}:{_line(CONFIG_A, 'secret_file:')}: hub.secret_file: " in err
    assert "hub.secret" in err


def test_every_problem_of_every_phase_at_once_sorted_by_file_and_line(
    env: World, capsys: pytest.CaptureFixture[str]
) -> None:
    mappings = env.tmp / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    broken_mapping = next(p for p in sorted(mappings.glob("*.yaml")) if "qlvb" in p.name)
    text = broken_mapping.read_text("utf-8")
    broken_mapping.write_text(text + "\nnot_a_section: 1\n", "utf-8")
    garbage = env.tmp / "seal.key"
    marker = "PRIVATE " + "KEY-----"  # split so no committed file looks like a real key
    garbage.write_text(f"-----BEGIN {marker}\nnot a key\n-----END {marker}\n")
    config = derive_config(
        CONFIG_A,
        env.tmp / "many.yaml",
        {
            "mappings": {"dir": str(mappings)},
            "trust": {"seal": {"key": str(garbage)}},
            "encryption": {"certificates": {B_ID: str(env.pki.expired.cert)}},
            "store": {"at_rest_key_file": str(env.tmp / "no-such.keys")},
        },
    )
    code, _, err = _check(config, capsys)
    assert code == 2, err
    problems = [line.strip() for line in err.splitlines() if line.startswith("  ")]
    assert any(p.startswith(f"{broken_mapping}:") and "not_a_section" in p for p in problems), err
    seal_line = _line(config, str(garbage))
    assert any(p.startswith(f"{config}:{seal_line}: trust.seal.key: cannot load") for p in problems)
    expired_line = _line(config, str(env.pki.expired.cert))
    assert any(
        p.startswith(f"{config}:{expired_line}: encryption.certificates.{B_ID}:")
        and "expired on" in p
        for p in problems
    ), err
    assert any("store.at_rest_key_file" in p and "no-such.keys" in p for p in problems)

    def order(problem: str) -> tuple[str, int]:
        file, line, _ = problem.split(":", 2)
        return file, int(line) if line.isdigit() else 0

    assert [order(p) for p in problems] == sorted(order(p) for p in problems)


def test_every_missing_file_is_reported_at_once(
    env: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_PKI", str(env.tmp / "gone" / "pki"))
    code, _, err = _check(CONFIG_A, capsys)
    assert code == 2
    for key in ("trust.trust_dir", "trust.seal.key", "trust.seal.cert", "encryption.decryption_key.key"):
        assert key in err, f"{key} not reported:\n{err}"
    assert "connector pki init" in err
    assert err.count("trust.seal.key") == 1  # one cause, one problem


def test_invalid_configuration_exits_2_like_run(
    env: World, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = derive_config(CONFIG_A, env.tmp / "broken.yaml", {"retry": {"max_attemps": 3}})
    code, _, err = _check(broken, capsys)
    assert code == 2
    assert "configuration is not valid" in err
    assert "retry.max_attemps" in err and "max_attempts" in err


def test_command_line_exit_codes_and_config_from_the_environment(env: World) -> None:
    def check(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "connector", "check", *args],
            env={**env.env, **extra},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    good = check(CONFIG_A.as_posix() and "--config", str(CONFIG_A))
    assert good.returncode == 0, good.stderr
    from_env = check(CONNECTOR_CONFIG=str(CONFIG_A))
    assert from_env.returncode == 0, from_env.stderr
    bad = check("--config", str(env.tmp / "missing.yaml"))
    assert bad.returncode == 2 and "missing.yaml" in bad.stderr


# -- --online ---------------------------------------------------------------------------


def test_online_probe_passes_against_the_hub(
    env: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env.start_hub()
    monkeypatch.setenv("CONNECTOR_HUB_URL", env.env["CONNECTOR_HUB_URL"])
    code, out, err = _check(CONFIG_A, capsys, online=True)
    assert code == 0, err
    assert "online hub: OK" in out and "authenticated getAgenciesList answered" in out
    assert "online store: OK" in out


def test_online_wrong_secret_is_a_401_in_the_hubs_words(
    env: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env.start_hub()
    monkeypatch.setenv("CONNECTOR_HUB_URL", env.env["CONNECTOR_HUB_URL"])
    (env.a.home / "hub.secret").write_text("0" * 48 + "\n")
    code, _, err = _check(CONFIG_A, capsys, online=True)
    assert code == 1
    assert "online hub: FAILED" in err and "getAgenciesList" in err and "HTTP 401" in err
    assert "unauthorized" in err  # the hub's own words
    assert "hub.secret" in err  # where the secret came from


def test_online_refused_connection(
    env: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("CONNECTOR_HUB_URL", f"http://127.0.0.1:{port}")
    code, _, err = _check(CONFIG_A, capsys, online=True)
    assert code == 1
    assert f"connection refused by 127.0.0.1:{port}" in err


def test_online_unknown_host_is_a_dns_problem(
    env: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = derive_config(
        CONFIG_A,
        env.tmp / "dns.yaml",
        {"hub": {"endpoint": "https://hub.invalid:8443", "timeouts": {"connect": 2}}},
    )
    code, _, err = _check(config, capsys, online=True)
    assert code == 1
    assert "DNS: the hub host name 'hub.invalid' does not resolve" in err


@pytest.fixture
def tls_server(env: World) -> Iterator[int]:
    """A TLS server presenting agency A's seal certificate (not a public CA's)."""
    pair = env.pki.agency(A_ID).seal
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pair.cert), str(pair.key))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(10)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    thread.join(5)


def test_online_tls_verification_names_the_certificate_subject(
    env: World, capsys: pytest.CaptureFixture[str], tls_server: int
) -> None:
    config = derive_config(
        CONFIG_A, env.tmp / "tls.yaml", {"hub": {"endpoint": f"https://127.0.0.1:{tls_server}"}}
    )
    code, _, err = _check(config, capsys, online=True)
    assert code == 1
    assert "TLS verification failed" in err
    assert "Sở Nội vụ tỉnh Cà Mau (demo)" in err  # the subject the server presented


def _broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _broker_up(), reason="no RabbitMQ on 127.0.0.1:5672")
@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("guest", "logged in, but queue 'check-test.edoc.outbound': does not exist"),
        ("wrong-password", "RabbitMQ refused access"),
    ],
)
def test_online_broker_login_and_passive_declare(
    env: World,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    password: str,
    expected: str,
) -> None:
    env.start_hub()
    monkeypatch.setenv("CONNECTOR_HUB_URL", env.env["CONNECTOR_HUB_URL"])
    monkeypatch.setenv("CHECK_TEST_AMQP_PASSWORD", password)
    config = derive_config(
        CONFIG_A,
        env.tmp / "amqp.yaml",
        {
            "local": {
                "type": "amqp",
                "amqp": {
                    "url": "amqp://guest@127.0.0.1:5672//",
                    "password_env": "CHECK_TEST_AMQP_PASSWORD",
                    "topology": {"prefix": "check-test."},
                },
            }
        },
    )
    code, out, err = _check(config, capsys, online=True)
    assert code == 1, out
    assert "online broker: FAILED" in err and expected in err
    assert "online hub: OK" in out


def test_an_existing_store_is_read_without_creating_its_wal_files(
    env: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # SQLite opened with mode=ro still creates <store>-wal and <store>-shm beside a WAL
    # store (owned by whoever runs check: root's files would then block the daemon's user).
    from connector.store import open_store

    store_path = env.var / "demo" / "agency-a" / "store.sqlite"
    store_path.parent.mkdir(parents=True, exist_ok=True)
    open_store(store_path, None).close()
    assert not Path(f"{store_path}-wal").exists() and not Path(f"{store_path}-shm").exists()
    before = _files_under(env.tmp)
    _code, out, err = _check(CONFIG_A, capsys, online=True)
    assert "store: sqlite " in out and "(0 packages, schema version" in out, out + err
    assert "online store: OK" in out
    assert _files_under(env.tmp) == before


def test_online_https_to_a_plain_http_port_says_so(
    env: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # WRONG_VERSION_NUMBER is what OpenSSL says when the server answers in plain HTTP:
    # "client certificate refused?" would send the operator after the wrong file.
    plain = env.env["CONNECTOR_HUB_URL"]
    assert plain.startswith("http://")
    monkeypatch.setenv("CONNECTOR_HUB_URL", "https://" + plain.removeprefix("http://"))
    code, _, err = _check(CONFIG_A, capsys, online=True)
    assert code == 1
    assert "does not speak TLS" in err and "client certificate refused" not in err, err


def test_online_a_hub_that_never_answers_is_named_within_the_probe_bound(
    env: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hub's read timeout (60 s by default) suits a package upload, not an operator
    # waiting for check: the harmless call gets PROBE_READ_TIMEOUT at most.
    import time

    from connector.daemon import check_online

    monkeypatch.setattr(check_online, "PROBE_READ_TIMEOUT", 1.0)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)  # accepts (the kernel does), never answers
    try:
        monkeypatch.setenv("CONNECTOR_HUB_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
        started = time.monotonic()
        code, _, err = _check(CONFIG_A, capsys, online=True)
        assert time.monotonic() - started < 20
    finally:
        listener.close()
    assert code == 1
    assert "online hub: FAILED" in err and "no answer within 1 s" in err, err


def test_an_old_certificate_kept_in_the_trust_folder_is_a_warning_like_run(
    env: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # run starts with an expired certificate beside the valid root in trust_dir (nothing
    # breaks: the valid root still verifies), so check must not say "cannot start" (exit 2).
    trust = env.tmp / "trust-with-old"
    trust.mkdir()
    shutil.copy(env.pki.root_cert, trust / "root.pem")
    shutil.copy(env.pki.expired.cert, trust / "old.pem")
    config = derive_config(CONFIG_A, env.tmp / "old.yaml", {"trust": {"trust_dir": str(trust)}})
    code, _, err = _check(config, capsys)
    assert code == 0, err
    assert "warning:" in err and "old.pem" in err and "expired" in err
    (trust / "root.pem").unlink()  # nothing valid left to verify with: cannot start
    code, _, err = _check(config, capsys)
    assert code == 2 and "old.pem" in err

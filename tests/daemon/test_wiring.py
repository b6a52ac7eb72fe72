"""Wiring: every part built once from the shipped configuration, and closed again; the
worker pool's processes never outlive the daemon (a kill -9 must not leave the spool locked)."""

from __future__ import annotations

import concurrent.futures
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.config import load_config
from connector.config_schema import AmqpConfig
from connector.daemon import wiring
from connector.edxml.model import Attachment
from connector.errors import ConfigurationError, PermanentError
from connector.local.spool import SpoolFolder
from connector.trust import payload
from connector.trust.keys import load_certificate, load_private_key
from tests.e2e.harness import A_ID, B_ID, CONFIG_A, ROOT, World
from tests.e2e.inprocess import daemon_pki, world  # noqa: F401


@pytest.fixture
def shipped(world: World) -> Iterator[wiring.Runtime]:  # noqa: F811
    built = wiring.build(load_config(CONFIG_A, environ=world.env), start_metrics=False)
    yield built
    built.close()


def test_the_shipped_configuration_builds_every_part(
    world: World,  # noqa: F811
    shipped: wiring.Runtime,
) -> None:
    services = shipped.services
    assert services.agency.organ_id == A_ID
    assert services.agency.organ_name == "Sở Nội vụ tỉnh Cà Mau (demo)"
    assert isinstance(services.pool, concurrent.futures.ProcessPoolExecutor)
    assert services.timing.poll_interval == 1.0 and services.timing.sender_idle == 0.5
    assert services.retry.max_attempts == 6 and services.retry.base_delay == 1.0
    assert services.fault_hook is None
    assert wiring.describe(shipped) == {
        "agency": f"{A_ID} (Sở Nội vụ tỉnh Cà Mau (demo))",
        "metrics": "off",
    }
    # One connector per spool folder while it runs.
    with pytest.raises(ConfigurationError, match="already uses the spool"):
        SpoolFolder(world.a.spool)
    shipped.close()
    SpoolFolder(world.a.spool).close()


def test_encryption_follows_the_destination_policy(
    world: World,  # noqa: F811
    shipped: wiring.Runtime,
) -> None:
    crypto = shipped.services.crypto
    assert isinstance(crypto, wiring.EncryptionAdapter)
    plain = (
        Attachment(content_id="a1", name="a.txt", content_type="text/plain", data=b"noi dung"),
    )
    for_b = crypto.encrypt_for(plain, [B_ID])
    assert payload.is_encrypted(for_b[0]) and b"noi dung" not in for_b[0].data
    # when-possible: if one recipient has no known certificate, the package goes in clear.
    assert crypto.encrypt_for(plain, ["000.00.33.H12"]) == plain
    assert crypto.encrypt_for(plain, [B_ID, "000.00.33.H12"]) == plain
    # B opens it with its key; A keeps a way into its own archive (R11).
    pair = world.pki.agency(B_ID).encryption
    opened = payload.decrypt_attachments(
        for_b, load_private_key(pair.key), load_certificate(pair.cert)
    )
    assert [(x.name, x.data) for x in opened] == [("a.txt", b"noi dung")]
    assert [(x.name, x.data) for x in crypto.decrypt(for_b)] == [("a.txt", b"noi dung")]
    unkeyed = wiring.EncryptionAdapter(crypto.policies, crypto.certificates, crypto.trust)
    with pytest.raises(PermanentError, match="no decryption key") as refused:
        unkeyed.decrypt(for_b)
    assert refused.value.reason == "decrypt_key_missing"  # our fault: FAILED, not a 02


def test_a_missing_key_stops_the_build_naming_the_file(world: World) -> None:  # noqa: F811
    env = {**world.env, "CONNECTOR_PKI": str(world.tmp / "no-pki")}
    with pytest.raises(ConfigurationError) as failed:
        wiring.build(load_config(CONFIG_A, environ=env), start_metrics=False)
    assert "no-pki" in str(failed.value)


def test_amqp_names_get_the_prefix_unless_given_in_full() -> None:
    section = AmqpConfig.model_validate(
        {"topology": {"prefix": "snv.", "events_queue": "audit.events", "max_priority": 5}}
    )
    topology = wiring.amqp_settings(section).topology
    assert topology.outbound_queue == "snv.edoc.outbound"
    assert topology.dead_letter_queue == "snv.edoc.dead-letter"
    assert topology.events_queue == "audit.events"
    assert topology.max_priority == 5


KILLED_DAEMON = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys
    from connector.config import load_config
    from connector.daemon import wiring

    runtime = wiring.build(load_config(sys.argv[1]), start_metrics=False)
    pool = runtime.services.pool
    for future in [pool.submit(os.getpid) for _ in range(8)]:
        future.result()
    print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # ended, waiting for its new parent to reap it


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_pool_processes_end_with_a_killed_daemon_and_leave_the_spool_free(
    world: World,  # noqa: F811
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_DAEMON, str(CONFIG_A)],
        env=world.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr
    workers = [int(p) for p in done.stdout.split()]
    assert workers, f"no pool process was started: {done.stderr}"
    deadline = time.monotonic() + 15
    while not all(_gone(pid) for pid in workers):
        assert time.monotonic() < deadline, f"pool processes outlived the daemon: {workers}"
        time.sleep(0.1)
    SpoolFolder(world.a.spool).close()  # the restarted connector can take the spool


def test_a_taken_metrics_port_is_a_configuration_problem(world: World) -> None:  # noqa: F811
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**world.env, "CONNECTOR_A_METRICS_PORT": str(taken.getsockname()[1])}
        with pytest.raises(ConfigurationError) as failed:
            wiring.build(load_config(CONFIG_A, environ=env))
    assert failed.value.reason == "metrics_address"
    assert "metrics.port" in failed.value.message
    SpoolFolder(world.a.spool).close()  # what was built is closed again

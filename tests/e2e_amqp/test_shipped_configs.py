"""The shipped RabbitMQ variants of the demo agencies: the spool configurations but for ``local``.

``config/connector-amqp.yaml`` and ``config/connector-amqp-b.yaml`` are what the end-to-end
tests and the bench run (with a prefix per run); here they are only loaded, no broker needed.
"""

from __future__ import annotations

from pathlib import Path

from connector.config import load_config
from connector.daemon.wiring import amqp_settings
from connector.local.amqp_settings import AmqpTopology

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_amqp_variants_differ_from_the_demo_agencies_only_in_the_local_side() -> None:
    for spool_name, amqp_name, prefix in (
        ("connector.yaml", "connector-amqp.yaml", "demo-a."),
        ("connector-b.yaml", "connector-amqp-b.yaml", "demo-b."),
    ):
        spool = load_config(CONFIG / spool_name, environ={})
        amqp = load_config(CONFIG / amqp_name, environ={})
        assert amqp.model_dump(exclude={"local"}) == spool.model_dump(exclude={"local"})
        assert amqp.local.type == "amqp" and amqp.local.amqp is not None
        settings = amqp_settings(amqp.local.amqp)
        assert settings.topology == AmqpTopology.prefixed(prefix)
        assert settings.url == "amqp://guest@127.0.0.1:5672//"
        assert settings.password is None  # RabbitMQ's local guest account: no secret anywhere
        assert settings.connection_name == f"edoc-connector-{prefix}"
        assert settings.claim_check_dir is not None and settings.claim_check_dir.is_absolute()


def test_environment_moves_broker_prefix_and_state() -> None:
    environ = {
        "CONNECTOR_AMQP_URL": "amqps://edoc@mq.example.invalid:5671/edoc",
        "CONNECTOR_AMQP_PREFIX_A": "run-7-a.",
        "CONNECTOR_VAR": "/tmp/run-7",
    }
    config = load_config(CONFIG / "connector-amqp.yaml", environ=environ)
    assert config.local.amqp is not None
    settings = amqp_settings(config.local.amqp)
    assert settings.url == environ["CONNECTOR_AMQP_URL"]
    assert settings.topology.outbound_queue == "run-7-a.edoc.outbound"
    assert settings.topology.events_exchange == "run-7-a.edoc.events"
    assert settings.claim_check_dir == Path("/tmp/run-7/demo/agency-a/claim-check")
    assert config.store.path == Path("/tmp/run-7/demo/agency-a/store.sqlite")

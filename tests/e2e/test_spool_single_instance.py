"""The spool folder local side is single-instance: a second ``connector run`` on the same
configuration stops at start with one line saying why (and what to use for replicas), and
the first one goes on working."""

from __future__ import annotations

from dataclasses import replace

from tests.e2e.harness import World


def test_a_second_connector_on_one_spool_stops_at_start_and_says_why(world: World) -> None:
    world.start_hub()
    world.a.start()
    world.wait("A running", lambda: "running;" in world.a.log_text(), watch=[world.a])
    second = replace(world.a, name="A-second", process=None, runs=0, logs=[])
    second.home = world.tmp / "second-a"
    second.home.mkdir()
    second.start()
    code = second.wait_exit(60)
    said = second.log_text()
    assert code != 0
    assert "already uses the spool" in said and "runs as one instance only" in said, said
    assert world.a.process is not None and f"pid {world.a.process.pid}" in said
    assert "local.type: amqp" in said
    assert "Traceback" not in said
    assert world.a.running  # the first one is untouched

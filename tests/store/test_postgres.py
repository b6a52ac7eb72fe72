"""Two replicas on one PostgreSQL database: disjoint claims, leases and duties that move to
the survivor when a replica's connection ends, migrations, payloads sealed at rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from cryptography.exceptions import InvalidTag

from connector.errors import ConfigurationError, UnavailableError
from connector.store.api import LeaseLost, NewOutbound, PackageFacts, PlaintextCipherForTests
from connector.store.postgres import PostgresStore
from connector.store.postgres_schema import MIGRATIONS, SCHEMA_VERSION
from connector.store.states import OutboundState, PackageKind
from tests.store.conftest import AesGcmTestCipher

EDOC = PackageKind.EDOC
Replica = Callable[..., PostgresStore]


@pytest.fixture
def replica(pg_dsn: str, pg_schema: str, cipher: AesGcmTestCipher) -> Iterator[Replica]:
    """Opens store instances ("replicas") on one schema; all closed after the test."""
    opened: list[PostgresStore] = []

    def open_replica(**options: object) -> PostgresStore:
        options.setdefault("cipher", cipher)
        instance = PostgresStore(pg_dsn, schema=pg_schema, **options)  # type: ignore[arg-type]
        opened.append(instance)
        return instance

    yield open_replica
    for instance in opened:
        instance.close()


def eventually(check: Callable[[], object], what: str, within: float = 10.0) -> None:
    """Waits for ``check()`` to be true: the server drops a closed session's locks a moment
    after the client has closed it."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {within} s"
        time.sleep(0.02)


def sql(
    dsn: str, schema: str, text: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}") as conn:
        cursor = conn.execute(text, params)
        return cursor.fetchall() if cursor.description else []


def ready(store: PostgresStore, local_id: str, raw: bytes = b"<edXML/>", priority: int = 0) -> int:
    facts = PackageFacts(document_id=local_id, sender="A", recipients=("B",), priority=priority)
    added = store.add_outbound(
        NewOutbound(local_id, EDOC, OutboundState.READY, raw=raw, facts=facts)
    )
    return added.package.id


def test_two_replicas_claim_disjoint_packages_under_concurrency(replica: Replica) -> None:
    first, second = replica(), replica()
    expected = {ready(first if n % 2 else second, f"rec-{n}", priority=n % 4) for n in range(60)}
    claimed: dict[str, list[int]] = {"first": [], "second": []}
    barrier = threading.Barrier(6)

    def worker(name: str, store: PostgresStore) -> None:
        barrier.wait()
        while batch := store.claim(name, limit=4, lease_seconds=300):
            claimed[name].extend(p.id for p in batch)

    threads = [
        threading.Thread(target=worker, args=(name, store))
        for name, store in [("first", first), ("second", second)] * 3
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = claimed["first"] + claimed["second"]
    assert sorted(everything) == sorted(expected)  # each package claimed exactly once
    assert claimed["first"] and claimed["second"]


def test_the_same_record_taken_in_by_two_replicas_at_once_is_one_package(
    replica: Replica,
) -> None:
    stores = [replica(), replica()]
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def take_in(store: PostgresStore, local_id: str) -> None:
        barrier.wait()
        outcomes.append(store.add_outbound(NewOutbound(local_id, EDOC)).outcome.value)

    threads = [
        threading.Thread(target=take_in, args=(stores[n % 2], f"rec-{n // 4}")) for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["created"] * 2 + ["existing"] * 6


def test_a_lease_of_a_replica_whose_connection_closed_is_taken_by_the_other(
    replica: Replica,
) -> None:
    dying, survivor = replica(), replica()
    package_id = ready(dying, "rec-1")
    assert [p.id for p in dying.claim("dying", lease_seconds=3600)] == [package_id]
    assert survivor.claim("survivor") == []  # the holder lives: its lease stands
    assert survivor.release_stale_leases("survivor") == 0  # a live replica's lease is kept

    dying.close()  # its session, and the liveness lock with it, are gone
    taken: list[int] = []

    def take() -> bool:
        taken.extend(p.id for p in survivor.claim("survivor"))
        return bool(taken)

    eventually(take, "takeover")
    assert taken == [package_id]
    assert survivor.get(package_id).lease_owner == "survivor"
    survivor.mark_sent(package_id, "hub-1")


def test_release_stale_leases_frees_only_dead_replicas_leases(replica: Replica) -> None:
    dead, live, restarted = replica(), replica(), replica()
    ready(dead, "rec-1")
    ready(dead, "rec-2")
    dead.claim("dead-process", lease_seconds=3600)
    live.claim("live-process", lease_seconds=3600)
    dead.close()
    freed: list[int] = []

    def release() -> int:
        freed.append(restarted.release_stale_leases("new-process"))
        return sum(freed)

    eventually(release, "release")
    assert sum(freed) == 1
    assert [p.key for p in restarted.claim("new-process")] == ["rec-1"]
    assert restarted.claim("other") == []  # rec-2 stays with the live replica


def test_a_duty_is_held_by_one_replica_and_moves_when_its_connection_closes(
    replica: Replica,
) -> None:
    holder, standby = replica(), replica()
    assert holder.try_hold_duty("inbox-poll:A")
    assert holder.try_hold_duty("inbox-poll:A")  # asked again each round: still held
    assert not standby.try_hold_duty("inbox-poll:A")
    assert standby.try_hold_duty("retention")  # duties are independent
    assert not holder.try_hold_duty("retention")

    holder.close()
    eventually(lambda: standby.try_hold_duty("inbox-poll:A"), "the duty's move")
    assert not holder.try_hold_duty("inbox-poll:A")  # a closed store holds nothing


def test_a_duty_given_up_or_lost_with_the_session_moves(
    replica: Replica, pg_dsn: str, pg_schema: str
) -> None:
    holder, standby = replica(), replica()
    assert holder.try_hold_duty("resume")
    holder.release_duty("resume")
    assert standby.try_hold_duty("resume")  # an unlock is immediate
    assert not holder.try_hold_duty("resume")

    # The server ends the standby's session (as when its network goes): it notices at its
    # next ask, gives up, and the other replica takes over.
    assert standby._session is not None
    sql(pg_dsn, pg_schema, "SELECT pg_terminate_backend(%s)", (standby._session.info.backend_pid,))
    eventually(lambda: holder.try_hold_duty("resume"), "the duty's move")
    assert not standby.try_hold_duty("resume")


def test_a_replica_whose_session_was_cut_keeps_the_leases_nobody_took(
    replica: Replica, pg_dsn: str, pg_schema: str
) -> None:
    cut, other = replica(), replica()
    both = {ready(cut, "rec-1"), ready(cut, "rec-2")}
    assert {p.id for p in cut.claim("cut", limit=2, lease_seconds=3600)} == both
    assert cut._session is not None
    sql(pg_dsn, pg_schema, "SELECT pg_terminate_backend(%s)", (cut._session.info.backend_pid,))
    # While the session is gone its leases are free: the other replica takes one ...
    eventually(lambda: bool(other.claim("other", limit=1)), "a takeover")
    # ... and the cut replica, back with a new session, still holds the one nobody took.
    eventually(
        lambda: not cut.try_hold_duty("probe") and cut.try_hold_duty("probe"), "reconnection"
    )
    assert other.claim("other") == []
    assert sorted(str(cut.get(package_id).lease_owner) for package_id in both) == ["cut", "other"]


def test_a_replica_whose_session_was_cut_while_sending_is_fenced_off(
    replica: Replica, pg_dsn: str, pg_schema: str
) -> None:
    cut, other = replica(), replica()
    package_id = ready(cut, "rec-1")
    assert [p.id for p in cut.claim("cut", lease_seconds=3600)] == [package_id]
    assert cut._session is not None
    sql(pg_dsn, pg_schema, "SELECT pg_terminate_backend(%s)", (cut._session.info.backend_pid,))
    eventually(lambda: bool(other.claim("other", lease_seconds=3600)), "a takeover")
    # Back with a new session, the cut replica finds the package is not its own any more:
    # it does not call the hub, and a send it made meanwhile is not recorded over the holder.
    assert not cut.hold_lease(package_id, "cut", lease_seconds=60)
    with pytest.raises(LeaseLost):
        cut.mark_sent(package_id, "hub-1", owner="cut")
    assert other.hold_lease(package_id, "other", lease_seconds=60)
    assert other.mark_sent(package_id, "hub-1", owner="other").state is OutboundState.SENT


def test_a_replica_whose_session_was_cut_holds_its_lease_again_if_nobody_took_it(
    replica: Replica, pg_dsn: str, pg_schema: str
) -> None:
    cut, other = replica(), replica()
    package_id = ready(cut, "rec-1")
    cut.claim("cut", lease_seconds=3600)
    assert cut._session is not None
    sql(pg_dsn, pg_schema, "SELECT pg_terminate_backend(%s)", (cut._session.info.backend_pid,))
    # The check before the hub call vouches for the lease with the new session at once ...
    eventually(lambda: cut.hold_lease(package_id, "cut", lease_seconds=60), "a new session")
    assert other.claim("other") == []  # ... so no other replica can take it meanwhile
    assert cut.mark_sent(package_id, "hub-1", owner="cut").state is OutboundState.SENT


def test_a_killed_replica_process_loses_its_duty_and_leases(
    replica: Replica, pg_dsn: str, pg_schema: str
) -> None:
    survivor = replica(cipher=PlaintextCipherForTests())
    package_id = ready(survivor, "rec-1")
    child = textwrap.dedent(
        f"""
        import sys, time
        from connector.store.postgres import PostgresStore
        store = PostgresStore({pg_dsn!r}, None, schema={pg_schema!r})
        assert store.try_hold_duty("inbox-poll:A")
        assert store.claim("child", lease_seconds=3600)
        print("holding", flush=True)
        time.sleep(120)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "holding"
        assert not survivor.try_hold_duty("inbox-poll:A")
        assert survivor.claim("survivor") == []
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        eventually(lambda: survivor.try_hold_duty("inbox-poll:A"), "the duty's move")
        assert [p.id for p in survivor.claim("survivor")] == [package_id]
    finally:
        process.kill()
        process.wait(timeout=10)


def test_migrations_record_their_version_and_a_newer_schema_is_refused(
    replica: Replica, pg_dsn: str, pg_schema: str
) -> None:
    openers = [threading.Thread(target=replica) for _ in range(3)]  # replicas starting at once
    for thread in openers:
        thread.start()
    for thread in openers:
        thread.join(timeout=30)
    assert sql(pg_dsn, pg_schema, "SELECT version FROM schema_version ORDER BY version") == [
        (version,) for version, _ in MIGRATIONS
    ]
    replica().close()  # an up-to-date schema is left as it is
    sql(
        pg_dsn, pg_schema, "INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION + 1,)
    )
    with pytest.raises(ConfigurationError, match="newer than this connector"):
        replica()


def test_payloads_are_sealed_at_rest_and_bound_to_their_package(
    replica: Replica, pg_dsn: str, pg_schema: str
) -> None:
    store = replica()
    secret_words = b"CONTENT-THAT-MUST-NOT-BE-READABLE-IN-THE-DATABASE"
    package_id = ready(store, "rec-1", raw=secret_words)
    other_id = ready(store, "rec-2", raw=b"other")
    [(sealed,)] = sql(
        pg_dsn, pg_schema, "SELECT sealed FROM payloads WHERE package_id = %s", (package_id,)
    )
    assert isinstance(sealed, bytes) and secret_words not in sealed
    sql(
        pg_dsn,
        pg_schema,
        "UPDATE payloads SET sealed = (SELECT sealed FROM payloads WHERE package_id = %s) "
        "WHERE package_id = %s",
        (package_id, other_id),
    )
    assert store.raw(package_id) == secret_words
    with pytest.raises(InvalidTag):
        store.raw(other_id)


def test_the_event_log_is_append_only(replica: Replica, pg_dsn: str, pg_schema: str) -> None:
    ready(replica(), "rec-1")
    for statement in ("UPDATE events SET detail = 'rewritten'", "DELETE FROM events"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            sql(pg_dsn, pg_schema, statement)


def test_an_unreachable_database_is_unavailable() -> None:
    with pytest.raises(UnavailableError) as caught:
        PostgresStore("host=127.0.0.1 port=1 user=postgres dbname=test", None, connect_timeout=2)
    assert caught.value.reason == "store_unavailable"
    assert "127.0.0.1:1" in caught.value.message


def test_a_malformed_connection_string_is_a_configuration_error_that_hides_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        PostgresStore("host=db password=hunter2 nonsense", None)
    assert caught.value.reason == "store_dsn" and "hunter2" not in caught.value.message

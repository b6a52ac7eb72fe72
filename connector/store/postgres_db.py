"""PostgreSQL plumbing of the tracking store: the pool, transactions, liveness and duties.

Reads and writes take a connection from a ``psycopg_pool`` pool for one statement or one
transaction; the shared SQL (``?`` placeholders) is translated once per text. Besides the
pool, each store instance keeps one *session* connection of its own, which holds session
advisory locks: the instance's liveness lock (leases recorded with the instance's number are
lost as soon as this connection closes, e.g. when the process dies) and the singleton duties
(``try_hold_duty``). The server drops a dead client's locks at once when the process dies
and within ~30 s when its host vanishes (TCP keepalives set on the session). Database
failures become ``UnavailableError``. This module must not decide what happens to a package.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from connector.errors import ConfigurationError, UnavailableError
from connector.store.api import PayloadCipher
from connector.store.postgres_schema import LOCK_NAMESPACE, migrate
from connector.store.sql_base import DbConn, DbCursor, SqlDatabase

INSTANCE_NAMESPACE = LOCK_NAMESPACE + 1  # (namespace, instance number): an instance is alive
KEY_NAMESPACE = LOCK_NAMESPACE + 2  # (namespace, hash): writers of one idempotency key
# The server notices a vanished client host after idle + interval × count seconds.
_SESSION_KEEPALIVES = (
    "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
)
_CLIENT_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


@functools.lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """The shared SQL in psycopg's placeholder style (``?`` → ``%s``, a literal ``%`` kept)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgRow:
    """A result row readable by column name and by position, like ``sqlite3.Row``."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: Mapping[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: str | int) -> Any:
        return self._values[key if isinstance(key, int) else self._names[key]]


def pg_row(cursor: Any) -> Callable[[Sequence[Any]], PgRow]:
    """psycopg row factory making :class:`PgRow` s."""
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: PgRow(names, values)


class _Rows:
    """A read's result, fetched before its connection went back to the pool."""

    def __init__(self, rows: list[PgRow], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> PgRow | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[PgRow]:
        return self._rows


class _Transaction:
    """One write transaction's connection, speaking the shared SQL."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> DbCursor:
        cursor = self._conn.cursor(row_factory=pg_row)
        cursor.execute(pg_sql(sql), parameters)
        return cursor

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> DbCursor:
        cursor = self._conn.cursor(row_factory=pg_row)
        cursor.executemany(pg_sql(sql), parameters)
        return cursor


class _Reader:
    """Reads outside transactions: each statement on a pooled connection, autocommitted."""

    def __init__(self, pool: psycopg_pool.ConnectionPool[Any]) -> None:
        self._pool = pool

    def execute(self, sql: str, parameters: Any = (), /) -> DbCursor:
        with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=pg_row)
            cursor.execute(pg_sql(sql), parameters)
            rows = cursor.fetchall() if cursor.description is not None else []
            return _Rows(rows, cursor.rowcount)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> DbCursor:
        raise TypeError("reads do not run executemany")


def _parse(dsn: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        # libpq's message may quote the string, password included: not repeated here.
        raise ConfigurationError(
            "store: the PostgreSQL connection string is not valid (libpq keyword=value "
            "pairs or a postgresql:// URI)",
            reason="store_dsn",
        ) from None


def _key32(text: str) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresDatabase(SqlDatabase):
    """Connections, transactions and session locks on a PostgreSQL database."""

    _row_lock = " FOR UPDATE"
    _skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(
        self,
        dsn: str,
        cipher: PayloadCipher | None,
        *,
        clock: Callable[[], float] = time.time,
        pool_size: int = 4,
        schema: str | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self._cipher = cipher
        self._clock = clock
        params = _parse(dsn)
        self._where = self.where(dsn, schema)
        options = str(params.get("options") or "")
        if schema:
            options += f" -c search_path={schema}"
        base = {
            "connect_timeout": max(1, int(connect_timeout)),
            "application_name": params.get("application_name") or "edoc-connector",
            **_CLIENT_KEEPALIVES,
        }
        self._conninfo = make_conninfo(dsn, options=options.strip() or None, **base)
        self._session_conninfo = make_conninfo(
            self._conninfo, options=f"{options} {_SESSION_KEEPALIVES}".strip()
        )
        self._session_lock = threading.Lock()
        self._session: psycopg.Connection[Any] | None = None
        self._duties: set[str] = set()
        self._instance = 0
        self._duty_scope = ""
        self._closed = False
        try:
            with self._guard("open"):
                migrate(self._hold_session(), self._where)
                self._open_pool(pool_size, connect_timeout)
        except BaseException:
            self.close()
            raise

    def _open_pool(self, pool_size: int, connect_timeout: float) -> None:
        self._pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True},
            check=psycopg_pool.ConnectionPool.check_connection,
            timeout=connect_timeout,
            name="tracking-store",
            open=False,
        )
        self._pool.open(wait=True, timeout=connect_timeout)

    def describe(self) -> str:
        return self._where

    @staticmethod
    def where(dsn: str, schema: str | None) -> str:
        """The database as named in messages: never with its password."""
        params = _parse(dsn)
        host, port = params.get("host", "localhost"), params.get("port", 5432)
        name = f"postgresql://{host}:{port}/{params.get('dbname', '')}"
        return name + (f" (schema {schema})" if schema else "")

    # -- connections ---------------------------------------------------------------------
    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Database failures become ``UnavailableError`` naming the store and the operation."""
        try:
            yield
        except (psycopg.IntegrityError, psycopg.ProgrammingError):
            raise
        except psycopg.Error as exc:
            raise UnavailableError(
                f"tracking store {self._where}: {what} failed: {exc}", reason="store_unavailable"
            ) from exc

    def _conn(self) -> DbConn:
        if self._closed:
            raise UnavailableError(f"the store {self._where} is closed", reason="store_unavailable")
        return _Reader(self._pool)

    @contextmanager
    def _write(self, what: str) -> Iterator[DbConn]:
        if self._closed:
            raise UnavailableError(f"the store {self._where} is closed", reason="store_unavailable")
        with self._guard(what), self._pool.connection() as conn, conn.transaction():
            yield _Transaction(conn)

    def _insert_id(self, conn: DbConn, sql: str, params: Sequence[object]) -> int:
        return int(conn.execute(sql + " RETURNING id", params).fetchone()["id"])

    def _serialize_key(self, conn: DbConn, key: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(?, ?)", (KEY_NAMESPACE, _key32(key)))

    # -- liveness: leases of instances whose session is gone are free ---------------------
    _LIVE_INSTANCES = (
        "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND objsubid = 2 AND classid::bigint = ? AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    )

    def _lease_free(self, now: float) -> tuple[str, list[object]]:
        return (
            "(lease_until IS NULL OR lease_until <= ? OR lease_instance IS NULL OR "
            f"lease_instance NOT IN ({self._LIVE_INSTANCES}))",
            [now, INSTANCE_NAMESPACE],
        )

    def _lease_columns(self) -> dict[str, object]:
        self._hold_session()  # a lease is only as alive as the lock that vouches for it
        return {"lease_instance": self._instance}

    def _vouched_lease_columns(self) -> dict[str, object]:
        """A client learns that its session was cut only when it uses it: ask the server, so
        a lease is never vouched for by a lock that is gone."""
        with self._guard("check the session"):
            session = self._hold_session()
            try:
                with self._session_lock:
                    session.execute("SELECT 1")
            except psycopg.Error:
                self._drop_session()
        return self._lease_columns()

    def _hold_session(self) -> psycopg.Connection[Any]:
        """The session connection, reopened (with a new instance lock) if it was lost."""
        with self._session_lock:
            session = self._session
            if session is not None and not session.closed and not session.broken:
                return session
            self._duties.clear()  # a lost session lost its locks
            session = psycopg.connect(self._session_conninfo, autocommit=True)
            try:
                while True:
                    instance = secrets.randbelow(2**31 - 2) + 1
                    row = session.execute(
                        "SELECT pg_try_advisory_lock(%s, %s)", (INSTANCE_NAMESPACE, instance)
                    ).fetchone()
                    if row is not None and row[0]:
                        break
                scope = session.execute("SELECT current_schema()").fetchone()
                if self._instance:
                    # Leases taken under the lost session's number that no other replica
                    # took meanwhile are still this instance's: vouch for them again.
                    session.execute(
                        "UPDATE packages SET lease_instance = %s "
                        "WHERE lease_instance = %s AND lease_owner IS NOT NULL",
                        (instance, self._instance),
                    )
            except BaseException:
                session.close()
                raise
            self._instance = instance
            self._duty_scope = str(scope[0] if scope else "")
            self._session = session
            return session

    # -- singleton duties ----------------------------------------------------------------
    def try_hold_duty(self, name: str) -> bool:
        """Whether this instance holds the duty ``name`` (taking it if nobody does).

        Ask before each round of the duty: ``False`` means another replica does it now (or
        the database is unreachable); the duty comes free when the holder's session ends.
        """
        if self._closed:
            return False
        try:
            session = self._hold_session()
            with self._session_lock:
                if name in self._duties:
                    session.execute("SELECT 1")  # still connected: still held
                    return True
                row = session.execute(
                    "SELECT pg_try_advisory_lock(%s)", (self._duty_key(name),)
                ).fetchone()
                if row is not None and row[0]:
                    self._duties.add(name)
                    return True
                return False
        except psycopg.Error:
            self._drop_session()
            return False

    def release_duty(self, name: str) -> None:
        """Give a duty up (another replica takes it at its next ask)."""
        with self._session_lock:
            if name not in self._duties or self._session is None:
                return
            self._duties.discard(name)
            with contextlib.suppress(psycopg.Error):  # else the session went, the lock with it
                self._session.execute("SELECT pg_advisory_unlock(%s)", (self._duty_key(name),))

    def _duty_key(self, name: str) -> int:
        digest = hashlib.blake2b(f"{self._duty_scope}\0{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    def _drop_session(self) -> None:
        with self._session_lock:
            session, self._session = self._session, None
            self._duties.clear()
        if session is not None:
            session.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pool: psycopg_pool.ConnectionPool[Any] | None = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()
        self._drop_session()


def check_reachable(dsn: str, timeout: float = 3.0) -> str | None:
    """``None`` when a PostgreSQL server answers at ``dsn``, else why not (for test skips)."""
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


def probe_database(dsn: str, schema: str | None, timeout: float = 5.0) -> tuple[bool, str]:
    """``connector check --online``: whether the database answers, and what it holds."""
    where = PostgresDatabase.where(dsn, schema)
    options = f"-c search_path={schema}" if schema else None
    try:
        with psycopg.connect(
            make_conninfo(dsn, options=options, connect_timeout=max(1, int(timeout)))
        ) as conn:
            found = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
            if not (found and found[0]):
                return True, f"{where} answers; the store is created at the first run"
            row = conn.execute(
                "SELECT (SELECT MAX(version) FROM schema_version), (SELECT COUNT(*) FROM packages)"
            ).fetchone()
    except psycopg.Error as exc:
        return False, f"{where}: {str(exc).strip() or type(exc).__name__}"
    version, count = (row[0], row[1]) if row else (None, 0)
    return True, f"{where}: schema version {version}, {count} package(s)"

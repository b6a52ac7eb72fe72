"""The embedded tracking store: ``TrackingStore`` on a SQLite file in WAL mode.

The operations themselves are shared with the PostgreSQL store (``connector.store.writes``,
``connector.store.sqlite_reads``); this module puts them on SQLite. A SQLite store has one
daemon, so every singleton duty is its own. This module must not decide what the daemon
does next.
"""

from __future__ import annotations

from connector.store.sqlite_db import SqliteDatabase
from connector.store.writes import StoreWrites


class SqliteStore(StoreWrites, SqliteDatabase):
    """``TrackingStore`` on a SQLite file. Thread-safe; share one instance per process."""

    def try_hold_duty(self, name: str) -> bool:
        """Singleton duties (inbox polling, resume, retention): the only daemon holds them."""
        return True

    def release_duty(self, name: str) -> None:
        """Nothing to give up: no other daemon shares a SQLite store."""

"""The tracking store: every package in and out, its state, recipients, events and payloads.

Use :func:`open_store` (a SQLite file) or :func:`open_configured_store` (the ``store``
section: SQLite or PostgreSQL) and the :class:`~connector.store.api.TrackingStore`
protocol; the state machines are in :mod:`connector.store.states`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from connector.store.api import PayloadCipher, TrackingStore

if TYPE_CHECKING:
    from connector.config_schema import StoreConfig


def open_store(path: str | os.PathLike[str], cipher: PayloadCipher | None) -> TrackingStore:
    """The embedded SQLite store at ``path`` (created on first use).

    ``cipher`` seals payloads at rest; ``None`` opens the store for metadata only (the
    operator CLI), and reading or writing a payload then raises ``ConfigurationError``.
    """
    from connector.store.sqlite import SqliteStore

    return SqliteStore(path, cipher)


def open_configured_store(section: StoreConfig, cipher: PayloadCipher | None) -> TrackingStore:
    """The store the ``store`` section describes (SQLite file or PostgreSQL database).

    Raises ``ConfigurationError`` when the connection string cannot be read and
    ``UnavailableError`` when the database does not answer.
    """
    if section.type == "postgres":
        from connector.store.postgres import PostgresStore

        return PostgresStore(
            configured_dsn(section),
            cipher,
            pool_size=section.pool_size,
            schema=section.schema_name,
            connect_timeout=section.connect_timeout,
        )
    from connector.store.sqlite import SqliteStore

    assert section.path is not None  # the configuration requires it for sqlite
    section.path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(section.path, cipher, busy_timeout=section.busy_timeout)


def configured_dsn(section: StoreConfig) -> str:
    """The PostgreSQL connection string: ``dsn``, or read from ``dsn_env`` / ``dsn_file``.
    Never log the result (it may hold a password)."""
    if section.dsn is not None:
        return section.dsn
    return section.dsn_secret.read().decode("utf-8").strip()

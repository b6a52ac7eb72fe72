"""The tracking store: every package in and out, its state, recipients, events and payloads.

Use :func:`open_store` and the :class:`~connector.store.api.TrackingStore` protocol; the
state machines are in :mod:`connector.store.states`.
"""

from __future__ import annotations

import os

from connector.store.api import PayloadCipher, TrackingStore


def open_store(path: str | os.PathLike[str], cipher: PayloadCipher | None) -> TrackingStore:
    """The embedded SQLite store at ``path`` (created on first use).

    ``cipher`` seals payloads at rest; ``None`` opens the store for metadata only (the
    operator CLI), and reading or writing a payload then raises ``ConfigurationError``.
    """
    from connector.store.sqlite import SqliteStore

    return SqliteStore(path, cipher)

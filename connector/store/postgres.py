"""The tracking store on PostgreSQL, for several replicas of one connector.

The same operations as the SQLite store (``connector.store.writes``,
``connector.store.sqlite_reads``) on a shared database: claims skip rows another replica is
claiming (``FOR UPDATE SKIP LOCKED``), a lease is lost when the replica holding it dies (its
session lock goes with its connection), and singleton duties are held by session advisory
locks. This module must not decide what the daemon does next.
"""

from __future__ import annotations

from connector.store.postgres_db import INSTANCE_NAMESPACE, PostgresDatabase
from connector.store.writes import StoreWrites


class PostgresStore(StoreWrites, PostgresDatabase):
    """``TrackingStore`` on PostgreSQL. Thread-safe; one instance per process (replica)."""

    def release_stale_leases(self, current_owner: str) -> int:
        """Free the leases no live replica holds any more (their replica's session ended)
        and this instance's own leases of other owners (an earlier run of this process's
        store). Leases of other live replicas are kept. Returns how many were freed."""
        with self._write("release stale leases") as conn:
            cursor = conn.execute(
                "UPDATE packages SET lease_owner = NULL, lease_until = NULL, "
                "lease_instance = NULL WHERE lease_owner IS NOT NULL AND lease_owner <> ? "
                f"AND (lease_instance IS NULL OR lease_instance = ? "
                f"OR lease_instance NOT IN ({self._LIVE_INSTANCES}))",
                (current_owner, self._instance, INSTANCE_NAMESPACE),
            )
            return int(cursor.rowcount or 0)

"""Reads the tracking store into a ``StoreSnapshot`` for the scrape-time gauges.

The bridge between ``connector.metrics`` and the store: one call per scrape gathers the
package counts by state, the outbox size and the age of its oldest package, and the R6
deadline counts (late: deadline passed; at risk: deadline within the warning window).
The store is reached through the small protocol below. This module must not write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from connector.metrics import StoreSnapshot
from connector.store.states import OUTBOX_STATES

_OUTBOX_STATE_VALUES = frozenset(state.value for state in OUTBOX_STATES)


class _Enum(Protocol):
    @property
    def value(self) -> str: ...


class _StateCount(Protocol):
    @property
    def direction(self) -> _Enum: ...

    @property
    def kind(self) -> _Enum: ...

    @property
    def state(self) -> _Enum: ...

    @property
    def count(self) -> int: ...


class MetricsStore(Protocol):
    """The read-only part of the tracking store the metrics need."""

    def counts(self) -> Sequence[_StateCount]: ...

    def oldest_outbox_age(self, now: float | None = None) -> float | None: ...

    def count_past_deadline(self, now: float | None = None) -> int: ...


def store_snapshot_source(
    store: MetricsStore,
    *,
    at_risk_window: float = 2 * 3600.0,
    clock: Callable[[], float] = time.time,
) -> Callable[[], StoreSnapshot]:
    """A callback for ``ConnectorMetrics.use_store_snapshot``.

    ``at_risk_window``: seconds before an R6 deadline from which an unsent document counts
    as at risk (default two hours).
    """

    def snapshot() -> StoreSnapshot:
        now = clock()
        packages: dict[tuple[str, str, str], int] = {}
        outbox = 0
        for row in store.counts():
            key = (row.direction.value, row.kind.value, row.state.value)
            packages[key] = packages.get(key, 0) + row.count
            if row.direction.value == "out" and row.state.value in _OUTBOX_STATE_VALUES:
                outbox += row.count
        late = store.count_past_deadline(now)
        soon = store.count_past_deadline(now + at_risk_window)
        return StoreSnapshot(
            outbox_packages=outbox,
            outbox_oldest_age_seconds=store.oldest_outbox_age(now) or 0.0,
            packages=packages,
            deadline_at_risk=max(0, soon - late),
            deadline_late=late,
        )

    return snapshot

"""What the probes answer: liveness (``/livez``) and readiness (``/readyz``, alias ``/healthz``).

* Liveness: the process answers and every worker thread is alive. Dependencies never count:
  a hub or broker outage must not make an orchestrator restart a healthy daemon that is
  waiting for it.
* Readiness: every dependency the connector needs to move documents — the store, the local
  side (broker or spool folder), the hub (an authenticated call succeeded), the keys, the
  certificates in use (none past notAfter). A component that has not reported yet is
  ``unknown``, which is not ready.

Each answer is a ``Report`` whose JSON body names every component with its state and, where
useful, a detail. This module reads states (component gauges, certificate expiries,
registered checks); it must not probe dependencies over the network itself.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.metrics import ConnectorMetrics

# Certificates of other agencies: their expiry concerns documents to them, not readiness.
PEER_ROLES = ("peer_",)
TRUST_FOLDER_ROLES = ("trust_anchor ", "ca ")  # labelled "<role> <file>": trust.trust_dir


@dataclass(frozen=True)
class ComponentState:
    up: bool | None  # None: not reported yet
    detail: str = ""

    @property
    def status(self) -> str:
        return "unknown" if self.up is None else "up" if self.up else "down"

    def as_json(self) -> dict[str, str]:
        body = {"status": self.status}
        if self.detail:
            body["detail"] = self.detail
        return body


Check = Callable[[], ComponentState]


@dataclass(frozen=True)
class Report:
    components: Mapping[str, ComponentState]

    @property
    def ok(self) -> bool:
        return all(state.up is True for state in self.components.values())

    @property
    def http_status(self) -> int:
        return 200 if self.ok else 503

    def body(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "unavailable",
            "components": {
                name: state.as_json() for name, state in sorted(self.components.items())
            },
        }


class Health:
    """Liveness and readiness of one connector, read at each probe."""

    def __init__(
        self,
        metrics: ConnectorMetrics,
        *,
        required: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self._required = tuple(required)
        self._clock = clock
        self._checks: dict[str, Check] = {}
        self._workers: Callable[[], Mapping[str, bool]] | None = None
        self._lock = threading.Lock()

    def watch_workers(self, alive: Callable[[], Mapping[str, bool]]) -> None:
        """The supervisor's view: worker name -> thread alive."""
        self._workers = alive

    def add_check(self, name: str, check: Check) -> None:
        with self._lock:
            self._checks[name] = check

    def live(self) -> Report:
        workers = self._workers
        if workers is None:  # no supervisor (yet): the process answering is all we know
            return Report({"process": ComponentState(True)})
        states = {
            f"worker:{name}": ComponentState(alive, "" if alive else "thread has ended")
            for name, alive in workers().items()
        }
        return Report(states or {"process": ComponentState(True)})

    def ready(self) -> Report:
        states: dict[str, ComponentState] = {name: ComponentState(None) for name in self._required}
        for name, up in self._metrics.components().items():
            states[name] = ComponentState(up)
        with self._lock:
            checks = dict(self._checks)
        for name, check in checks.items():
            try:
                states[name] = check()
            except Exception as exc:  # a failing check is a down component, not a 500
                states[name] = ComponentState(False, f"check failed: {exc}")
        certificates = self.certificates()
        if certificates is not None:
            states["certificates"] = certificates
        return Report(states)

    def certificates(self) -> ComponentState | None:
        """Every certificate in use before its notAfter (None when none is recorded): ours,
        the chain, the hub TLS client certificate and CA, and the trust anchors (all of them
        expired; one old root beside a valid one is only named). A peer's expired
        encryption certificate is named in the detail but affects only documents to that
        peer, so it does not make the whole connector unready."""
        expiries: dict[str, float] = {}
        for role, name, not_after in self._metrics.trust().certificates:
            expiries[f"{role} {name}".strip()] = not_after
        if not expiries:
            return None
        now = self._clock()
        expired = sorted(label for label, not_after in expiries.items() if not_after <= now)
        # An old root kept beside a valid one in the trust folder is only named: verification
        # stops only when every anchor has expired.
        anchors = [label for label in expiries if label.startswith(TRUST_FOLDER_ROLES)]
        every_anchor_expired = all(label in expired for label in anchors)
        named_only = [label for label in expired if label.startswith(PEER_ROLES)
                      or (label.startswith(TRUST_FOLDER_ROLES) and not every_anchor_expired)]
        blocking = [label for label in expired if label not in named_only]
        if blocking:
            return ComponentState(False, f"expired: {', '.join(blocking)}")
        valid = {label: when for label, when in expiries.items() if when > now}
        detail = f"{len(valid)} valid"
        if valid:
            label, first = min(valid.items(), key=lambda item: item[1])
            when = dt.datetime.fromtimestamp(first, dt.UTC).date().isoformat()
            detail += f"; first to expire: {label} on {when}"
        if named_only:
            detail += f"; expired, not blocking: {', '.join(named_only)}"
        return ComponentState(True, detail)


def folder_writable(folder: Path) -> Check:
    """A check that ``folder`` exists and the connector may write into it."""

    def check() -> ComponentState:
        if not folder.is_dir():
            return ComponentState(False, f"{folder} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            return ComponentState(False, f"{folder} is not writable by this user")
        return ComponentState(True)

    return check

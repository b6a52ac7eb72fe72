"""Fault injection for the hub emulator: random faults by rate, and scripted one-shot faults.

Random faults come from ``FaultSettings`` (configured per run, replaceable at runtime);
scripted faults are queued by tests ("the next 2 sendEdoc calls are dropped after
processing") and take precedence, so a test can provoke exactly the failure it asserts.
The injector only decides; the server carries the decision out. Thread-safe.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from connector.hub.config import FaultSettings, RefusalRule

Action = Literal["error", "drop_before", "drop_after"]


@dataclass(frozen=True)
class Decision:
    """What to do with one request: wait ``delay_s``, then the ``action`` (None = serve)."""

    delay_s: float = 0.0
    action: Action | None = None
    status: int = 503


@dataclass
class _Scripted:
    call: str | None
    action: Action | None
    remaining: int
    status: int
    delay_s: float


class FaultInjector:
    def __init__(self, settings: FaultSettings) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._random = random.Random(settings.seed)
        self._scripted: deque[_Scripted] = deque()

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def replace(self, settings: FaultSettings) -> None:
        with self._lock:
            self._settings = settings
            if settings.seed is not None:
                self._random.seed(settings.seed)

    def update(self, **changes: Any) -> FaultSettings:
        """Change some settings (validated like the config file); return the new settings."""
        updated = FaultSettings.model_validate({**self._settings.model_dump(), **changes})
        self.replace(updated)
        return updated

    def script(
        self,
        action: Action | None,
        *,
        call: str | None = None,
        times: int = 1,
        status: int = 503,
        delay_s: float = 0.0,
    ) -> None:
        """Apply ``action`` (after ``delay_s``) to the next ``times`` matching requests."""
        with self._lock:
            self._scripted.append(_Scripted(call, action, times, status, delay_s))

    def clear(self) -> None:
        """Forget scripted faults and turn random faults off."""
        with self._lock:
            self._scripted.clear()
            self._settings = FaultSettings()

    def decide(self, call: str) -> Decision:
        with self._lock:
            for entry in self._scripted:
                if entry.call in (None, call):
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        self._scripted.remove(entry)
                    return Decision(entry.delay_s, entry.action, entry.status)
            s = self._settings
            if s.calls is not None and call not in s.calls:
                return Decision()
            delay = (s.latency_ms + self._random.uniform(0, s.latency_jitter_ms)) / 1000
            roll = self._random.random()
            rates: tuple[tuple[Action, float], ...] = (
                ("error", s.error_rate),
                ("drop_before", s.drop_before_rate),
                ("drop_after", s.drop_after_rate),
            )
            for action, rate in rates:
                if roll < rate:
                    return Decision(delay, action, s.error_status)
                roll -= rate
            return Decision(delay)

    def chance(self, rate_name: Literal["duplicate_list_rate", "duplicate_delivery_rate"]) -> bool:
        with self._lock:
            rate: float = getattr(self._settings, rate_name)
            return rate > 0 and self._random.random() < rate

    def refusal(self, *, document_id: str, sender: str, message_type: str) -> RefusalRule | None:
        for rule in self._settings.refuse:
            if (
                rule.document_id in (None, document_id)
                and rule.sender in (None, sender)
                and rule.message_type in (None, message_type)
            ):
                return rule
        return None

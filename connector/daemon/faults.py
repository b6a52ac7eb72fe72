"""Fault points for crash-safety tests: ``CONNECTOR_FAULT=<point>:<action>[:<n>]``.

The pipelines call ``services.fault(point)`` at the moments a crash matters (after the store
commit, after the local delivery, after the hub acknowledgement, before and after a send).
With the variable set, the n-th time (default 1st) that point is reached the action runs:
``kill`` (SIGKILL to this process: no clean-up at all, like a power cut for the process) or
``raise`` (an ``InjectedFault``, which no per-message handler catches: the worker dies as
in a crash). Unset, nothing happens. Never set in production.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

POINTS = (
    "before_store_ready",
    "after_store_ready",
    "before_send",
    "after_send",
    "after_store_received",
    "after_deliver",
    "after_ack",
)


class InjectedFault(BaseException):
    """A simulated crash: not an ``Exception``, so no per-message handler absorbs it."""


def from_environment(environ: dict[str, str] | None = None) -> Callable[[str], None] | None:
    spec = (environ if environ is not None else dict(os.environ)).get("CONNECTOR_FAULT", "")
    if not spec:
        return None
    parts = spec.split(":")
    point, action = parts[0], parts[1] if len(parts) > 1 else "kill"
    if point not in POINTS or action not in ("kill", "raise"):
        raise ValueError(
            f"CONNECTOR_FAULT={spec!r}: expected <point>:<kill|raise>[:<n>] with a "
            f"point among {', '.join(POINTS)}"
        )
    target = int(parts[2]) if len(parts) > 2 else 1
    seen = 0
    lock = threading.Lock()

    def hook(reached: str) -> None:
        nonlocal seen
        if reached != point:
            return
        with lock:
            seen += 1
            fire = seen == target
        if not fire:
            return
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise InjectedFault(f"injected fault at {reached}")

    return hook

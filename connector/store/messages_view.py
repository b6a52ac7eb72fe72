"""How ``connector messages`` shows packages: one line per package (with its recipients'
states and how long they have been so), or one JSON object per package.

This module only formats what it is given; it must not change the store.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import TextIO

from connector.store.api import TrackedPackage, TrackingStore
from connector.store.sqlite_db import when_text
from connector.store.states import Direction


def summary(package: TrackedPackage) -> dict[str, object]:
    return {
        "id": package.id,
        "direction": package.direction.value,
        "kind": package.kind.value,
        "state": package.state.value,
        "priority": package.priority,
        "attempts": package.attempts,
        "key": package.key,
        "document_id": package.document_id,
        "code": package.code,
        "status_code": package.status_code,
        "sender": package.sender,
        "hub_id": package.hub_id,
        "created": when_text(package.created_at),
        "updated": when_text(package.updated_at),
        "next_attempt": when_text(package.next_attempt_at),
        "last_error": (
            {
                "reason": package.last_error.reason,
                "message": package.last_error.message,
                "stage": package.last_error.stage,
            }
            if package.last_error
            else None
        ),
    }


def print_packages(
    store: TrackingStore,
    packages: Sequence[TrackedPackage],
    args: argparse.Namespace,
    out: TextIO,
    *,
    with_recipients: bool = False,
) -> int:
    if args.json:
        for package in packages:
            print(json.dumps(summary(package), ensure_ascii=False), file=out)
        return 0
    if not packages:
        print("no packages", file=out)
        return 0
    header = (
        f"{'ID':>5}  {'DIR':3}  {'KIND':6}  {'STATE':18}  P  {'TRY':>3}  {'UPDATED (ICT)':19}  "
    )
    print(header + "DOCUMENT / RECORD", file=out)
    for p in packages:
        what = p.document_id or p.key
        if p.kind.value == "status" and p.status_code:
            what = f"status {p.status_code} for {what}"
        line = (
            f"{p.id:>5}  {p.direction.value:3}  {p.kind.value:6}  {p.state.value:18}  "
            f"{p.priority}  {p.attempts:>3}  {when_text(p.updated_at)}  {what}"
        )
        if p.last_error:
            line += f"  [{p.last_error.reason}]"
        print(line, file=out)
        if with_recipients and p.direction is Direction.OUTBOUND:
            for r in recipient_lines(store, p):
                print(f"{'':>7}→ {r}", file=out)
    return 0


def recipient_lines(store: TrackingStore, package: TrackedPackage) -> list[str]:
    """Recipient lines of a listed package (state and how long it has been so)."""
    now = time.time()
    return [
        f"{r.organ_id} {r.state.value} for {age_text(now - r.updated_at)}"
        + (f" (status {r.status_code})" if r.status_code else "")
        for r in store.recipients(package.id)
    ]


def age_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"

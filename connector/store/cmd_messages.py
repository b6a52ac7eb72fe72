"""``connector messages``: the operator's view of the tracking store.

    connector messages list [--state S] [--direction in|out] [--limit N] [--json]
    connector messages show ID [--json] [--raw FILE]
    connector messages retry ID | --all-failed

The store is found through ``--config FILE`` (its ``store.path``; default
``config/connector.yaml`` or ``$CONNECTOR_CONFIG``) or given with ``--store PATH``. Listing,
showing and retrying read no payload, so they need no at-rest key; ``show --raw`` exports
the package as sent or received (R11) and does. It is safe to run beside a running daemon.
Exit codes: 0 done, 1 failed (unknown package, illegal retry, store problem), 2 usage.
This module must not change packages except through the store's ``retry``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from connector.config_schema import Config
from connector.errors import ConnectorError
from connector.store.api import PayloadCipher, TrackedPackage, TrackingStore
from connector.store.sqlite_db import when_text
from connector.store.states import Direction, PackageState, is_terminal, parse_state

DEFAULT_CONFIG = Path("config/connector.yaml")
_PRIORITY = {0: "Thường", 1: "Khẩn", 2: "Thượng khẩn", 3: "Hỏa tốc"}


def configure(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", metavar="FILE", help="connector configuration (its store)")
    where.add_argument("--store", metavar="PATH", help="the tracking store's SQLite file")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list packages, newest first")
    listing.add_argument("--state", help="only this state (e.g. FAILED, READY, RECEIVED)")
    listing.add_argument("--direction", choices=["in", "out"], help="inbound or outbound only")
    listing.add_argument("--limit", type=int, default=50, help="at most N packages (50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    show = actions.add_parser("show", help="timeline, recipients and last error of a package")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--raw", metavar="FILE", help="write the package as sent/received to FILE")

    retry = actions.add_parser("retry", help="send FAILED packages again (attempts reset)")
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=int, nargs="?")
    target.add_argument("--all-failed", action="store_true", help="every FAILED package")


def run(args: argparse.Namespace) -> int:
    out: TextIO = sys.stdout
    try:
        store, config = _open(args)
    except ConnectorError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    try:
        if args.action == "list":
            return _list(store, args, out)
        if args.action == "show":
            return _show(store, args, config, out)
        return _retry(store, args, out)
    except ConnectorError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _open(args: argparse.Namespace) -> tuple[TrackingStore, Config | None]:
    """The store (opened without a key) and the configuration, when one was used."""
    from connector.store.sqlite import SqliteStore

    config = None
    if args.store:
        path = Path(args.store)
    else:
        from connector.config import load_config

        config_file = Path(args.config or os.environ.get("CONNECTOR_CONFIG") or DEFAULT_CONFIG)
        config = load_config(config_file)
        path = config.store.path
    if not path.is_file():
        raise ConnectorError(f"no tracking store at {path} (has the connector run yet?)")
    return SqliteStore(path, None), config


def _states(direction: Direction | None, text: str | None) -> list[PackageState]:
    if not text:
        return []
    directions = [direction] if direction else [Direction.OUTBOUND, Direction.INBOUND]
    states, problems = [], []
    for candidate in directions:
        try:
            states.append(parse_state(candidate, text))
        except ValueError as exc:
            problems.append(str(exc))
    if not states:
        raise ValueError("; ".join(problems))
    return states


def _summary(package: TrackedPackage) -> dict[str, object]:
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


def _list(store: TrackingStore, args: argparse.Namespace, out: TextIO) -> int:
    direction = Direction(args.direction) if args.direction else None
    packages = store.find(
        direction=direction, states=_states(direction, args.state), limit=args.limit
    )
    if args.json:
        for package in packages:
            print(json.dumps(_summary(package), ensure_ascii=False), file=out)
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
    return 0


def _show(
    store: TrackingStore, args: argparse.Namespace, config: Config | None, out: TextIO
) -> int:
    package = store.get(args.id)
    recipients = store.recipients(package.id)
    events = store.events(package.id)
    if args.raw:
        _export_raw(package, config, Path(args.raw))
    if args.json:
        document = _summary(package) | {
            "recipients": [
                {
                    "organ_id": r.organ_id,
                    "state": r.state.value,
                    "status_code": r.status_code,
                    "description": r.description,
                    "updated": when_text(r.updated_at),
                }
                for r in recipients
            ],
            "events": [
                {"at": when_text(e.at), "event": e.event, "state": e.state, "detail": e.detail}
                for e in events
            ],
        }
        print(json.dumps(document, ensure_ascii=False, indent=2), file=out)
        return 0
    direction = "outbound" if package.direction is Direction.OUTBOUND else "inbound"
    print(
        f"Package #{package.id}: {direction} {package.kind.value}, {package.state.value}", file=out
    )
    rows: list[tuple[str, str | None]] = [
        ("local record" if package.direction is Direction.OUTBOUND else "key", package.key),
        ("document", package.document_id or None),
        ("code", package.code),
        ("status code", package.status_code),
        ("sender", package.sender or None),
        ("priority", f"{package.priority} ({_PRIORITY.get(package.priority, '?')})"),
        ("hub package", package.hub_id),
        (
            "attempts",
            f"{package.attempts}"
            + (
                f", next attempt {when_text(package.next_attempt_at)}"
                if not is_terminal(package.direction, package.kind, package.state)
                else ""
            ),
        ),
        (
            "lease",
            f"{package.lease_owner} until {when_text(package.lease_until)}"
            if package.lease_owner and package.lease_until
            else None,
        ),
        ("deadline", when_text(package.deadline_at) if package.deadline_at else None),
        ("content sha256", package.content_hash),
        ("related", f"#{package.related_id}" if package.related_id else None),
        ("created", when_text(package.created_at)),
    ]
    if package.last_error:
        error = package.last_error
        stage = f" (stage {error.stage})" if error.stage else ""
        rows.append(("last error", f"{error.reason}{stage}: {error.message}"))
    for label, value in rows:
        if value:
            print(f"  {label:15} {value}", file=out)
    if recipients:
        print("Recipients", file=out)
        for r in recipients:
            status = f"status {r.status_code}" if r.status_code else ""
            note = f"  {r.description}" if r.description else ""
            print(
                f"  {r.organ_id:20} {r.state.value:17} {status:10} {when_text(r.updated_at)}{note}",
                file=out,
            )
    print("Timeline (Vietnam time)", file=out)
    for e in events:
        print(f"  {when_text(e.at)}  {e.event:16} {e.state or '':18} {e.detail}", file=out)
    return 0


def _export_raw(package: TrackedPackage, config: Config | None, to: Path) -> None:
    from connector.store.sqlite import SqliteStore
    from connector.trust.atrest import PayloadCipher as AtRestCipher

    if config is None:
        raise ConnectorError("--raw needs --config (the store's at-rest key is configured there)")
    cipher: PayloadCipher = AtRestCipher.from_sources(
        key_file=config.store.at_rest_key_file, key_env=config.store.at_rest_key_env
    )
    keyed = SqliteStore(config.store.path, cipher)
    try:
        raw = keyed.raw(package.id)
    finally:
        keyed.close()
    if raw is None:
        raise ConnectorError(f"package #{package.id} has no stored package bytes yet")
    to.write_bytes(raw)
    print(f"wrote {len(raw)} bytes of package #{package.id} to {to}", file=sys.stderr)


def _retry(store: TrackingStore, args: argparse.Namespace, out: TextIO) -> int:
    actor = f"operator {os.environ.get('USER') or os.environ.get('LOGNAME') or '(unknown)'}"
    retried: Sequence[TrackedPackage]
    if args.all_failed:
        retried = store.retry_all_failed(actor=actor)
        if not retried:
            print("no FAILED packages", file=out)
    else:
        retried = [store.retry(args.id, actor=actor)]
    for package in retried:
        again = "sent" if package.direction is Direction.OUTBOUND else "processed"
        print(
            f"#{package.id}: FAILED → {package.state.value} (attempts reset; it will be "
            f"{again} again)",
            file=out,
        )
    return 0

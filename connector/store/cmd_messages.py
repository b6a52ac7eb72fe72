"""``connector messages``: the operator's view of the tracking store.

    connector messages list [--state S] [--direction in|out] [--recipient-state S]
                            [--older-than 4h] [--organ ORGANID] [--limit N] [--json]
    connector messages find TEXT [--json]   (DocumentId, record id, hub id, CodeNumber part)
    connector messages show ID [--json] [--raw FILE]
    connector messages retry ID | --all-failed

The store is found through ``--config FILE`` (its ``store.path``; default
``config/connector.yaml`` or ``$CONNECTOR_CONFIG``) or given with ``--store PATH``, before or
after the action. Listing,
showing and retrying read no payload, so they need no at-rest key; ``show --raw`` exports
the package as sent or received (R11) and does. It is safe to run beside a running daemon.
Exit codes: 0 done, 1 failed (unknown package, illegal retry, store problem), 2 usage.
This module must not change packages except through the store's ``retry``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from connector.config_schema import Config
from connector.errors import ConnectorError
from connector.store.api import PackageFilter, PayloadCipher, TrackedPackage, TrackingStore
from connector.store.messages_view import print_packages, summary
from connector.store.sqlite_db import when_text
from connector.store.states import (
    Direction,
    PackageState,
    RecipientState,
    is_terminal,
    parse_state,
)

DEFAULT_CONFIG = Path("config/connector.yaml")
_PRIORITY = {0: "Thường", 1: "Khẩn", 2: "Thượng khẩn", 3: "Hỏa tốc"}


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """``90s``, ``30m``, ``4h``, ``2d`` -> seconds (argparse type)."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 4h or 2d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _where_options(parser: argparse.ArgumentParser, *, after_action: bool) -> None:
    """``--config``/``--store``; after the action they must not reset what came before."""
    default = argparse.SUPPRESS if after_action else None
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--config", metavar="FILE", default=default, help="connector configuration (its store)"
    )
    where.add_argument(
        "--store", metavar="PATH", default=default, help="the tracking store's SQLite file"
    )


def configure(parser: argparse.ArgumentParser) -> None:
    _where_options(parser, after_action=False)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list packages, newest first")
    listing.add_argument("--state", help="only this state (e.g. FAILED, READY, RECEIVED)")
    listing.add_argument("--direction", choices=["in", "out"], help="inbound or outbound only")
    listing.add_argument(
        "--recipient-state",
        type=str.upper,
        choices=[s.value for s in RecipientState],
        metavar="STATE",
        help="with a recipient in this state (e.g. SENT: the peer has not confirmed arrival)",
    )
    listing.add_argument(
        "--older-than",
        type=duration,
        metavar="AGE",
        help="unchanged for at least AGE (30m, 4h, 2d); with --recipient-state, that "
        "recipient's state",
    )
    listing.add_argument(
        "--organ", metavar="ORGANID", help="to this recipient (or, inbound, from this sender); "
        "one of the organisations we serve: its packages, sent by it or delivered to it"
    )
    listing.add_argument("--limit", type=int, default=50, help="at most N packages (50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    _where_options(listing, after_action=True)

    find = actions.add_parser(
        "find",
        help="packages by DocumentId, record id, hub id, or part of the CodeNumber/Notation",
    )
    find.add_argument("text", help="what to look for")
    find.add_argument("--limit", type=int, default=50, help="at most N packages (50)")
    find.add_argument("--json", action="store_true", help="one JSON object per line")
    _where_options(find, after_action=True)

    show = actions.add_parser("show", help="timeline, recipients and last error of a package")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--raw", metavar="FILE", help="write the package as sent/received to FILE")
    _where_options(show, after_action=True)

    retry = actions.add_parser("retry", help="send FAILED packages again (attempts reset)")
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=int, nargs="?")
    target.add_argument("--all-failed", action="store_true", help="every FAILED package")
    _where_options(retry, after_action=True)


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
        if args.action == "find":
            return _find(store, args, out)
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
    if getattr(args, "config", None) and getattr(args, "store", None):
        raise ConnectorError("give --config or --store, not both")
    if getattr(args, "store", None):
        path = Path(args.store)
    else:
        from connector.config import load_config

        config_file = Path(args.config or os.environ.get("CONNECTOR_CONFIG") or DEFAULT_CONFIG)
        config = load_config(config_file)
        if config.store.path is None:  # a PostgreSQL store (replicas)
            from connector.store import open_configured_store

            return open_configured_store(config.store, None), config
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


def _list(store: TrackingStore, args: argparse.Namespace, out: TextIO) -> int:
    direction = Direction(args.direction) if args.direction else None
    states = _states(direction, args.state)
    if args.recipient_state or args.older_than is not None or args.organ:
        recipient_state = RecipientState(args.recipient_state) if args.recipient_state else None
        if recipient_state is not None and direction is None:
            direction = Direction.OUTBOUND  # only outbound packages have recipients
        where = PackageFilter(
            direction=direction,
            states=states,
            recipient_state=recipient_state,
            organ_id=args.organ,
            unchanged_since=time.time() - args.older_than if args.older_than is not None else None,
        )
        packages = store.find_matching(where, limit=args.limit)
    else:
        packages = store.find(direction=direction, states=states, limit=args.limit)
    return print_packages(store, packages, args, out, with_recipients=bool(args.recipient_state))


def _find(store: TrackingStore, args: argparse.Namespace, out: TextIO) -> int:
    packages = store.search(args.text, limit=args.limit)
    if not packages and not args.json:
        print(f"nothing found for {args.text!r} (DocumentId, record id, hub id or part of the "
              "CodeNumber/Notation)", file=sys.stderr)
        return 1
    return print_packages(store, packages, args, out, with_recipients=True)


def _show(
    store: TrackingStore, args: argparse.Namespace, config: Config | None, out: TextIO
) -> int:
    package = store.get(args.id)
    recipients = store.recipients(package.id)
    events = store.events(package.id)
    if args.raw:
        _export_raw(package, config, Path(args.raw))
    if args.json:
        document = summary(package) | {
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
            "deviations": [e.detail for e in events if e.event == "deviation"],
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
    deviations = [e.detail for e in events if e.event == "deviation"]
    if deviations:
        # Receive-level warnings: departures from QCVN 102 the package was accepted with.
        print(f"Warnings on receipt ({len(deviations)})", file=out)
        for detail in deviations:
            print(f"  {detail}", file=out)
    print("Timeline (Vietnam time)", file=out)
    for e in events:
        print(f"  {when_text(e.at)}  {e.event:16} {e.state or '':18} {e.detail}", file=out)
    return 0


def _export_raw(package: TrackedPackage, config: Config | None, to: Path) -> None:
    from connector.store import open_configured_store
    from connector.trust.atrest import PayloadCipher as AtRestCipher

    if config is None:
        raise ConnectorError("--raw needs --config (the store's at-rest key is configured there)")
    cipher: PayloadCipher = AtRestCipher.from_sources(
        key_file=config.store.at_rest_key_file, key_env=config.store.at_rest_key_env
    )
    keyed = open_configured_store(config.store, cipher)
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

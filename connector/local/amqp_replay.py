"""Inspect and replay the AMQP dead-letter queue (operator tool and library functions).

A dead-lettered record keeps its body and the agency's headers, plus the connector's
``x-connector-*`` headers (reason, stage, readable error, source queue). Replaying
publishes the original back into its source queue (``x-connector-*`` removed, so it gets
fresh attempts; ``x-connector-replays`` counts replays), waits for the broker's confirm,
then removes it from the dead-letter queue: a crash in between leaves a duplicate, never a
loss (the store is idempotent by record id). Usable as ``configure``/``run`` of a CLI
sub-command or ``python -m connector.local.amqp_replay``. This module must not process
records.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from connector.errors import ConfigurationError, ConnectorError
from connector.local.amqp_connection import close_quietly, open_connection, translate
from connector.local.amqp_message import header_text, strip_connector_headers
from connector.local.amqp_publisher import ConfirmingPublisher, OutgoingMessage
from connector.local.amqp_settings import (
    H_DEAD_LETTERED_AT,
    H_ERROR,
    H_REASON,
    H_RECORD_ID,
    H_REPLAYS,
    H_SOURCE_QUEUE,
    H_STAGE,
    AmqpSettings,
    AmqpTopology,
)


@dataclass(frozen=True)
class DeadLetter:
    """What an operator needs to decide about one dead-lettered record."""

    record_id: str
    reason: str
    stage: str
    error: str
    source_queue: str
    dead_lettered_at: str
    content_type: str
    size: int


def list_dead_letters(settings: AmqpSettings, limit: int = 100) -> list[DeadLetter]:
    """Peek at up to ``limit`` dead letters (they stay in the queue, in order)."""
    found: list[DeadLetter] = []
    default_queue = settings.topology.outbound_queue

    def keep_in_queue(message: Any) -> bool:
        found.append(_describe(message, default_queue))
        return False

    _walk(settings, limit, keep_in_queue)
    return found


def replay_dead_letters(
    settings: AmqpSettings,
    *,
    record_id: str | None = None,
    reason: str | None = None,
    limit: int | None = None,
) -> list[DeadLetter]:
    """Move matching dead letters back to their source queue; returns what was replayed."""
    replayed: list[DeadLetter] = []
    publisher = ConfirmingPublisher(settings, purpose="replay")

    def replay(message: Any) -> bool:
        letter = _describe(message, settings.topology.outbound_queue)
        if record_id is not None and letter.record_id != record_id:
            return False
        if reason is not None and letter.reason != reason:
            return False
        if limit is not None and len(replayed) >= limit:
            return False
        original = message.properties.get("application_headers") or {}
        headers = strip_connector_headers(original)
        previous = original.get(H_REPLAYS) or 0
        headers[H_REPLAYS] = int(previous) + 1
        properties = message.properties
        publisher.publish(
            OutgoingMessage(
                exchange="",
                routing_key=letter.source_queue,
                body=_body(message),
                content_type=properties.get("content_type") or "application/octet-stream",
                headers=headers,
                message_id=properties.get("message_id"),
                priority=properties.get("priority"),
            ),
            doing=f"replaying record {letter.record_id} into {letter.source_queue!r}")
        replayed.append(letter)
        return True

    try:
        _walk(settings, None, replay)
    finally:
        publisher.close()
    return replayed


def _walk(settings: AmqpSettings, limit: int | None, visit: Callable[[Any], bool]) -> None:
    """Get each message present now; ack those ``visit`` consumed, return the others."""
    conn = open_connection(settings, purpose="dead-letter tool")
    try:
        channel = conn.channel()
        channel.auto_decode = False
        queue = settings.topology.dead_letter_queue
        _, present, _ = channel.queue_declare(queue, passive=True)
        budget = present if limit is None else min(present, limit)
        for _ in range(budget):
            message = channel.basic_get(queue, no_ack=False)
            if message is None:
                break
            if visit(message):
                channel.basic_ack(message.delivery_tag)
        # Closing returns every unacknowledged message to the queue, in its place.
        channel.close()
    except ConnectorError:
        raise
    except Exception as exc:
        raise translate(exc, f"reading dead-letter queue {settings.topology.dead_letter_queue!r}"
                        ) from exc
    finally:
        close_quietly(conn)


def _describe(message: Any, default_queue: str) -> DeadLetter:
    headers = message.properties.get("application_headers") or {}
    return DeadLetter(
        record_id=header_text(headers.get(H_RECORD_ID))
        or header_text(message.properties.get("message_id")),
        reason=header_text(headers.get(H_REASON)) or "unknown",
        stage=header_text(headers.get(H_STAGE)),
        error=header_text(headers.get(H_ERROR)),
        source_queue=header_text(headers.get(H_SOURCE_QUEUE)) or default_queue,
        dead_lettered_at=header_text(headers.get(H_DEAD_LETTERED_AT)),
        content_type=header_text(message.properties.get("content_type")),
        size=len(message.body),
    )


# ---- command line -----------------------------------------------------------------------

def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="connector configuration file (local.type: amqp)")
    parser.add_argument("--url", help="broker URL (default: $CONNECTOR_AMQP_URL or local guest)")
    parser.add_argument("--prefix", default="", help="prefix of the topology names")
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="show dead-lettered records with their reasons")
    listing.add_argument("--limit", type=int, default=100)
    replay = sub.add_parser("replay", help="move dead-lettered records back to their queue")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--record-id", help="only this record")
    which.add_argument("--reason", help="only records refused for this reason code")
    which.add_argument("--all", action="store_true", help="every dead-lettered record")
    replay.add_argument("--limit", type=int, default=None)


def _settings(args: argparse.Namespace) -> AmqpSettings:
    if args.config:
        # Imported here: only this way of choosing the broker needs the configuration code.
        from connector.config import load_config
        from connector.daemon.wiring import amqp_settings

        config = load_config(args.config)
        if config.local.type != "amqp" or config.local.amqp is None:
            raise ConfigurationError(f"{args.config}: local.type is not amqp",
                                     reason="not_amqp")
        return amqp_settings(config.local.amqp)
    overrides: dict[str, object] = {}
    if args.url:
        overrides["url"] = args.url
    if args.prefix:
        overrides["topology"] = AmqpTopology.prefixed(args.prefix)
    return AmqpSettings.from_env(**overrides)


def run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
        if args.action == "list":
            letters = list_dead_letters(settings, args.limit)
        else:
            letters = replay_dead_letters(
                settings, record_id=args.record_id, reason=args.reason, limit=args.limit)
    except ConnectorError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 1
    for letter in letters:
        if args.json:
            print(json.dumps(asdict(letter), ensure_ascii=False))
        else:
            print(f"{letter.record_id}\t{letter.reason}\t{letter.stage}\t{letter.source_queue}"
                  f"\t{letter.error}")
    verb = "listed" if args.action == "list" else "replayed"
    print(f"{len(letters)} record(s) {verb}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connector.local.amqp_replay",
                                     description="inspect and replay the dead-letter queue")
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())


def _body(message: Any) -> bytes:
    """A message body as bytes (py-amqp leaves an empty message's body as ``''``)."""
    body = message.body
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)

"""The AMQP message contract: broker messages to ``LocalRecord`` and back to routing keys.

What agency software puts on a message (body, ``content_type``, ``priority``, headers
``x-record-id`` and ``x-mapping``) becomes a ``LocalRecord``; what the connector
delivers gets a routing key agencies can bind by kind. Header values are turned into
text here. This module must not touch the broker.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from connector.errors import PermanentError
from connector.local.amqp_consumer import QUARANTINE, Delivery
from connector.local.amqp_settings import (
    CONNECTOR_HEADER_PREFIX,
    H_BUSINESS_TYPE,
    H_DELIVERIES,
    H_FORMAT,
    H_MAPPING,
    H_PRIORITY,
    H_RECORD_ID,
    H_REDELIVERED,
    H_SOURCE_QUEUE,
    H_STATUS_CODE,
    AmqpTopology,
)
from connector.local.base import (
    DeliveryKind,
    LocalDelivery,
    LocalRecord,
    RecordKind,
    RecordLimits,
)

URGENCY_MAX = 3  # record priorities are 0 (normal) .. 3 (Hỏa tốc)
_BUSINESS_TYPES = {"0": "new", "1": "revoke", "2": "update", "3": "replace"}
# content_encoding values meaning "the body is the record's bytes as they are": kombu sets
# "binary" for bytes bodies and "utf-8" for text. Anything else (gzip, base64, a charset
# the record parsers do not read) is refused: the connector does not guess.
IDENTITY_ENCODINGS = frozenset({"", "binary", "identity", "utf-8", "utf8", "us-ascii", "ascii",
                                "7bit", "8bit"})


def refusal_of(delivery: Delivery, limits: RecordLimits) -> PermanentError | None:
    """Why a message cannot be read as a record at all (checked before anything parses it)."""
    encoding = header_text(delivery.properties.get("content_encoding")).strip().lower()
    if encoding not in IDENTITY_ENCODINGS:
        shown = encoding if len(encoding) <= 40 else encoding[:40] + "…"
        return PermanentError(
            f"message content_encoding {shown!r} is not supported: publish the record's bytes "
            "as they are (no content_encoding, or binary / utf-8)",
            reason="content_encoding_unsupported", stage="intake")
    if not delivery.body:
        return PermanentError("the message body is empty: a record is a JSON or XML document",
                              reason="record_empty", stage="intake")
    if len(delivery.body) > limits.max_record_bytes:
        return PermanentError(
            f"the message body is {len(delivery.body)} bytes, over the "
            f"{limits.max_record_bytes}-byte limit (local.limits.max_record_bytes); put big "
            "files in the claim-check directory and reference them",
            reason="record_too_large", stage="intake")
    return None


def to_local_record(delivery: Delivery, topology: AmqpTopology,
                    limits: RecordLimits | None = None) -> LocalRecord:
    """The record a message carries; the id falls back to message_id, then a body hash."""
    refusal = refusal_of(delivery, limits or RecordLimits())
    headers = delivery.headers
    properties = delivery.properties
    record_id = header_text(headers.get(H_RECORD_ID)) or header_text(properties.get("message_id"))
    if not record_id:
        record_id = "sha256-" + hashlib.sha256(delivery.body).hexdigest()[:32]
    kind = (RecordKind.COMMAND if origin_queue(delivery, topology) == topology.commands_queue
            else RecordKind.RECORD)
    mapping = header_text(headers.get(H_MAPPING)) or header_text(headers.get(H_FORMAT)) or None
    flat = {str(k): header_text(v) for k, v in headers.items()}
    flat[H_REDELIVERED] = "true" if delivery.redelivered else "false"
    flat[H_DELIVERIES] = str(crash_count(delivery))
    return LocalRecord(
        record_id=record_id,
        refusal=refusal,
        body=b"" if refusal is not None else delivery.body,
        content_type=normalise_content_type(properties.get("content_type"), delivery.body),
        mapping=mapping,
        kind=kind,
        priority=max(0, min(URGENCY_MAX, delivery.priority)),
        source=f"RabbitMQ queue {delivery.queue!r}, delivery {delivery.delivery_tag}",
        headers=flat,
    )


def origin_queue(delivery: Delivery, topology: AmqpTopology) -> str:
    """The queue agency software published it to (through the quarantine, if there)."""
    if delivery.channel == QUARANTINE:
        return header_text(delivery.headers.get(H_SOURCE_QUEUE)) or topology.outbound_queue
    return delivery.queue


def delivery_routing_key(delivery: LocalDelivery) -> str:
    """``document.<new|revoke|update|replace>`` or ``status.<code>``."""
    headers = delivery.headers
    if delivery.kind is DeliveryKind.STATUS:
        code = _header(headers, H_STATUS_CODE) or "unknown"
        return f"status.{code}"
    business = _header(headers, H_BUSINESS_TYPE) or "new"
    return f"document.{_BUSINESS_TYPES.get(business, business)}"


def delivery_priority(delivery: LocalDelivery) -> int | None:
    """The urgency (0..3) a delivery carries in its headers, if any."""
    value = header_int(_header(delivery.headers, H_PRIORITY))
    return None if value is None else max(0, min(URGENCY_MAX, value))


def _header(headers: Mapping[str, str], name: str) -> str:
    return header_text(headers.get(name) or headers.get("x-" + name)).strip().lower()


def crash_count(delivery: Delivery) -> int:
    """Crashes already counted against a message (``x-connector-deliveries``)."""
    return max(0, header_int(delivery.headers.get(H_DELIVERIES)) or 0)


def normalise_content_type(value: object, body: bytes) -> str:
    """application/json or application/xml (parameters dropped); sniffed when absent."""
    text = header_text(value).split(";", 1)[0].strip().lower()
    if text in ("text/xml", "application/xml") or text.endswith("+xml"):
        return "application/xml"
    if text in ("text/json", "application/json") or text.endswith("+json"):
        return "application/json"
    if text and text != "application/octet-stream":
        return text
    start = body.lstrip()[:1]
    if start == b"<":
        return "application/xml"
    if start in (b"{", b"["):
        return "application/json"
    return text or "application/octet-stream"


def strip_connector_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers as the agency published them (for replay)."""
    return {k: v for k, v in headers.items() if not str(k).startswith(CONNECTOR_HEADER_PREFIX)}


def header_text(value: object) -> str:
    """An AMQP header value as text (tables and arrays as JSON)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def header_int(value: object) -> int | None:
    """An AMQP header value as an int, None when absent or not a number."""
    try:
        return int(str(value)) if value is not None and str(value).strip() else None
    except ValueError:
        return None

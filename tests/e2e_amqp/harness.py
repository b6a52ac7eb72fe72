"""End-to-end harness for the RabbitMQ setup: agencies A and B on ``config/connector-amqp*.yaml``.

It builds on the spool-folder harness (``tests.e2e.harness``: demo PKI, the hub emulator in
this process, agencies as real ``connector run`` subprocesses, deadline-based waiting) and
adds what the broker setup needs:

* a unique topology prefix per agency and per test run (``e2e-<run>-a.edoc.outbound`` …),
  declared before the connectors start (as it would be after their first start) and deleted
  afterwards, so runs on one broker never collide;
* records as agency software writes them: the JSON of ``qlvb-json`` with a main PDF that
  carries a personal signature (signed once, its bytes reused: signing is not what is tested),
  published with plain kombu exactly as in the docs/amqp.md example;
* :class:`Collector`: a plain kombu consumer in a thread, the agency's local consumer of B's
  received documents, A's events and the dead-letter queue; it survives broker restarts and
  tells redeliveries of its own unacknowledged messages from connector duplicates;
* broker operations for fault tests: close the connector's connections from the broker side,
  restart the broker application (``rabbitmqctl stop_app`` / ``start_app``).

This module runs no test.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import copy
import email.parser
import email.policy
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import kombu

from connector.local.amqp_settings import AmqpTopology
from connector.local.amqp_topology import declare_topology, delete_topology
from connector.trust.keys import KeySource
from connector.trust.pdf_sample import make_pdf
from connector.trust.pdf_seal import sign_pdf
from connector.trust.pki import DemoPki
from tests.e2e.harness import A_ID, EXAMPLES, FAST, ROOT, World, derive_config, today

CONFIG_AMQP_A = ROOT / "config" / "connector-amqp.yaml"
CONFIG_AMQP_B = ROOT / "config" / "connector-amqp-b.yaml"
BROKER_URL = os.environ.get("CONNECTOR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
MAPPING = "qlvb-json"
URGENCY = {"Thường": 0, "Khẩn": 1, "Thượng khẩn": 2, "Hỏa tốc": 3}  # as in docs/amqp.md

_Connection: Any = kombu.Connection  # type: ignore[attr-defined]  # kombu is not annotated


def connect(url: str = BROKER_URL, **options: Any) -> Any:
    """A plain kombu connection to the test broker."""
    return _Connection(url, **options)


_problem: list[str | None] = []


def broker_problem() -> str | None:
    """None when the test broker answers, else why not (checked once per session)."""
    if not _problem:
        try:
            with connect(connect_timeout=3) as conn:
                conn.ensure_connection(max_retries=0, interval_start=0, interval_step=0)
            _problem.append(None)
        except Exception as exc:
            _problem.append(f"no RabbitMQ at {_redacted(BROKER_URL)}: {type(exc).__name__}: {exc}")
    return _problem[0]


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def topology_for(prefix: str) -> AmqpTopology:
    return AmqpTopology.prefixed(prefix)


def declare(topology: AmqpTopology) -> None:
    with connect() as conn:
        declare_topology(conn.channel(), topology)


def delete(topology: AmqpTopology) -> None:
    with connect() as conn:
        delete_topology(conn.channel(), topology)


def queue_depth(queue: str) -> int:
    with connect() as conn:
        _, count, _ = conn.channel().queue_declare(queue, passive=True)
        return int(count)


# -- records as agency software writes them ---------------------------------------------------


def signed_main_pdf(signer: KeySource, *, size: int = 0, title: str = "Demo document") -> bytes:
    """A main PDF with the personal signature the outbound policy requires (made once)."""
    return sign_pdf(make_pdf((title,), image_bytes=size, seed=b"edoc" if size else None), signer)


@dataclass(frozen=True)
class Record:
    """One record of A: its JSON, its urgency (the AMQP priority) and what B must see."""

    record_id: str
    number: str  # "số"; with the ky_hieu it makes the DocumentId
    subject: str  # trích yếu
    urgency: int
    body: bytes = field(repr=False)
    main_sha256: str = ""  # the main PDF as signed by A's person (B's copy starts with it)

    @property
    def document_id(self) -> str:
        return f"{A_ID},{today():%Y/%m/%d},{self.number}/SNV-VP"


class RecordFactory:
    """Records of A from the ``01-ordinary`` example: a new id, number and subject each."""

    def __init__(
        self,
        run: str,
        main_pdf: bytes,
        *,
        attachments: Sequence[tuple[str, bytes]] = (),
        metadata_padding: int = 0,  # bytes of appendix titles added to the metadata
    ) -> None:
        self.run = run
        self.main_pdf = main_pdf
        self.main_b64 = base64.b64encode(main_pdf).decode("ascii")
        self.main_sha256 = hashlib.sha256(main_pdf).hexdigest()
        self.attachments = [
            {
                "ten_tep": name,
                "loai_tep": "application/pdf" if data.startswith(b"%PDF") else "",
                "mo_ta": f"Tệp đính kèm {name}",
                "noi_dung_base64": base64.b64encode(data).decode("ascii"),
            }
            for name, data in attachments
        ]
        self.padding = metadata_padding
        self.template = json.loads((EXAMPLES / MAPPING / "01-ordinary.json").read_text("utf-8"))

    def make(self, index: int, urgency: int = 0, **changes: Any) -> Record:
        record = copy.deepcopy(self.template)
        number = str(100000 + index)
        subject = f"V/v kiểm thử liên thông qua RabbitMQ, văn bản số {number} ({self.run})"
        record.update(
            id=f"E2E-{self.run}-{index:05d}",
            so=number,
            ngay_ban_hanh=today().isoformat(),
            trich_yeu=subject,
            do_khan={v: k for k, v in URGENCY.items()}[urgency],
        )
        record["van_ban_chinh"] = {
            "ten_tep": f"{number}-SNV-VP.signed.pdf",
            "loai_tep": "application/pdf",
            "noi_dung_base64": self.main_b64,
        }
        if self.attachments:
            record["tep_dinh_kem"] = self.attachments
        if self.padding:
            record["phu_luc"] = _appendix_titles(self.padding)
        record.update(changes)
        body = json.dumps(record, ensure_ascii=False).encode("utf-8")
        return Record(record["id"], number, subject, urgency, body, self.main_sha256)


def _appendix_titles(size: int) -> list[str]:
    """Appendix titles (edXML allows 500 characters each) of about ``size`` UTF-8 bytes."""
    filler = "Phụ lục: bảng số liệu biên chế công chức, viên chức năm 2025 của các đơn vị. " * 8
    titles: list[str] = []
    remaining = size
    while remaining > 0:
        title = filler[: min(450, remaining)].strip() or "Phụ lục"
        titles.append(title)
        remaining -= len(title.encode("utf-8")) + 4  # quotes, comma, space in the JSON
    return titles


class Producer:
    """Agency software publishing records: plain kombu, as in the docs/amqp.md example."""

    def __init__(self, queue: str, url: str = BROKER_URL) -> None:
        self.queue = queue
        self.conn = connect(url, transport_options={"confirm_publish": True})
        self.producer = self.conn.Producer()
        self.published_at: dict[str, float] = {}

    def publish(self, record: Record) -> None:
        self.producer.publish(
            record.body,
            routing_key=self.queue,  # the connector's outbound queue
            content_type="application/json",
            headers={"x-record-id": record.record_id, "x-mapping": MAPPING},
            priority=record.urgency,  # urgent first
            delivery_mode=2,  # persistent
            mandatory=True,  # raises if the queue does not exist
        )
        self.published_at[record.record_id] = time.time()

    def publish_raw(
        self, body: bytes, *, headers: Mapping[str, Any], content_type: str = "application/json"
    ) -> None:
        """Anything an agency might publish, well-formed or not (poison tests)."""
        self.producer.publish(
            body,
            routing_key=self.queue,
            content_type=content_type,
            headers=dict(headers),
            delivery_mode=2,
            mandatory=True,
        )

    def publish_all(self, records: Iterable[Record]) -> None:
        for record in records:
            self.publish(record)

    def close(self) -> None:
        self.conn.release()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- what the agency's local consumers see ----------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One message taken from a queue by a :class:`Collector`."""

    routing_key: str
    message_id: str
    headers: dict[str, Any]
    properties: dict[str, Any]
    body: bytes = field(repr=False)
    at: float  # time.time() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)

    def parts(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """A received document: its record and its files by name (inline multipart body)."""
        content_type = str(self.properties.get("content_type") or "")
        if not content_type.startswith("multipart/"):
            return json.loads(self.body), {}
        raw = f"Content-Type: {content_type}\r\n\r\n".encode() + self.body
        message = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
        parts: list[Any] = list(message.iter_parts())
        record = json.loads(parts[0].get_payload(decode=True))
        files = {str(p.get_filename()): bytes(p.get_payload(decode=True)) for p in parts[1:]}
        return record, files


class Collector:
    """Consumes one queue in a thread (own connection, manual acks after keeping a message).

    Reconnects after a broker restart. A message the broker redelivers because our own
    acknowledgement was lost is recognised (``redelivered`` and the same id and body) and
    kept once; any other repetition is kept, so duplicates sent by a connector show.
    """

    def __init__(self, queue: str, *, url: str = BROKER_URL, name: str = "") -> None:
        self.queue = queue
        self.url = url
        self.name = name or queue
        self.messages: list[Received] = []
        self.own_redeliveries = 0
        self.reconnects = 0
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"collect-{queue}", daemon=True)

    def start(self) -> Collector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def count(self, routing_key: str | None = None) -> int:
        with self._lock:
            return sum(routing_key is None or m.routing_key == routing_key for m in self.messages)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except Exception:  # broker restarted or connection closed: consume again
                self.reconnects += 1
                self._stop.wait(0.5)

    def _session(self) -> None:
        with connect(self.url, heartbeat=10, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=0, interval_start=0, interval_step=0)
            channel = conn.channel()
            channel.auto_decode = False
            channel.basic_qos(0, 200, False)
            channel.basic_consume(self.queue, callback=lambda m: self._keep(channel, m))
            while not self._stop.is_set():
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    conn.heartbeat_check()

    def _keep(self, channel: Any, message: Any) -> None:
        body = message.body
        if isinstance(body, str):  # py-amqp's '' for a message without a body frame
            body = body.encode("utf-8")
        body = bytes(body)
        properties = dict(message.properties)
        message_id = str(properties.get("message_id") or "")
        identity = (message_id, hashlib.sha256(body).hexdigest())
        with self._lock:
            if message.delivery_info.get("redelivered") and identity in self._seen:
                self.own_redeliveries += 1
            else:
                self._seen.add(identity)
                self.messages.append(
                    Received(
                        routing_key=str(message.delivery_info.get("routing_key", "")),
                        message_id=message_id,
                        headers=dict(properties.get("application_headers") or {}),
                        properties=properties,
                        body=body,
                        at=time.time(),
                    )
                )
        channel.basic_ack(message.delivery_info["delivery_tag"])


# -- the broker under test ---------------------------------------------------------------------


def rabbitmqctl() -> str | None:
    """The rabbitmqctl command when it manages the test broker (a local one), else None."""
    tool = shutil.which("rabbitmqctl")
    if tool is None or urlsplit(BROKER_URL).hostname not in ("127.0.0.1", "localhost"):
        return None
    try:
        probe = subprocess.run([tool, "-q", "status"], capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    return tool if probe.returncode == 0 else None


def close_connections(name_prefix: str, reason: str = "edoc e2e test") -> int:
    """Close, from the broker's side, every connection whose client-given name starts with
    ``name_prefix`` (a connector's own connections only: other users of the broker are not
    touched). Returns how many were closed."""
    tool = rabbitmqctl()
    assert tool is not None, "rabbitmqctl is needed to close connections"
    listing = subprocess.run(
        [tool, "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    closed = 0
    for line in listing.stdout.splitlines():
        pid, _, properties = line.partition("\t")
        if f'"{name_prefix}' in properties and pid.startswith("<"):
            subprocess.run([tool, "-q", "close_connection", pid, reason], timeout=60, check=False)
            closed += 1
    return closed


def restart_broker_app(down_seconds: float = 3.0) -> None:
    """``rabbitmqctl stop_app``, a pause, ``start_app``, and wait until it accepts AMQP."""
    tool = rabbitmqctl()
    assert tool is not None, "rabbitmqctl is needed to restart the broker"
    try:
        subprocess.run([tool, "-q", "stop_app"], timeout=120, check=True, capture_output=True)
        time.sleep(down_seconds)
    finally:
        subprocess.run([tool, "-q", "start_app"], timeout=180, check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            with connect(connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=0, interval_start=0, interval_step=0)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


# -- the world of one run ----------------------------------------------------------------------

# The shipped AMQP configurations with the harness's quick settings (retries, polling, leases).
FAST_AMQP: dict[str, Any] = {
    **FAST,
    "local": {"amqp": {"reconnect_initial_delay": 0.2, "reconnect_max_delay": 2.0}},
}


def _broker_env() -> dict[str, str]:
    """CONNECTOR_AMQP_URL (no password: the configuration refuses one) and the password."""
    parts = urlsplit(BROKER_URL)
    env = {"CONNECTOR_AMQP_URL": _redacted(BROKER_URL)}
    if parts.password is not None:
        env["CONNECTOR_AMQP_PASSWORD"] = parts.password
    return env


class AmqpWorld:
    """The hub emulator and agencies A and B on RabbitMQ, with this run's own topology."""

    def __init__(
        self,
        tmp: Path,
        pki: DemoPki,
        environ: Callable[[str, str], None],
        *,
        changes: Mapping[str, Any] = FAST_AMQP,
    ) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.world = World(tmp, pki, environ)
        self.prefix = {"A": f"e2e-{self.run}-a.", "B": f"e2e-{self.run}-b."}
        self.topology = {name: topology_for(p) for name, p in self.prefix.items()}
        self.world.env.update(
            _broker_env(),
            CONNECTOR_AMQP_PREFIX_A=self.prefix["A"],
            CONNECTOR_AMQP_PREFIX_B=self.prefix["B"],
        )
        with_password = dict(changes)
        if "CONNECTOR_AMQP_PASSWORD" in self.world.env:
            with_password = _merged(
                changes, {"local": {"amqp": {"password_env": "CONNECTOR_AMQP_PASSWORD"}}}
            )
        for agency, source in ((self.a, CONFIG_AMQP_A), (self.b, CONFIG_AMQP_B)):
            agency.config = derive_config(
                source, tmp / "config" / f"{agency.home.name}-amqp.yaml", with_password
            )
        self.signer = self.world.signer
        for topology in self.topology.values():
            declare(topology)
        self.collectors: list[Collector] = []
        self.own_queues: list[str] = []

    @property
    def a(self) -> Any:
        return self.world.a

    @property
    def b(self) -> Any:
        return self.world.b

    def connection_name(self, agency: str) -> str:
        """The prefix of the connection names of one connector (as in the configuration)."""
        return f"edoc-connector-{self.prefix[agency]}"

    def collect(self, queue: str | None) -> Collector:
        assert queue, "no queue name"
        collector = Collector(queue).start()
        self.collectors.append(collector)
        return collector

    def bind(self, exchange: str, routing_keys: Sequence[str]) -> Collector:
        """A queue of our own bound to ``exchange`` with these keys (as an operator binds
        by kind), collected; deleted when the world closes."""
        queue = f"{exchange}.test-{uuid.uuid4().hex[:6]}"
        with connect() as conn:
            channel = conn.channel()
            channel.queue_declare(queue, durable=True, auto_delete=False)
            for key in routing_keys:
                channel.queue_bind(queue, exchange, key)
        self.own_queues.append(queue)
        return self.collect(queue)

    def producer(self) -> Producer:
        return Producer(self.topology["A"].outbound_queue)

    def start_hub(self) -> Any:
        return self.world.start_hub()

    def start(self) -> None:
        for agency in (self.a, self.b):
            agency.start()

    def wait(self, what: str, condition: Callable[[], Any], **options: Any) -> Any:
        return self.world.wait(what, condition, **options)

    def close(self) -> dict[str, int | None]:
        try:
            codes = self.world.close()
        finally:
            for collector in self.collectors:
                collector.stop()
            # The broker may be down after a failed test: clean up what can be.
            with contextlib.suppress(Exception), connect() as conn:
                channel = conn.channel()
                for queue in self.own_queues:
                    channel.queue_delete(queue)
            for topology in self.topology.values():
                with contextlib.suppress(Exception):
                    delete(topology)
        return codes

    def metrics_url(self, agency: str) -> str:
        """Where the running connector serves /metrics (it picks a free port: see its log)."""
        process = self.a if agency == "A" else self.b
        assert process.logs, f"connector {agency} never started"
        log = process.logs[-1]

        def served() -> str | None:
            text = log.read_text("utf-8", "replace") if log.exists() else ""
            found = _METRICS_AT.findall(text)
            return found[-1] if found else None

        base: str = self.wait(f"{agency}'s metrics address", served, timeout=60)
        return base

    def metrics(self, agency: str) -> str:
        with urllib.request.urlopen(self.metrics_url(agency), timeout=10) as answer:
            return str(answer.read().decode("utf-8"))

    def healthz(self, agency: str) -> int:
        url = self.metrics_url(agency).rsplit("/", 1)[0] + "/healthz"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)


_METRICS_AT = re.compile(r"metrics on (http://\S+/metrics)")


def _merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


# -- what must hold after a run ------------------------------------------------------------------


def documents_at_b(received: Sequence[Received]) -> dict[str, list[Received]]:
    """B's received documents by DocumentId, one entry per distinct delivery id."""
    by_document: dict[str, dict[str, Received]] = collections.defaultdict(dict)
    for message in received:
        if message.headers.get("x-delivery-kind") == "document":
            by_document[str(message.headers.get("document-id"))].setdefault(
                message.message_id, message
            )
    return {k: list(v.values()) for k, v in by_document.items()}


def duplicates(received: Sequence[Received]) -> collections.Counter[str]:
    """Delivery ids published more than once (the contract allows it after a crash)."""
    counts = collections.Counter(m.message_id for m in received)
    return collections.Counter({k: n for k, n in counts.items() if n > 1})


def assert_received_exactly(records: Sequence[Record], received: Sequence[Received]) -> None:
    """Every record's document at B under one delivery id, nothing else; content as sent."""
    by_document = documents_at_b(received)
    expected = {r.document_id: r for r in records}
    missing = sorted(set(expected) - set(by_document))
    unexpected = sorted(set(by_document) - set(expected))
    assert not missing, f"{len(missing)} documents never reached B's consumer: {missing[:5]}"
    assert not unexpected, f"B received documents nobody sent: {unexpected[:5]}"
    twice = {d: [m.message_id for m in ms] for d, ms in by_document.items() if len(ms) > 1}
    assert not twice, f"documents delivered to B under two delivery ids: {list(twice.items())[:5]}"
    for document_id, (message,) in by_document.items():
        record = expected[document_id]
        assert message.headers.get("from") == A_ID
        assert message.routing_key == "document.new"
        assert message.properties.get("priority") == record.urgency, document_id
        fields, files = message.parts()
        assert fields.get("trich_yeu") == record.subject, document_id
        main = files.get(f"{record.number}-SNV-VP.signed.pdf")
        assert main is not None, f"{document_id}: no main PDF among {sorted(files)}"
        # A's seal is an incremental update: the personally signed PDF is kept byte for byte.
        signed = base64.b64decode(json.loads(record.body)["van_ban_chinh"]["noi_dung_base64"])
        assert main[: len(signed)] == signed and len(main) > len(signed), (
            f"{document_id}: B's main PDF is not the signed PDF sealed by A"
        )

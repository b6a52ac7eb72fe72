"""What the pipelines need from the other parts, as small protocols, and their bundle.

The pipelines (``outbound``, ``sender``, ``inbound``, ``statuses``) are written against these
ports only; ``wiring`` builds the real implementations (mappings, PDF seals, XML signature,
CMS encryption, store, hub client, local adapter, metrics) from the configuration. Tests
may pass simpler objects. This module defines types; it must not do I/O.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from connector.daemon.inflight import Doorbell
from connector.daemon.retry import RetryPolicy
from connector.edxml.model import Attachment, EdocPackage, Organization, StatusPackage
from connector.errors import ConnectorError, TransientError
from connector.interconnect.base import HubTransport
from connector.local.base import Intake, LocalDelivery, LocalEvent, LocalRecord, Sink
from connector.store.api import TrackingStore
from connector.trust.content import AttachmentChecks
from connector.trust.origin import OriginPolicy, XmlFacts
from connector.workcalendar import WorkingCalendar

if TYPE_CHECKING:
    from connector.daemon.organisations import Organisations

T = TypeVar("T")
_pool_lock = threading.Lock()


class Mapper(Protocol):
    """Local records <-> edXML model (the YAML mappings)."""

    def record_to_package(self, record: LocalRecord) -> EdocPackage:
        """Classification gate first, then the mapping; PermanentError if refused."""

    def command_to_status(self, record: LocalRecord) -> StatusPackage:
        """A local workflow command (accepted, assigned, recall...) as a status package."""

    def package_to_delivery(self, package: EdocPackage, delivery_id: str) -> LocalDelivery:
        """A received document in the local format."""

    def status_to_delivery(self, package: StatusPackage, delivery_id: str) -> LocalDelivery:
        """A received status notice in the local format."""


class PdfStage(Protocol):
    """PDF policy and seals (R3, R4). CPU-heavy: called in the worker pool."""

    def seal_outbound(self, attachments: Sequence[Attachment]) -> tuple[Attachment, ...]:
        """Check the main document's personal signature, seal every PDF."""

    def verify_inbound(self, attachments: Sequence[Attachment], sender_organ_id: str) -> list[str]:
        """Verify every PDF signature per policy; return notes; PermanentError if refused."""

    def check_inbound(
        self, attachments: Sequence[Attachment], main_content_id: str | None
    ) -> AttachmentChecks:
        """Content and PDF checks of every attachment (``connector.trust.content``)."""


class PayloadCrypto(Protocol):
    """Attachment encryption for recipients whose certificate is known (R5)."""

    def encrypt_for(
        self, attachments: Sequence[Attachment], recipients: Sequence[str]
    ) -> tuple[Attachment, ...]: ...

    def decrypt(self, attachments: Sequence[Attachment]) -> tuple[Attachment, ...]: ...


class PackageSigning(Protocol):
    def sign(self, package_bytes: bytes) -> bytes: ...


class VerifiedBytes(Protocol):
    @property
    def data(self) -> bytes: ...

    @property
    def notes(self) -> Sequence[str]: ...

    @property
    def signed(self) -> bool:
        """A real XML signature was verified (not a placeholder accepted by policy)."""

    @property
    def signer_organ_id(self) -> str | None:
        """The OrganId in the signer's certificate, when it carries one."""

    @property
    def facts(self) -> XmlFacts:
        """The XML signer as sender binding sees it (``connector.trust.origin``)."""


class PackageVerification(Protocol):
    @property
    def origin(self) -> OriginPolicy:
        """The trust policy on receipt: how signers are bound to senders."""

    def verify(self, package_bytes: bytes) -> VerifiedBytes:
        """Verify the XML signature (or the legacy-placeholder policy); only these bytes go on."""


class Metrics(Protocol):
    """Counters the pipelines feed (``connector.metrics.ConnectorMetrics``); cheap, never raise."""

    def document(self, direction: str, outcome: str, count: int = 1) -> None: ...

    def observe_stage(self, stage: str, seconds: float) -> None: ...

    def send_attempt(self, kind: str, error: ConnectorError | None = None) -> None: ...

    def status(self, direction: str, code: str) -> None: ...

    def refused_record(self, reason: str) -> None: ...

    def received_deviation(self, element: str | None) -> None: ...

    def set_component_up(self, component: str, up: bool) -> None: ...


class NullMetrics:
    def document(self, direction: str, outcome: str, count: int = 1) -> None:
        pass

    def observe_stage(self, stage: str, seconds: float) -> None:
        pass

    def send_attempt(self, kind: str, error: ConnectorError | None = None) -> None:
        pass

    def status(self, direction: str, code: str) -> None:
        pass

    def refused_record(self, reason: str) -> None:
        pass

    def received_deviation(self, element: str | None) -> None:
        pass

    def set_component_up(self, component: str, up: bool) -> None:
        pass


@dataclass(frozen=True)
class Timing:
    poll_interval: float = 2.0  # hub inbox polling
    intake_timeout: float = 1.0  # wait for local records
    sender_idle: float = 0.5  # sleep when nothing is due
    lease_seconds: float = 120.0
    batch: int = 10
    inflight: int = 4  # documents in flight per direction (prepared, sent, checked at once)
    busy_poll: float = 0.2  # hub inbox polling while packages keep arriving


@dataclass
class Services:
    """Everything the pipelines use, built once at start."""

    agency: Organization
    store: TrackingStore
    hub: HubTransport
    intake: Intake
    sink: Sink
    mapper: Mapper
    pdf: PdfStage
    crypto: PayloadCrypto
    signer: PackageSigning
    verifier: PackageVerification
    pool: Executor
    pool_factory: Callable[[], Executor] | None = None  # rebuilds the pool if a worker dies
    metrics: Metrics = field(default_factory=NullMetrics)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timing: Timing = field(default_factory=Timing)
    zip_for: Callable[[str], bool] = lambda _organ_id: True  # zip attachments for this peer
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)  # R6
    worker_id: str = "connector"
    clock: Callable[[], float] | None = None
    # Test hook: called with a point name ("after_store_ready", "after_deliver", ...);
    # it may raise or kill the process to test crash safety. None in production.
    fault_hook: Callable[[str], None] | None = None
    # Events the local side could not take (broker down), published again in order.
    event_backlog: deque[LocalEvent] = field(default_factory=lambda: deque(maxlen=100_000))
    # Several organisations (``organisations:``): who acts for which OrganId. None: the
    # agency alone, with the parts above.
    organisations: Organisations | None = None
    # Rung when a package becomes READY (intake, inbound replies): the sender sends it now.
    sender_bell: Doorbell = field(default_factory=Doorbell)

    def offload(self, function: Callable[..., T], *args: object) -> T:
        """Run a CPU-heavy stage in the worker pool; a dead worker is a transient failure."""
        pool = self.pool
        try:
            return pool.submit(function, *args).result()
        except BrokenExecutor:
            with _pool_lock:
                if self.pool is pool and self.pool_factory is not None:
                    self.pool = self.pool_factory()
                    pool.shutdown(wait=False, cancel_futures=True)
            raise TransientError(
                "a worker process died while handling this package (out of memory or a "
                "crash in a library); the pool was restarted and the package will be retried",
                reason="worker_crashed",
                stage="pool",
            ) from None

    def fault(self, point: str) -> None:
        if self.fault_hook is not None:
            self.fault_hook(point)

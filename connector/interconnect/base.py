"""The contract between the connector and an interconnect hub, whatever its protocol.

A hub transport moves opaque edXML bytes: it sends a package, lists what waits for this
agency, fetches one, acknowledges it, and reads the directory. Retries, back-off, metrics,
logging and settlement are written once around a transport (by the daemon), never inside
it; a transport only translates its protocol's failures into the connector's typed errors:

* ``UnavailableError``: the hub could not be reached or said it is overloaded/down (connect
  failure, connect timeout, HTTP 429/5xx). Nothing was processed; wait and try again.
* ``TransientError``: the request went out but its outcome is unknown (read timeout,
  connection dropped mid-response). The caller resends the *same* bytes; hubs recognise a
  resend of identical bytes.
* ``ConfigurationError``: the hub refused our credentials or our identity (HTTP 401/403,
  signature refused). An operator must fix the deployment; no message is at fault.
* ``PermanentError``: the hub refused this request for good (a bad package, unknown
  recipient, unknown document id); the hub's own description is in the message.

This module holds only types: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

MessageType = Literal["edoc", "status"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("edoc", "status")


@dataclass(frozen=True)
class PendingItem:
    """One package waiting in this agency's inbox at the hub (not yet acknowledged)."""

    doc_id: str  # the hub's id for this delivery; pass it to fetch() and acknowledge()
    message_type: MessageType
    sender: str  # OrganId of the agency that sent it
    recipient: str  # OrganId it was delivered to (this agency)
    created: str = ""  # the hub's timestamp text, as given
    status: str = ""  # the hub's delivery status text, as given


@dataclass(frozen=True)
class SentItem:
    """One (package, recipient) pair this agency sent, as the hub tracks it."""

    sender_doc_id: str
    receiver_doc_id: str
    sender: str
    recipient: str
    send_status: str
    receive_status: str  # e.g. "pending", "done", "fail"


@dataclass(frozen=True)
class Agency:
    """A directory entry: an organisation the hub can deliver to."""

    organ_id: str
    name: str
    mail: str = ""
    parent_id: str = ""
    hub_id: str = ""  # the hub's internal id of the entry, if any


@runtime_checkable
class HubTransport(Protocol):
    """What the daemon needs from any interconnect hub (VXP, eDoc REST, ...)."""

    def send(
        self,
        package: bytes,
        *,
        message_type: MessageType,
        sender: str,
        to: Sequence[str] = (),
    ) -> str:
        """Hand ``package`` to the hub; return the hub's id for it.

        ``to`` may narrow delivery to some of the package's own recipients; empty means
        "every recipient named in the package". Resending identical bytes is safe.
        """
        ...

    def pending(self, message_type: MessageType) -> list[PendingItem]:
        """Packages of this kind waiting for this agency, most urgent first if the hub knows."""
        ...

    def fetch(self, doc_id: str) -> bytes:
        """The exact bytes of one pending package."""
        ...

    def acknowledge(self, doc_id: str, ok: bool) -> None:
        """Tell the hub the package was durably taken (``ok``) or is broken (not ``ok``).

        Either way the hub stops listing it. Call only after the durable hand-off.
        """
        ...

    def directory(self) -> list[Agency]:
        """The organisations the hub knows (OrganIds are data, never constants)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

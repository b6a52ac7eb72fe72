"""Interconnect transports: how the connector talks to a provincial hub / the national axis.

``HubTransport`` is the contract (send, pending, fetch, acknowledge, directory); ``VxpClient``
speaks the VXP protocol (interconnect.md §1), ``EdocRestClient`` the eDoc REST v2 protocol of
Bkav provincial hubs (§2). Retries and metrics live around transports,
not in them.
"""

from connector.interconnect.base import (
    MESSAGE_TYPES,
    Agency,
    HubTransport,
    MessageType,
    PendingItem,
    SentItem,
)
from connector.interconnect.credentials import Secret
from connector.interconnect.edoc_rest import EdocRestClient, EdocRestSettings
from connector.interconnect.vxp import VxpClient, VxpSettings

__all__ = [
    "MESSAGE_TYPES",
    "Agency",
    "EdocRestClient",
    "EdocRestSettings",
    "HubTransport",
    "MessageType",
    "PendingItem",
    "Secret",
    "SentItem",
    "VxpClient",
    "VxpSettings",
]

"""The interconnect hub emulator: a loopback VXP hub for the demo and the tests.

``HubEmulator(config).start()`` serves in a background thread and returns its base URL;
``connector hub --config FILE`` runs it as a process.
"""

from connector.hub.config import (
    Account,
    DirectoryEntry,
    FaultSettings,
    HubConfig,
    RefusalRule,
)
from connector.hub.server import HubEmulator, RequestRecord
from connector.hub.store import Delivery, StoredPackage

__all__ = [
    "Account",
    "Delivery",
    "DirectoryEntry",
    "FaultSettings",
    "HubConfig",
    "HubEmulator",
    "RefusalRule",
    "RequestRecord",
    "StoredPackage",
]

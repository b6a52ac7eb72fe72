"""The spool folder's ``Sink`` half: received items into ``inbound/``, events into ``events/``.

A delivery is written once, durably: into a hidden ``.<id>.part`` folder, fsynced, then
renamed into place, with a small ledger under ``.state/delivered`` recording the intent
before the rename and the completion after (a crash in between finishes the rename, never
writes twice). Received file names are fitted to the file system (``filenames.fit_names``:
byte length, reserved names, control and bidi characters); ``delivery.json`` lists each
name as received beside the file written. A file that cannot be written because of the
item itself (``spool_files.item_fault``) fails that delivery (``PermanentError``); a folder
failure raises ``UnavailableError``. Also the small file helpers both halves use. This
module must not read ``outbound/`` nor interpret record contents.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from connector.errors import PermanentError, UnavailableError
from connector.local.base import H_ORGANISATION, LocalDelivery, LocalEvent
from connector.local.filenames import DELIVERY_RESERVED, fit_names
from connector.local.spool_files import item_fault
from connector.timeutil import VN_TZ, now_vn

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
# The delivery header naming the organisation a delivery is for (several organisations).
ORGANISATION_HEADER = H_ORGANISATION


def safe_name(identifier: str, *, limit: int = 120) -> str:
    """A file name for an id: itself when already safe, else a readable form plus a hash."""
    cleaned = _SAFE.sub("_", identifier).lstrip(".") or "_"
    if cleaned == identifier and len(cleaned) <= limit:
        return cleaned
    digest = hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:12]
    return f"{cleaned[: limit - 13]}-{digest}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside ``path`` under a hidden temporary name, fsync, rename, fsync the folder."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write_file(temporary, data)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    fsync_dir(path.parent)


def json_bytes(value: object) -> bytes:
    try:
        text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate in a sender's name: escaped, still JSON
        return json.dumps(value, ensure_ascii=True, indent=2, default=str).encode() + b"\n"


@contextlib.contextmanager
def folder_errors(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise UnavailableError(
            f"spool: {what}: {exc.strerror or exc} ({exc.filename or ''})".rstrip(" ()"),
            reason="spool_unavailable",
            stage="local",
        ) from exc


class SpoolSink:
    """``Sink`` over ``inbound/`` and ``events/`` (``SpoolFolder`` sets the folders)."""

    inbound: Path
    events: Path
    _ledger: Path
    _deliver_lock: threading.Lock
    _sequence: itertools.count[int]

    def deliver(self, delivery: LocalDelivery) -> None:
        """Write ``inbound/<delivery id>/`` once, durably; a repeated id is a no-op. A delivery
        naming the organisation it is for (header ``organ-id``, a connector serving several
        organisations) goes to ``inbound/<OrganId>/<delivery id>/``."""
        name = safe_name(delivery.delivery_id)
        inbound = self.inbound
        organ_id = delivery.headers.get(ORGANISATION_HEADER)
        if organ_id:
            inbound = self.inbound / safe_name(organ_id)
        final = inbound / name
        partial = inbound / f".{name}.part"
        marker = self._ledger / name
        with self._deliver_lock, folder_errors(f"cannot deliver {delivery.delivery_id}"):
            if organ_id:
                inbound.mkdir(exist_ok=True)
            state = marker.read_text("ascii").strip() if marker.exists() else ""
            if final.exists() or state == "done":
                return
            if state == "prepared":
                # A crash came after the folder was complete: finish the rename if it has
                # not happened; if the folder is gone the agency already took it.
                if partial.is_dir():
                    os.rename(partial, final)
                    fsync_dir(inbound)
                write_atomically(marker, b"done\n")
                return
            if partial.exists():
                shutil.rmtree(partial)  # an interrupted write never became visible
            partial.mkdir()
            try:
                manifest = self._write_delivery(partial, delivery)
                write_file(partial / "delivery.json", json_bytes(manifest))
            except OSError as exc:
                if not item_fault(exc):
                    raise
                shutil.rmtree(partial, ignore_errors=True)
                raise PermanentError(
                    f"delivery {delivery.delivery_id}: a file of it cannot be written into "
                    f"{inbound}: {exc.strerror or exc}",
                    reason="delivery_unwritable", stage="deliver") from None
            fsync_dir(partial)
            write_atomically(marker, b"prepared\n")
            os.rename(partial, final)
            fsync_dir(inbound)
            write_atomically(marker, b"done\n")

    def _write_delivery(self, folder: Path, delivery: LocalDelivery) -> dict[str, object]:
        extension = {"application/json": ".json", "application/xml": ".xml", "text/xml": ".xml"}
        record_file = "record" + extension.get(delivery.content_type.split(";")[0].strip(), ".bin")
        write_file(folder / record_file, delivery.body)
        names = fit_names([original for original, _ in delivery.attachments],
                          reserved=DELIVERY_RESERVED, fallback="attachment")
        files = []
        for (original, data), file_name in zip(delivery.attachments, names, strict=True):
            write_file(folder / file_name, data)
            files.append(
                {
                    "name": original,
                    "file": file_name,
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
        return {
            "delivery_id": delivery.delivery_id,
            "kind": delivery.kind.value,
            "content_type": delivery.content_type,
            "record": record_file,
            "attachments": files,
            "headers": dict(delivery.headers),
            "written_at": now_vn().isoformat(),
        }

    def prune_ledger(self, older_than_days: float = 30.0) -> int:
        """Forget completed deliveries older than this; returns how many were forgotten.

        Safe once the tracking store knows the package (it refuses a second delivery of the
        same inbound package by itself); the ledger only covers a crash mid-delivery.
        """
        cutoff = time.time() - older_than_days * 86400
        removed = 0
        with self._deliver_lock, folder_errors("cannot prune the delivery ledger"):
            for entry in os.scandir(self._ledger):
                if entry.stat().st_mtime < cutoff and Path(entry.path).read_bytes() == b"done\n":
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def emit(self, event: LocalEvent) -> None:
        """Write ``events/<time>-<routing key>-<id>.json`` atomically (names sort by time)."""
        moment = dt.datetime.now(dt.UTC)
        event_id = event.event_id or uuid.uuid4().hex
        name = (
            f"{moment:%Y%m%dT%H%M%S%f}Z-{next(self._sequence) % 1000000:06d}-"
            f"{safe_name(event.routing_key, limit=40)}-{safe_name(event_id, limit=60)}.json"
        )
        document = {
            "event_id": event_id,
            "routing_key": event.routing_key,
            "time": moment.astimezone(VN_TZ).isoformat(timespec="milliseconds"),
            "body": dict(event.body),
        }
        with folder_errors(f"cannot write event {event.routing_key}"):
            write_atomically(self.events / name, json_bytes(document))

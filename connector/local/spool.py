"""The spool folder: the embedded local side (``Intake`` and ``Sink`` over plain folders).

The file-drop pattern of eDelivery gateways. Layout under the spool root (names configurable)::

    outbound/[<mapping>/]<record-id>.json|.xml   agency → connector: documents to send
    commands/[<mapping>/]<command-id>.json|.xml  agency → connector: workflow commands (02..16)
    inbound/<delivery-id>/                       connector → agency: one folder per delivery:
        record.json|record.xml                     the document or status notice, mapped
        delivery.json                              id, kind, content type, headers, file list
        <attachment files>                         as received (verified, decrypted)
    events/<time>-<routing key>-<id>.json        connector → agency: one file per event
    failed/outbound/.../<record-id>.json         refused records, same relative path, with
    failed/outbound/.../<record-id>.json.reason.json   the reason beside them
    .state/  .lock                               the connector's own bookkeeping

Rules for agency software (writers):

* Write a record under a temporary name, then rename it into place: a name starting with
  ``.`` or ending with ``.tmp``, ``.part`` or ``.partial`` is never read. A rename in the same
  folder is atomic, so a half-written record is never picked up. Files younger than the
  settle time (1 s by default) are also left alone, for writers that cannot rename.
* The record id is the file name without ``.json``/``.xml``; it must be unique (it is the
  idempotency key: a record dropped twice is sent once). The mapping is the subfolder name;
  a record directly in ``outbound/`` uses the configured default mapping.
* A record leaves ``outbound/`` only once the connector has stored it (``ack``); until then
  it stays, and after a crash it is simply read again.
* Readers of ``inbound/`` see only complete folders (written under a hidden ``.part`` name,
  fsynced, then renamed); they may move or delete them when done. ``events/`` likewise.
* To replay a refused record, fix it and move it back: ``mv failed/outbound/x.json
  outbound/x.json`` (and delete ``x.json.reason.json``), or call :meth:`SpoolFolder.replay`.

A delivery is never written twice for the same delivery id, even after the agency removed it
and even across a crash in the middle of writing: a small ledger under ``.state/delivered``
records the intent before the folder is renamed into place and the completion after.
Folder failures (missing mount, disk full) raise ``UnavailableError``; a failure caused by
one item (a record too large or not a regular file, an attachment name the file system
cannot store, a reason file that cannot be written under the record's name) is that item's
failure (``PermanentError`` or a refusal), never an outage: it never blocks the items behind
it. Received file names are fitted to the file system (``filenames.fit_names``); the
``delivery.json`` list keeps each original name beside the file really written. This module
must not interpret record contents.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from connector.config_schema import SpoolConfig
from connector.errors import ConfigurationError, ConnectorError, PermanentError, UnavailableError
from connector.local.base import LocalDelivery, LocalEvent, LocalRecord, RecordKind, RecordLimits
from connector.local.filenames import DELIVERY_RESERVED, fit_name, fit_names, fits
from connector.local.spool_files import item_fault, read_record
from connector.timeutil import VN_TZ, now_vn

log = logging.getLogger(__name__)

RECORD_TYPES = {".json": "application/json", ".xml": "application/xml"}
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", "~", ".reason.json")
REASON_SUFFIX = ".reason.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


# The delivery header naming the organisation a delivery is for (several organisations).
ORGANISATION_HEADER = "organ-id"


def safe_name(identifier: str, *, limit: int = 120) -> str:
    """A file name for an id: itself when already safe, else a readable form plus a hash."""
    cleaned = _SAFE.sub("_", identifier).lstrip(".") or "_"
    if cleaned == identifier and len(cleaned) <= limit:
        return cleaned
    digest = hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:12]
    return f"{cleaned[: limit - 13]}-{digest}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside ``path`` under a hidden temporary name, fsync, rename, fsync the folder."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _write_file(temporary, data)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _fsync_dir(path.parent)


def _json(value: object) -> bytes:
    try:
        text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate in a sender's name: escaped, still JSON
        return json.dumps(value, ensure_ascii=True, indent=2, default=str).encode() + b"\n"


def _text(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by Python as surrogates) shown as
    U+FFFD, so ids, events and the store never meet an unencodable string."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@contextlib.contextmanager
def _folder_errors(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise UnavailableError(
            f"spool: {what}: {exc.strerror or exc} ({exc.filename or ''})".rstrip(" ()"),
            reason="spool_unavailable",
            stage="local",
        ) from exc


class SpoolItem:
    """One record taken from the spool; settled once by ``ack``, ``dead_letter`` or ``release``."""

    def __init__(self, spool: SpoolFolder, path: Path, record: LocalRecord, stamp: tuple[int, int]):
        self._spool = spool
        self.path = path
        self._record = record
        self._stamp = stamp  # (inode, mtime_ns) when read: an overwritten file is not removed
        self._settled = False

    @property
    def record(self) -> LocalRecord:
        return self._record

    def ack(self) -> None:
        if not self._settled:
            self._spool._ack(self)
            self._settled = True

    def dead_letter(self, error: ConnectorError) -> None:
        if not self._settled:
            self._spool._dead_letter(self, error)
            self._settled = True

    def release(self) -> None:
        if not self._settled:
            self._spool._forget(self.path)
            self._settled = True


class SpoolFolder:
    """``Intake`` and ``Sink`` over a spool root. One connector per root (a lock file says so)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        outbound: str | os.PathLike[str] = "outbound",
        commands: str | os.PathLike[str] = "commands",
        inbound: str | os.PathLike[str] = "inbound",
        events: str | os.PathLike[str] = "events",
        failed: str | os.PathLike[str] = "failed",
        settle_seconds: float = 1.0,
        poll_interval: float = 0.5,
        exclusive: bool = True,
        limits: RecordLimits | None = None,
    ) -> None:
        self.root = Path(root)
        self.outbound, self.commands = self.root / outbound, self.root / commands
        self.inbound, self.events = self.root / inbound, self.root / events
        self.failed = self.root / failed
        self._ledger = self.root / ".state" / "delivered"
        self.settle_seconds = settle_seconds
        self.poll_interval = poll_interval
        self.limits = limits or RecordLimits()
        # Records that could not even be moved to failed/ (and why): skipped until restart.
        self._stuck: dict[Path, tuple[int, int]] = {}
        self._in_flight: set[Path] = set()
        self._lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        self._sequence = itertools.count()
        self._lock_file: int | None = None
        folders = [self.outbound, self.commands, self.inbound, self.events, self.failed]
        for a, b in itertools.permutations(folders, 2):
            if a == b or a.is_relative_to(b):
                raise ConfigurationError(
                    f"spool folders must be distinct and not nested: {a} and {b}",
                    reason="spool_layout",
                )
        try:
            for folder in (*folders, self._ledger):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the spool folders under {self.root}: {exc.strerror}",
                reason="spool_layout",
            ) from None
        if exclusive:
            self._take_lock()

    @classmethod
    def from_config(cls, config: SpoolConfig, *, exclusive: bool = True,
                    limits: RecordLimits | None = None) -> SpoolFolder:
        dirs = config.dirs
        return cls(
            config.root,
            outbound=dirs.outbound,
            commands=dirs.commands,
            inbound=dirs.inbound,
            events=dirs.events,
            failed=dirs.failed,
            settle_seconds=config.settle_seconds,
            poll_interval=config.poll_interval,
            exclusive=exclusive,
            limits=limits,
        )

    def _take_lock(self) -> None:
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise ConfigurationError(
                    f"another connector already uses the spool {self.root}", reason="spool_locked"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_file = fd

    def close(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)  # releases the flock
            self._lock_file = None

    # -- Intake ----------------------------------------------------------------------------

    def fetch(self, max_items: int, timeout: float) -> Sequence[SpoolItem]:
        """Up to ``max_items`` settled records (oldest first), waiting up to ``timeout`` s."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            items = self._take(max_items)
            remaining = deadline - time.monotonic()
            if items or remaining <= 0:
                return items
            time.sleep(min(self.poll_interval, remaining))

    def _candidates(self) -> list[tuple[int, str, Path, RecordKind, str | None]]:
        found: list[tuple[int, str, Path, RecordKind, str | None]] = []
        now_ns = time.time_ns()
        settle_ns = int(self.settle_seconds * 1e9)
        for folder, kind in (
            (self.outbound, RecordKind.RECORD),
            (self.commands, RecordKind.COMMAND),
        ):
            with _folder_errors(f"cannot list {folder}"):
                top = list(os.scandir(folder))
            # Top-level folders are mapping folders; anything else with a record suffix
            # (a FIFO, a device, a link, a nested folder) is refused like a bad record.
            entries: list[tuple[os.DirEntry[str], str | None]]
            entries = [(entry, None) for entry in top if not entry.is_dir(follow_symlinks=False)]
            for sub in top:
                if sub.is_dir(follow_symlinks=False) and not sub.name.startswith("."):
                    with contextlib.suppress(OSError):
                        entries += [(e, sub.name) for e in os.scandir(sub.path)]
            for entry, mapping in entries:
                name = entry.name
                if name.startswith(".") or name.endswith(IGNORED_SUFFIXES):
                    continue
                if Path(name).suffix.lower() not in RECORD_TYPES:
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                mtime = info.st_mtime_ns
                if now_ns - mtime < settle_ns:
                    continue
                if self._stuck.get(Path(entry.path)) == (info.st_ino, mtime):
                    continue
                found.append((mtime, name, Path(entry.path), kind, mapping))
        found.sort(key=lambda c: (c[0], c[1]))
        return found

    def _take(self, max_items: int) -> list[SpoolItem]:
        items: list[SpoolItem] = []
        for _, name, path, kind, mapping in self._candidates():
            if len(items) >= max_items:
                break
            with self._lock:
                if path in self._in_flight:
                    continue
                self._in_flight.add(path)
            try:
                read = read_record(path, self.limits.max_record_bytes)
                info = os.lstat(path)
            except OSError:
                self._forget(path)  # vanished or unreadable now: try again at the next scan
                continue
            refusal = read if isinstance(read, PermanentError) else None
            body = b"" if isinstance(read, PermanentError) else read[0]
            if not isinstance(read, PermanentError):
                info = read[1]
            suffix = Path(name).suffix
            relative = str(path.relative_to(self.root))
            if refusal is None and _text(relative) != relative:
                refusal = PermanentError(
                    f"record file {_text(relative)!r}: its name is not valid UTF-8; name "
                    "records in UTF-8 (the name is the record id)",
                    reason="record_name_invalid", stage="intake")
                body = b""
            record = LocalRecord(
                record_id=_text(name[: -len(suffix)]),
                refusal=refusal,
                body=body,
                content_type=RECORD_TYPES[suffix.lower()],
                mapping=None if mapping is None else _text(mapping),
                kind=kind,
                source=_text(str(path)),
                headers={"x-spool-file": _text(relative)},
            )
            items.append(SpoolItem(self, path, record, (info.st_ino, info.st_mtime_ns)))
        return items

    def _forget(self, path: Path) -> None:
        with self._lock:
            self._in_flight.discard(path)

    def _ack(self, item: SpoolItem) -> None:
        try:
            with _folder_errors(f"cannot remove {item.path}"):
                try:
                    info = item.path.stat()
                except FileNotFoundError:
                    return  # already gone (an operator moved it): nothing to remove
                if (info.st_ino, info.st_mtime_ns) != item._stamp:
                    return  # replaced by a newer file under the same name: read that one next
                item.path.unlink(missing_ok=True)
                _fsync_dir(item.path.parent)
        finally:
            self._forget(item.path)

    def _dead_letter(self, item: SpoolItem, error: ConnectorError) -> None:
        relative = item.path.relative_to(self.root)
        target = self.failed / relative
        reason: dict[str, object] = {
            "record_id": item.record.record_id,
            "file": str(relative),
            "reason": error.reason,
            "kind": error.kind,
            "stage": error.stage,
            "message": error.message,
            "time": now_vn().isoformat(),
            "replay": f"fix the record, then: mv {target} {item.path} (and delete this file)",
        }
        try:
            with _folder_errors(f"cannot move {item.path} to {target}"):
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self._move_to_failed(item, target, reason)
                except OSError as exc:
                    if not item_fault(exc):
                        raise
                    # The name does not fit there (longer path, other file system): both
                    # files get a fitted name; the reason file keeps the original one.
                    target = target.with_name(fit_name(target.name))
                    reason["failed_file"] = str(target.relative_to(self.root))
                    try:
                        self._move_to_failed(item, target, reason)
                    except OSError as again:
                        if not item_fault(again):
                            raise
                        self._set_aside(item, again)
        finally:
            self._forget(item.path)

    def _move_to_failed(self, item: SpoolItem, target: Path, reason: dict[str, object]) -> None:
        reason_file = target.name + REASON_SUFFIX
        if not fits(reason_file):
            reason_file = fit_name(target.name, max_bytes=200) + REASON_SUFFIX
        _write_atomically(target.with_name(reason_file), _json(reason))
        try:
            os.replace(item.path, target)  # a FIFO, device or link is renamed, never opened
        except FileNotFoundError:
            return  # an operator took it meanwhile: nothing left to move
        except OSError as exc:
            if exc.errno != errno.EXDEV or not item.path.is_file():
                raise
            shutil.copy2(item.path, target, follow_symlinks=False)  # failed/ elsewhere
            item.path.unlink()
        _fsync_dir(target.parent)
        _fsync_dir(item.path.parent)

    def _set_aside(self, item: SpoolItem, exc: OSError) -> None:
        """Neither the record nor its reason can be written into failed/: remember it, so it
        is not read again by this process, and say so loudly (it is the item's fault)."""
        self._stuck[item.path] = item._stamp
        log.error("record %s refused, but it cannot be moved to %s (%s): it stays where it is "
                  "and is skipped until restart; move it away by hand", item.path,
                  self.failed, exc.strerror or exc)

    def replay(self, failed_file: str | os.PathLike[str]) -> Path:
        """Move a refused record (path under ``failed/``) back where it came from."""
        source = Path(failed_file)
        if not source.is_absolute():
            source = self.failed / source
        relative = source.relative_to(self.failed)
        target = self.root / relative
        with _folder_errors(f"cannot replay {source}"):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            source.with_name(source.name + REASON_SUFFIX).unlink(missing_ok=True)
            _fsync_dir(target.parent)
        return target

    # -- Sink ------------------------------------------------------------------------------

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
        with self._deliver_lock, _folder_errors(f"cannot deliver {delivery.delivery_id}"):
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
                    _fsync_dir(inbound)
                _write_atomically(marker, b"done\n")
                return
            if partial.exists():
                shutil.rmtree(partial)  # an interrupted write never became visible
            partial.mkdir()
            try:
                manifest = self._write_delivery(partial, delivery)
                _write_file(partial / "delivery.json", _json(manifest))
            except OSError as exc:
                if not item_fault(exc):
                    raise
                shutil.rmtree(partial, ignore_errors=True)
                raise PermanentError(
                    f"delivery {delivery.delivery_id}: a file of it cannot be written into "
                    f"{inbound}: {exc.strerror or exc}",
                    reason="delivery_unwritable", stage="deliver") from None
            _fsync_dir(partial)
            _write_atomically(marker, b"prepared\n")
            os.rename(partial, final)
            _fsync_dir(inbound)
            _write_atomically(marker, b"done\n")

    def _write_delivery(self, folder: Path, delivery: LocalDelivery) -> dict[str, object]:
        extension = {"application/json": ".json", "application/xml": ".xml", "text/xml": ".xml"}
        record_file = "record" + extension.get(delivery.content_type.split(";")[0].strip(), ".bin")
        _write_file(folder / record_file, delivery.body)
        names = fit_names([original for original, _ in delivery.attachments],
                          reserved=DELIVERY_RESERVED, fallback="attachment")
        files = []
        for (original, data), file_name in zip(delivery.attachments, names, strict=True):
            _write_file(folder / file_name, data)
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
        with self._deliver_lock, _folder_errors("cannot prune the delivery ledger"):
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
        with _folder_errors(f"cannot write event {event.routing_key}"):
            _write_atomically(self.events / name, _json(document))

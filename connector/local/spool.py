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

A connector serving several organisations also reads ``outbound/<OrganId>/`` (the records of
that organisation; the daemon tells such a folder from a mapping's) and writes a delivery
naming its organisation (header ``organ-id``) into ``inbound/<OrganId>/<delivery-id>/``.

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
``delivery.json`` list keeps each original name beside the file really written. The
``Sink`` half (``inbound/``, ``events/``) is ``spool_sink.SpoolSink``; this module is the
``Intake`` half and the folder as a whole. It must not interpret record contents.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from connector.config_schema import SpoolConfig
from connector.errors import ConfigurationError, ConnectorError, PermanentError
from connector.local.base import LocalRecord, RecordKind, RecordLimits
from connector.local.filenames import fit_name, fits
from connector.local.spool_files import item_fault, read_record
from connector.local.spool_sink import (
    ORGANISATION_HEADER,
    SpoolSink,
    folder_errors,
    fsync_dir,
    json_bytes,
    safe_name,
)
from connector.local.spool_sink import write_atomically as _write_atomically
from connector.timeutil import now_vn

__all__ = ["ORGANISATION_HEADER", "REASON_SUFFIX", "SpoolFolder", "SpoolItem", "safe_name"]

log = logging.getLogger(__name__)

RECORD_TYPES = {".json": "application/json", ".xml": "application/xml"}
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", "~", ".reason.json")
REASON_SUFFIX = ".reason.json"


def _text(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by Python as surrogates) shown as
    U+FFFD, so ids, events and the store never meet an unencodable string."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


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


class SpoolFolder(SpoolSink):
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
                holder = (self.root / ".lock").read_text("ascii", "replace").strip()
                raise ConfigurationError(
                    f"another connector{f' (pid {holder})' if holder.isdigit() else ''} "
                    f"already uses the spool {self.root}: the spool folder local side runs "
                    "as one instance only (several replicas need local.type: amqp and a "
                    "PostgreSQL store)",
                    reason="spool_locked",
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
            with folder_errors(f"cannot list {folder}"):
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
            with folder_errors(f"cannot remove {item.path}"):
                try:
                    info = item.path.stat()
                except FileNotFoundError:
                    return  # already gone (an operator moved it): nothing to remove
                if (info.st_ino, info.st_mtime_ns) != item._stamp:
                    return  # replaced by a newer file under the same name: read that one next
                item.path.unlink(missing_ok=True)
                fsync_dir(item.path.parent)
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
            with folder_errors(f"cannot move {item.path} to {target}"):
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
        _write_atomically(target.with_name(reason_file), json_bytes(reason))
        try:
            os.replace(item.path, target)  # a FIFO, device or link is renamed, never opened
        except FileNotFoundError:
            return  # an operator took it meanwhile: nothing left to move
        except OSError as exc:
            if exc.errno != errno.EXDEV or not item.path.is_file():
                raise
            shutil.copy2(item.path, target, follow_symlinks=False)  # failed/ elsewhere
            item.path.unlink()
        fsync_dir(target.parent)
        fsync_dir(item.path.parent)

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
        with folder_errors(f"cannot replay {source}"):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            source.with_name(source.name + REASON_SUFFIX).unlink(missing_ok=True)
            fsync_dir(target.parent)
        return target

"""End-to-end harness: the hub emulator in the test process, agencies as ``connector run``.

A :class:`World` is one test's universe under a temporary folder: a demo PKI (made once per
session), the hub emulator (``config/hub.yaml`` with a temporary database, started in this
process so tests can inject faults and look inside), and agencies A and B run as real
``connector run`` subprocesses on the shipped configurations (``config/connector.yaml``,
``config/connector-b.yaml``) with their state moved by ``CONNECTOR_VAR``. A test may run an
agency on a configuration *derived* from the shipped one (shorter retry delays, leases or
timeouts) with :meth:`World.derive`.

Helpers drop records the way agency software does (signed main PDF, temporary name, atomic
rename), read events and deliveries from the spool folders, open a tracking store beside a
running daemon, and wait with deadlines instead of fixed sleeps. This module runs no test.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from lxml import etree

from connector.hub import config as hub_config
from connector.hub.server import HubEmulator
from connector.hub.store import StoredPackage
from connector.store.sqlite import SqliteStore
from connector.timeutil import now_vn
from connector.trust.atrest import PayloadCipher, generate_key
from connector.trust.keys import KeySource
from connector.trust.pdf_seal import sign_pdf
from connector.trust.pki import DemoPki

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "mappings" / "examples"
CONFIG_A = ROOT / "config" / "connector.yaml"
CONFIG_B = ROOT / "config" / "connector-b.yaml"
HUB_CONFIG = ROOT / "config" / "hub.yaml"
A_ID = "000.00.31.H12"
B_ID = "000.00.32.H12"

# Every example record of agency A, by format (JSON: outbound/; legacy XML: outbound/legacy-xml/).
JSON_RECORDS = (
    "01-ordinary.json",
    "02-urgent.json",
    "03-attachments.json",
    "04-reply.json",
    "05-revoke.json",
    "06-update.json",
    "07-replace.json",
)
JSON_SECRET = "08-secret.json"
XML_RECORDS = (
    "01-ordinary.xml",
    "02-urgent.xml",
    "03-attachments.xml",
    "04-reply.xml",
    "05-replace.xml",
    "06-revoke.xml",
)
XML_SECRET = "08-secret.xml"

T = TypeVar("T")


class Timeout(AssertionError):
    pass


# -- records as agency software writes them ---------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One record ready to drop: the file name (its stem is the record id) and its bytes."""

    name: str
    data: bytes
    mapping: str | None  # the spool subfolder (mapping); None = the configured default
    code: str  # "số/ký hiệu" as it appears in the DocumentId
    subject: str  # trích yếu
    secret: bool = False

    @property
    def record_id(self) -> str:
        return Path(self.name).stem


def _signed_pdf(b64: str, signer: KeySource) -> str:
    pdf = base64.b64decode(b64)
    return base64.b64encode(sign_pdf(pdf, signer)).decode("ascii")


def json_record(name: str, signer: KeySource, spool_root: Path) -> Record:
    """An example JSON record of A, dated today, its main PDF signed by A's signer.

    The file is named after the record's own id, so records of different formats never share
    an idempotency key. Attachments referenced from the spool are copied beside it.
    """
    record = json.loads((EXAMPLES / "qlvb-json" / name).read_text("utf-8"))
    record["ngay_ban_hanh"] = now_vn().date().isoformat()
    main = record.get("van_ban_chinh") or {}
    if "noi_dung_base64" in main:
        main["noi_dung_base64"] = _signed_pdf(main["noi_dung_base64"], signer)
    for item in [main, *record.get("tep_dinh_kem", [])]:
        if "tep_spool" in item:
            spool_root.mkdir(parents=True, exist_ok=True)
            shutil.copy2(EXAMPLES / "spool" / item["tep_spool"], spool_root / item["tep_spool"])
    data = json.dumps(record, ensure_ascii=False, indent=2).encode("utf-8")
    return Record(
        name=f"{record['id']}.json",
        data=data,
        mapping=None,
        code=f"{record['so']}/{record['ky_hieu']}",
        subject=record["trich_yeu"],
        secret=record.get("do_mat", "Thường") != "Thường",
    )


def xml_record(name: str, signer: KeySource, spool_root: Path) -> Record:
    """An example legacy-XML record of A (``outbound/legacy-xml/``), dated today and signed."""
    tree = etree.fromstring((EXAMPLES / "legacy-xml" / name).read_bytes())
    tree.find("NgayBanHanh").text = now_vn().strftime("%d/%m/%Y")
    main = tree.find("TepTin/VanBanChinh")
    if main is not None and (main.text or "").strip():
        main.text = _signed_pdf(main.text.strip(), signer)
    for item in tree.iterfind("TepTin/*"):
        path = item.get("DuongDan")
        if path:
            spool_root.mkdir(parents=True, exist_ok=True)
            shutil.copy2(EXAMPLES / "spool" / path, spool_root / path)
    data = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    return Record(
        name=f"{tree.get('ID')}.xml",
        data=data,
        mapping="legacy-xml",
        code=tree.findtext("SoKyHieu") or "",
        subject=tree.findtext("TrichYeu") or "",
        secret=(tree.findtext("DoMat") or "BT") != "BT",
    )


def xml_recall_command(name: str, document_id: str) -> tuple[str, bytes]:
    """An example legacy-XML workflow command of A, made to name ``document_id`` (dated today)."""
    tree = etree.fromstring((EXAMPLES / "legacy-xml" / name).read_bytes())
    document = tree.find("VanBan")
    document.set("MaDinhDanh", document_id)
    document.set("NgayBanHanh", now_vn().strftime("%d/%m/%Y"))
    return f"{tree.get('ID')}.xml", etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def drop(folder: Path, name: str, data: bytes) -> Path:
    """Write under a hidden temporary name, then rename into place (the spool's writer rule)."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp"
    temporary.write_bytes(data)
    final = folder / name
    temporary.rename(final)
    return final


def status_command(
    command_id: str, code: str, document_id: str, *, note: str = "", sender_code: str = "SNV"
) -> bytes:
    """A local workflow command (02..06, 13, 15, 16) about a received document, as JSON."""
    number = document_id.rsplit(",", 1)[-1]
    command = {
        "id": command_id,
        "loai_ban_ghi": "trang_thai",
        "ma_trang_thai": code,
        "van_ban": {
            "ma_dinh_danh": document_id,
            "co_quan_gui": sender_code,
            "so_ky_hieu": number,
            "ngay_ban_hanh": now_vn().date().isoformat(),
        },
        "can_bo": {"phong_ban": "Văn phòng Sở", "ho_ten": "Trần Thị Bình"},
        "ghi_chu": note or f"trạng thái {code}",
        "thoi_diem": now_vn().isoformat(),
    }
    return json.dumps(command, ensure_ascii=False).encode("utf-8")


# -- what the local side sees -----------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One folder under ``inbound/``: a received document or status notice."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind"))

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.manifest.get("headers") or {})

    @property
    def document_id(self) -> str:
        return self.headers.get("document-id", "")

    def record(self) -> dict[str, Any]:
        data = (self.folder / str(self.manifest["record"])).read_bytes()
        loaded: dict[str, Any] = json.loads(data)
        return loaded

    def files(self) -> dict[str, bytes]:
        """Attachment bytes by their original name."""
        return {
            str(item["name"]): (self.folder / str(item["file"])).read_bytes()
            for item in self.manifest.get("attachments", [])
        }


@dataclass
class Agency:
    """One connector: its configuration, its folders, and its ``connector run`` process."""

    name: str
    organ_id: str
    config: Path
    home: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0
    logs: list[Path] = field(default_factory=list)

    # -- folders --------------------------------------------------------------------------
    @property
    def spool(self) -> Path:
        return self.home / "spool"

    @property
    def store_path(self) -> Path:
        return self.home / "store.sqlite"

    @property
    def key_file(self) -> Path:
        return self.home / "at-rest.keys"

    # -- process --------------------------------------------------------------------------
    def start(
        self, *, fault: str | None = None, extra_env: Mapping[str, str] | None = None
    ) -> None:
        """``connector run`` in the background; ``fault`` sets CONNECTOR_FAULT for this run."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.runs += 1
        log = self.home / f"connector-{self.runs}.log"
        self.logs.append(log)
        env = dict(self.env)
        env.pop("CONNECTOR_FAULT", None)
        if fault:
            env["CONNECTOR_FAULT"] = fault
        env.update(extra_env or {})
        with log.open("wb") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "connector", "run", "--config", str(self.config)],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for the graceful exit; its exit code (None if never started)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for the process to end by itself (e.g. a CONNECTOR_FAULT kill); its code."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Timeout(
                f"connector {self.name} still running after {timeout:.0f}s\n{self.log_tail()}"
            ) from None

    def log_text(self) -> str:
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text('utf-8', 'replace')}"
            for path in self.logs
            if path.exists()
        )

    def log_tail(self, lines: int = 40) -> str:
        if not self.logs or not self.logs[-1].exists():
            return f"(connector {self.name}: no log)"
        text = self.logs[-1].read_text("utf-8", "replace").splitlines()
        return f"--- connector {self.name}, {self.logs[-1]} ---\n" + "\n".join(text[-lines:])

    # -- local side -------------------------------------------------------------------------
    def drop_record(self, record: Record) -> Path:
        folder = self.spool / "outbound"
        if record.mapping:
            folder = folder / record.mapping
        return drop(folder, record.name, record.data)

    def drop_command(self, command_id: str, data: bytes) -> Path:
        return drop(self.spool / "commands", f"{command_id}.json", data)

    def events(self, routing_key: str | None = None) -> list[dict[str, Any]]:
        """Event bodies from ``events/``, oldest first (optionally one routing key only)."""
        folder = self.spool / "events"
        found: list[dict[str, Any]] = []
        if not folder.is_dir():
            return found
        for path in sorted(folder.glob("*.json")):
            try:
                document = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                continue  # hidden temporaries are not globbed; a vanished file is skipped
            if routing_key is None or document.get("routing_key") == routing_key:
                found.append(dict(document["body"]))
        return found

    def deliveries(self, kind: str | None = "document") -> list[Delivery]:
        """Complete folders under ``inbound/`` (optionally of one kind: document, status)."""
        folder = self.spool / "inbound"
        found: list[Delivery] = []
        if not folder.is_dir():
            return found
        for path in sorted(folder.iterdir()):
            if not path.is_dir() or path.name.startswith("."):
                continue
            manifest = json.loads((path / "delivery.json").read_text("utf-8"))
            if kind is None or manifest.get("kind") == kind:
                found.append(Delivery(path, manifest))
        return found

    def failed_records(self) -> list[Path]:
        folder = self.spool / "failed"
        return sorted(
            p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".reason.json")
        )

    # -- tracking store and operator CLI ----------------------------------------------------
    @contextlib.contextmanager
    def store(self) -> Iterator[SqliteStore]:
        """The tracking store, opened beside the running daemon (WAL: readers do not block)."""
        cipher = PayloadCipher.from_sources(key_file=self.key_file)
        opened = SqliteStore(self.store_path, cipher)
        try:
            yield opened
        finally:
            opened.close()

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``connector ARGS --config <this agency's config>`` with its environment."""
        command = [sys.executable, "-m", "connector", *args]
        if args and args[0] == "messages":
            command[4:4] = ["--config", str(self.config)]
        else:
            command += ["--config", str(self.config)]
        return subprocess.run(
            command, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )


# -- the world of one test ------------------------------------------------------------------


def derive_config(source: Path, target: Path, changes: Mapping[str, Any]) -> Path:
    """A copy of a shipped configuration with some sections changed (deep merge).

    Relative paths of the shipped file are made absolute, so the copy works from any folder;
    ``${VAR}`` references are kept and resolved from the agency's environment as usual.
    """
    raw = yaml.safe_load(source.read_text("utf-8"))
    base = source.parent
    raw["agency"]["directory"] = str((base / raw["agency"]["directory"]).resolve())
    raw["mappings"]["dir"] = str((base / raw["mappings"]["dir"]).resolve())

    def merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
        for key, value in new.items():
            if isinstance(value, Mapping) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(raw, changes)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), "utf-8")
    return target


# Quick settings for tests that provoke retries, crashes and timeouts: the shipped values
# (1 s base delay, 120 s lease, 60 s read timeout) would make them wait minutes.
FAST = {
    "retry": {"max_attempts": 8, "base_delay": 0.3, "max_delay": 1.5},
    "polling": {"hub_interval": 0.3, "sender_interval": 0.2, "local_wait": 0.3, "lease_seconds": 3},
    "hub": {"timeouts": {"connect": 2, "read": 3, "write": 3, "pool": 3}},
    "shutdown_timeout": 10,
}


class World:
    """Hub emulator + agencies A and B under one temporary folder."""

    def __init__(self, tmp: Path, pki: DemoPki, environ: Callable[[str, str], None]) -> None:
        self.tmp = tmp
        self.pki = pki
        self.var = tmp / "var"
        secrets_by_name = {
            "HUB_SECRET_AGENCY_A": secrets.token_hex(24),
            "HUB_SECRET_AGENCY_B": secrets.token_hex(24),
        }
        for name, value in secrets_by_name.items():
            environ(name, value)  # the in-process hub reads its accounts' secrets from here
        self.env = {
            **os.environ,
            **secrets_by_name,
            "CONNECTOR_VAR": str(self.var),
            "CONNECTOR_PKI": str(pki.directory),
            # Any free port, chosen by the connector itself: a port picked here could be
            # taken (e.g. as an outgoing connection's source port) before it binds.
            "CONNECTOR_A_METRICS_PORT": "0",
            "CONNECTOR_B_METRICS_PORT": "0",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("CONNECTOR_FAULT", None)
        self.hub: HubEmulator | None = None
        self.a = self._agency("A", A_ID, CONFIG_A, "agency-a")
        self.b = self._agency("B", B_ID, CONFIG_B, "agency-b")
        self.signer = KeySource(
            pki.agency(A_ID).signer.key,
            pki.agency(A_ID).signer.cert,
            (pki.agency(A_ID).chain,),
        )

    def _agency(self, name: str, organ_id: str, config: Path, folder: str) -> Agency:
        home = self.var / "demo" / folder
        home.mkdir(parents=True, exist_ok=True)
        keys = home / "at-rest.keys"
        keys.write_text(f"test-1 {generate_key()}\n")
        keys.chmod(0o600)
        # The shipped configurations read the hub secret from this file (secret_file).
        secret = self.env[f"HUB_SECRET_AGENCY_{name}"]
        (home / "hub.secret").write_text(secret + "\n")
        (home / "hub.secret").chmod(0o600)
        return Agency(name, organ_id, config, home, self.env)

    @property
    def agencies(self) -> tuple[Agency, Agency]:
        return self.a, self.b

    def derive(self, agency: Agency, changes: Mapping[str, Any] = FAST) -> Path:
        """Run ``agency`` on a copy of its shipped configuration with ``changes``."""
        source = CONFIG_A if agency is self.a else CONFIG_B
        agency.config = derive_config(
            source, self.tmp / "config" / f"{agency.home.name}.yaml", changes
        )
        return agency.config

    def start_hub(self, **faults: Any) -> HubEmulator:
        overrides: dict[str, Any] = {"port": 0, "db": str(self.tmp / "hub" / "hub.sqlite")}
        if faults:
            overrides["faults"] = faults
        self.hub = HubEmulator(hub_config.load(HUB_CONFIG, overrides))
        url = self.hub.start()
        self.env["CONNECTOR_HUB_URL"] = url
        return self.hub

    def close(self) -> dict[str, int | None]:
        codes = {agency.name: agency.stop() for agency in self.agencies}
        if self.hub is not None:
            self.hub.stop()
        return codes

    # -- records --------------------------------------------------------------------------
    def json_record(self, name: str) -> Record:
        return json_record(name, self.signer, self.a.spool)

    def xml_record(self, name: str) -> Record:
        return xml_record(name, self.signer, self.a.spool)

    # -- waiting --------------------------------------------------------------------------
    def wait(
        self,
        what: str,
        condition: Callable[[], T],
        *,
        timeout: float = 60.0,
        interval: float = 0.2,
        watch: Sequence[Agency] | None = None,
    ) -> T:
        """Poll ``condition`` until it is truthy; fail with the logs when a watched connector
        exits or the deadline passes. Deadlines are generous: CI machines are slow."""
        watched = self.agencies if watch is None else watch
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            for agency in watched:
                if agency.process is not None and agency.process.poll() is not None:
                    raise AssertionError(
                        f"while waiting for {what}: connector {agency.name} exited with "
                        f"{agency.process.returncode}\n{agency.log_tail()}"
                    )
            if time.monotonic() > deadline:
                tails = "\n".join(a.log_tail() for a in self.agencies if a.logs)
                raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")
            time.sleep(interval)

    # -- what the hub holds ---------------------------------------------------------------
    def hub_packages(
        self, sender: str | None = None, kind: str | None = None
    ) -> list[StoredPackage]:
        assert self.hub is not None
        return [
            p
            for p in self.hub.packages()
            if (sender is None or p.sender == sender) and (kind is None or p.message_type == kind)
        ]


def today() -> dt.date:
    return now_vn().date()

"""``make demo``: the whole flow on the embedded defaults, from a fresh clone, in about a minute.

It builds a demo PKI, starts the hub emulator and two agency connectors (A and B, spool
folders, SQLite) as real ``connector run`` processes, drops agency A's example records
(ordinary, urgent, with attachments, and a secret one that must be refused) after A's signer
has signed each main PDF, and waits until B has received the documents (signatures verified)
and A has B's automatic 01; then B's clerk registers one document (03) and A sees it. It prints
a summary and where the metrics are, stops everything and exits 0 — or 1, saying what did not
happen. Everything lives under ``var/demo/``. This module orchestrates; it holds no pipeline
logic.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from connector.hub import config as hub_config
from connector.hub.server import HubEmulator
from connector.timeutil import now_vn
from connector.trust.atrest import PayloadCipher, generate_key
from connector.trust.keys import KeySource
from connector.trust.pdf_seal import sign_pdf
from connector.trust.pki import DemoPki, create_demo_pki

# The checkout holding config/ and mappings/; CONNECTOR_DEMO_ROOT points an installed wheel
# (CI's wheel smoke test) at a copy of them.
ROOT = Path(os.environ.get("CONNECTOR_DEMO_ROOT") or Path(__file__).resolve().parents[1])
EXAMPLES = ROOT / "mappings" / "examples"
RECORDS = ("01-ordinary.json", "02-urgent.json", "03-attachments.json", "08-secret.json")
TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Agency:
    name: str
    organ_id: str
    config: Path
    home: Path
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default=Path())

    @property
    def spool(self) -> Path:
        return self.home / "spool"

    def events(self) -> list[dict[str, object]]:
        folder = self.spool / "events"
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.glob("*.json")):
            try:
                found.append(json.loads(path.read_text("utf-8"))["body"])
            except (OSError, ValueError):
                continue
        return found

    def received(self) -> list[Path]:
        folder = self.spool / "inbound"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _wait(what: str, condition: Callable[[], bool], agencies: list[Agency]) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return True
        for agency in agencies:
            if agency.process is not None and agency.process.poll() is not None:
                say(
                    f"  ! connector {agency.name} exited ({agency.process.returncode}); "
                    f"see {agency.log}"
                )
                return False
        time.sleep(0.3)
    say(f"  ! timed out waiting for: {what}")
    return False


def _signed_record(path: Path, signer: KeySource, spool_root: Path) -> bytes:
    """A's signer signs the main PDF (as the QLVBĐH would) and the record is dated today."""
    record = json.loads(path.read_text("utf-8"))
    record["ngay_ban_hanh"] = now_vn().date().isoformat()
    main = record.get("van_ban_chinh") or {}
    if "noi_dung_base64" in main:
        pdf = base64.b64decode(main["noi_dung_base64"])
        main["noi_dung_base64"] = base64.b64encode(sign_pdf(pdf, signer)).decode("ascii")
    for item in [main, *record.get("tep_dinh_kem", [])]:
        if "tep_spool" in item:
            shutil.copy2(EXAMPLES / "spool" / item["tep_spool"], spool_root / item["tep_spool"])
    return json.dumps(record, ensure_ascii=False, indent=2).encode("utf-8")


def _drop(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp"
    temporary.write_bytes(data)
    temporary.rename(folder / name)


def _start(agency: Agency, env: dict[str, str]) -> None:
    agency.log = agency.home / "connector.log"
    agency.home.mkdir(parents=True, exist_ok=True)
    handle = agency.log.open("wb")
    agency.process = subprocess.Popen(
        [sys.executable, "-m", "connector", "run", "--config", str(agency.config)],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def _stop(agency: Agency) -> int | None:
    process = agency.process
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _prepare(var: Path) -> tuple[DemoPki, dict[str, str]]:
    demo = var / "demo"
    if demo.exists():
        shutil.rmtree(demo)
    demo.mkdir(parents=True)
    # Where config/connector*.yaml look by default, so `connector check` works afterwards.
    pki = create_demo_pki(var / "pki", force=True)
    env = dict(os.environ)
    env.update(
        CONNECTOR_VAR=str(var),
        CONNECTOR_PKI=str(var / "pki"),
        HUB_SECRET_AGENCY_A=secrets.token_hex(24),
        HUB_SECRET_AGENCY_B=secrets.token_hex(24),
        PYTHONUNBUFFERED="1",
    )
    for name, secret in (("agency-a", "HUB_SECRET_AGENCY_A"), ("agency-b", "HUB_SECRET_AGENCY_B")):
        home = demo / name
        home.mkdir()
        keys = home / "at-rest.keys"
        keys.write_text(f"demo-1 {generate_key()}\n")
        keys.chmod(0o600)
        # The hub account's secret, where config/connector*.yaml point (secret_file), so
        # `connector check` and `connector run` work afterwards without exporting anything.
        _private_file(home / "hub.secret", env[secret] + "\n")
    return pki, env


def _private_file(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def _verification(agency: Agency, delivery_id: str) -> list[str]:
    """What the receiving connector checked, from its own store's timeline."""
    from connector.store.sqlite import SqliteStore

    if not delivery_id.startswith("in-") or not delivery_id[3:].isdigit():
        return []
    cipher = PayloadCipher.from_sources(key_file=agency.home / "at-rest.keys")
    store = SqliteStore(agency.home / "store.sqlite", cipher)
    try:
        details = [e.detail for e in store.events(int(delivery_id[3:])) if e.event == "verified"]
    finally:
        store.close()
    parts = [p.strip() for p in (details[0].split(";") if details else [])]
    wanted = [p for p in parts if p.startswith(("XML signature valid", "sender ")) or ".pdf:" in p]
    return wanted


def _summary(a: Agency, b: Agency, env: dict[str, str]) -> None:
    from connector.store.sqlite import SqliteStore
    from connector.store.states import Direction, PackageKind

    cipher = PayloadCipher.from_sources(key_file=a.home / "at-rest.keys")
    store = SqliteStore(a.home / "store.sqlite", cipher)
    try:
        say("\nSummary (agency A's tracking store):")
        say(
            f"  {'#':>3}  {'record':<20} {'document':<44} {'recipient':<14} {'state':<9} "
            f"{'sent after':>10}"
        )
        for package in sorted(
            store.find(direction=Direction.OUTBOUND, limit=100), key=lambda p: p.id
        ):
            if package.kind is not PackageKind.EDOC:
                continue
            events = {e.event: e.at for e in store.events(package.id)}
            sent = events.get("sent")
            took = f"{sent - package.created_at:.1f}s" if sent else "-"
            recipients = store.recipients(package.id) or []
            if not recipients:
                reason = package.last_error.reason if package.last_error else ""
                say(
                    f"  {package.id:>3}  {package.key:<20} {package.document_id or '-':<44} "
                    f"{'-':<14} {package.state.value:<9} {took:>10}  {reason}"
                )
            for recipient in recipients:
                say(
                    f"  {package.id:>3}  {package.key:<20} {package.document_id:<44} "
                    f"{recipient.organ_id:<14} {recipient.state.value:<9} {took:>10}"
                )
    finally:
        store.close()
    say(
        f"\nMetrics (while running): http://127.0.0.1:{a.metrics_port}/metrics (A), "
        f"http://127.0.0.1:{b.metrics_port}/metrics (B)"
    )
    say(f"Spool folders: {a.spool} and {b.spool}; logs: {a.log}, {b.log}")
    say(
        f"Operator view: {_connector_command()} messages --config config/connector.yaml list "
        "(then: show ID)"
    )
    del env


def _connector_command() -> str:
    """How to call ``connector`` here: the script beside this interpreter (a venv or an
    installed wheel), else by name."""
    beside = Path(sys.executable).parent / "connector"
    if not beside.exists():
        return "connector"
    try:
        return str(beside.relative_to(Path.cwd()))
    except ValueError:
        return str(beside)


def main() -> int:
    var = Path(os.environ.get("CONNECTOR_DEMO_VAR", ROOT / "var")).resolve()
    say("edoc-connector demo: hub emulator + agencies A (000.00.31.H12) and B (000.00.32.H12)")
    pki, env = _prepare(var)
    say(f"  demo PKI created in {pki.directory}")
    (var / "demo" / "hub").mkdir(parents=True, exist_ok=True)
    os.environ.update({k: env[k] for k in ("HUB_SECRET_AGENCY_A", "HUB_SECRET_AGENCY_B")})
    hub = HubEmulator(
        hub_config.load(
            ROOT / "config" / "hub.yaml",
            {"port": 0, "db": str(var / "demo" / "hub" / "hub.sqlite")},
        )
    )
    env["CONNECTOR_HUB_URL"] = hub.start()
    say(f"  hub emulator listening on {env['CONNECTOR_HUB_URL']}")
    a = Agency(
        "A",
        "000.00.31.H12",
        ROOT / "config" / "connector.yaml",
        var / "demo" / "agency-a",
        _free_port(),
    )
    b = Agency(
        "B",
        "000.00.32.H12",
        ROOT / "config" / "connector-b.yaml",
        var / "demo" / "agency-b",
        _free_port(),
    )
    env["CONNECTOR_A_METRICS_PORT"] = str(a.metrics_port)
    env["CONNECTOR_B_METRICS_PORT"] = str(b.metrics_port)
    ok = False
    try:
        for agency in (a, b):
            _start(agency, env)
        say("  connectors A and B started (connector run)")
        signer = KeySource(
            pki.agency(a.organ_id).signer.key,
            pki.agency(a.organ_id).signer.cert,
            (pki.agency(a.organ_id).chain,),
        )
        (a.spool / "outbound").mkdir(parents=True, exist_ok=True)
        for name in RECORDS:
            data = _signed_record(EXAMPLES / "qlvb-json" / name, signer, a.spool)
            _drop(a.spool / "outbound", name, data)
            say(f"  A's software dropped {name}")
        ok = _run_checks(a, b)
    finally:
        codes = {agency.name: _stop(agency) for agency in (a, b)}
        hub.stop()
    say(f"\nconnectors stopped (exit codes {codes}); hub emulator stopped")
    _summary(a, b, env)
    if ok and all(code == 0 for code in codes.values()):
        say("\ndemo finished: every step happened as expected")
        return 0
    say("\ndemo FAILED: see the messages above and the logs")
    return 1


def _run_checks(a: Agency, b: Agency) -> bool:
    expected_documents = len(RECORDS) - 1
    say("\n1. A refuses the secret record before packaging:")
    if not _wait(
        "the secret record refused",
        lambda: any(e.get("event") == "outbound.refused" for e in a.events()),
        [a, b],
    ):
        return False
    refused = next(e for e in a.events() if e.get("event") == "outbound.refused")
    say(f"   refused: {refused.get('reason')} — {refused.get('message')}")
    say(f"\n2. B receives {expected_documents} documents, signatures verified:")
    if not _wait("documents at B", lambda: len(b.received()) >= expected_documents, [a, b]):
        return False
    for folder in b.received():
        meta = json.loads((folder / "delivery.json").read_text("utf-8"))
        files = [p.name for p in folder.iterdir() if p.name not in ("delivery.json",)]
        headers = meta.get("headers", {})
        say(
            f"   {folder.name}: {headers.get('document-id')} (priority "
            f"{headers.get('priority')}), files: {', '.join(sorted(files))}"
        )
        for line in _verification(b, folder.name):
            say(f"      {line}")
    say("\n3. A receives B's automatic status 01 (Đã đến) for each:")
    if not _wait(
        "01 at A",
        lambda: sum(e.get("event") == "status.01" for e in a.events()) >= expected_documents,
        [a, b],
    ):
        return False
    say(f"   {sum(e.get('event') == 'status.01' for e in a.events())} status 01 received")
    say("\n4. B's clerk registers the first document (03 Đã tiếp nhận); A sees it:")
    first = json.loads((b.received()[0] / "delivery.json").read_text("utf-8"))
    document_id = first.get("headers", {}).get("document-id", "")
    command = {
        "id": "LENH-DEMO-0001",
        "loai_ban_ghi": "trang_thai",
        "ma_trang_thai": "03",
        "van_ban": {
            "ma_dinh_danh": document_id,
            "co_quan_gui": "SNV",
            "so_ky_hieu": document_id.rsplit(",", 1)[-1],
            "ngay_ban_hanh": now_vn().date().isoformat(),
        },
        "can_bo": {"phong_ban": "Văn phòng Sở", "ho_ten": "Trần Thị Bình"},
        "ghi_chu": "Đã vào sổ văn bản đến",
        "thoi_diem": now_vn().isoformat(),
    }
    _drop(
        b.spool / "commands",
        "LENH-DEMO-0001.json",
        json.dumps(command, ensure_ascii=False).encode("utf-8"),
    )
    if not _wait("03 at A", lambda: any(e.get("event") == "status.03" for e in a.events()), [a, b]):
        return False
    say(f"   status 03 received for {document_id}")
    return True


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the VXP client against the hub emulator on this machine.

Measures, in one run, packages per second for sendEdoc (1 and 4 client threads) and for
the receive loop (list, getEdoc, updateStatus done), for a metadata-only package (~10 KB)
and a standard one (~10 KB metadata + 300 KB of PDFs, ~410 KB once base64-encoded), plus the cost of
signing and verifying the XroadVnpt headers alone. Prints a table; asserts nothing.

    .venv/bin/python bench/bench_hub.py [--count N]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from connector.hub import Account, HubConfig, HubEmulator
from connector.interconnect import Secret, VxpClient, VxpSettings, vxp_wire
from connector.timeutil import VN_TZ

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
A, B = "000.00.31.H12", "000.00.32.H12"
SECRET_A, SECRET_B = Secret(os.urandom(24).hex()), Secret(os.urandom(24).hex())


def package(index: int, attachment_bytes: int) -> bytes:
    org = "".join(
        f"<edXML:{tag}><edXML:OrganId>{oid}</edXML:OrganId><edXML:OrganName>{'x' * 150}"
        f"</edXML:OrganName></edXML:{tag}>"
        for tag, oid in (("From", A), ("To", B))
    )
    filler = f"<edXML:Content>{'Nội dung ' * 1000}</edXML:Content>"  # ~10 KB of metadata
    attachment = base64.b64encode(os.urandom(attachment_bytes)).decode() if attachment_bytes else ""
    body = (
        f"<AttachmentEncoded><Attachment><ContentTransferEncoded>{attachment}"
        "</ContentTransferEncoded></Attachment></AttachmentEncoded>"
        if attachment
        else ""
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><edXML xmlns="{NS}">'
        f'<edXML:edXMLEnvelope xmlns:edXML="{NS}"><edXML:edXMLHeader><edXML:MessageHeader>'
        f"{org}<edXML:DocumentId>{A},2026/11/20,{index}/BENCH</edXML:DocumentId>{filler}"
        f"</edXML:MessageHeader></edXML:edXMLHeader></edXML:edXMLEnvelope>{body}</edXML>"
    ).encode()


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(count: int) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    now = dt.datetime.now(VN_TZ)
    n = 2000
    sign_s = timed(
        lambda: [
            vxp_wire.sign([("docId", "x")], systemid="a", secret=SECRET_A, content_type="j")
            for _ in range(n)
        ]
    )
    headers = vxp_wire.sign([("docId", "x")], systemid="a", secret=SECRET_A, content_type="j")
    get = vxp_wire.header_lookup(headers)
    verify_s = timed(
        lambda: [
            vxp_wire.verify(
                get,
                headers,
                secret_for=lambda _s: SECRET_A,
                now=now,
                window=dt.timedelta(minutes=5),
            )
            for _ in range(n)
        ]
    )
    rows.append(("sign XroadVnpt headers", f"{sign_s / n * 1e6:.0f} µs/request", ""))
    rows.append(("verify XroadVnpt headers", f"{verify_s / n * 1e6:.0f} µs/request", ""))

    for label, attachment in (("metadata-only", 0), ("standard", 300_000)):
        rows.extend(measure_hub(label, [package(i, attachment) for i in range(count * 2)]))
    return rows


def measure_hub(label: str, packages: list[bytes]) -> list[tuple[str, str, str]]:
    count = len(packages) // 2
    what = f"{label} ({len(packages[0]) / 1024:.0f} KB)"
    with tempfile.TemporaryDirectory() as folder:
        config = HubConfig(
            port=0,
            db=Path(folder) / "hub.sqlite",
            accounts=[
                Account(systemid="a", organ_id=A, secret=SECRET_A),
                Account(systemid="b", organ_id=B, secret=SECRET_B),
            ],
        )
        with (
            HubEmulator(config) as hub,
            VxpClient(VxpSettings(hub.url, "a", SECRET_A, max_connections=4)) as sender,
            VxpClient(VxpSettings(hub.url, "b", SECRET_B)) as receiver,
        ):

            def send(data: bytes) -> str:
                return sender.send(data, message_type="edoc", sender=A)

            def drain() -> None:
                for item in receiver.pending("edoc"):
                    receiver.fetch(item.doc_id)
                    receiver.acknowledge(item.doc_id, True)

            one = timed(lambda: [send(p) for p in packages[:count]])
            with ThreadPoolExecutor(4) as pool:
                four = timed(lambda: list(pool.map(send, packages[count:])))
            receive = timed(drain)
    return [
        (f"sendEdoc, 1 thread, {what}", f"{count / one:.0f} packages/s", ""),
        (
            f"sendEdoc, 4 threads, {what}",
            f"{count / four:.0f} packages/s",
            f"x{one / four:.2f} vs 1 thread",
        ),
        (f"list+get+done, {what}", f"{2 * count / receive:.0f} packages/s", ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=200, help="packages per measurement")
    args = parser.parse_args()
    rows = run(args.count)
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'result':>20}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>20}  {note}")


if __name__ == "__main__":
    main()

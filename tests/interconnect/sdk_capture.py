"""The official VXP SDK's captured requests (../shared/interop/vxp-wire/), read for tests.

The capture is reference material kept outside the project: tests read it from ../shared
and skip with a reason where it is absent. Bodies of packages are summarised in the
capture (size and first bytes), so ``sdk_body`` rebuilds one in the SDK's form from a
file: its lines re-joined with CRLF.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "interop"
CAPTURE = SHARED / "vxp-wire" / "sdk-2.0.1-requests.jsonl"
SAMPLES = SHARED / "vnpt-samples"
SDK_SYSTEMID = "vxp.agency-a"  # the capture's test account


@dataclass(frozen=True)
class Captured:
    method: str
    call: str  # the path without its slash, e.g. "sendEdoc"
    headers: list[tuple[str, str]]  # in the order sent, names as cased on the wire
    body_bytes: int
    body: bytes | None  # when the capture holds it (small JSON bodies)
    body_starts: bytes | None

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def signed(self) -> dict[str, str]:
        """The signed JSON object, in its order."""
        decoded: dict[str, str] = json.loads(self.header("XroadVnpt-sign-header") or "{}")
        return decoded

    @property
    def label(self) -> str:
        kind = self.header("XroadVnpt-messagetype")
        return f"{self.call}-{kind}" if self.call == "sendEdoc" and kind else self.call


def captured_requests() -> list[Captured]:
    if not CAPTURE.is_file():
        pytest.skip(f"the SDK capture is not at {CAPTURE} (../shared is absent)")
    found = []
    for line in CAPTURE.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        method, path, _version = entry["request"].split(" ")
        body = entry.get("body")
        starts = entry.get("body_starts")
        found.append(
            Captured(
                method=method,
                call=path.strip("/"),
                headers=[(k, v) for k, v in entry["headers"]],
                body_bytes=int(entry["body_bytes"]),
                body=body.encode("utf-8") if isinstance(body, str) else None,
                body_starts=starts.encode("utf-8") if isinstance(starts, str) else None,
            )
        )
    return found


def captured(label: str) -> Captured:
    for request in captured_requests():
        if request.label == label:
            return request
    raise LookupError(f"no captured request {label!r}")


def sdk_body(original: bytes) -> bytes:
    """What the SDK uploads for ``original``: each line ended with CRLF."""
    lines = original.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


def sample(name: str) -> bytes:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"the national axis sample {path} is absent (../shared is absent)")
    return path.read_bytes()

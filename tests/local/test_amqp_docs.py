"""docs/amqp.md works as copied: the sign-then-publish steps and the publisher snippet run
unchanged against the real broker (only the queue name comes from the environment)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.trust.pki import DemoPki, create_demo_pki
from tests.local.test_amqp_helpers import BROKER_URL, broker, requires_broker

pytestmark = requires_broker

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "amqp.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text("utf-8"), flags=re.DOTALL)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return create_demo_pki(tmp_path_factory.mktemp("docs") / "var" / "pki")


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"test-docs-{uuid.uuid4().hex[:10]}.edoc.outbound"
    with broker() as conn:
        conn.channel().queue_declare(
            name, durable=True, auto_delete=False, arguments={"x-max-priority": 3}
        )
    yield name
    with broker() as conn:
        conn.channel().queue_delete(name)


def test_the_documented_publisher_runs_as_copied(
    tmp_path: Path, pki: DemoPki, queue: str
) -> None:
    publisher = next(b for b in blocks("python") if "kombu.Connection" in b)
    (tmp_path / "publish.py").write_text(publisher, "utf-8")
    steps = next(b for b in blocks("sh") if "publish.py" in b)
    (tmp_path / "mappings").symlink_to(REPO / "mappings")
    (tmp_path / "var").symlink_to(pki.directory.parent)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    connector = bin_dir / "connector"
    connector.write_text(f"#!/bin/sh\nexec {sys.executable} -m connector \"$@\"\n")
    connector.chmod(0o755)
    python = bin_dir / "python"  # this interpreter (with kombu), as `python` on the PATH
    python.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    user_url = re.sub(r"//[^@/]*:[^@/]*@", "//guest@", BROKER_URL)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "EDOC_QUEUE": queue,
        "EDOC_AMQP_URL": user_url,
    }
    done = subprocess.run(
        ["sh", "-e", "-c", steps], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published VBDI-2025-000101" in done.stdout
    with broker() as conn:
        message = conn.channel().basic_get(queue, no_ack=True)
    assert message is not None
    assert message.headers["x-record-id"] == "VBDI-2025-000101"
    assert message.properties["content_type"] == "application/json"
    record = json.loads(message.body)
    signed = (tmp_path / "main.signed.pdf").read_bytes()
    assert base64.b64decode(record["van_ban_chinh"]["noi_dung_base64"]) == signed
    # What the connector checks before sealing a main document: a valid personal signature.
    seal = pki.agency("000.00.31.H12").seal

    def seal_as_main(pdf: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "connector", "sign-pdf", "--key", str(seal.key),
             "--cert", str(seal.cert), "--trust", str(pki.trust_dir), "--crl", str(pki.crl_dir),
             "--role", "main", pdf, str(tmp_path / "sealed.pdf")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )

    accepted = seal_as_main("main.signed.pdf")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    refused = seal_as_main("main.pdf")  # the example's PDF as it is: no personal signature
    assert refused.returncode != 0 and "personal" in refused.stdout + refused.stderr

"""``connector verify --config`` reaches the daemon's verdict on every trust combination.

Both call ``connector.trust.origin.decide`` with the policy built from the same configuration
(``wiring.origin_policy``): accepted by the daemon (verified or delivered sender_unverified)
means VALID, refused means INVALID with the same reason code.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.cli import main
from connector.daemon import inbound
from connector.daemon.wiring import Runtime
from connector.errors import PermanentError
from connector.trust.pki import DemoPki
from tests.e2e.harness import World
from tests.e2e.inprocess import runtime, world  # noqa: F401
from tests.hostile.trust_kit import Kit, document, packaged, pdf, three_agency_pki

XML_SIGNERS = ("placeholder", "seal:A", "seal:C", "personal:A", "personal:C", "unbound:A")
MAIN_SEALS = ("seal:A", "seal:C", "unbound:A", "no files")


@pytest.fixture(scope="module")
def daemon_pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return three_agency_pki(Path(tmp_path_factory.mktemp("three-agencies")) / "pki")


@pytest.fixture(scope="module")
def kit(daemon_pki: DemoPki) -> Kit:
    return Kit(daemon_pki)


@pytest.fixture
def b(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:  # noqa: F811
    for name in ("CONNECTOR_VAR", "CONNECTOR_PKI", "CONNECTOR_HUB_URL"):
        monkeypatch.setenv(name, world.env[name])
    built = runtime(world, world.b)
    yield built
    built.close()


def _daemon(b: Runtime, raw: bytes) -> str:
    try:
        inbound.authenticate(b.services, raw)
    except PermanentError as exc:
        return exc.reason
    return "VALID"


def _cli(world: World, raw: bytes, tmp: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
         ) -> str:
    path = tmp / "package.edxml"
    path.write_bytes(raw)
    pki = world.pki
    code = main(["verify", str(path), "--trust", str(pki.trust_dir), "--crl", str(pki.crl_dir),
                 "--config", str(world.b.config)])
    out = capsys.readouterr().out
    if code == 0:
        assert out.rstrip().endswith("VERDICT: VALID")
        return "VALID"
    assert out.rstrip().endswith("VERDICT: INVALID")
    marker = "origin: REFUSED ["
    assert marker in out, out
    return out.split(marker, 1)[1].split("]", 1)[0]


def test_the_cli_and_the_daemon_agree(
    world: World, b: Runtime, kit: Kit, tmp_path: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = []
    for xml, seal in itertools.product(XML_SIGNERS, MAIN_SEALS):
        files = () if seal == "no files" else (pdf("1", kit.main_pdf(seal)),)
        raw = packaged(kit, document("A", attachments=files), xml)
        daemon, cli = _daemon(b, raw), _cli(world, raw, tmp_path, capsys)
        if daemon != cli:
            wrong.append(f"xml={xml} seal={seal}: daemon {daemon}, cli {cli}")
    assert not wrong, "\n".join(wrong)


def test_the_cli_refuses_what_is_not_addressed_to_the_configured_agency(
    world: World, b: Runtime, kit: Kit, tmp_path: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = packaged(kit, document("A", to=("C",), attachments=(pdf("1", kit.main_pdf("seal:A")),)),
                   "seal:A")
    assert _cli(world, raw, tmp_path, capsys) == "not_addressed_to_us" == _daemon(b, raw)

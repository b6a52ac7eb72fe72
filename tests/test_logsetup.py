"""Logging: ISO 8601 with offset, JSON lines with package fields, known noise filtered."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.logsetup import log_context, quiet_known_warnings, setup_logging

REPO = Path(__file__).resolve().parents[1]
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+07:00$")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def lines_of(log_format: str, emit: object) -> list[str]:
    stream = io.StringIO()
    setup_logging("INFO", log_format, stream)
    assert callable(emit)
    emit()
    return stream.getvalue().splitlines()


def test_text_lines_carry_an_iso_timestamp_with_offset_and_the_context(
    restore_logging: None,
) -> None:
    log = logging.getLogger("connector.test")

    def emit() -> None:
        log.info("outside")
        with log_context(package_id=7, document_id="000.00.31.H12,2027/02/03,1/SNV",
                         stage="send"):
            log.warning("inside")

    outside, inside = lines_of("text", emit)
    assert ISO_WITH_OFFSET.match(outside.split(" ", 1)[0])
    assert outside.endswith("INFO connector.test [MainThread] outside")
    assert "[package_id=7 document_id=000.00.31.H12,2027/02/03,1/SNV stage=send] inside" in inside


@pytest.mark.parametrize("forged", ["1/X\n2026-12-07T00:00:00.000+07:00 ERROR forged line",
                                    "1/X\r\nERROR", "1/X\u202eTXT", "1/X\x00\x1b[31m", "9" * 5000])
def test_context_fields_from_a_package_cannot_forge_lines(
    forged: str, restore_logging: None
) -> None:
    log = logging.getLogger("connector.test")

    def emit() -> None:
        with log_context(document_id=forged, record_id=forged):
            log.warning("inside")

    for log_format in ("text", "json"):
        (line,) = lines_of(log_format, emit)  # one line, whatever the DocumentId says
        assert "\u202e" not in line and "\x1b" not in line and len(line) < 1000


def test_json_lines_have_the_package_fields(restore_logging: None) -> None:
    log = logging.getLogger("connector.test")

    def emit() -> None:
        with log_context(package_id=7, document_id="D-1"), log_context(stage="sign"):
            log.info("signed %s", "package")
        log.error("plain Tiếng Việt")

    first, second = (json.loads(line) for line in lines_of("json", emit))
    assert ISO_WITH_OFFSET.match(first["time"])
    assert first["level"] == "INFO" and first["logger"] == "connector.test"
    assert first["message"] == "signed package"
    assert (first["package_id"], first["document_id"], first["stage"]) == ("7", "D-1", "sign")
    assert second["message"] == "plain Tiếng Việt"
    assert second["package_id"] is None and second["stage"] is None


def test_context_stays_in_its_thread(restore_logging: None) -> None:
    seen: list[str | None] = []

    def other() -> None:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        from connector.logsetup import ContextFilter

        ContextFilter().filter(record)
        seen.append(getattr(record, "package_id", None))

    with log_context(package_id=1):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == [None]


def test_unknown_context_field_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="colour"), log_context(colour="red"):
        pass


def test_known_deprecation_noise_is_filtered_and_other_warnings_are_not() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_warnings()
        warnings.warn_explicit("DSA is deprecated and support will be removed", DeprecationWarning,
                               "pdf_cms.py", 20, module="pyhanko.sign.signers.pdf_cms")
        warnings.warn_explicit("something else is deprecated", DeprecationWarning,
                               "pdf_cms.py", 21, module="pyhanko.sign.signers.pdf_cms")
    assert [str(w.message) for w in caught] == ["something else is deprecated"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connector", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120, env=env)


def test_commands_print_no_dsa_warning_and_version_answers() -> None:
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("edoc-connector ")
    # check imports pyHanko's signers, which import cryptography's deprecated DSA types
    done = run_cli("check", "--config", str(REPO / "config" / "connector.yaml"))
    assert "configuration" in done.stderr or "problem" in done.stderr or done.returncode == 0
    assert "DSA" not in done.stderr, done.stderr


def test_run_that_cannot_start_logs_a_final_stopped_line(tmp_path: Path) -> None:
    import os

    env = dict(os.environ, CONNECTOR_LOG_FORMAT="json")
    done = run_cli("run", "--config", str(tmp_path / "missing.yaml"), env=env)
    assert done.returncode == 2
    last = json.loads(done.stderr.strip().splitlines()[-1])
    assert last["message"].startswith("connector stopped (exit 2)")
    assert "DSA" not in done.stderr


def test_json_run_that_cannot_start_writes_json_only_with_every_problem(tmp_path: Path) -> None:
    # A log pipeline parses stderr line by line: no plain "connector run: ..." lines, and the
    # stopped line carries every problem, not only the first line ("1 configuration problem:").
    import os

    config = tmp_path / "broken.yaml"
    config.write_text("agency: [\n", encoding="utf-8")
    env = dict(os.environ, CONNECTOR_LOG_FORMAT="json")
    done = run_cli("run", "--config", str(config), env=env)
    assert done.returncode == 2
    lines = [json.loads(line) for line in done.stderr.strip().splitlines()]
    assert lines[-1]["message"].startswith("connector stopped (exit 2): cannot start:")
    assert "not valid YAML" in lines[-1]["message"] and f"{config}:" in lines[-1]["message"]

"""Outside text made safe to show: one line, escaped, bounded; a leaf module."""

from __future__ import annotations

import subprocess
import sys

import pytest

from connector.printable import printable


@pytest.mark.parametrize("unsafe", ["\n", "\r", "\x00", "\x1b", "\x85", "\u2028", "\u202e", "\u2066"])
def test_each_unsafe_character_is_escaped(unsafe: str) -> None:
    shown = printable(f"a{unsafe}b", 100)
    assert unsafe not in shown and shown.startswith("a\\") and shown.endswith("b")


@pytest.mark.parametrize("length", [0, 1, 99, 100, 101, 5000])
def test_never_longer_than_the_limit(length: int) -> None:
    shown = printable("\n" * length, 100)
    assert len(shown) <= 100 and "\n" not in shown


def test_import_connector_stays_light() -> None:
    """Logging setup escapes context fields at ``import connector``: that must not pull in
    the XML stack (``connector --version`` and every worker process pay for it)."""
    code = "import sys, connector; print('lxml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""Claim checks stay inside the spool directory; inline files are checked."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from connector.mapping.files import (
    check_magic,
    check_name,
    decode_inline,
    local_file_names,
    read_claim_check,
)
from connector.mapping.values import ValueProblem


@pytest.fixture()
def spool(tmp_path: Path) -> Path:
    folder = tmp_path / "spool"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.pdf").write_bytes(b"%PDF-1.4 a")
    (folder / "sub" / "b.pdf").write_bytes(b"%PDF-1.4 b")
    (tmp_path / "outside.pdf").write_bytes(b"%PDF-1.4 secret")
    return folder


def test_reads_files_inside_the_spool(spool: Path) -> None:
    assert read_claim_check("a.pdf", spool) == b"%PDF-1.4 a"
    assert read_claim_check("sub/b.pdf", spool) == b"%PDF-1.4 b"


@pytest.mark.parametrize("reference", ["../outside.pdf", "sub/../../outside.pdf", "/etc/passwd",
                                       "..\\outside.pdf", "C:\\Windows\\win.ini", "a.pdf\x00x",
                                       "", "sub"])
def test_traversal_and_odd_references_refused(spool: Path, reference: str) -> None:
    with pytest.raises(ValueProblem):
        read_claim_check(reference, spool)


def test_symlink_leading_outside_refused(spool: Path) -> None:
    os.symlink(spool.parent / "outside.pdf", spool / "link.pdf")
    with pytest.raises(ValueProblem, match="outside the attachments directory"):
        read_claim_check("link.pdf", spool)


def test_no_spool_configured(spool: Path) -> None:
    with pytest.raises(ValueProblem, match="no attachments directory"):
        read_claim_check("a.pdf", None)


def test_size_limit(spool: Path) -> None:
    with pytest.raises(ValueProblem, match="over the 4-byte limit"):
        read_claim_check("a.pdf", spool, limit=4)


def test_inline_base64() -> None:
    assert decode_inline(base64.b64encode(b"%PDF-x").decode() + "\n") == b"%PDF-x"
    with pytest.raises(ValueProblem, match="not valid base64"):
        decode_inline("not base64!")


def test_names_and_magic() -> None:
    with pytest.raises(ValueProblem):
        check_name("../x.pdf")
    with pytest.raises(ValueProblem, match="not a PDF"):
        check_magic(b"GIF89a", "application/pdf")
    assert local_file_names(["a.pdf", "A.pdf", "../../etc/x", ".hidden"]) == [
        "a.pdf", "A-2.pdf", "x", "hidden"]

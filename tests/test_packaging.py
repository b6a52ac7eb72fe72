"""What the wheel must carry, checked from the source tree (CI's .ci/wheel-smoke installs it).

* The XSDs ship as package data and are found through importlib.resources.
* A connector whose schemas are missing or broken stops at start (``run`` exits 2 with the
  reason) instead of refusing every record.
* No run-time module reads files next to the source tree (``Path(__file__).parents``): in
  an installed wheel there is no source tree.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from connector.errors import ConfigurationError
from connector.resources import SCHEMA_FILES, load_schemas, packaged_schemas_dir

REPO = Path(__file__).resolve().parents[1]
# Development tools and the schema module's fallback for a plain checkout.
SOURCE_TREE_READERS = {"connector/demo.py", "connector/edxml/schema.py"}


def test_schemas_are_package_data_found_through_the_package() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    assert "schemas/*.xsd" in pyproject["tool"]["setuptools"]["package-data"]["connector"]
    folder = packaged_schemas_dir()
    assert folder.parent == REPO / "connector"
    for name in SCHEMA_FILES:
        assert (folder / name).read_bytes() == (REPO / "schemas" / name).read_bytes()
    assert load_schemas(folder) == folder


def test_missing_schemas_stop_the_start_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_schemas(tmp_path)
    assert caught.value.reason == "schemas_missing"
    assert str(tmp_path / "edoc.xsd") in caught.value.message


def test_broken_schemas_stop_the_start_with_the_reason(tmp_path: Path) -> None:
    for name in SCHEMA_FILES:
        (tmp_path / name).write_text("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'>")
    with pytest.raises(ConfigurationError) as caught:
        load_schemas(tmp_path)
    assert caught.value.reason == "schemas_invalid"


def test_run_exits_2_before_any_record_when_schemas_are_missing(tmp_path: Path) -> None:
    env = dict(os.environ, CONNECTOR_SCHEMAS=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "connector", "run", "--config",
         str(REPO / "config" / "connector.yaml")],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )
    assert done.returncode == 2
    assert "schemas: cannot read" in done.stderr


def test_no_run_time_module_reads_the_source_tree() -> None:
    pattern = re.compile(r"Path\(__file__\)[^\n]*parents\[")
    offenders = []
    for path in sorted((REPO / "connector").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        if relative not in SOURCE_TREE_READERS and pattern.search(path.read_text("utf-8")):
            offenders.append(relative)
    assert offenders == [], "in a wheel there is no source tree: use importlib.resources"

"""Shared fixtures for the mapping tests: the shipped directory, mappings and examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.mapping import Directory, MappingSet, load_directory, load_mappings

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"
EXAMPLES = MAPPINGS / "examples"
SPOOL = EXAMPLES / "spool"
DIRECTORY_FILE = ROOT / "config" / "directory.yaml"
VNPT_SAMPLES = ROOT / ".." / "shared" / "interop" / "vnpt-samples"


@pytest.fixture(scope="session")
def directory() -> Directory:
    return load_directory(DIRECTORY_FILE)


@pytest.fixture(scope="session")
def mappings(directory: Directory) -> MappingSet:
    return load_mappings(MAPPINGS, directory)

"""Access to the national axis samples kept in ../shared (never copied into the project)."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "interop" / "vnpt-samples"


def sample_paths(pattern: str = "*.edxml") -> list[Path]:
    return sorted(SAMPLES_DIR.glob(pattern)) if SAMPLES_DIR.is_dir() else []


def require_samples() -> None:
    if not SAMPLES_DIR.is_dir():
        pytest.skip(f"national axis samples not found at {SAMPLES_DIR} (../shared is absent)")


def sample_params(pattern: str = "*.edxml") -> list[object]:
    paths = sample_paths(pattern)
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no samples in {SAMPLES_DIR}"))]
    return [pytest.param(p, id=p.name) for p in paths]

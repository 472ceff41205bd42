"""Shared fixtures: where the HAPT recordings are, and the CI rule that they must be there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip with a reason when something optional is missing; under CI=true, fail instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def find_hapt_dir() -> Path | None:
    candidates = [os.environ.get("SITSENSE_HAPT_DIR"), str(REPO.parent / "shared" / "data" / "hapt")]
    for c in candidates:
        if c and (Path(c) / "RawData" / "labels.txt").is_file():
            return Path(c)
    return None


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path, monkeypatch):
    """Every test gets its own state directory: nothing is read from or written to the user's."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    monkeypatch.setattr("sitsense.paths.SYSTEM_STATE_DIR", tmp_path / "var-lib-sitsense")  # root's, in CI
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("SITSENSE_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("SITSENSE_WEB_PASSWORD", raising=False)


@pytest.fixture(scope="session")
def hapt_dir() -> Path:
    """The HAPT folder (SITSENSE_HAPT_DIR or ../shared/data/hapt)."""
    path = find_hapt_dir()
    require(path is not None, "HAPT recordings not found: set SITSENSE_HAPT_DIR or put them at ../shared/data/hapt")
    return path  # type: ignore[return-value]


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return REPO / "examples"

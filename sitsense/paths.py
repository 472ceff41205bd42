"""Where sitsense keeps its state: the one place that knows.

Every state file (the database, the MQTT outbox, the calibration) lives in one folder: beside
``store.path`` when the config sets it, else ``$STATE_DIRECTORY`` under systemd (its first entry),
else ``$XDG_STATE_HOME/sitsense``, else ``~/.local/state/sitsense``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from .config import StoreConfig

APP = "sitsense"
DB_FILE = "sitsense.db"
OUTBOX_FILE = "mqtt-outbox.db"
CALIBRATION_FILE = "calibration.json"


def state_dir(store: StoreConfig | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The state folder for this config and environment (see the module docstring)."""
    if store is not None and store.path:
        return Path(store.path).expanduser().parent
    env = os.environ if environ is None else environ
    systemd = env.get("STATE_DIRECTORY", "")
    if systemd:
        return Path(systemd.split(":")[0])  # systemd passes several folders separated by ':'
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is invalid and ignored
        return Path(xdg) / APP
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".local" / "state" / APP


def db_path(store: StoreConfig | None = None) -> Path:
    """The state database: ``store.path``, else ``sitsense.db`` in the state folder."""
    if store is not None and store.path:
        return Path(store.path).expanduser()
    return state_dir(store) / DB_FILE


def outbox_path(store: StoreConfig | None = None) -> Path:
    """The MQTT outbox (alerts waiting for the broker's acknowledgement)."""
    return state_dir(store) / OUTBOX_FILE


def calibration_path(store: StoreConfig | None = None) -> Path:
    """The upright reference stored by ``sitsense calibrate``."""
    return state_dir(store) / CALIBRATION_FILE

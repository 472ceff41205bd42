"""Where sitsense keeps its state: the one place that knows.

Every state file (the database, the MQTT outbox, the calibration, the control socket) lives in
one folder, the first of:

1. beside ``store.path``, when the config sets it;
2. ``$STATE_DIRECTORY`` (its first entry): the installed service, which systemd starts with it;
3. ``/var/lib/sitsense``, the installed service's folder, for root and for anyone who names the
   installed config (``--config /etc/sitsense/sitsense.toml``): so ``sudo sitsense calibrate``,
   ``history``, ``report`` and ``doctor`` see what the service sees;
4. ``$XDG_STATE_HOME/sitsense``;
5. ``~/.local/state/sitsense``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from .config import Config, StoreConfig

APP = "sitsense"
DB_FILE = "sitsense.db"
OUTBOX_FILE = "mqtt-outbox.db"
CALIBRATION_FILE = "calibration.json"
SYSTEM_STATE_DIR = Path("/var/lib/sitsense")  # the unit's StateDirectory=sitsense
SYSTEM_CONFIG = Path("/etc/sitsense/sitsense.toml")  # the unit's --config


def state_dir(cfg: Config | StoreConfig | None = None, environ: Mapping[str, str] | None = None, *,
              euid: int | None = None) -> Path:
    """The state folder for this config, environment and user (see the module docstring)."""
    store = cfg.store if isinstance(cfg, Config) else cfg
    if store is not None and store.path:
        return Path(store.path).expanduser().parent
    env = os.environ if environ is None else environ
    systemd = env.get("STATE_DIRECTORY", "")
    if systemd:
        return Path(systemd.split(":")[0])  # systemd passes several folders separated by ':'
    if (os.geteuid() if euid is None else euid) == 0 or (isinstance(cfg, Config) and is_system_config(cfg)):
        return SYSTEM_STATE_DIR
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is invalid and ignored
        return Path(xdg) / APP
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".local" / "state" / APP


def is_system_config(cfg: Config) -> bool:
    """The config is the installed service's own file."""
    if not cfg.source_path:
        return False
    try:
        return Path(cfg.source_path).resolve() == SYSTEM_CONFIG.resolve()
    except OSError:
        return False


def db_path(cfg: Config | StoreConfig | None = None) -> Path:
    """The state database: ``store.path``, else ``sitsense.db`` in the state folder."""
    store = cfg.store if isinstance(cfg, Config) else cfg
    if store is not None and store.path:
        return Path(store.path).expanduser()
    return state_dir(cfg) / DB_FILE


def outbox_path(cfg: Config | StoreConfig | None = None) -> Path:
    """The MQTT outbox (alerts waiting for the broker's acknowledgement)."""
    return state_dir(cfg) / OUTBOX_FILE


def calibration_path(cfg: Config | StoreConfig | None = None) -> Path:
    """The upright reference stored by ``sitsense calibrate``."""
    return state_dir(cfg) / CALIBRATION_FILE


def beside(db: str | os.PathLike[str], suffix: str) -> Path:
    """A file that belongs to one state database: ``<db><suffix>`` (its lock, its control socket)."""
    db = Path(db)
    return db.with_name(db.name + suffix)


def control_socket_path(db: str | os.PathLike[str]) -> Path:
    """The running service's control socket (``sitsense.control_socket``), beside its database."""
    return beside(db, ".sock")

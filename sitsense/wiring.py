"""Builds a Service with the outputs the config asks for; shared by ``run`` and ``simulate``."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from .config import Config
from .outputs.console import ConsoleOutput
from .service import Service

log = logging.getLogger(__name__)


def build_service(cfg: Config, *, source, clock, stream: TextIO | None = None, json_lines: bool = False,
                  console: bool = True) -> Service:
    """A Service with the console output (and the coach, when available)."""
    service = Service(cfg, clock=clock, source=source)
    if console:
        service.outputs.append(ConsoleOutput(stream or sys.stdout, json_lines=json_lines, wall_at=service.wall_at))
    return service


def attach_store(service: Service, cfg: Config, path=None):
    """Open the state database, resume from its last checkpoint, and log events to it."""
    from .persistence import StateKeeper
    from .store import Store, db_path

    store = Store(path or db_path(cfg.store)).open()
    keeper = StateKeeper(store, service.tracker, checkpoint_s=cfg.store.checkpoint_s)
    service.outputs.append(keeper)
    return store, keeper


def attach_mqtt(service: Service, cfg: Config):
    """Publish to the configured broker (the MQTT output arrives with issue 6)."""
    from .errors import OutputError

    raise OutputError("MQTT output is not available in this build")


def close_outputs(service: Service) -> None:
    for out in service.outputs:
        try:
            out.close()
        except Exception:
            log.exception("closing %s failed", type(out).__name__)

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


def attach_mqtt(service: Service, cfg: Config, *, simulated: bool = False):
    """Build the MQTT output from ``cfg``, route its commands into ``service``, start it, add it.

    Live (default): client id ``sitsense-<device>``, the persistent outbox in the state folder.
    ``simulated``: client id ``sitsense-<device>-sim`` (a live service on the same broker is not
    kicked off), an in-memory outbox (the live one is not touched), and ``close()`` waits up to
    30 s for every alert of the replay to reach the broker. Returns the MqttOutput.
    """
    from .outputs.mqtt import MqttOutput, resolve_device_id

    if simulated:
        out = MqttOutput(cfg.mqtt, outbox=":memory:", submit=service.submit, clock=service.clock,
                         client_id=f"sitsense-{resolve_device_id(cfg.mqtt.device_id)}-sim",
                         flush_on_close_s=30.0)
    else:
        out = MqttOutput.from_config(cfg, submit=service.submit, clock=service.clock)
    log.info("MQTT output for %s (%s)", out.topics.base, "simulation" if simulated else "live")
    out.start()
    service.outputs.append(out)
    return out


def close_outputs(service: Service) -> None:
    for out in service.outputs:
        try:
            out.close()
        except Exception:
            log.exception("closing %s failed", type(out).__name__)

"""Glue between the Service and optional outputs that need more than a constructor call."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .config import Config

if TYPE_CHECKING:
    from .outputs.mqtt import MqttOutput
    from .service import Service

log = logging.getLogger(__name__)


def attach_mqtt(service: "Service", cfg: Config, *, simulated: bool) -> "MqttOutput":
    """Build the MQTT output from ``cfg``, route its commands into ``service``, start it, add it.

    Live (``simulated=False``): client id ``sitsense-<device>``, the persistent outbox in the state
    folder. A simulation uses client id ``sitsense-<device>-sim`` (so a live service on the same
    broker is not kicked off), an in-memory outbox (the live one is not touched), and waits up to
    30 s at the end for every alert to reach the broker.
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

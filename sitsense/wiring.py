"""Builds a Service with the outputs the config asks for; shared by ``run`` and ``simulate``."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
import os
from typing import TYPE_CHECKING, TextIO

from .clock import Clock
from .config import Config
from .control import Submit
from .outputs.console import ConsoleOutput
from .sensor.source import SampleSource
from .service import Service

if TYPE_CHECKING:
    from .control_socket import ControlServer
    from .mqtt.client import MqttOutput
    from .outputs.buzzer import BuzzerOutput
    from .persistence import StateKeeper
    from .store import Store

log = logging.getLogger(__name__)


def build_service(cfg: Config, *, source: SampleSource | None, clock: Clock, stream: TextIO | None = None, json_lines: bool = False,
                  console: bool = True, coach: bool = True) -> Service:
    """A Service with the coach and the console output."""
    from .coach import Coach

    service = Service(cfg, clock=clock, source=source,
                      coach=Coach(cfg.coach, heed_window_s=cfg.tracker.heed_window_min * 60) if coach else None)
    if console:
        service.outputs.append(ConsoleOutput(stream or sys.stdout, json_lines=json_lines, wall_at=service.wall_at))
    return service


def attach_store(service: Service, cfg: Config, path: str | os.PathLike[str] | None = None) -> tuple[Store, StateKeeper]:
    """Open the state database, resume from its last checkpoint, and log events to it."""
    from .persistence import StateKeeper
    from .paths import db_path
    from .store import Store

    store = Store(path or db_path(cfg)).open()  # in memory if the folder takes no writes (service.storage)
    keeper = StateKeeper(store, service.tracker, checkpoint_s=cfg.store.checkpoint_s, classifier=service.classifier,
                         storage=service.storage)
    service.outputs.append(keeper)
    return store, keeper


def attach_mqtt(service: Service, cfg: Config, *, simulated: bool = False, device_id: str | None = None,
                connect_timeout_s: float = 5.0, outbox: str | None = None) -> MqttOutput:
    """Build the MQTT output from ``cfg``, route its commands into ``service``, start it, add it.

    Live (default): client id ``sitsense-<device>``, the persistent outbox in the state folder;
    connects in the background (alerts wait in the outbox while the broker is away).
    ``simulated`` (a replay): publishes as its own device, ``device_id`` (replay only) or else
    ``<device>-replay`` (own topics, client id, Last Will and Home Assistant device), so the live
    device's retained state and ``status`` are never touched; an in-memory outbox (the live one is
    not touched either); it waits up to ``connect_timeout_s`` for the broker and raises
    BrokerUnavailable if it cannot connect (nothing would be delivered), and ``close()`` waits up
    to 30 s for every alert and counts the rest in ``undelivered``. Returns the MqttOutput.
    """
    import dataclasses

    from .mqtt.client import MqttOutput
    from .mqtt.topics import replay_device_id

    if simulated:
        replay = device_id or replay_device_id(cfg.mqtt.device_id)
        out = MqttOutput(dataclasses.replace(cfg.mqtt, device_id=replay), outbox=":memory:",
                         submit=service.submit, clock=service.clock, flush_on_close_s=30.0)
        log.info("MQTT output for %s (replay)", out.topics.base)
        out.start_and_wait(connect_timeout_s)
    else:
        out = MqttOutput.from_config(cfg, submit=service.submit, clock=service.clock, storage=service.storage,
                                     outbox=outbox)
        log.info("MQTT output for %s (live)", out.topics.base)
        out.start()
    service.outputs.append(out)
    return out


def attach_control(service: Service, db: str | os.PathLike[str]) -> ControlServer | None:
    """The local control socket beside the state database ``db`` (``sitsense.control_socket``); None,
    after a warning, if it cannot be made (the service runs on: MQTT and the button still work)."""
    from .control_socket import ControlServer
    from .errors import OutputError
    from .paths import control_socket_path

    try:
        server = ControlServer(control_socket_path(db), service.submit).start()
    except OutputError as exc:
        log.warning("running without the local control socket ('sitsense calibrate' cannot reach this "
                    "service): %s", exc)
        return None
    service.outputs.append(server)
    return server


def attach_buzzer(service: Service, cfg: Config, *, mock: bool = False) -> BuzzerOutput | None:
    """The buzzer (and button) on GPIO; ``mock`` plays the patterns on gpiozero's mock pins.

    A Pi whose GPIO cannot be opened keeps running without the buzzer (one warning), since the
    count and MQTT still work; a fake sensor uses mock pins so the whole stack runs anywhere.
    """
    out = open_buzzer(cfg, mock=mock, clock=service.clock, submit=service.submit)
    if out is not None:
        service.outputs.append(out)
    return out


def open_buzzer(cfg: Config, *, mock: bool = False, clock: Clock | None = None,
                submit: Submit | None = None) -> BuzzerOutput | None:
    """The configured buzzer on real (or, with ``mock``, gpiozero's mock) pins; None if disabled or
    if no pins can be driven here (a warning says why: the service counts on without it)."""
    from .errors import OutputError
    from .outputs.buzzer import BuzzerOutput

    if not cfg.buzzer.enabled:
        return None
    factory = None
    if mock:
        from gpiozero.pins.mock import MockFactory, MockPWMPin
        factory = MockFactory(pin_class=MockPWMPin)
    try:
        return BuzzerOutput(cfg.buzzer, pin_factory=factory, clock=clock, submit=submit)
    except OutputError as exc:
        log.warning("running without the buzzer: %s", exc)
        return None


def use_stored_calibration(service: Service, path: str | os.PathLike[str], *,
                           unless_older_than: datetime | None = None) -> None:
    """Use the upright reference stored by ``sitsense calibrate`` at ``path`` (``paths.calibration_path``),
    if there is one (and, given ``unless_older_than``, only if it was measured since then)."""
    import numpy as np

    from .posture.base import LearnsWearer
    from .sensor.reference import load_reference

    try:
        ref = load_reference(path)
    except Exception as exc:  # a damaged file must not stop the service
        log.warning("ignoring the stored calibration: %s", exc)
        return
    if ref is not None and unless_older_than is not None:
        try:
            measured = datetime.fromisoformat(ref.time)
        except ValueError:
            measured = None
        if measured is None or measured.tzinfo is None or measured < unless_older_than:
            log.info("keeping today's upright reference: the stored calibration is older (%s)", ref.time or "?")
            return
    if ref is not None:
        service.classifier.set_reference(np.asarray(ref.upright_g, dtype=float))
        log.info("using the stored upright reference")
        if ref.sitting_g is not None and isinstance(service.classifier, LearnsWearer):
            service.classifier.teach("sitting", np.asarray(ref.sitting_g, dtype=float))
            log.info("using the stored sitting direction (calibrate --sit)")


def close_outputs(service: Service) -> None:
    for out in service.outputs:
        try:
            out.close()
        except Exception:
            log.exception("closing %s failed", type(out).__name__)

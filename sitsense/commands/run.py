"""``sitsense run``: the service on the real sensor, or on a fake one fed by a trace."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from ..sdnotify import Notifier
    from ..service import Service

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (only the keys it changes)")
    from ._sensor_args import SENSOR_HELP

    parser.add_argument("--sensor", help=SENSOR_HELP + "; default: sensor.source in the config")
    parser.add_argument("--speed", type=float, help="fake sensors only: run the emulator's clock X times faster")
    parser.add_argument("--seconds", type=float, help="stop after N seconds of sensor time")
    parser.add_argument("--json", action="store_true", help="print events as JSON Lines (as simulate --json)")
    parser.add_argument("--state", help="state database (default: store.path, or the state directory; a fake "
                        "sensor uses none unless given one)")
    parser.add_argument("--no-state", action="store_true", help="do not read or write the state database")
    parser.add_argument("--faults", help="fake sensors only: inject faults, e.g. 'nack=0.01, disconnect=2h+5m, "
                        "reset=5h, stall=3h+20s' (times from the start, or from --epoch)")
    parser.add_argument("--epoch", type=float, help="fake sensors with --speed: the system monotonic time "
                        "(time.monotonic()) at which the trace began; a restarted fake service joins the trace "
                        "where it is now (power-cut tests)")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..paths import state_dir
    from ..sensor.live import parse_spec

    cfg = load_config(args.config)
    if args.state:  # every state file (the database, the MQTT outbox) goes beside --state
        cfg = cfg.with_changes("store", path=args.state)
    elif not args.no_state and args.sensor and parse_spec(args.sensor)[0] == "fake":
        # a fake wearer's day never goes into the real one's state (nor its calibration, nor its outbox);
        # a fake sensor.source in the config is that installation's sensor, and keeps its state
        print(f"sitsense: fake sensor: nothing is read from or stored in {state_dir(cfg)} "
              "(give --state FILE to keep this run's state)", file=sys.stderr)
        args.no_state = True
    lock = None
    if not args.no_state:
        # first of all, before the sensor, the GPIO pins and the broker (same client id) are opened:
        # a second service on the same database exits at once (StateInUse, status 75, retried by systemd)
        from ..persistence import StateLock
        from ..paths import db_path

        lock = StateLock(args.state or db_path(cfg)).acquire()
    try:
        return _run(args, cfg)
    finally:
        if lock is not None:
            lock.release()


def _run(args: argparse.Namespace, cfg: Config) -> int:
    from ..sdnotify import Notifier
    from ..sensor.live import open_source
    from ..paths import calibration_path
    from ..wiring import (attach_buzzer, attach_control, attach_mqtt, attach_store, build_service, close_outputs,
                          use_stored_calibration)
    from .simulate import local_tz

    faults = {}
    if args.faults:
        from ..sensor.faults import parse_faults
        faults = parse_faults(args.faults)
    source = open_source(args.sensor, cfg.sensor, speed=args.speed, seconds=args.seconds, tz=local_tz(cfg),
                         epoch=args.epoch, **faults)
    clock = source.clock
    fake = source.emulator is not None
    service = build_service(cfg, source=source, clock=clock, json_lines=args.json)
    from ..paths import state_dir
    from ..storage import StorageHealth

    # a full or read-only state folder: counting and alerts go on in memory, said loudly and often
    storage = service.storage = StorageHealth(state_dir(cfg.store))
    service.block_hooks.append(lambda svc: storage.remind())  # every 10 min while it lasts
    attach_buzzer(service, cfg, mock=fake)
    if cfg.mqtt.enabled:  # without a state folder (a fake sensor) the outbox lives in memory
        attach_mqtt(service, cfg, outbox=":memory:" if args.no_state else None)
    store = None
    keeper = None
    if not args.no_state:
        store, keeper = attach_store(service, cfg, args.state)
        log.info(keeper.resume(clock.monotonic(), clock.wall()))
        # stopping (SIGTERM: every restart and upgrade) is not the end of the heed windows: they stay
        # open in the final checkpoint and the resumed service reports their outcome
        service.resumable = True
        # 'sitsense calibrate' (and other local tools) ask this service, not the bus, while it runs
        attach_control(service, store.path)
    from ..web.attach import attach_web
    attach_web(service, cfg, store_path=None if store is None else store.path,
               speed=getattr(clock, "speed", None) or 1.0)
    if not fake:
        # after the resume: a calibration stored by 'sitsense calibrate' wins over the day's own
        # reference, unless it is older than today (the day's was taken since, e.g. by cmd/calibrate)
        today = clock.wall().replace(hour=0, minute=0, second=0, microsecond=0)
        day_has_one = keeper is not None and keeper.calibration is not None
        use_stored_calibration(service, calibration_path(cfg), unless_older_than=today if day_has_one else None)
    notifier = Notifier()
    watchdog = _Watchdog(notifier)
    service.block_hooks.append(watchdog)

    def _stop(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        service.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    notifier.ready(f"reading {source.spec}")
    try:
        service.run()
    finally:
        notifier.stopping()
        close_outputs(service)
        if store is not None:
            store.close()
        notifier.close()
    return 0


class _Watchdog:
    """Pings systemd's watchdog after each block (samples flowing or a fault being handled)."""

    def __init__(self, notifier: Notifier):
        self.notifier = notifier
        self._last_status = ""
        self._blocks = 0

    def __call__(self, service: Service) -> None:
        self.notifier.watchdog()
        self._blocks += 1
        if self._blocks % 10 == 0 and self.notifier.enabled:
            tr = service.tracker
            t = service.last_t or 0.0
            text = (f"{service.posture}; bout {tr.bout_s(t) / 60:.0f} min; today sitting "
                    f"{tr.today.seconds['sitting'] / 60:.0f} min, {tr.today.breaks} breaks; sensor {service.sensor_status}")
            if text != self._last_status:
                self.notifier.status(text)
                self._last_status = text

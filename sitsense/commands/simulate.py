"""``sitsense simulate TRACE``: replay a trace through the same Service as ``sitsense run``."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, tzinfo
from time import sleep as pause_s

from ..clock import today_at_nine
from ..errors import ConfigError

# A replay to a broker (--mqtt) plays at this speed unless --speed says otherwise: an hour a minute,
# so a dashboard or a phone shows each alert, and every alert reaches Home Assistant as an event.
MQTT_REPLAY_SPEED = 60.0
# With discovery on, the replay waits this long after announcing its device before it plays, so
# that Home Assistant has created the entities and subscribed to their topics (it batches new
# subscriptions for about a second); alerts published before that would never fire an event.
DISCOVERY_SETTLE_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", help="trace file (.csv or .csv.gz)")
    parser.add_argument("--config", help="config file (only the keys it changes)")
    parser.add_argument("--speed", type=float, default=None,
                        help="replay speed: 1 is real time, 60 a minute per second (default: as fast as possible; "
                             f"with --mqtt {MQTT_REPLAY_SPEED:g})")
    parser.add_argument("--start", help="wall time of t=0, ISO 8601 (default: the trace's start_time, else 09:00 today)")
    parser.add_argument("--json", action="store_true", help="JSON Lines, one event per line")
    parser.add_argument("--mqtt", action="store_true",
                        help="also publish to the configured MQTT broker, as the device <device_id>-replay "
                             "(the live device's topics are not touched)")
    parser.add_argument("--mqtt-device", metavar="ID",
                        help="device id the replay publishes as (default: <device_id>-replay)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def local_tz(cfg) -> tzinfo | None:
    if cfg.tracker.timezone:
        from zoneinfo import ZoneInfo
        return ZoneInfo(cfg.tracker.timezone)
    return None


def start_wall(arg: str | None, trace_start: datetime | None, tz: tzinfo | None) -> datetime:
    """The wall time of t=0: --start, else the trace's start_time, else 09:00 today (local)."""
    if arg:
        try:
            dt = datetime.fromisoformat(arg)
        except ValueError:
            raise ConfigError(f"--start {arg!r}: expected ISO 8601, e.g. 2026-03-02T09:00:00+01:00") from None
        return dt if dt.tzinfo else dt.replace(tzinfo=tz) if tz else dt.astimezone()
    if trace_start is not None:
        return trace_start
    return today_at_nine(tz)


def run(args: argparse.Namespace) -> int:
    from ..clock import SimClock
    from ..config import load_config
    from ..sensor.source import ReplaySource
    from ..mqtt.topics import DEVICE_ID_PATTERN
    from ..trace_reader import TraceReader
    from ..wiring import attach_mqtt, build_service, close_outputs

    cfg = load_config(args.config)
    if args.speed is not None and not args.speed > 0:
        raise ConfigError(f"--speed {args.speed}: must be a positive number (1 = real time)")
    trace = TraceReader(args.trace)  # streamed: memory does not grow with the trace's length
    tz = local_tz(cfg)
    speed = args.speed if args.speed is not None or not args.mqtt else MQTT_REPLAY_SPEED
    clock = SimClock(start_wall(args.start, trace.start_time, tz), speed=speed, tz=tz)
    source = ReplaySource(trace, clock)
    if args.mqtt_device is not None and not re.fullmatch(DEVICE_ID_PATTERN, args.mqtt_device):
        raise ConfigError(f"--mqtt-device {args.mqtt_device!r}: 1-64 letters, digits, '_' or '-'")
    service = build_service(cfg, source=source, clock=clock, stream=sys.stdout, json_lines=args.json)
    mqtt = None
    if args.mqtt:
        from ..mqtt.client import BrokerUnavailable
        from ..mqtt.topics import Topics, resolve_device_id

        live_id = resolve_device_id(cfg.mqtt.device_id)
        if args.mqtt_device == live_id:
            raise ConfigError(f"--mqtt-device {live_id}: that is the live device; a replay would overwrite its "
                              "retained state and mark it offline, so choose another name")
        mqtt = attach_mqtt(service, cfg, simulated=True, device_id=args.mqtt_device)  # fails if unreachable
        live = Topics.for_device(cfg.mqtt.topic_prefix, live_id).base
        print(f"simulate: publishing to {cfg.mqtt.host}:{cfg.mqtt.port} as {mqtt.topics.base}/# "
              f"(the live device {live}/# is not touched) at {speed:g}x", file=sys.stderr, flush=True)
        if cfg.mqtt.discovery:
            pause_s(DISCOVERY_SETTLE_S)
    from ..progress import Progress

    bar = Progress(source.progress()[1], "simulate", quiet=args.quiet or speed is not None)
    service.block_hooks.append(lambda s: bar.update(source.progress()[0]))
    try:
        with bar:
            service.run()
    finally:
        close_outputs(service)
    if mqtt is not None and mqtt.undelivered:
        why = mqtt.last_error or "the connection was lost"
        raise BrokerUnavailable(f"mqtt: {mqtt.undelivered} of {mqtt.stats['queued']} alert(s)/event(s) of the replay "
                                f"were not acknowledged by {cfg.mqtt.host}:{cfg.mqtt.port} within "
                                f"{mqtt.flush_on_close_s:g} s ({why}); they are lost (a replay keeps no outbox)")
    return 0

"""``sitsense record OUT.csv[.gz]``: write the sensor's samples to a trace file for later replay."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from ._sensor_args import add_sensor_arguments, load_config_for

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT.csv[.gz]", help="trace file to write (.gz compresses)")
    parser.add_argument("--label", help="label every sample (sitting, standing, walking, lying, ...)")
    add_sensor_arguments(parser, seconds_help="stop after N seconds of sensor time (default: until Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    from ..sensor.live import open_source
    from ..sensor.recording import TraceWriter

    cfg = load_config_for(args)
    source = open_source(args.sensor, cfg.sensor, speed=args.speed, seconds=args.seconds)
    clock = source.clock
    t0 = clock.monotonic()
    metadata = {"sample_rate_hz": f"{source.sample_rate_hz:g}",
                "start_time": clock.wall().isoformat(timespec="milliseconds"),
                "source": "sitsense record", "sensor": source.chip.name if source.chip else "",
                "who_am_i": f"{source.chip.who_am_i:#04x}" if source.chip else "",
                "range_g": str(source.driver.range.full_scale_g), "sensor_spec": source.spec}
    writer = TraceWriter(args.out, metadata, label=args.label).open()
    previous = signal.signal(signal.SIGTERM, lambda *_: source.close())  # systemd stop: finish cleanly
    interrupted = False
    try:
        for t_s, accel_g in source.blocks():
            writer.write(t_s - t0, accel_g)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        source.close()
        path = writer.close()
        signal.signal(signal.SIGTERM, previous)
    if path is None:
        print("sitsense: no samples recorded; nothing written", file=sys.stderr)
        return 1
    span = (writer.last_t or 0) - (writer.first_t or 0)
    print(f"recorded {writer.samples} samples ({span:.1f} s at {source.sample_rate_hz:g} Hz) to {path}"
          + (" (interrupted)" if interrupted else ""), file=sys.stderr)
    return 0

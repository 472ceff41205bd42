"""Arguments shared by the commands that use the sensor (record, calibrate, doctor, run)."""

from __future__ import annotations

import argparse

SENSOR_HELP = ("'mpu6050' for the chip, 'fake:TRACE.csv' for the emulated chip replaying a trace, or "
               "'fake:plan:sit 30m, walk 2m' for it playing a posture script")


def add_sensor_arguments(parser: argparse.ArgumentParser, *, seconds_help: str | None = None) -> None:
    parser.add_argument("--config", metavar="FILE", help="config file (default: built-in defaults)")
    parser.add_argument("--sensor", metavar="SPEC", help=SENSOR_HELP + "; default: sensor.source")
    parser.add_argument("--speed", type=float, metavar="X",
                        help="fake sensors only: run X times faster than real time (0: as fast as possible)")
    if seconds_help:
        parser.add_argument("--seconds", type=float, metavar="N", help=seconds_help)


def load_config_for(args: argparse.Namespace):
    from ..config import load_config

    return load_config(getattr(args, "config", None))

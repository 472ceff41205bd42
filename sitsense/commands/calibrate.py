"""``sitsense calibrate``: stand still after clipping on; store the upright reference."""

from __future__ import annotations

import argparse
import sys

from ._sensor_args import add_sensor_arguments, load_config_for


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sensor_arguments(parser, seconds_help="how long to stand still (default: posture.calibration_s)")
    parser.add_argument("--output", metavar="FILE",
                        help="where to store it (default: $STATE_DIRECTORY or ~/.local/state/sitsense, "
                             "calibration.json)")


def print_cue(cue: str) -> None:
    """Console cues; the buzzer work replaces this with beeps (see reference.calibrate's ``cue``)."""
    text = {"start": "Stand up straight and keep still...", "done": "Done: you can move.",
            "failed": "Calibration failed."}.get(cue, cue)
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..sensor.live import open_source
    from ..sensor.reference import calibrate, save_reference

    cfg = load_config_for(args)
    duration_s = args.seconds or cfg.posture.calibration_s
    source = open_source(args.sensor, cfg.sensor, speed=args.speed)
    ref = calibrate(source, duration_s, cue=print_cue)
    path = save_reference(ref, args.output)
    x, y, z = ref.upright_g
    print(f"upright reference ({x:+.3f}, {y:+.3f}, {z:+.3f}) g from {ref.samples} samples saved to {path}")
    return 0

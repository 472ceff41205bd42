"""``sitsense calibrate [--sit]``: stand still after clipping on (then sit still); store the reference."""

from __future__ import annotations

import argparse
import sys

from ._sensor_args import add_sensor_arguments, load_config_for


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sensor_arguments(parser, seconds_help="how long to stand still (default: posture.calibration_s)")
    parser.add_argument("--output", metavar="FILE",
                        help="where to store it (default: calibration.json in the state folder, the service's "
                             "for root or --config /etc/sitsense/sitsense.toml; a fake sensor stores nothing "
                             "without --output). While the service runs, it is asked to take the reference")
    parser.add_argument("--sit", action="store_true",
                        help="then sit down and keep still as long again: the classifier learns your own sitting "
                             "(for people whose pelvis barely tilts in a chair)")


def print_cue(cue: str) -> None:
    """Console cues (see reference.calibrate's ``cue``)."""
    text = {"start": "Stand up straight and keep still...", "sit": "Now sit down on a chair and keep still...",
            "done": "Done: you can move.", "failed": "Calibration failed."}.get(cue, cue)
    print(text, file=sys.stderr, flush=True)


def cue_with(buzzer):
    """Print each cue and, with a buzzer, buzz it: buzz, stand still, buzz."""
    def cue(name: str) -> None:
        print_cue(name)
        if buzzer is not None and name in ("start", "sit", "done"):
            buzzer.play("calibration")
            buzzer.wait_idle(5.0)
    return cue


def run(args: argparse.Namespace) -> int:
    from ..sensor.live import open_source
    from ..sensor.reference import ALIKE_DEG, calibrate, save_reference, sitting_tilt_deg

    from ..errors import ConfigError
    from ..sensor.live import parse_spec

    cfg = load_config_for(args)
    if args.seconds is not None and not 1 <= args.seconds <= 60:
        raise ConfigError(f"--seconds {args.seconds:g}: stand still for 1 to 60 s")
    duration_s = args.seconds if args.seconds is not None else cfg.posture.calibration_s
    fake = parse_spec(args.sensor or cfg.sensor.source)[0] == "fake"
    if not fake:  # while the service runs it reads the sensor: ask it rather than drive the bus twice
        from ._via_service import calibrate_in_service

        done = calibrate_in_service(cfg, local_options=[o for o, given in (("--output", args.output),
                                                                              ("--sit", args.sit)) if given])
        if done is not None:
            return done
    source = open_source(args.sensor, cfg.sensor, speed=args.speed)
    from ..wiring import open_buzzer

    buzzer = open_buzzer(cfg, mock=fake)
    if buzzer is None and cfg.buzzer.enabled:
        print("sitsense: no buzz for the cues (see the warning); follow the messages here", file=sys.stderr)
    try:
        ref = calibrate(source, duration_s, cue=cue_with(buzzer), sit=args.sit)
    finally:
        if buzzer is not None:
            buzzer.close()
    x, y, z = ref.upright_g
    if args.sensor and fake and not args.output:  # a fake wearer never replaces the real one's calibration
        print(f"upright reference ({x:+.3f}, {y:+.3f}, {z:+.3f}) g from {ref.samples} samples; not stored "
              "(a fake sensor: give --output FILE to keep it)")
    else:
        from ..paths import calibration_path

        path = save_reference(ref, args.output or calibration_path(cfg))
        print(f"upright reference ({x:+.3f}, {y:+.3f}, {z:+.3f}) g from {ref.samples} samples saved to {path}")
    tilt = sitting_tilt_deg(ref)
    if tilt is not None:
        print(f"sitting tilts the sensor {tilt:.1f} degrees from your standing", end="")
        if tilt < ALIKE_DEG:
            print(": too little to tell the two apart by tilt alone; sitsense will rely on how you sit down and "
                  "stand up. Clipping the sensor where the belt follows the pelvis (hardware.md) helps.")
        else:
            print("")
    return 0

"""``sitsense synth``: a synthetic labelled trace from a plan (our own physical model, no data set)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plan", required=True, help='e.g. "stand 1m, sit 35m, walk 3m, off 20m"')
    parser.add_argument("-o", "--output", required=True, help="trace to write (.csv or .csv.gz)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: another wearer and noise (default 0)")
    parser.add_argument("--rate", type=float, default=50.0, help="sample rate in Hz (default 50)")
    parser.add_argument("--start", help="start_time metadata, ISO 8601 with offset")


def run(args: argparse.Namespace) -> int:
    from ..errors import PlanError
    from ..plan import parse_plan
    from ..synth import synth_chunks, synth_metadata
    from ..trace_writer import write_chunks

    if not 10 <= args.rate <= 200:
        raise PlanError(f"--rate {args.rate:g}: must be between 10 and 200 Hz")
    check_start(args.start)
    plan = parse_plan(args.plan)
    meta = synth_metadata(plan, sample_rate_hz=args.rate, seed=args.seed, start_time=args.start)
    chunks = synth_chunks(plan, sample_rate_hz=args.rate, seed=args.seed)  # streamed: any length, little memory
    written = write_chunks(args.output, meta, chunks, labelled=True)
    span_s = (written.last_t or 0.0) - (written.first_t or 0.0)
    print(f"{args.output}: {span_s / 60:.1f} min, {written.samples} samples at {args.rate:g} Hz")
    return 0


def check_start(text: str | None) -> None:
    """``--start`` must be what the trace reader accepts, so the written trace can be read back."""
    from ..errors import ConfigError
    from ..traces import parse_start_time

    if text is not None and parse_start_time(text) is None:
        raise ConfigError(f"--start {text!r}: expected ISO 8601 with a UTC offset, e.g. 2026-03-02T09:00:00+01:00")

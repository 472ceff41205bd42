"""``sitsense compose``: a long labelled day from one HAPT user's real recordings."""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hapt", default=os.environ.get("SITSENSE_HAPT_DIR"),
                        help="HAPT folder (RawData/...); default $SITSENSE_HAPT_DIR")
    parser.add_argument("--user", type=int, required=True, help="HAPT user number")
    parser.add_argument("--plan", required=True, help='e.g. "stand 2m, sit 38m, walk 3m, stand 30s"')
    parser.add_argument("-o", "--output", required=True, help="trace to write (.csv or .csv.gz)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the crops (default 0)")
    parser.add_argument("--start", help="start_time metadata, ISO 8601 with offset")
    parser.add_argument("--mix-recordings", action="store_true",
                        help="draw crops from all the user's recordings (each has its own phone mount, so the "
                             "day then has silent remounts); default: one recording, one mount")
    parser.add_argument("--posture-shifts", action="store_true",
                        help="sitting bouts shift every few minutes between slumped, upright and perched "
                             "(a turn of the pelvis without standing up)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..compose import compose_stream
    from ..errors import DatasetError
    from ..plan import parse_plan
    from ..trace_writer import write_chunks

    if not args.hapt:
        raise DatasetError("compose: pass --hapt DIR or set SITSENSE_HAPT_DIR")
    from ..progress import Progress
    from .synth import check_start

    check_start(args.start)
    plan = parse_plan(args.plan)
    with Progress(len(plan), "compose", quiet=args.quiet) as bar:
        meta, chunks = compose_stream(args.hapt, args.user, plan, seed=args.seed, start_time=args.start,
                                      progress=lambda done, total: bar.update(done),
                                      mix_recordings=args.mix_recordings, posture_shifts=args.posture_shifts)
        written = write_chunks(args.output, meta, chunks, labelled=True)  # streamed: a day of any length
    span_s = (written.last_t or 0.0) - (written.first_t or 0.0)
    print(f"{args.output}: {span_s / 60:.1f} min, {written.samples} samples at 50 Hz")
    return 0

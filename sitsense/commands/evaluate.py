"""``sitsense evaluate``: score the posture classifier by the issue-3 protocol on HAPT or a labelled trace."""

from __future__ import annotations

import argparse

from ..jsonout import dumps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", nargs="?", metavar="TRACE.csv",
                        help="a labelled trace file (adds sitting_time_error); or use --hapt")
    parser.add_argument("--hapt", metavar="DIR", help="folder in the HAPT layout (RawData/...)")
    parser.add_argument("--users", help="HAPT users to score, e.g. '25-30' (default: all)")
    parser.add_argument("--rate", type=float, metavar="HZ", help="decimate to this sample rate first")
    parser.add_argument("--model", metavar="FILE", help="posture model (default: the shipped one)")
    parser.add_argument("--provisional", action="store_true", help="score the provisional tilt classifier")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..errors import DatasetError
    from ..posture.evaluate import evaluate_traces, format_metrics, make_factory
    from ..progress import Progress
    from ..traces import parse_users, read_hapt

    if bool(args.trace) == bool(args.hapt):
        raise DatasetError("give either a labelled TRACE.csv or --hapt DIR")
    if args.rate is not None and not 20 <= args.rate <= 100:
        raise DatasetError(f"--rate {args.rate:g}: the classifier works from 20 to 100 Hz")
    if args.hapt:
        traces = read_hapt(args.hapt, parse_users(args.users) if args.users else None)
        make = make_factory(args.model, provisional=args.provisional)
        with Progress(sum(tr.duration_s for tr in traces), "evaluate", quiet=args.quiet) as bar:
            tally = evaluate_traces(traces, make, rate_hz=args.rate,
                                    progress=(lambda done_s, total_s: bar.update(done_s)) if bar.enabled else None)
    else:  # a trace of any length, streamed
        from ..trace_evaluation import evaluate_trace_file
        from ..trace_reader import TraceReader

        reader = TraceReader(args.trace)
        span = reader.summary()
        if not span.labelled:
            raise DatasetError(f"{args.trace}: has no labels to score against")
        make = make_factory(args.model, provisional=args.provisional)
        with Progress(span.duration_s, "evaluate", quiet=args.quiet) as bar:
            tally = evaluate_trace_file(reader, make, rate_hz=args.rate,
                                        progress=bar.update if bar.enabled else None)
    metrics = tally.metrics(sitting_time=bool(args.trace))
    print(dumps(metrics, indent=2) if args.json else format_metrics(metrics))
    return 0

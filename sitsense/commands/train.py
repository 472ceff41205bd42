"""``sitsense train --hapt DIR [--users 1-24] -o FILE``: train the posture model on HAPT recordings."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hapt", required=True, metavar="DIR", help="folder in the HAPT layout (RawData/...)")
    parser.add_argument("--users", default="1-24", help="users to train on, e.g. '1-24' or '1,3,5-7'")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="model file to write (.npz)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..posture.training import train
    from ..progress import Progress
    from ..traces import parse_users, read_hapt

    users = parse_users(args.users)
    traces = read_hapt(args.hapt, users)
    with Progress(1.0, "train", quiet=args.quiet) as bar:
        model = train(traces, trained_on=f"HAPT users {args.users}",
                      progress=(lambda done, total: bar.update(done / total)) if bar.enabled else None)
    model.save(args.output)
    print(f"{args.output}: trained on {len(traces)} recordings of users {args.users}")
    return 0

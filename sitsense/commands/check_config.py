"""``sitsense check-config [FILE]``: validate a config file and report every problem at once."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", default="/etc/sitsense/sitsense.toml",
                        help="config file (default: /etc/sitsense/sitsense.toml)")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config

    load_config(args.file)
    print(f"{args.file}: ok")
    return 0

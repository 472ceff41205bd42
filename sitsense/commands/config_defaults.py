"""``sitsense config-defaults``: print the commented default config."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from ..config import render_defaults

    print(render_defaults(), end="")
    return 0

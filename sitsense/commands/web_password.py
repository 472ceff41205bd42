"""``sitsense web-password``: make the phone page's password hash (the password is never stored)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from ..errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", metavar="FILE",
                        help="write the hash to FILE (mode 0600; point web.password_file at it) instead of "
                             "printing a SITSENSE_WEB_PASSWORD= line for /etc/sitsense/environment")
    parser.add_argument("--stdin", action="store_true", help="read the password from standard input (one line)")


def run(args: argparse.Namespace) -> int:
    from ..web.auth import MIN_PASSWORD_CHARS, PASSWORD_ENV, hash_password

    if args.stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password for the phone page: ")
        if getpass.getpass("Again: ") != password:
            raise ConfigError("the two passwords differ; nothing was written")
    if len(password) < MIN_PASSWORD_CHARS:
        raise ConfigError(f"the password needs at least {MIN_PASSWORD_CHARS} characters; nothing was written")
    line = hash_password(password)
    if args.output:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(line + "\n")
        print(f"wrote the hash to {args.output}; set web.password_file = \"{args.output}\"", file=sys.stderr)
    else:
        print(f"{PASSWORD_ENV}={line}")
    return 0

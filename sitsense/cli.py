"""The ``sitsense`` command: a registry of subcommands, each imported only when used.

Every subcommand lives in ``sitsense/commands/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``. Errors from sitsense are printed as one line (``sitsense: ...``) with the
error's exit status; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

from .errors import SitsenseError

# name -> (module, one-line help). Keep this dict the only place that lists commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("sitsense.commands.simulate", "replay a trace through the whole pipeline"),
    "compose": ("sitsense.commands.compose", "build a long labelled day from HAPT recordings"),
    "synth": ("sitsense.commands.synth", "write a synthetic trace from a posture plan (no data set needed)"),
    "run": ("sitsense.commands.run", "run the service on the sensor (or a fake one)"),
    "record": ("sitsense.commands.record", "record the sensor to a trace file"),
    "calibrate": ("sitsense.commands.calibrate", "take the upright reference: stand still after clipping on"),
    "doctor": ("sitsense.commands.doctor", "check I2C, the sensor, GPIO and the broker, with fixes"),
    "train": ("sitsense.commands.train", "train the posture model on HAPT recordings"),
    "evaluate": ("sitsense.commands.evaluate", "score the posture classifier on HAPT or a labelled trace"),
    "check-config": ("sitsense.commands.check_config", "validate a config file and report every problem"),
    "config-defaults": ("sitsense.commands.config_defaults", "print the default config, every key commented"),
    "history": ("sitsense.commands.history", "show past days from the state database"),
    "report": ("sitsense.commands.report", "a day's report, as text, JSON or a timeline picture"),
    "web-password": ("sitsense.commands.web_password", "make the phone page's password hash"),
}


def _available() -> dict[str, tuple[str, str]]:
    return {name: spec for name, spec in COMMANDS.items() if importlib.util.find_spec(spec[0]) is not None}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sitsense",
        description="Notices long sitting from a belt-worn accelerometer and coaches a hip-flexor release.")
    parser.add_argument("--version", action="version", version=f"sitsense {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in _available().items():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.command:
        parser.print_help()
        return 0
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except SitsenseError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"sitsense: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a file we were told to read or write: one line, no traceback
        where = exc.filename if exc.filename is not None else ""
        if isinstance(where, str) and where.endswith(".part"):
            where = where[:-len(".part")]  # the temporary name of an atomic write: name the real file
        what = exc.strerror or str(exc)
        hint = "; does the folder exist?" if isinstance(exc, FileNotFoundError) else ""
        print(f"sitsense: {where}: {what}{hint}" if where else f"sitsense: {what}", file=sys.stderr)
        return 74  # EX_IOERR


if __name__ == "__main__":
    sys.exit(main())

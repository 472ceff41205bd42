"""The installed ``sitsense`` script: ``from sitsense.cli import main; sys.exit(main())`` in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def test_console_script_entry_point_runs_in_a_fresh_interpreter():
    # not 'python -m sitsense.cli': runpy imports importlib.util itself and hides a missing import
    code = "import sys; from sitsense.cli import main; sys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for argv in (["--help"], ["check-config", "--help"]):
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert "usage: sitsense" in done.stdout

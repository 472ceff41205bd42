"""The shipped unit passes systemd-analyze verify and scores 2.0 or less on exposure."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO, require

UNIT = REPO / "systemd" / "sitsense.service"


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    require(tool is not None, "systemd-analyze not installed (Debian package 'systemd')")
    return tool  # type: ignore[return-value]


def test_unit_verifies(tmp_path):
    tool = _analyze()
    # verify checks that ExecStart exists: point it at this checkout's entry point instead of /opt
    exe = Path(sys.executable).parent / "sitsense"
    require(exe.exists(), "the sitsense console script is not installed in this environment")
    unit = tmp_path / "sitsense.service"
    unit.write_text(UNIT.read_text().replace("/opt/sitsense/venv/bin/sitsense", str(exe)))
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "sitsense.service" not in proc.stderr, proc.stderr  # no warnings about our unit


def test_exposure_score_is_at_most_2():
    tool = _analyze()
    proc = subprocess.run([tool, "security", "--offline=true", str(UNIT)], capture_output=True, text=True,
                          timeout=60)
    m = re.search(r"Overall exposure level for sitsense.service: (\d+\.\d)", proc.stdout + proc.stderr)
    assert m, proc.stdout[-500:]
    assert float(m.group(1)) <= 2.0


def test_unit_has_the_promised_settings():
    text = UNIT.read_text()
    for line in ["Type=notify", "Restart=on-failure", "RestartPreventExitStatus=78", "DynamicUser=yes",
                 "SupplementaryGroups=i2c gpio", "DevicePolicy=closed", "StateDirectory=sitsense",
                 "ConfigurationDirectory=sitsense", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"]:
        assert line in text, line
    assert "PrivateDevices" not in text and "PrivateUsers" not in text
    assert re.search(r"^WatchdogSec=\d+", text, re.M)

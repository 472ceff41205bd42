"""The shipped unit: systemd-analyze verify, an exposure score of 2.0 or less, and, under a real
(throwaway) systemd, a service that comes up with a working directory lgpio can write to."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

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


# ---------------------------------------------------------------- the working directory (lgpio's pipes)

def _unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_working_directory_is_one_systemd_makes_writable_for_the_service():
    """lgpio makes its .lgd-nfy* pipes in the working directory; with ProtectSystem=strict and
    DynamicUser only the unit's own runtime/state directories are writable, so it must be one of them."""
    s = _unit_settings(UNIT.read_text())
    assert s.get("ProtectSystem") == ["strict"]
    (workdir,) = s["WorkingDirectory"]
    writable = [f"/run/{d}" for d in " ".join(s.get("RuntimeDirectory", [])).split()]
    writable += [f"/var/lib/{d}" for d in " ".join(s.get("StateDirectory", [])).split()]
    assert any(workdir == w or workdir.startswith(w + "/") for w in writable), (workdir, writable)


# What lgpio does when gpiozero imports it (lg's xCreatePipe, then lgpio.py's open): a named pipe
# called .lgd-nfy<N> in the current directory, opened by name. The result goes to the state directory.
LGPIO_PROBE = r'''
import json, os, sys
out = {"cwd": os.getcwd(), "uid": os.getuid()}
try:
    os.mkfifo(".lgd-nfy0", 0o664)
    os.chmod(".lgd-nfy0", 0o664)
    w = os.open(".lgd-nfy0", os.O_RDWR | os.O_NONBLOCK)
    with open(".lgd-nfy0", "rb", buffering=0) as r:
        os.write(w, b"x")
        out["pipe"] = "ok" if r.read(1) == b"x" else "no data"
    os.close(w)
except OSError as exc:
    out["pipe"] = f"{type(exc).__name__}: {exc}"
try:  # the hardening is in force: the rest of the file system is read-only
    open("/opt/sitsense/written-by-the-service", "w").close()
    out["opt"] = "writable"
except OSError as exc:
    out["opt"] = f"{type(exc).__name__}: {exc}"
out["cpuinfo_readable"] = os.access("/proc/cpuinfo", os.R_OK)  # gpiozero finds the Pi model there
path = os.path.join(os.environ["STATE_DIRECTORY"], "lgpio-probe-" + os.environ["INVOCATION_ID"] + ".json")
with open(path, "w") as f:
    json.dump(out, f)
sys.exit(0 if out["pipe"] == "ok" else 1)
'''

# Stand-in for the installed entry point: what lgpio does on import, then the service from this checkout.
# The interpreter, its libraries and the test environment are mounted under /opt/sitsense because
# ProtectHome= hides /root and /home, where pyenv or a clone may live.
STAND_IN = """#!/bin/sh
export LD_LIBRARY_PATH=/opt/sitsense/python/lib PYTHONPATH=/opt/sitsense/src:/opt/sitsense/testenv/{site}
/opt/sitsense/python/{python} /opt/sitsense/lgpio_probe.py || exit 1
exec /opt/sitsense/python/{python} -m sitsense.cli "$@"
"""


def _stand_in() -> str:
    python = Path(sys.executable).resolve().relative_to(Path(sys.base_prefix).resolve())
    site = Path(sysconfig.get_paths()["purelib"]).relative_to(sys.prefix)
    return STAND_IN.format(python=python, site=site)


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    """The shipped unit, verbatim, under a real systemd (see tests/systemd_box.py); the checkout and
    its environment are mounted read-only where the unit's ExecStart expects the installation."""
    from . import systemd_box

    reason = systemd_box.available()
    require(reason is None, f"cannot run a throwaway systemd here: {reason}")
    b = systemd_box.SystemdBox(tmp_path_factory.mktemp("systemd-box"))
    b.add_groups("i2c", "gpio")  # SupplementaryGroups=; Raspberry Pi OS has both
    b.add_unit("sitsense.service", UNIT.read_text())
    # the same unit with systemd's default working directory (/): the bug this setting fixes
    b.add_unit("sitsense-default-cwd.service",
               "\n".join(line for line in UNIT.read_text().splitlines() if not line.startswith("WorkingDirectory=")))
    b.add_bind(REPO, "/opt/sitsense/src")
    b.add_bind(Path(sys.prefix), "/opt/sitsense/testenv")
    b.add_bind(Path(sys.base_prefix), "/opt/sitsense/python")
    b.add_file("/opt/sitsense/lgpio_probe.py", LGPIO_PROBE)
    b.add_file("/opt/sitsense/venv/bin/sitsense", _stand_in(), 0o755)
    b.add_file("/etc/sitsense/sitsense.toml",
               '[sensor]\nsource = "fake:/opt/sitsense/src/examples/desk-morning.csv.gz"\n')
    try:
        b.start()
        yield b
    finally:
        b.close()


def _probe(box, unit: str) -> dict:
    invocation = box.show(unit, "InvocationID")["InvocationID"]
    return json.loads(box.read(f"/var/lib/sitsense/lgpio-probe-{invocation}.json"))


def test_service_runs_under_real_systemd_and_lgpio_can_make_its_pipe(box):
    start = box.systemctl("start", "sitsense.service", check=False)  # Type=notify: waits for READY=1
    status = box.systemctl("status", "sitsense.service", check=False).stdout
    assert start.returncode == 0, start.stderr + status
    props = box.show("sitsense.service", "ActiveState", "MainPID", "StatusText")
    assert props["ActiveState"] == "active", status
    probe = _probe(box, "sitsense.service")
    assert probe["cwd"] == "/run/sitsense" and probe["pipe"] == "ok", probe
    assert probe["uid"] != 0 and "Read-only file system" in probe["opt"], probe  # hardened, yet the pipe works
    assert probe["cpuinfo_readable"], probe
    # the running service itself: its working directory, and its state database where the unit says
    cwd = box.run("readlink", f"/proc/{props['MainPID']}/cwd").stdout.strip()
    assert cwd == "/run/sitsense"
    assert "sitsense.db" in box.run("ls", "/var/lib/sitsense").stdout
    box.systemctl("stop", "sitsense.service")
    assert box.show("sitsense.service", "Result")["Result"] == "success"


def test_without_the_working_directory_lgpio_fails_under_the_same_hardening(box):
    """The check above can fail: in systemd's default working directory (/) the pipe cannot be made."""
    start = box.systemctl("start", "sitsense-default-cwd.service", check=False)
    assert start.returncode != 0
    probe = _probe(box, "sitsense-default-cwd.service")
    assert probe["cwd"] == "/" and "Read-only file system" in probe["pipe"], probe

"""One state location per installation (issue 11, items 2 and 3).

Root and the installed config share the service's folder; ``calibrate`` then ``systemctl start``
uses that calibration (the unit's environment: STATE_DIRECTORY, no home); ``calibrate`` while the
service runs asks the service through its control socket and never opens the bus; fake sensors
and replays leave the wearer's state alone unless told where to write.

The chip on the I2C bus is played by the register emulator on a simulated clock: ``open_source``
is swapped for one that builds it and presents it as the real ``mpu6050`` (as a test puts an
emulator where the bus goes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sitsense import paths
from sitsense.cli import main
from sitsense.clock import SimClock
from sitsense.sensor import live
from sitsense.config import Config, config_from_dict
from sitsense.persistence import StateLock
from sitsense.store import Store
from tests.conftest import REPO

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
QUIET = "[buzzer]\nenabled = false\n"
REAL_OPEN = live.open_source


def chip_on_the_bus(monkeypatch, plan: str, seed: int = 5) -> list[str]:
    """From now on 'the MPU-6050 on /dev/i2c-1' is the emulator playing ``plan``; returns a list that
    grows by one each time the real chip is opened."""
    opened: list[str] = []

    def open_source(spec, cfg, clock=None, speed=None, **kw):
        if (spec or cfg.source) != "mpu6050":  # fake sensors are what they are
            return REAL_OPEN(spec, cfg, clock, speed, **kw)
        opened.append("mpu6050")
        source = REAL_OPEN(f"fake:plan:{plan}", cfg, SimClock(START), seed=seed,
                           **{k: v for k, v in kw.items() if k in ("seconds", "connect")})
        source.emulator, source.spec = None, "mpu6050"  # from here on it is the chip
        return source

    monkeypatch.setattr(live, "open_source", open_source)
    return opened


def as_user(monkeypatch, tmp_path, euid: int, *, home: bool = True) -> None:
    """A shell of this user: no STATE_DIRECTORY (systemd sets it only for the unit)."""
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setattr("os.geteuid", lambda: euid)
    if home:
        monkeypatch.setenv("HOME", str(tmp_path / f"home-{euid}"))
    else:
        monkeypatch.delenv("HOME", raising=False)


def files_in(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_rules_for_the_state_folder(tmp_path, monkeypatch):
    system = tmp_path / "var-lib-sitsense"
    monkeypatch.setattr(paths, "SYSTEM_STATE_DIR", system)
    user = {"HOME": "/home/pi"}
    assert paths.state_dir(Config(), user, euid=1000) == Path("/home/pi/.local/state/sitsense")
    assert paths.state_dir(Config(), {**user, "XDG_STATE_HOME": "/x"}, euid=1000) == Path("/x/sitsense")
    assert paths.state_dir(Config(), user, euid=0) == system  # sudo: the service's
    installed = config_from_dict({}, source=str(paths.SYSTEM_CONFIG))
    assert paths.state_dir(installed, user, euid=1000) == system  # --config /etc/sitsense/sitsense.toml
    assert paths.state_dir(Config(), {"STATE_DIRECTORY": "/var/lib/sitsense:/x"}, euid=61000) == Path("/var/lib/sitsense")
    assert paths.state_dir(Config().with_changes("store", path="/data/s.db"), user, euid=0) == Path("/data")
    assert paths.control_socket_path(system / "sitsense.db") == system / "sitsense.db.sock"


def test_calibrate_as_root_then_the_unit_starts_with_that_calibration(tmp_path, monkeypatch, capsys):
    system = tmp_path / "var-lib-sitsense"
    monkeypatch.setattr(paths, "SYSTEM_STATE_DIR", system)
    config = tmp_path / "sitsense.toml"
    config.write_text(QUIET)
    # 'sudo sitsense calibrate' on the Pi: root's shell, the wearer standing still
    as_user(monkeypatch, tmp_path, 0)
    chip_on_the_bus(monkeypatch, "stand 1m")
    assert main(["calibrate", "--config", str(config), "--seconds", "3"]) == 0
    stored = json.loads((system / "calibration.json").read_text())
    assert "saved to " + str(system / "calibration.json") in capsys.readouterr().out
    # 'systemctl start sitsense': the unit's environment (DynamicUser, STATE_DIRECTORY, no home)
    as_user(monkeypatch, tmp_path, 61234, home=False)
    monkeypatch.setenv("STATE_DIRECTORY", str(system))
    chip_on_the_bus(monkeypatch, "sit 3m")
    assert main(["run", "--config", str(config), "--seconds", "30", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    calibrations = [e for e in events if e["type"] == "calibration"]
    assert calibrations and calibrations[0]["source"] == "explicit"  # the stored one, from the first block
    assert calibrations[0]["upright_g"] == pytest.approx(stored["upright_g"], abs=1e-3)
    assert (system / "sitsense.db").exists()  # one folder for everything
    assert not (tmp_path / "home-0").exists()


def test_fake_runs_and_replays_leave_the_default_store_untouched(tmp_path, monkeypatch, capsys):
    as_user(monkeypatch, tmp_path, 1000)
    default = paths.state_dir()
    assert default == tmp_path / "home-1000" / ".local" / "state" / "sitsense"
    config = tmp_path / "c.toml"
    config.write_text(QUIET)
    # the wearer's own state: a calibration and a stored day
    chip_on_the_bus(monkeypatch, "stand 1m")
    assert main(["calibrate", "--config", str(config), "--seconds", "3"]) == 0
    store = Store(paths.db_path()).open()
    store.put("tracker", {"wearer": "real"})
    store.close()
    before = files_in(default)
    assert {"calibration.json", "sitsense.db"} <= set(before)
    short = str(REPO / "examples" / "short.csv")
    assert main(["run", "--config", str(config), "--sensor", f"fake:{short}", "--speed", "0", "--json"]) == 0
    assert "nothing is read from or stored in" in capsys.readouterr().err
    assert main(["calibrate", "--config", str(config), "--sensor", f"fake:{short}", "--speed", "0"]) == 0
    assert "not stored" in capsys.readouterr().out
    assert main(["simulate", short, "--json"]) == 0
    assert main(["report", short, "--json"]) == 0
    assert files_in(default) == before  # not a byte, not a timestamp
    # asked for: --state keeps the fake run's own state there, and only there
    mine = tmp_path / "fake-state" / "day.db"
    assert main(["run", "--config", str(config), "--sensor", f"fake:{short}", "--speed", "0", "--state", str(mine)]) == 0
    assert mine.exists() and files_in(default) == before


def test_calibrate_while_the_service_runs_asks_it_and_never_opens_the_bus(tmp_path, monkeypatch, capsys):
    state = Path(os.environ["STATE_DIRECTORY"])
    db = paths.db_path()
    # the service: a real 'sitsense run' process; its sensor a fake wearer standing still for an hour
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen([sys.executable, "-m", "sitsense.cli", "run", "--sensor", "fake:plan:stand 1h",
                             "--speed", "20", "--state", str(db), "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sock = paths.control_socket_path(db)
        for _ in range(600):
            if sock.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert sock.exists(), proc.stderr.read() if proc.poll() is not None else "no control socket"
        opened = chip_on_the_bus(monkeypatch, "stand 1m")  # would be a second driver on the same chip
        code = main(["calibrate"])
        out, err = capsys.readouterr()
        assert code == 0 and opened == [], (out, err)
        assert "taken by the running service" in out and "asking it" in err, (out, err)
        assert not (state / "calibration.json").exists()  # the service keeps it (today's checkpoint)
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=30)
    # what the command printed is the reference the service took after it asked
    calibrations = [json.loads(x) for x in stdout.splitlines() if '"calibration"' in x]
    shown = [float(v) for v in out.split("(")[1].split(")")[0].split(",")]
    assert calibrations and shown == pytest.approx(calibrations[-1]["upright_g"], abs=1e-3), calibrations
    assert not sock.exists() and proc.returncode == 0, stderr[-2000:]


def test_calibrate_refuses_while_a_service_holds_the_state_without_a_control_socket(tmp_path, monkeypatch, capsys):
    opened = chip_on_the_bus(monkeypatch, "stand 1m")
    with StateLock(paths.db_path()):
        assert main(["calibrate"]) == 75
    assert opened == []
    err = capsys.readouterr().err
    assert "does not answer" in err and "systemctl stop sitsense" in err and "Traceback" not in err


def test_doctor_leaves_the_sensor_to_the_running_service_and_shows_the_calibration(tmp_path, monkeypatch, capsys):
    config = tmp_path / "c.toml"
    config.write_text(QUIET)
    opened = chip_on_the_bus(monkeypatch, "stand 1m")
    assert main(["calibrate", "--config", str(config), "--seconds", "3"]) == 0
    capsys.readouterr()
    with StateLock(paths.db_path()):
        main(["doctor", "--config", str(config), "--json"])
    checks = {c["check"]: c for c in map(json.loads, capsys.readouterr().out.splitlines())}
    assert opened == ["mpu6050"]  # by calibrate; doctor did not open it again
    assert checks["sensor answering"]["status"] == "skip" and "running service" in checks["sensor answering"]["detail"]
    assert checks["calibration"]["status"] == "pass" and str(paths.state_dir()) in checks["calibration"]["detail"]

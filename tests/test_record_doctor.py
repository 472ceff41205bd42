"""record, calibrate, doctor (and run) on fake sensors, through the command line."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from sitsense.cli import main
from sitsense.paths import calibration_path
from sitsense.sensor.reference import load_reference
from sitsense.sensor.recording import TraceWriter
from sitsense.traces import Trace, read_trace, write_trace
from tests.sensor_fakes import wobbly_trace


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def segments(evs, min_s=3.0):
    """Posture changes that lasted at least ``min_s`` (one-step blips at transitions are dropped)."""
    ch = [(e["t"], e["posture"]) for e in evs if e["type"] == "posture"]
    out = []
    for (t, p), nxt in zip(ch, ch[1:] + [(np.inf, "")]):
        if nxt[0] - t >= min_s and (not out or out[-1][1] != p):
            out.append((t, p))
    return out


@pytest.fixture
def still_file(tmp_path):
    trace = wobbly_trace(seconds=30)
    trace.accel_g = np.array([0.97, 0.05, 0.23]) + np.random.default_rng(0).normal(0, 0.003, trace.accel_g.shape)
    path = tmp_path / "still.csv"
    write_trace(path, trace, decimals=5)
    return path, trace


# ---------------------------------------------------------------- record

@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_record_writes_a_trace_with_metadata(capsys, tmp_path, still_file, suffix):
    src, trace = still_file
    out = tmp_path / ("rec" + suffix)
    code, _, err = cli(capsys, "record", str(out), "--sensor", f"fake:{src}", "--speed", "0", "--label", "standing")
    assert code == 0 and "recorded" in err
    rec = read_trace(out)
    meta = rec.metadata
    assert meta["sample_rate_hz"] == "25" and meta["sensor"] == "MPU-6050" and meta["range_g"] == "2"
    assert meta["start_time"].startswith("20") and rec.start_time.tzinfo is not None
    assert len(rec) == len(trace) and set(rec.label_names()) == {"standing"}
    assert np.abs(rec.accel_g - trace.accel_g).max() <= 1 / 16384 + 5e-5  # one LSB plus 4 decimals
    assert not (tmp_path / ("rec" + suffix + ".part")).exists()


def test_record_seconds_limit(capsys, tmp_path, still_file):
    src, _ = still_file
    out = tmp_path / "rec.csv"
    assert cli(capsys, "record", str(out), "--sensor", f"fake:{src}", "--speed", "0", "--seconds", "10")[0] == 0
    rec = read_trace(out)
    assert 9.5 <= rec.t_s[-1] <= 10.0 and 240 <= len(rec) <= 250


def test_an_interrupted_recording_keeps_what_was_recorded(tmp_path):
    writer = TraceWriter(tmp_path / "rec.csv.gz", {"sample_rate_hz": "25"}).open()
    t = np.arange(100) / 25
    writer.write(t, np.tile([0.0, 0.0, 1.0], (100, 1)))
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        path = writer.close()
    assert len(read_trace(path)) == 100


def test_sigterm_during_record_writes_the_file(capsys, tmp_path, still_file, monkeypatch):
    from sitsense.sensor import live

    src, _ = still_file
    real_blocks = live.LiveSource.blocks

    def blocks(self):
        for i, block in enumerate(real_blocks(self)):
            yield block
            if i == 5:
                signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(live.LiveSource, "blocks", blocks)
    out = tmp_path / "rec.csv"
    code, _, err = cli(capsys, "record", str(out), "--sensor", f"fake:{src}", "--speed", "0")
    assert code == 0 and 5 * 25 <= len(read_trace(out)) <= 8 * 25


@pytest.mark.parametrize("argv, words", [
    (["--sensor", "bogus"], "unknown sensor"),
    (["--sensor", "fake:/nonexistent.csv"], "no such trace file"),
    (["--sensor", "mpu6050", "--speed", "10"], "only applies to fake sensors"),
    (["--label", "dancing", "--sensor", "fake:STILL"], "unknown label"),
])
def test_bad_settings_are_one_line(capsys, tmp_path, still_file, argv, words):
    argv = [a.replace("STILL", str(still_file[0])) for a in argv]
    code, _, err = cli(capsys, "record", str(tmp_path / "x.csv"), *argv)
    assert code != 0 and words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_rate_out_of_range_in_config_is_one_line(capsys, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[sensor]\nsample_rate_hz = 200\n")
    code, _, err = cli(capsys, "doctor", "--config", str(cfg))
    assert code == 78 and "sample_rate_hz = 200: out of range" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- record -> simulate, run == simulate

def test_record_then_simulate_reproduces_the_source_traces_events(capsys, tmp_path, examples_dir):
    day = examples_dir / "desk-morning.csv.gz"
    _, sim_out, _ = cli(capsys, "simulate", str(day), "--json")
    out = tmp_path / "rec.csv.gz"
    assert cli(capsys, "record", str(out), "--sensor", f"fake:{day}", "--speed", "0")[0] == 0
    _, rec_out, _ = cli(capsys, "simulate", str(out), "--json")
    _same_story(events(sim_out), events(rec_out))


def test_run_on_a_fake_sensor_matches_simulate(capsys, examples_dir):
    day = examples_dir / "desk-morning.csv.gz"
    _, sim_out, _ = cli(capsys, "simulate", str(day), "--json")
    code, run_out, _ = cli(capsys, "run", "--sensor", f"fake:{day}", "--speed", "0", "--json", "--no-state")
    assert code == 0
    _same_story(events(sim_out), events(run_out))


def _same_story(a, b):
    alerts_a = [e for e in a if e["type"] == "alert"]
    alerts_b = [e for e in b if e["type"] == "alert"]
    assert len(alerts_a) == len(alerts_b) >= 2
    assert all(abs(x["t"] - y["t"]) <= 2 for x, y in zip(alerts_a, alerts_b))
    sa, sb = segments(a), segments(b)
    assert [p for _, p in sa] == [p for _, p in sb]
    assert all(abs(x - y) <= 2 for (x, _), (y, _) in zip(sa, sb))
    assert not [e for e in b if e["type"] == "sensor"]  # a healthy fake sensor reports no faults


# ---------------------------------------------------------------- calibrate

def test_calibrate_stores_the_upright_reference(capsys, tmp_path, still_file, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    src, _ = still_file
    # a fake sensor stores its reference only where it is told to (the wearer's stays as it is)
    code, out, err = cli(capsys, "calibrate", "--sensor", f"fake:{src}", "--speed", "0", "--output",
                         str(calibration_path()))
    assert code == 0 and "keep still" in err and "Done" in err
    assert calibration_path() == tmp_path / "state" / "calibration.json"
    ref = load_reference()
    np.testing.assert_allclose(ref.upright_g, [0.97, 0.05, 0.23], atol=0.002)
    # 5 s at 25 Hz: 125, or 126 when a sample falls on each edge of the window
    assert ref.samples in (125, 126) and ref.sensor == "MPU-6050"


def test_calibrate_refuses_movement(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    t = np.arange(750) / 25
    walk = Trace(t, np.column_stack([1 + 0.3 * np.sin(2 * np.pi * 1.8 * t), 0 * t, 0.1 + 0 * t]),
                 metadata={"sample_rate_hz": "25"})
    write_trace(tmp_path / "walk.csv", walk)
    code, _, err = cli(capsys, "calibrate", "--sensor", f"fake:{tmp_path / 'walk.csv'}", "--speed", "0")
    assert code == 75 and "too much movement" in err and "failed" in err.lower()
    assert load_reference() is None


@pytest.mark.parametrize("pitch, alike", [(22.0, False), (1.0, True)])
def test_calibrate_sit_stores_the_wearers_sitting_and_doctor_says_when_it_looks_like_standing(
        capsys, tmp_path, pitch, alike):
    """The two-posture ritual: stand still, buzz, sit down, sit still; a sitting within a few degrees of the
    standing is said at once, and by doctor afterwards, each time with what to do."""
    from sitsense.plan import parse_plan
    from sitsense.synth import synthesize

    trace = synthesize(parse_plan("stand 8s, sit 40s"), sample_rate_hz=25, seed=6, sit_pitch_deg=pitch)
    write_trace(tmp_path / "sit.csv", trace, decimals=5)
    code, out, err = cli(capsys, "calibrate", "--sensor", f"fake:{tmp_path / 'sit.csv'}", "--speed", "0", "--sit",
                         "--output", str(calibration_path()))  # a fake sensor stores only where it is told
    assert code == 0 and "Now sit down" in err and "Done" in err
    ref = load_reference()
    stand = trace.accel_g[25:150].mean(axis=0)
    sit = trace.accel_g[-250:].mean(axis=0)
    np.testing.assert_allclose(ref.upright_g, stand, atol=0.01)
    np.testing.assert_allclose(ref.sitting_g, sit, atol=0.02)
    assert "sitting tilts the sensor" in out and ("too little to tell" in out) == alike
    code, out, _ = cli(capsys, "doctor", "--sensor", f"fake:{tmp_path / 'sit.csv'}", "--speed", "0")
    [line] = [x for x in out.splitlines() if "posture check" in x]
    assert line.startswith("NOTE" if alike else "PASS")
    assert ("calibrate --sit" in out) == alike and out.splitlines()[-1].startswith("all checks passed")


def test_calibrate_sit_refuses_a_wearer_who_did_not_sit_still(capsys, tmp_path):
    t = np.arange(750) / 25
    still_then_fidget = np.tile([0.97, 0.05, 0.23], (750, 1))
    still_then_fidget[300:, 0] += 0.2 * np.sin(2 * np.pi * 1.5 * t[300:])
    write_trace(tmp_path / "f.csv", Trace(t, still_then_fidget, metadata={"sample_rate_hz": "25"}))
    code, _, err = cli(capsys, "calibrate", "--sensor", f"fake:{tmp_path / 'f.csv'}", "--speed", "0", "--sit")
    assert code == 75 and "sit still" in err and "calibrate --sit" in err
    assert load_reference() is None


# ---------------------------------------------------------------- doctor

def test_doctor_passes_on_a_healthy_fake_sensor(capsys, still_file, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    from gpiozero import Device

    monkeypatch.setattr(Device, "pin_factory", None)
    src, _ = still_file
    code, out, _ = cli(capsys, "doctor", "--sensor", f"fake:{src}", "--speed", "0", "--json")
    checks = {c["check"]: c for c in events(out)}
    assert code == 0
    assert checks["sensor answering"]["status"] == "pass" and "MPU-6050" in checks["sensor answering"]["detail"]
    assert checks["samples sane"]["status"] == "pass"
    assert checks["sample rate"]["status"] == "pass"
    assert checks["GPIO pin factory"]["status"] == "pass"
    assert checks["MQTT broker"]["status"] == "skip"
    if Device.pin_factory is not None:
        Device.pin_factory.close()


def test_doctor_fails_insane_samples_with_a_fix(capsys, tmp_path):
    t = np.arange(250) / 25
    weak = Trace(t, np.tile([0.3, 0.0, 0.2], (250, 1)) + 1e-3 * np.sin(t)[:, None], metadata={"sample_rate_hz": "25"})
    write_trace(tmp_path / "weak.csv", weak)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[buzzer]\nenabled = false\n")
    code, out, _ = cli(capsys, "doctor", "--sensor", f"fake:{tmp_path / 'weak.csv'}", "--speed", "0",
                       "--config", str(cfg))
    assert code == 1
    assert "FAIL  samples sane" in out and "fix:" in out and "SKIP  GPIO pin factory" in out


def test_doctor_reports_a_missing_bus_and_an_unreachable_broker(capsys, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[sensor]\ni2c_bus = 19\n[mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = 9\n"
                   "[buzzer]\nenabled = false\n")
    code, out, _ = cli(capsys, "doctor", "--config", str(cfg))
    assert code == 1
    assert "FAIL  I2C enabled: /dev/i2c-19 does not exist" in out and "raspi-config nonint do_i2c 0" in out
    assert "FAIL  MQTT broker: cannot reach 127.0.0.1:9" in out


def test_doctor_on_a_fake_sensor_passes_off_a_pi():
    """The docs' 'everything without hardware' doctor run (docs/simulator/traces.md) must not fail for want of GPIO pins."""
    import os
    import subprocess
    import sys

    from .conftest import REPO

    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    proc = subprocess.run([sys.executable, "-m", "sitsense.cli", "doctor", "--sensor", "fake:examples/short.csv",
                           "--speed", "0"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout and "GPIO pin factory" in proc.stdout

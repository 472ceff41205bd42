"""The simulator end to end: the README demo, a composed real day, JSON output and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sitsense.cli import main
from sitsense.compose import compose
from sitsense.plan import parse_plan
from sitsense.synth import synthesize
from sitsense.traces import write_trace

from .conftest import REPO

PLAN = "stand 2m, sit 38m, walk 3m, sit 20m, stand 40s, sit 15m, walk 2m"


def simulate_json(capsys, *args) -> list[dict]:
    assert main(["simulate", *map(str, args), "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_demo_trace_shows_alerts_and_a_sensible_summary(capsys):
    events = simulate_json(capsys, REPO / "examples" / "desk-morning.csv.gz")
    alerts = [e for e in events if e["type"] == "alert"]
    assert len(alerts) >= 2
    summary = events[-1]
    assert summary["type"] == "summary"
    assert 80 * 60 < summary["sitting_s"] < 95 * 60  # the plan sits 91 minutes
    assert summary["not_worn_s"] > 10 * 60  # the board left on the table at the end
    assert summary["breaks"] == 2


def test_every_json_event_has_type_and_t(capsys, tmp_path):
    path = tmp_path / "s.csv"
    write_trace(path, synthesize(parse_plan("stand 1m, sit 31m, walk 2m"), sample_rate_hz=25, seed=1))
    events = simulate_json(capsys, path)
    assert all("type" in e and isinstance(e["t"], (int, float)) for e in events)
    kinds = {e["type"] for e in events}
    assert {"posture", "alert", "break", "summary"} <= kinds
    posture = next(e for e in events if e["type"] == "posture")
    assert set(posture) >= {"posture", "p"}
    alert = next(e for e in events if e["type"] == "alert")
    assert set(alert) >= {"bout_s", "reminder", "message"}
    brk = next(e for e in events if e["type"] == "break")
    assert set(brk) >= {"start_t", "duration_s"}
    summary = events[-1]
    assert set(summary) >= {"sitting_s", "standing_s", "walking_s", "lying_s", "not_worn_s", "unknown_s",
                            "longest_bout_s", "breaks", "alerts"}


def test_composed_real_day_gives_two_alerts_at_thirty_minutes(capsys, tmp_path, hapt_dir):
    path = tmp_path / "day.csv"
    write_trace(path, compose(hapt_dir, 3, parse_plan(PLAN), seed=1))
    events = simulate_json(capsys, path)
    alerts = [e for e in events if e["type"] == "alert"]
    assert len(alerts) == 2
    # first bout starts at 2 min, second right after the 3 min walk (43 min); the 40 s stand-up
    # does not end the second bout
    assert alerts[0]["t"] / 60 == pytest.approx(2 + 30, abs=1.5)
    assert alerts[1]["t"] / 60 == pytest.approx(43 + 30, abs=1.5)
    assert events[-1]["sitting_s"] / 60 == pytest.approx(73, rel=0.05)


def test_start_time_sets_the_wall_clock(capsys, tmp_path):
    path = tmp_path / "s.csv"
    write_trace(path, synthesize(parse_plan("stand 1m, sit 31m"), sample_rate_hz=25, seed=1))
    events = simulate_json(capsys, path, "--start", "2026-03-02T21:00:00+00:00")
    assert not [e for e in events if e["type"] == "alert"]  # after the default active hours
    events = simulate_json(capsys, path, "--start", "2026-03-02T10:00:00+00:00")
    alert = next(e for e in events if e["type"] == "alert")
    assert alert["time"].startswith("2026-03-02T10:3")


def test_config_changes_the_rules(capsys, tmp_path):
    path = tmp_path / "s.csv"
    write_trace(path, synthesize(parse_plan("stand 1m, sit 31m"), sample_rate_hz=25, seed=1))
    cfg = tmp_path / "c.toml"
    cfg.write_text("[tracker]\nsit_limit_min = 10\nsnooze_min = 5\nmax_reminders = 5\n")
    events = simulate_json(capsys, path, "--config", cfg)
    assert [e["reminder"] for e in events if e["type"] == "alert"] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("args, expected", [
    (["simulate", "missing.csv"], "missing.csv: no such trace file"),
    (["simulate", "examples/short.csv", "--config", "nope.toml"], "nope.toml: no such config file"),
    (["simulate", "examples/short.csv", "--speed", "-1"], "--speed -1.0: must be a positive number"),
    (["simulate", "examples/short.csv", "--start", "yesterday"], "--start 'yesterday'"),
    (["compose", "--hapt", "/nonexistent", "--user", "1", "--plan", "sit 1m", "-o", "x.csv"],
     "not a HAPT folder"),
    (["synth", "--plan", "sit forever", "-o", "x.csv"], "duration 'forever'"),
    (["synth", "--plan", "sit 0.01s", "-o", "x.csv"], "at least 1 s"),
    (["synth", "--plan", "sit 9000h", "-o", "x.csv"], "at most 366 days"),
    (["synth", "--plan", "sit 1m", "--start", "09:00", "-o", "x.csv"], "--start '09:00': expected ISO 8601"),
    (["synth", "--plan", "sit 1m", "-o", "no/such/folder/x.csv"], "no/such/folder/x.csv: No such file"),
    (["report", "examples/short.csv", "--plot", "x.jpeg"], "must end in .png"),
    (["history", "--state", "examples"], "is a directory"),
])
def test_bad_input_is_one_clear_line_without_traceback(args, expected):
    proc = subprocess.run([sys.executable, "-m", "sitsense.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0] and "Traceback" not in proc.stderr


def test_a_time_no_trace_could_have_is_a_clear_error(capsys, tmp_path):
    path = tmp_path / "far.csv"
    path.write_text("# sitsense-trace v1\nt,ax,ay,az\n0,1,0,0\n1e308,1,0,0\n")
    assert main(["simulate", str(path)]) == 65
    assert "line 4: t=1e+308 s is more than" in capsys.readouterr().err


def test_speed_replays_in_scaled_real_time(tmp_path):
    path = tmp_path / "s.csv"
    write_trace(path, synthesize(parse_plan("stand 30s, sit 30s"), sample_rate_hz=25, seed=1))
    import time
    start = time.monotonic()
    assert main(["simulate", str(path), "--speed", "60"]) == 0
    assert time.monotonic() - start >= 0.8  # 60 s of trace at 60x take about a second

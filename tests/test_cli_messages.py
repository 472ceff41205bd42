"""What the commands print at their edges: durations, JSON numbers, empty reports, doctor's verdict, help."""

from __future__ import annotations

import json
import re

import pytest

from sitsense.cli import main
from sitsense.durations import format_duration
from sitsense.jsonout import tidy

from .conftest import REPO

DESK_MORNING = str(REPO / "examples" / "desk-morning.csv.gz")


@pytest.mark.parametrize("seconds, text", [
    (0, "0m00s"), (59.4, "0m59s"), (59.5, "1m00s"), (754, "12m34s"), (3599.4, "59m59s"),
    (3599.5, "1h00m"),  # rounds up into the hour, then shows hours and minutes
    (5429, "1h30m"), (5430, "1h31m"), (5459, "1h31m"), (36000, "10h00m"), (-0.2, "0m00s"),
])
def test_one_duration_format_and_rounding_rule(seconds, text):
    assert format_duration(seconds) == text


def test_simulate_and_report_print_the_same_sitting_time_for_the_same_trace(capsys):
    assert main(["simulate", DESK_MORNING, "--quiet"]) == 0
    simulated = re.search(r"^  sitting +(\S+)", capsys.readouterr().out, re.M).group(1)
    assert main(["report", DESK_MORNING, "--quiet"]) == 0
    reported = re.search(r"^  sitting +(\S+)", capsys.readouterr().out, re.M).group(1)
    assert simulated == reported == "1h31m"  # 5459 s; simulate once said 1h30m and report 1h31


def test_json_floats_are_rounded_to_what_they_can_mean():
    assert tidy(2.5200000000000067) == 2.52
    assert tidy(0.9997747240369452) == 0.9998
    assert tidy(0.001181096585823833) == 0.001181  # small numbers keep 4 significant digits
    assert tidy(86400.123456) == 86400.1235
    assert tidy({"a": [1.00000000001, 3], "b": None, "c": "x"}) == {"a": [1.0, 3], "b": None, "c": "x"}


def _floats(value):
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, list):
        for v in value:
            yield from _floats(v)


def test_evaluate_json_has_no_float_noise(capsys):
    assert main(["evaluate", DESK_MORNING, "--json", "--quiet"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    floats = list(_floats(metrics))
    assert len(floats) >= 5
    for f in floats:  # e.g. the latency median was 2.0199999999999925
        digits = repr(f).partition(".")[2]
        assert "e" in repr(f) or len(digits) <= 6 or len(digits.lstrip("0")) <= 4, f  # 0.0008143 is no noise
    assert metrics["transition_latency_s"]["median"] == pytest.approx(1.52, abs=0.05)


def test_report_on_a_trace_too_short_for_a_posture_says_why(tmp_path, capsys):
    lines = (REPO / "examples" / "short.csv").read_text().splitlines()
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("\n".join(lines[:200]) + "\n")  # 7.8 s of samples
    assert main(["report", str(tiny), "--quiet"]) == 66
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and str(tiny) in err and "no posture was decided" in err


def test_report_with_no_stored_day_is_not_a_config_error(tmp_path, capsys):
    assert main(["report", "--state", str(tmp_path / "empty.db")]) == 66
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "nothing stored for" in err and "empty.db" in err


def test_doctor_names_what_failed(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[sensor]\ni2c_bus = 19\n[mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = 9\n"
                   "[buzzer]\nenabled = false\n")
    assert main(["doctor", "--config", str(cfg)]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"2 of \d checks failed \(I2C enabled, MQTT broker\); the fix lines above say what to do",
                        last), last


def test_doctor_all_passed_counts_the_skipped(capsys):
    assert main(["doctor", "--sensor", f"fake:{REPO / 'examples' / 'short.csv'}", "--speed", "0"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"all checks passed \(\d skipped\)", last), last


@pytest.mark.parametrize("command", ["run", "doctor", "record", "calibrate"])
def test_sensor_help_names_every_kind_of_source(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "'mpu6050'" in text and "'fake:TRACE.csv'" in text and "'fake:plan:" in text

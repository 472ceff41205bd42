"""Reports from a trace and from three stored days: text, JSON and the timeline picture."""

from __future__ import annotations

import json
import struct
from datetime import datetime, timezone

import pytest

from sitsense.cli import main
from sitsense.clock import SimClock
from sitsense.config import Config
from sitsense.persistence import StateKeeper
from sitsense.plan import parse_plan
from sitsense.sensor.source import ReplaySource
from sitsense.service import Service
from sitsense.store import Store
from sitsense.synth import synthesize
from sitsense.traces import write_trace

from .conftest import REPO


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_report_of_a_trace_as_text_and_json(capsys):
    assert main(["report", str(REPO / "examples" / "desk-morning.csv.gz"), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "2026-03-02 (09:0" in text and "-10:5" in text  # the first minute is unknown until the sit-down
    assert "% of worn time" in text and "30-60 min" in text and "per sitting hour" in text
    assert "of 8 min goal" in text
    assert main(["report", str(REPO / "examples" / "desk-morning.csv.gz"), "--json", "--quiet"]) == 0
    day = json.loads(capsys.readouterr().out)["days"][0]
    assert day["bouts"]["30-60 min"] == 2
    assert 0.85 < day["sitting_share"] < 0.97
    assert day["alerts"] == 3 and day["breaks"] == 2


def test_plot_of_a_trace_has_a_sane_size_and_legend(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "day.png"
    assert main(["report", str(REPO / "examples" / "desk-morning.csv.gz"), "--plot", str(out), "--quiet"]) == 0
    w, h = _png_size(out)
    assert 800 <= w <= 2000 and 300 <= h <= 1500
    from sitsense import report
    import matplotlib.pyplot as plt
    seen = {}
    orig = plt.Figure.savefig

    def spy(fig, *a, **k):
        seen["legend"] = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        return orig(fig, *a, **k)

    plt.Figure.savefig = spy
    try:
        reps = report.from_trace(__import__("sitsense.traces").traces.read_trace(
            REPO / "examples" / "short.csv"), Config(), start=datetime(2026, 3, 2, 9, tzinfo=timezone.utc))
        report.plot(reps, str(tmp_path / "x.png"), 8)
    finally:
        plt.Figure.savefig = orig
    assert {"sitting", "standing", "walking", "lying", "not worn", "break"} <= set(seen["legend"])


def _run_into_store(db, plan: str, start: datetime, seed: int) -> None:
    """Replay a synthetic plan through a Service whose state keeper writes to ``db``."""
    trace = synthesize(parse_plan(plan), sample_rate_hz=10, seed=seed)
    clock = SimClock(start)
    service = Service(Config(), clock=clock, source=ReplaySource(trace, clock))
    store = Store(db).open()
    keeper = StateKeeper(store, service.tracker)
    keeper.resume(0.0, clock.wall_at(0.0))
    service.outputs.append(keeper)
    service.run()
    keeper.close()
    store.close()


def _store_days(tmp_path, n_days: int = 3):
    db = tmp_path / "state.db"
    for day in range(n_days + 1):
        plan = "stand 1m, sit 40m, walk 3m, sit 20m" if day % 2 else "stand 1m, sit 32m, walk 5m, sit 50m, walk 2m"
        _run_into_store(db, plan, datetime(2026, 3, 2 + day, 9, 0, tzinfo=timezone.utc), seed=day)
    return db


def test_report_of_three_stored_days_with_trend_and_picture(tmp_path, capsys):
    db = _store_days(tmp_path)
    assert main(["report", "--days", "4", "--state", str(db)]) == 0
    text = capsys.readouterr().out
    for d in ("2026-03-02", "2026-03-03", "2026-03-04"):
        assert d in text
    # the fourth day was still being counted when the service stopped: shown, marked, not in the trend
    assert "2026-03-05" in text and "(so far)" in text
    assert "over 3 finished days" in text
    assert main(["report", "--day", "2026-03-05", "--state", str(db), "--json"]) == 0
    today = json.loads(capsys.readouterr().out)["days"][0]
    assert today["posture_s"]["sitting"] > 50 * 60 and today["alerts"] >= 1
    assert main(["report", "--day", "2026-03-03", "--state", str(db), "--json"]) == 0
    day = json.loads(capsys.readouterr().out)["days"][0]
    assert day["posture_s"]["sitting"] == pytest.approx(60 * 60, rel=0.1)
    from sitsense import report
    store = Store(db).open()
    reps = report.from_store(store, ["2026-03-02", "2026-03-03", "2026-03-04"])
    store.close()
    for rep in reps:  # the timeline is rebuilt from the event log
        sitting = sum((b - a).total_seconds() for a, b, p in rep.segments if p == "sitting")
        assert sitting == pytest.approx(rep.stats["sitting_s"], rel=0.05)
        assert rep.alerts and rep.breaks
    pytest.importorskip("matplotlib")
    out = tmp_path / "days.png"
    assert main(["report", "--days", "3", "--state", str(db), "--plot", str(out)]) == 0
    w, h = _png_size(out)
    assert w >= 800 and h >= 400


def test_report_without_stored_data_says_so(tmp_path, capsys):
    assert main(["report", "--day", "2026-01-01", "--state", str(tmp_path / "empty.db")]) == 66  # EX_NOINPUT, not 78
    assert "nothing stored for 2026-01-01" in capsys.readouterr().err


def test_a_posture_held_across_midnight_is_drawn_on_both_days(tmp_path):
    """Stored days: the night's posture must not vanish from the morning's timeline."""
    from sitsense import report
    db = tmp_path / "state.db"
    _run_into_store(db, "stand 1m, sit 1h29m, walk 10m", datetime(2026, 3, 2, 23, 0, tzinfo=timezone.utc), seed=2)
    store = Store(db).open(read_only=True)
    reps = report.from_store(store, ["2026-03-02", "2026-03-03"])
    store.close()
    first_of_day2 = min(reps[1].segments)
    assert first_of_day2[2] == "sitting" and first_of_day2[0].strftime("%H:%M") == "00:00"
    sitting = [sum((b - a).total_seconds() for a, b, p in rep.segments if p == "sitting") for rep in reps]
    assert sitting[0] == pytest.approx(59 * 60, abs=60) and sitting[1] == pytest.approx(30 * 60, abs=60)
    assert max(b for _, b, _ in reps[1].segments).strftime("%H:%M") in ("00:39", "00:40")  # the run's end


def test_report_says_in_one_line_what_to_do_when_postures_could_not_be_told(tmp_path, capsys):
    db = tmp_path / "state.db"
    _run_into_store(db, "sit 20m, walk 3m, stand 1m", datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc), seed=4)
    assert main(["report", "--day", "2026-03-02", "--state", str(db)]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("note")]
    assert len(notes) == 1 and "no upright reference" in notes[0] and "sitsense calibrate" in notes[0]
    assert main(["report", "--day", "2026-03-02", "--state", str(db), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["days"][0]["posture_notices"]) == {"uncalibrated"}

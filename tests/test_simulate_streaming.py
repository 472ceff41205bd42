"""simulate and report stream their trace: the same events and summary whatever the chunk size, and
a trace whose samples alone would not fit in the process's memory limit replays within it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sitsense.trace_reader
from sitsense.cli import main
from sitsense.plan import parse_plan
from sitsense.synth import synthesize
from sitsense.trace_writer import TraceFileWriter
from sitsense.traces import write_trace

from .memory_limit import run_capped

PLAN = "stand 2m, sit 33m, walk 2m, stand 1m, sit 12m, off 12m, stand 1m, sit 31m"


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "day.csv.gz"
    write_trace(path, synthesize(parse_plan(PLAN), sample_rate_hz=25, seed=5, start_time="2026-03-02T09:00:00+01:00"))
    return path


def _run(argv, capsys, monkeypatch, chunk_bytes):
    monkeypatch.setattr(sitsense.trace_reader, "CHUNK_BYTES", chunk_bytes)
    assert main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [["simulate", "--json"], ["report", "--json"]])
def test_the_same_events_and_summary_with_tiny_and_huge_chunks(trace_file, capsys, monkeypatch, command):
    argv = [command[0], str(trace_file), *command[1:]]
    outputs = {size: _run(argv, capsys, monkeypatch, size) for size in (509, 1 << 14, 1 << 26)}
    assert len(set(outputs.values())) == 1
    if command[0] == "simulate":
        events = [json.loads(line) for line in outputs[509].splitlines()]
        assert events[-1]["type"] == "summary" and events[-1]["alerts"] >= 2
        assert sum(e["type"] == "alert" for e in events) == events[-1]["alerts"]


def test_a_streamed_replay_is_the_replay_of_the_trace_in_memory(trace_file, capsys, monkeypatch):
    """The blocks a streamed trace is cut into are the blocks of the whole trace: same output."""
    from datetime import datetime, timezone

    from sitsense.clock import SimClock
    from sitsense.sensor.source import ReplaySource
    from sitsense.trace_reader import TraceReader
    from sitsense.traces import read_trace

    def blocks(trace):
        clock = SimClock(datetime(2026, 3, 2, tzinfo=timezone.utc))
        return [(t.copy(), a.copy()) for t, a in ReplaySource(trace, clock).blocks()]

    whole = blocks(read_trace(trace_file))
    for size in (509, 1 << 26):
        streamed = blocks(TraceReader(trace_file, chunk_bytes=size))
        assert len(streamed) == len(whole)
        assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(streamed, whole))


HOUR_PLAN = "stand 2m, sit 45m, walk 3m, stand 1m, sit 9m"
LIMIT_MB = 220  # python, numpy and the streaming service need about 150 MiB of address space
BYTES_PER_SAMPLE = 8 + 3 * 8 + 1  # t, ax ay az and a label code, as arrays


def test_simulate_replays_a_trace_too_big_to_hold_within_a_memory_limit(tmp_path):
    """40 h at 50 Hz: its samples alone, as arrays, need 238 MB (227 MiB; the text is 290 MB),
    more than the 220 MiB of address space the whole process may use; streamed, it replays."""
    hour = synthesize(parse_plan(HOUR_PLAN), sample_rate_hz=50, seed=8)
    hours = 40
    assert hours * len(hour) * BYTES_PER_SAMPLE > LIMIT_MB << 20
    path = tmp_path / "long.csv.gz"
    meta = {"sample_rate_hz": "50", "start_time": "2026-03-02T08:00:00+01:00"}
    with TraceFileWriter(path, meta, labelled=True, compresslevel=1) as writer:
        for h in range(hours):
            writer.write(hour.t_s + h * 3600.0, hour.accel_g, hour.labels)
    proc = run_capped(["simulate", str(path), "--json"], LIMIT_MB)
    assert proc.returncode == 0, proc.stderr[-1500:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    summary = events[-1]
    assert summary["type"] == "summary"
    assert summary["alerts"] >= 20  # a 45 min bout an hour; alerts only from 08:00 to 20:00
    assert sum(e["type"] == "day_summary" for e in events) >= 1
    assert summary["sitting_s"] > hours * 54 * 60 * 0.9


def test_the_fake_sensor_plays_a_streamed_trace_as_it_played_the_whole(trace_file, capsys, monkeypatch):
    argv = ["run", "--sensor", f"fake:{trace_file}", "--speed", "0", "--json", "--no-state", "--seconds", "2100"]
    outputs = {size: _run(argv, capsys, monkeypatch, size) for size in (509, 1 << 26)}
    assert outputs[509] == outputs[1 << 26]
    assert any(json.loads(line)["type"] == "alert" for line in outputs[509].splitlines())


def test_a_trace_player_streams_forward_and_holds_samples_like_the_whole_trace():
    from sitsense.sensor.playback import TracePlayer

    tr = synthesize(parse_plan("stand 1m, sit 2m"), sample_rate_hz=25, seed=2)
    whole = TracePlayer.of(tr)
    parts = [tr.__class__(tr.t_s[i:i + 97], tr.accel_g[i:i + 97]) for i in range(0, len(tr), 97)]
    streamed = TracePlayer(parts, first_t_s=tr.t_s[0], last_t_s=tr.t_s[-1])
    assert streamed.end_s == whole.end_s == tr.duration_s
    rng = np.random.default_rng(1)
    times = np.sort(rng.uniform(-5, tr.duration_s + 5, 4000))
    for w in np.array_split(times, 60):  # as the emulator asks: ascending, batch after batch
        assert np.array_equal(streamed.accel_at(w), whole.accel_at(w))
    assert np.array_equal(whole.accel_at(np.array([0.0])), tr.accel_g[:1])  # in memory it may go back
    with pytest.raises(ValueError, match="forward only"):
        streamed.accel_at(np.array([1.0]))


@pytest.mark.parametrize("rate", [None, 25.0])
def test_evaluate_scores_a_streamed_trace_as_the_trace_in_memory(trace_file, capsys, monkeypatch, rate):
    from sitsense.posture.evaluate import evaluate_traces, make_factory
    from sitsense.traces import read_trace

    argv = ["evaluate", str(trace_file), "--json"] + (["--rate", str(rate)] if rate else [])
    outputs = {size: _run(argv, capsys, monkeypatch, size) for size in (509, 1 << 26)}
    assert outputs[509] == outputs[1 << 26]
    from sitsense.jsonout import dumps

    whole = evaluate_traces([read_trace(trace_file)], make_factory(), rate_hz=rate).metrics(sitting_time=True)
    assert outputs[509] == dumps(whole, indent=2) + "\n"


def test_a_streamed_trace_reveals_its_end_only_once_played_to_it():
    from sitsense.sensor.playback import TracePlayer

    tr = synthesize(parse_plan("stand 1m"), sample_rate_hz=25, seed=2)
    read = []

    def chunks():
        for i in range(0, len(tr), 100):
            read.append(i)
            yield tr.__class__(tr.t_s[i:i + 100], tr.accel_g[i:i + 100])

    player = TracePlayer(chunks())
    assert player.first_t_s == 0.0 and player.end_s == float("inf") and len(read) == 1
    player.accel_at(np.array([10.0]))
    assert player.end_s == float("inf") and len(read) < 5  # read just past 10 s
    player.look_ahead(120.0)
    assert player.end_s == tr.duration_s

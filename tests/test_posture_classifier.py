"""The streaming classifier on synthetic wearers: what a user would notice."""

from __future__ import annotations

import numpy as np
import pytest

from sitsense.errors import ModelError
from sitsense.events import Calibrated, PostureNotice, Remounted
from sitsense.plan import parse_plan
from sitsense.posture import make_classifier
from sitsense.config import PostureConfig
from sitsense.posture.calibration import minimal_rotation
from sitsense.posture.classifier import StreamingClassifier
from sitsense.posture.evaluate import run_classifier
from sitsense.posture.model import PostureModel
from sitsense.synth import synthesize
from sitsense.traces import LABEL_CODE


@pytest.fixture(scope="module")
def model() -> PostureModel:
    return PostureModel.load()


def stream(clf, trace, block_s=1.0):
    """All estimates and events of a trace streamed in blocks of ``block_s``."""
    n = max(1, int(round(block_s * trace.sample_rate_hz)))
    out, events = [], []
    for lo in range(0, len(trace), n):
        out += clf.process(trace.t_s[lo:lo + n], trace.accel_g[lo:lo + n])
        events += clf.pop_events()
    out += clf.flush()
    events += clf.pop_events()
    return out, events


def label_at(trace, t):
    return trace.label_names()[min(np.searchsorted(trace.t_s, t), len(trace) - 1)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_still_start_counts_once_a_sit_down_shows_it_was_standing(model, seed):
    """Without a calibration the first still seconds may be sitting: nothing is reported from them
    (``unknown``, said once) until sitting down out of them shows they were standing."""
    trace = synthesize(parse_plan("stand 30s, sit 4m, stand 1m, walk 1m, sit 3m, stand 1m"),
                       sample_rate_hz=25, seed=seed)
    clf = StreamingClassifier(model, sample_rate_hz=25)
    out, events = stream(clf, trace)
    confirmed = [e for e in events if isinstance(e, Calibrated) and e.source == "still-start"]
    assert len(confirmed) == 1 and 30 < confirmed[0].t < 40
    assert [e.code for e in events if isinstance(e, PostureNotice)] == ["uncalibrated"]
    assert {e.posture for e in out if e.t < confirmed[0].t} == {"unknown"}
    ok = n = 0
    for est in out:
        if est.t < confirmed[0].t:
            continue
        want = label_at(trace, est.t)
        if want in ("sitting", "standing") and label_at(trace, est.t - 6) == want:
            n += 1
            ok += est.posture == want
    assert n > 400 and ok / n >= 0.97


def test_results_do_not_depend_on_block_size_or_batching(model):
    trace = synthesize(parse_plan("stand 20s, sit 1m, stand 30s, walk 30s"), sample_rate_hz=50, seed=4)
    ref = None
    runs = []
    for block_s, every_s in ((0.37, 0.0), (1.0, 10.0), (60.0, 0.0)):
        clf = StreamingClassifier(model, sample_rate_hz=50, decide_every_s=every_s)
        out, _ = stream(clf, trace, block_s)
        runs.append([(e.t, e.posture, round(e.p, 9)) for e in out])
    ref = runs[0]
    assert len(ref) == int(trace.duration_s)
    assert runs[1] == ref and runs[2] == ref


def test_batched_decisions_arrive_late_but_complete(model):
    trace = synthesize(parse_plan("stand 20s, sit 40s"), sample_rate_hz=25, seed=5)
    clf = StreamingClassifier(model, sample_rate_hz=25, decide_every_s=10)
    got_per_block = [len(clf.process(trace.t_s[i:i + 25], trace.accel_g[i:i + 25]))
                     for i in range(0, len(trace), 25)]
    assert max(got_per_block) >= 9 and got_per_block.count(0) > len(got_per_block) // 2
    assert sum(got_per_block) + len(clf.flush()) == int(trace.duration_s)


def test_getting_up_is_reported_at_once_even_when_deciding_in_batches(model):
    """A guided hold starts when the wearer stands: batching must not make that buzz 10 s late."""
    trace = synthesize(parse_plan("stand 20s, sit 3m, stand 1m"), sample_rate_hz=50, seed=6)

    def first_standing_arrival(every_s):
        """When (sensor time of the block) the first standing estimate after the sit came out."""
        clf = StreamingClassifier(model, sample_rate_hz=50, decide_every_s=every_s)
        for lo in range(0, len(trace), 50):
            for est in clf.process(trace.t_s[lo:lo + 50], trace.accel_g[lo:lo + 50]):
                if est.t > 150 and est.posture == "standing":
                    return est.t, float(trace.t_s[min(lo + 49, len(trace) - 1)])
        return None

    unbatched_t, _ = first_standing_arrival(0.0)
    assert 200 < unbatched_t < 210  # the wearer got up at 200 s
    batched_t, arrived_at = first_standing_arrival(10.0)
    assert batched_t == unbatched_t and arrived_at - unbatched_t <= 1.0
    # and while sitting still the decisions are still batched (the CPU saving is kept)
    clf = StreamingClassifier(model, sample_rate_hz=50, decide_every_s=10)
    sitting = [len(clf.process(trace.t_s[lo:lo + 50], trace.accel_g[lo:lo + 50]))
               for lo in range(40 * 50, 190 * 50, 50)]
    assert sitting.count(0) > 0.7 * len(sitting)


def test_sensor_on_a_table_becomes_not_worn_backdated(model):
    trace = synthesize(parse_plan("stand 30s, sit 5m, off 14m, stand 1m, walk 1m"), sample_rate_hz=25, seed=6)
    clf = StreamingClassifier(model, sample_rate_hz=25, not_worn_s=600)
    out = run_classifier(clf, trace)
    off_start = 30 + 300.0
    first = [e for e in stream(StreamingClassifier(model, sample_rate_hz=25, not_worn_s=600), trace, 60)[0]
             if e.since_t is not None]
    assert len(first) == 1 and first[0].posture == "not_worn"
    assert abs(first[0].since_t - off_start) < 15  # backdated to when the stillness began
    assert first[0].t - first[0].since_t >= 600
    during = out.posture[(out.t_s > off_start + 15) & (out.t_s < off_start + 840)]
    assert (during == "not_worn").mean() > 0.98
    after = out.posture[out.t_s > off_start + 860]
    assert "not_worn" not in set(after)


def test_sensor_put_down_during_sitting_stops_counting_within_minutes(model):
    trace = synthesize(parse_plan("stand 30s, sit 5m, off 12m"), sample_rate_hz=25, seed=10)
    out, _ = stream(StreamingClassifier(model, sample_rate_hz=25, not_worn_s=600), trace, 60)
    off_start = 330.0
    live = {e.posture for e in out if off_start + 130 < e.t < off_start + 590}
    assert live == {"unknown"}  # neither sitting nor lying while the not-worn proof builds up


def test_still_sitting_person_is_not_taken_for_a_table(model):
    trace = synthesize(parse_plan("stand 30s, sit 25m"), sample_rate_hz=25, seed=7)
    out = run_classifier(StreamingClassifier(model, sample_rate_hz=25, not_worn_s=600), trace)
    assert "not_worn" not in set(out.posture)


def test_remount_raises_an_event_and_recalibrates(model):
    trace = synthesize(parse_plan("stand 30s, walk 1m, stand 30s, walk 2m, stand 1m"), sample_rate_hz=25, seed=8)
    half = np.searchsorted(trace.t_s, 120.0)
    turn = minimal_rotation(np.array([1.0, 0, 0]), np.array([np.cos(0.7), np.sin(0.7), 0.0]))  # 40 deg
    trace.accel_g[half:] = trace.accel_g[half:] @ turn.T
    clf = StreamingClassifier(model, sample_rate_hz=25)
    out, events = stream(clf, trace)
    remounts = [e for e in events if isinstance(e, Remounted)]
    assert len(remounts) == 1 and 30 < remounts[0].angle_deg < 50
    assert remounts[0].t < 150 + 20  # found during the walk after the change
    last_stand = [e.posture for e in out if e.t > trace.duration_s - 40]
    assert last_stand.count("standing") >= 0.9 * len(last_stand)


def test_recalibration_request_is_answered_by_walking(model):
    trace = synthesize(parse_plan("stand 30s, walk 1m, stand 1m"), sample_rate_hz=25, seed=9)
    clf = StreamingClassifier(model, sample_rate_hz=25)
    clf.process(trace.t_s[:750], trace.accel_g[:750])
    clf.set_reference(None)
    out, events = stream(clf, type(trace)(trace.t_s[750:], trace.accel_g[750:]))
    assert any(isinstance(e, Calibrated) and e.source == "walking" for e in events)
    assert out[-1].posture == "standing"


def test_service_builds_it_from_the_config():
    clf = make_classifier(PostureConfig(step_s=2.0, decide_every_s=0.0), 25.0)
    assert isinstance(clf, StreamingClassifier) and clf.step_s == 2.0


def test_broken_model_file_is_a_model_error(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a posture model"):
        PostureModel.load(bad)
    with pytest.raises(ModelError, match="no such posture model"):
        PostureModel.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ModelError, match="missing"):
        PostureModel.load(tmp_path / "other.npz")

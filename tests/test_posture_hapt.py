"""The classifier on real HAPT recordings of people it was not trained on (needs the data set)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest

from sitsense.cli import main
from sitsense.posture.classifier import StreamingClassifier
from sitsense.posture.evaluate import evaluate_traces, run_classifier, upright_reference
from sitsense.posture.model import DEFAULT_MODEL_PATH, PostureModel
from sitsense.posture.provisional import TiltClassifier
from sitsense.posture.training import train
from sitsense.traces import read_hapt

KEYS = {"sit_stand_accuracy", "sedentary_balanced_accuracy", "per_class_recall", "confusion",
        "sit_to_stand_sensitivity", "stand_to_sit_sensitivity", "transition_latency_s", "windows"}


@pytest.fixture(scope="module")
def held_out(hapt_dir):
    """A model trained on users 1-12 and the recordings of users 19-24, whom it never saw."""
    model = train(read_hapt(hapt_dir, set(range(1, 13))), iterations=800)
    return model, read_hapt(hapt_dir, set(range(19, 25)))


def test_held_out_people_sitting_is_recognised(held_out):
    model, traces = held_out
    ours = evaluate_traces(traces, lambda hz: StreamingClassifier(model, sample_rate_hz=hz)).metrics()
    tilt = evaluate_traces(traces, lambda hz: TiltClassifier()).metrics()
    assert ours["per_class_recall"]["sitting"] >= 0.93
    assert ours["sit_stand_accuracy"] >= 0.95
    assert ours["sedentary_balanced_accuracy"] >= 0.97
    assert ours["sit_to_stand_sensitivity"] >= 0.9
    assert ours["transition_latency_s"]["median"] <= 3.0
    assert ours["sit_stand_accuracy"] > tilt["sit_stand_accuracy"] + 0.1


def test_a_wearer_sitting_up_from_lying_is_counted_sitting_once_upright(held_out):
    """Lying is held while a lying wearer turns over, but not once the trunk is up: every HAPT
    lie-to-sit of the held-out users is reported as sitting within about 2 s of the movement's end
    (holding lying until the movement settled reported it 3.5-5 s after, median 4.2 s)."""
    model, traces = held_out
    delays = []
    for trace in traces:
        out = run_classifier(StreamingClassifier(model, sample_rate_hz=trace.sample_rate_hz), trace,
                             reference=upright_reference(trace))
        rows = np.flatnonzero(trace.activity == 10)  # LIE_TO_SIT
        for seg in np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1):
            sitting = np.flatnonzero((out.t_s >= trace.t_s[seg[0]]) & (out.posture == "sitting"))
            assert len(sitting), f"{trace.source}: a lie-to-sit never reported as sitting"
            delays.append(out.t_s[sitting[0]] - trace.t_s[seg[-1]])
    assert len(delays) >= 12
    assert np.median(delays) <= 2.5 and max(delays) <= 3.4, sorted(delays)


def test_half_the_sample_rate_costs_little(held_out):
    model, traces = held_out
    make = lambda hz: StreamingClassifier(model, sample_rate_hz=hz)  # noqa: E731
    full = evaluate_traces(traces, make).metrics()
    low = evaluate_traces(traces, make, rate_hz=25).metrics()
    assert low["sit_stand_accuracy"] >= full["sit_stand_accuracy"] - 0.01
    assert low["sedentary_balanced_accuracy"] >= full["sedentary_balanced_accuracy"] - 0.01


def test_training_is_reproducible_and_survives_a_round_trip(hapt_dir, tmp_path):
    traces = read_hapt(hapt_dir, {1, 2})
    a = train(traces, iterations=200)
    b = train(traces, iterations=200)
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.hidden_weights, b.hidden_weights)
    a.save(tmp_path / "m.npz")
    c = PostureModel.load(tmp_path / "m.npz")
    x = np.random.default_rng(0).normal(size=(5, len(a.mean))) * a.scale + a.mean
    assert np.allclose(a.log_proba(x), c.log_proba(x))


def test_shipped_model_is_what_train_makes(hapt_dir, tmp_path):
    """A fresh ``sitsense train`` behaves like the shipped model on every HAPT recording.

    Weights are not compared: BLAS builds sum in different orders, and after hundreds of
    full-batch iterations the fitted weights drift by up to ~3e-4 between CPUs. What a wearer gets
    is the posture per step, so the two models must agree on at least 99.5% of steps and on each
    protocol metric within 0.005. Measured: weights perturbed by 1e-4/3e-4 (the cross-machine drift)
    agree on 99.99% of steps; a model trained on users 1-12 only agrees on 97.1%.
    """
    out = tmp_path / "model.npz"
    assert main(["train", "--hapt", str(hapt_dir), "--users", "1-24", "--quiet", "-o", str(out)]) == 0
    traces = read_hapt(hapt_dir, set(range(1, 25)))
    models = {"fresh": PostureModel.load(out), "shipped": PostureModel.load(DEFAULT_MODEL_PATH)}
    steps = {k: [] for k in models}
    for trace in traces:
        for name, model in models.items():
            clf = StreamingClassifier(model, sample_rate_hz=trace.sample_rate_hz)
            steps[name].append(run_classifier(clf, trace, reference=upright_reference(trace)).posture)
    fresh, shipped = np.concatenate(steps["fresh"]), np.concatenate(steps["shipped"])
    assert len(fresh) == len(shipped) > 10_000
    assert np.mean(fresh == shipped) >= 0.995
    metrics = {name: evaluate_traces(traces, lambda hz, m=m: StreamingClassifier(m, sample_rate_hz=hz)).metrics()
               for name, m in models.items()}
    for key in ("sit_stand_accuracy", "sedentary_balanced_accuracy", "sit_to_stand_sensitivity",
                "stand_to_sit_sensitivity"):
        assert abs(metrics["fresh"][key] - metrics["shipped"][key]) <= 0.005, key


def test_evaluate_command_prints_the_protocol_keys(hapt_dir):
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["evaluate", "--hapt", str(hapt_dir), "--users", "24", "--rate", "25", "--json"]) == 0
    m = json.loads(buf.getvalue())
    assert set(m) == KEYS
    assert m["windows"] > 300 and set(m["per_class_recall"]) == {"sitting", "standing", "walking", "lying"}


def test_evaluate_command_refuses_a_rate_out_of_range(hapt_dir, capsys):
    assert main(["evaluate", "--hapt", str(hapt_dir), "--users", "24", "--rate", "10"]) != 0
    assert "20 to 100 Hz" in capsys.readouterr().err


@pytest.fixture(scope="module")
def held_out_low(hapt_dir):
    """A model trained on users 13-24: users 1-12 are strangers to it."""
    return train(read_hapt(hapt_dir, set(range(13, 25))), iterations=800)


@pytest.mark.parametrize("user, shifts, seed_offset", [(9, False, 0), (9, False, 100), (23, False, 0), (23, True, 0),
                                                      (16, True, 100), (1, True, 100), (2, True, 200)])
def test_wearers_whose_sitting_looks_like_standing_get_their_sitting_counted(hapt_dir, held_out, held_out_low,
                                                                             user, shifts, seed_offset):
    """Users 9 and 23 sit or sit up from lying within a few degrees of standing: their composed office
    days (one recording each, the model never saw them) count sitting within 5% and alert as labelled,
    also when they slump, sit up and perch without standing up. User 9's day with seed offset 100 is
    the one whose sit-downs were faded into the neighbouring crops before compose kept them whole. With
    posture shifts and seed offset 100, user 16 sits down onto a perch that looks upright (missed
    until a clear lowering of the hip ended standing on its own) and user 1 shifts forward with small
    lifts of the hip (counted as stand-ups until a small lift needed a confident stand-up). With posture
    shifts and seed offset 200, user 2 ends a walk sitting down onto a perch that looks upright
    (missed until a confident sit-down after the last step ended the walk in sitting)."""
    from bench.composed_days import compose_day, measure_day

    model = held_out[0] if user > 12 else held_out_low
    day = compose_day(hapt_dir, user, "shifts" if shifts else "one", seed_offset)
    r = measure_day(day, StreamingClassifier(model, sample_rate_hz=day.sample_rate_hz))
    assert abs(r["sit_err"]) < 0.05, r["sit_err"]
    assert r["alerts_missed"] == 0 and r["alerts_extra"] == 0 and r["alerts_expected"] >= 5
    assert r["false_breaks"] == 0


def test_compose_keeps_each_recorded_sit_down_whole(hapt_dir):
    """The joins fade over what was recorded around a transition, not over the movement: every
    sit-down in a composed day is, sample for sample, one of the user's recorded ones (user 9's last
    about 2.5 s: faded over on both sides, only the middle half second was left)."""
    from sitsense.compose import compose
    from sitsense.plan import parse_plan
    from sitsense.traces import LABEL_CODE

    recorded = []
    for rec in read_hapt(hapt_dir, users={9}):
        act = rec.activity
        for a in np.flatnonzero((act[1:] == 7) & (act[:-1] != 7)) + 1:
            recorded.append(rec.accel_g[a:a + int(np.argmax(act[a:] != 7))])
    day = compose(hapt_dir, 9, parse_plan("stand 1m, sit 5m, walk 1m, sit 5m, stand 1m, sit 5m"), seed=109)
    is_trans = np.r_[False, day.labels == LABEL_CODE["transition"], False]
    edges = np.flatnonzero(np.diff(is_trans.astype(int)))
    sit_downs = [day.accel_g[a:b] for a, b in zip(edges[::2], edges[1::2]) if day.labels[b] == LABEL_CODE["sitting"]]
    assert len(sit_downs) == 3
    for s in sit_downs:
        assert any(len(r) == len(s) and np.array_equal(r, s) for r in recorded)


def test_composed_posture_shifts_turn_sitting_without_lifting_the_hip(hapt_dir):
    from sitsense.compose import compose
    from sitsense.plan import parse_plan
    from sitsense.posture.movement import lift_range_g
    from sitsense.traces import LABEL_CODE

    plan = parse_plan("stand 1m, sit 20m, walk 1m")
    plain = compose(hapt_dir, 5, plan, seed=3)
    shifted = compose(hapt_dir, 5, plan, seed=3, posture_shifts=True)
    assert shifted.metadata["posture_shifts"] == "yes" and np.array_equal(plain.labels, shifted.labels)
    sit = shifted.labels == LABEL_CODE["sitting"]
    up = shifted.accel_g[:int(50 * 50)].mean(axis=0)
    up /= np.linalg.norm(up)
    minutes = shifted.accel_g[sit][:len(shifted.accel_g[sit]) // 3000 * 3000].reshape(-1, 3000, 3).mean(axis=1)
    tilt = np.degrees(np.arccos(np.clip(minutes @ up / np.linalg.norm(minutes, axis=1), -1, 1)))
    assert tilt.max() - tilt.min() > 8  # perched, slumped and in between within one bout
    # turned, not lifted: no sitting step moves the hip like a transition (HAPT's reach 0.10 g and more)
    ends = np.arange(5.0, shifted.t_s[-1], 1.0)
    inside = (shifted.labels[(ends * 50).astype(int) - 1] == LABEL_CODE["sitting"]) \
        & (shifted.labels[(ends * 50).astype(int) - 250] == LABEL_CODE["sitting"])
    assert lift_range_g(shifted.t_s, shifted.accel_g, ends, 50)[inside].max() < 0.08

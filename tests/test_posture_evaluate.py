"""The evaluation protocol's scoring, on hand-made outputs whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from sitsense.posture.base import PostureEstimate
from sitsense.posture.evaluate import Outputs, decimate, run_classifier, score, upright_reference
from sitsense.traces import LABEL_CODE, Trace

RATE = 50.0


def labelled(plan: list[tuple[str, float]]) -> Trace:
    labels = np.concatenate([np.full(int(s * RATE), LABEL_CODE[p], dtype=np.int8) for p, s in plan])
    t = np.arange(len(labels)) / RATE
    acc = np.tile([1.0, 0.0, 0.0], (len(t), 1))
    acc[labels == LABEL_CODE["sitting"]] = [0.9, 0.4, 0.0]
    return Trace(t, acc, labels, {"sample_rate_hz": "50"})


def outputs_from(plan: list[tuple[str, float]]) -> Outputs:
    names = [p for p, s in plan for _ in range(int(s))]
    return Outputs(np.arange(1, len(names) + 1, dtype=float), np.array(names, dtype=object), np.ones(len(names)))


def test_perfect_outputs_score_perfectly_and_transitions_have_latency():
    trace = labelled([("standing", 20), ("transition", 3), ("sitting", 20), ("transition", 3), ("standing", 20)])
    # the output switches 2 s after each labelled transition ends
    out = outputs_from([("standing", 24), ("sitting", 23), ("standing", 19)])  # an output at t covers (t-1, t]
    m = score(trace, out).metrics(sitting_time=True)
    assert m["sit_stand_accuracy"] == 1.0
    assert m["sit_to_stand_sensitivity"] == 1.0 and m["stand_to_sit_sensitivity"] == 1.0
    assert m["transition_latency_s"]["median"] == pytest.approx(2.0)
    # windows of 2.56 s, hop 1.28 s, wholly inside each 20 s segment: 14 each
    assert m["windows"] == 3 * 14
    assert m["sitting_time_error"] == pytest.approx((23 - 20) / 20)


def test_late_or_missing_changes_are_missed():
    trace = labelled([("sitting", 20), ("transition", 3), ("standing", 20)])
    late = outputs_from([("sitting", 30), ("standing", 13)])  # 7 s after the transition's end
    assert score(trace, late).metrics()["sit_to_stand_sensitivity"] == 0.0
    early_wrong = outputs_from([("standing", 43)])  # never changes: not a found transition
    m = score(trace, early_wrong).metrics()
    assert m["sit_to_stand_sensitivity"] == 0.0
    assert m["per_class_recall"]["sitting"] == 0.0


def test_lookahead_is_two_seconds_past_the_window():
    trace = labelled([("sitting", 8.96), ("standing", 10)])
    # the last sitting window ends at 8.96 s and is read at 10.96 s: the output of the step ending at 10 s
    out = outputs_from([("sitting", 10), ("standing", 9)])
    assert score(trace, out).metrics()["per_class_recall"]["sitting"] == 1.0
    out = outputs_from([("sitting", 9), ("standing", 10)])
    assert score(trace, out).metrics()["per_class_recall"]["sitting"] == pytest.approx(5 / 6)


def test_reference_is_the_first_five_seconds_of_standing():
    trace = labelled([("walking", 4), ("standing", 20)])
    trace.accel_g[int(4 * RATE):int(9 * RATE)] = [0.8, 0.6, 0.0]
    assert upright_reference(trace) == pytest.approx([0.8, 0.6, 0.0])


def test_backdated_not_worn_overwrites_the_past():
    class Fake:
        step_s = 1.0

        def __init__(self):
            self.n = 0

        def set_reference(self, up):
            pass

        def pop_events(self):
            return []

        def process(self, t, a):
            out = []
            for k in range(self.n + 1, int(t[-1]) + 1):
                since = 5.0 if k == 10 else None
                out.append(PostureEstimate(float(k), "not_worn" if k >= 10 else "sitting", 0.9, since))
            self.n = int(t[-1])
            return out

    trace = labelled([("sitting", 15)])
    out = run_classifier(Fake(), trace, block_s=3)
    assert list(out.posture[:5]) == ["sitting"] * 5
    assert set(out.posture[5:]) == {"not_worn"}


def test_decimation_keeps_labels_and_timing():
    trace = labelled([("standing", 10), ("sitting", 10)])
    low = decimate(trace, 25)
    assert low.sample_rate_hz == pytest.approx(25, rel=0.01)
    assert len(low) == pytest.approx(len(trace) / 2, abs=1)
    assert (low.labels[low.t_s > 10.1] == LABEL_CODE["sitting"]).all()

"""The dynamic-release recogniser: synthetic reliability, real false positives, the coach's use of it."""

from __future__ import annotations

from collections import Counter

import numpy as np

from sitsense.coach import Coach
from sitsense.config import CoachConfig
from sitsense.exercise_synth import CLASSES, dataset, window
from sitsense.plan import parse_plan
from sitsense.events import ExerciseRecognised
from sitsense.recognition import recognise, recognise_stream, seen_exercises
from sitsense.synth import synthesize


RATE_HZ = 25.0


def test_held_out_synthetic_windows_are_recognised():
    """Tuned on seed 1; this is seed 3. Measured on seed 2 (bench/recognition.py): 97-100 % recall."""
    conf = {c: Counter() for c in CLASSES}
    for kind, a in dataset(40, seed=3, sample_rate_hz=RATE_HZ):
        conf[kind][recognise(a, RATE_HZ)] += 1
    for kind in CLASSES:
        assert conf[kind][kind] / 40 >= 0.9, (kind, dict(conf[kind]))
    fp = sum(conf[k]["leg_swings"] + conf[k]["lunges"] for k in ("still", "walking", "other"))
    assert fp <= 3


def test_the_posture_simulators_walking_and_standing_are_not_exercises():
    labels = Counter()
    for seed in range(3):
        tr = synthesize(parse_plan("stand 2m, walk 3m, sit 1m"), sample_rate_hz=RATE_HZ, seed=seed)
        for _, lab in recognise_stream(tr.t_s, tr.accel_g, RATE_HZ):
            labels[lab] += 1
    assert labels["leg_swings"] == labels["lunges"] == 0
    assert labels["walking"] > 0


def test_real_hapt_windows_are_rarely_mistaken_for_exercises(hapt_dir):
    from sitsense.traces import read_hapt

    n = fp = 0
    for tr in read_hapt(hapt_dir, users={1, 2, 3, 4, 5, 6}):
        acc, act = tr.accel_g[::2], tr.activity[::2]
        for i in range(0, len(acc) - 250 + 1, 125):
            w = act[i:i + 250]
            if w[0] and np.all(w == w[0]):
                n += 1
                fp += recognise(acc[i:i + 250], RATE_HZ) in ("leg_swings", "lunges")
    assert n > 100 and fp / n <= 0.02


def test_seen_exercises_needs_two_windows_in_a_row():
    labels = [(10.0, "leg_swings"), (15.0, "other"), (20.0, "leg_swings"), (25.0, "leg_swings"),
              (30.0, "lunges")]
    seen = seen_exercises(labels)
    assert seen == [ExerciseRecognised(25.0, "leg_swings", 10.0, 15.0)]


def test_coach_reports_leg_swings_during_its_guided_session():
    c = Coach(CoachConfig(), seed=0)
    c.start_release(0.0, "leg_swings")
    a = np.concatenate([window("leg_swings", seconds=10, sample_rate_hz=RATE_HZ, seed=s) for s in (5, 5, 5)])
    # one wearer swinging for 30 s (the same seed repeated keeps the rhythm), fed in 1 s blocks
    t = np.arange(len(a)) / RATE_HZ
    out = []
    for i in range(0, len(a), 25):
        out += c.observe(t[i:i + 25], a[i:i + 25], RATE_HZ)
    assert len(out) == 1 and out[0].exercise_id == "leg_swings" and out[0].type == "exercise_seen"
    assert c.recognised_today_s["leg_swings"] >= 15.0


def test_coach_ignores_samples_without_a_dynamic_session():
    c = Coach(CoachConfig(), seed=0)
    a = window("leg_swings", seconds=30, sample_rate_hz=RATE_HZ, seed=1)
    t = np.arange(len(a)) / RATE_HZ
    assert c.observe(t, a, RATE_HZ) == []
    c.start_release(0.0, "kneeling_hip_flexor")
    assert c.observe(t, a, RATE_HZ) == [] and not c.recognised_today_s

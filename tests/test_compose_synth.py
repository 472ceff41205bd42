"""Plans, the synthetic wearer and the HAPT composer."""

from __future__ import annotations

import numpy as np
import pytest

from sitsense.compose import compose
from sitsense.errors import DatasetError, PlanError
from sitsense.plan import parse_duration_s, parse_plan
from sitsense.synth import synthesize
from sitsense.traces import LABEL_CODE

PLAN = "stand 2m, sit 38m, walk 3m, sit 20m, stand 40s, sit 15m, walk 2m"


def test_plan_parsing():
    assert parse_plan("stand 2m, sit 38m, walk 3m, stand 30s") == [
        ("standing", 120), ("sitting", 2280), ("walking", 180), ("standing", 30)]
    assert parse_duration_s("1h30m") == 5400
    with pytest.raises(PlanError, match="unknown posture 'dance'"):
        parse_plan("dance 3m")
    with pytest.raises(PlanError, match="use h, m and s"):
        parse_plan("sit 3min")


def test_synthetic_trace_follows_the_plan_and_is_physical():
    tr = synthesize(parse_plan("stand 1m, sit 5m, walk 1m, off 2m"), sample_rate_hz=25, seed=2)
    assert len(tr) == 9 * 60 * 25
    mag = np.linalg.norm(tr.accel_g, axis=1)
    lab = tr.labels
    still = (lab == LABEL_CODE["sitting"]) | (lab == LABEL_CODE["standing"])
    assert abs(np.median(mag[still]) - 1.0) < 0.02  # gravity only
    assert np.std(mag[lab == LABEL_CODE["walking"]]) > 0.1  # gait
    off = tr.accel_g[lab == LABEL_CODE["not_worn"]]
    assert off.std(axis=0).max() < 0.004  # a board on a table: noise only
    np.testing.assert_allclose(np.abs(tr.accel_g * 16384 - np.round(tr.accel_g * 16384)), 0, atol=1e-6)


def test_synthetic_is_deterministic_per_seed():
    plan = parse_plan("stand 30s, sit 1m")
    a, b, c = synthesize(plan, seed=5), synthesize(plan, seed=5), synthesize(plan, seed=6)
    np.testing.assert_array_equal(a.accel_g, b.accel_g)
    assert not np.allclose(a.accel_g, c.accel_g)


def test_compose_builds_the_planned_day_without_steps(hapt_dir):
    tr = compose(hapt_dir, 3, parse_plan(PLAN), seed=1)
    assert tr.duration_s == pytest.approx(80.67 * 60, abs=1)
    sitting_min = (tr.labels == LABEL_CODE["sitting"]).sum() / 50 / 60
    assert sitting_min == pytest.approx(73, rel=0.02)
    assert (tr.labels == LABEL_CODE["transition"]).sum() > 0  # real transitions between postures
    # joins are cross-faded: no jump larger than the recordings' own sample-to-sample changes
    jumps = np.abs(np.diff(tr.accel_g, axis=0)).max(axis=1)
    assert np.percentile(jumps, 99.9) < 0.8


def test_a_composed_day_keeps_one_phone_mount_unless_asked_to_mix(hapt_dir):
    """Each HAPT recording has its own mount: a day drawn from one never shifts its standing gravity."""
    plan = parse_plan("stand 1m, sit 1m, stand 1m, sit 1m, stand 1m, sit 1m, stand 1m, sit 1m, stand 1m")
    one = compose(hapt_dir, 9, plan, seed=2)
    mixed = compose(hapt_dir, 9, plan, seed=2, mix_recordings=True)
    assert one.metadata["hapt_experiment"] == "17" and mixed.metadata["hapt_experiment"] == "all"

    def spread_deg(tr, posture):
        """Largest angle between the mean gravity of any two 10 s stretches of ``posture``."""
        units = []
        for k in range(9):
            minute = slice(k * 3000, (k + 1) * 3000)
            a = tr.accel_g[minute][tr.labels[minute] == LABEL_CODE[posture]]
            for j in range(0, len(a) - 500, 500):
                v = a[j:j + 500].mean(axis=0)
                units.append(v / np.linalg.norm(v))
        return max(np.degrees(np.arccos(np.clip(u @ w, -1, 1))) for u in units for w in units)

    # user 9's two recordings: the phone sat differently, so mixing them moves gravity for the same posture
    assert spread_deg(one, "standing") < 5 < 10 < spread_deg(mixed, "standing")
    assert spread_deg(one, "sitting") < 15 < 30 < spread_deg(mixed, "sitting")


def test_compose_is_reproducible_and_rejects_what_hapt_lacks(hapt_dir):
    a = compose(hapt_dir, 2, parse_plan("stand 1m, sit 2m"), seed=4)
    b = compose(hapt_dir, 2, parse_plan("stand 1m, sit 2m"), seed=4)
    np.testing.assert_array_equal(a.accel_g, b.accel_g)
    with pytest.raises(DatasetError, match="synth"):
        compose(hapt_dir, 2, parse_plan("off 2m"))
    with pytest.raises(DatasetError, match="no recordings"):
        compose(hapt_dir, 99, parse_plan("sit 2m"))

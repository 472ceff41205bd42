"""The wearer's own postures and the hip's movement: the two things the sequence filter leans on."""

from __future__ import annotations

import numpy as np

from sitsense.plan import parse_plan
from sitsense.posture.movement import hip_movement, lift_range_g, movement_after_calm, smoothed_magnitude_g
from sitsense.posture.wearer import WearerModel
from sitsense.synth import synthesize
from sitsense.traces import LABEL_CODE, Trace


def tilted(deg: float, towards=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Gravity of an upright +x sensor tilted by ``deg`` towards ``towards``."""
    r = np.radians(deg)
    return np.cos(r) * np.array([1.0, 0.0, 0.0]) + np.sin(r) * np.asarray(towards)


def test_the_wearer_says_sitting_near_their_own_sitting_and_nothing_far_from_both():
    w = WearerModel()
    assert not w.ready() and w.log_ratio(tilted(20)[None])[0] == 0.0  # nothing learned: no opinion
    w.add("standing", tilted(0))  # the calibration
    at_calibration, beyond = w.log_ratio(np.array([tilted(0.5), tilted(20)]))
    assert at_calibration < -2 and beyond == 0.0  # no sitting known yet: only nearness to standing counts
    w.add("sitting", tilted(7))  # a shallow sitter
    near_sit, near_stand, between, elsewhere = w.log_ratio(np.array([tilted(7.5), tilted(0.5), tilted(3.5),
                                                                     tilted(40, (0, 0, 1))]))
    assert near_sit > 2 and near_stand < -2
    assert abs(between) < 0.5 and elsewhere == 0.0  # unlike both: no evidence either way


def test_prototypes_merge_nearby_postures_and_keep_distinct_ones():
    w = WearerModel()
    for deg in (20, 21, 19.5):
        w.add("sitting", tilted(deg))
    w.add("sitting", tilted(4))  # perched on the edge of the chair: a posture of its own
    assert len(w.prototypes["sitting"]) == 2 and w.learned["sitting"] == 4
    w.add("standing", tilted(0))
    assert not w.alike()
    w.add("sitting", tilted(1.5))  # sits as upright as they stand
    assert w.alike()


def test_the_learned_postures_survive_a_round_trip_and_garbage_gives_an_empty_model():
    w = WearerModel()
    w.add("standing", tilted(0), weight=5)
    w.add("sitting", tilted(12))
    back = WearerModel.from_dict(w.to_dict())
    probe = np.array([tilted(11), tilted(1)])
    np.testing.assert_allclose(back.log_ratio(probe), w.log_ratio(probe), atol=1e-3)  # stored to 1e-5 g
    assert back.learned == w.learned
    for junk in (None, [1, 2], {"sitting": "x"}, {"sitting": [[1, 2]]}, {"standing": [[0, 0, 0, 1]]}):
        assert not WearerModel.from_dict(junk).ready()


def test_a_remount_turns_the_learned_postures_with_the_sensor():
    w = WearerModel()
    w.add("standing", tilted(0))
    w.add("sitting", tilted(20))
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 degrees about z
    before = w.log_ratio(np.array([tilted(20)]))[0]
    w.rotate(turn)
    assert w.log_ratio(np.array([turn @ tilted(20)]))[0] == before


def test_lift_is_the_largest_one_second_range_of_smoothed_magnitude_whatever_the_blocks():
    trace = synthesize(parse_plan("stand 20s, sit 20s, stand 20s"), sample_rate_hz=50, seed=2)
    t, a = trace.t_s, trace.accel_g
    ends = np.arange(6.0, t[-1], 1.0)
    whole = lift_range_g(t, a, ends, 50)
    mag = smoothed_magnitude_g(a, 50)
    naive = [max(np.ptp(mag[(t > e - 4 + 0.5 * k) & (t <= e - 3 + 0.5 * k)]) for k in range(7)) for e in ends]
    np.testing.assert_allclose(whole, naive, atol=1e-12)
    pieces = []
    for i in range(0, len(ends), 13):  # a few seconds of samples before each batch is all it needs
        e = ends[i:i + 13]
        keep = (t > e[0] - 5.5) & (t <= e[-1])
        pieces.append(lift_range_g(t[keep], a[keep], e, 50))
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-12)


def test_sitting_down_lowers_the_hip_first_and_standing_up_lifts_it_first():
    trace = synthesize(parse_plan("stand 20s, sit 20s, stand 20s"), sample_rate_hz=50, seed=3)
    ends = np.arange(6.0, trace.t_s[-1], 1.0)
    ranges, down_first = hip_movement(trace.t_s, trace.accel_g, ends, 50)
    lift = ranges.max(axis=1)
    still = [i for i, e in enumerate(ends) if (trace.labels[int(e * 50) - 200:int(e * 50)] == LABEL_CODE["sitting"]).all()]
    assert lift[still].max() < 0.05  # sitting still: no movement of the hip
    sit_down = int(np.argmax(np.where(ends < 30, lift, 0)))
    stand_up = int(np.argmax(np.where(ends > 40, lift, 0)))
    assert lift[sit_down] > 0.15 and lift[stand_up] > 0.15
    assert down_first[sit_down] and not down_first[stand_up]


def _after_calm_readings(trace, ends) -> list[tuple[float, bool]]:
    return [movement_after_calm(trace.t_s, trace.accel_g, float(e), trace.sample_rate_hz) for e in ends]


def test_a_sit_down_after_a_walk_is_measured_alone_once_the_wearer_stopped():
    """The walk's last steps swamp the context's range; the movement after the stop does not."""
    sat = synthesize(parse_plan("stand 10s, walk 30s, sit 30s"), sample_rate_hz=50, seed=4, sit_pitch_deg=3.0)
    stood = synthesize(parse_plan("stand 10s, walk 30s, stand 30s"), sample_rate_hz=50, seed=4)
    ends = np.arange(38.0, 50.0)
    lowered = [g for g, down in _after_calm_readings(sat, ends) if down]
    assert max(lowered) > 0.2  # the sit-down, 0.27 g here
    assert max(g for g, _ in _after_calm_readings(stood, ends)) < 0.05  # stopping is no movement after a calm
    assert hip_movement(sat.t_s, sat.accel_g, ends, 50)[0].max() > 0.3  # while the whole context sees the steps


def test_steps_after_a_pause_are_not_one_movement():
    walk = synthesize(parse_plan("stand 10s, walk 30s"), sample_rate_hz=50, seed=5)
    acc = walk.accel_g.copy()
    pause = (walk.t_s > 24.0) & (walk.t_s <= 25.0)
    acc[pause] = acc[pause].mean(axis=0)  # the wearer stops for a second, then walks on
    paused = Trace(walk.t_s, acc, walk.labels, dict(walk.metadata), walk.source)
    readings = _after_calm_readings(paused, np.arange(25.0, 30.0))
    assert max(g for g, _ in readings) < 0.15
    assert _after_calm_readings(walk, [27.0]) == [(0.0, False)]  # no pause: nothing comes after a calm

"""The fault soak in its reduced form: two hours of sensor time through real ``sitsense run``
processes with every kind of fault the full day under ``bench/soak.py`` has (see its docstring).

Under a minute of wall time (the faulty run plays at 300x real time).
"""

from __future__ import annotations

import json

from bench.soak import day_2h, run_soak
from tests.mosquitto import fresh_broker  # noqa: F401  (fixture)


def test_reduced_fault_soak(tmp_path, fresh_broker):  # noqa: F811
    spec = day_2h()
    fig = run_soak(spec, tmp_path / "soak", broker=fresh_broker)
    print(json.dumps(fig, indent=1))
    # no crash apart from the kill
    assert fig["exit_status"] == {"run1": -9, "run2": 0}
    assert fig["tracebacks"] == 0 and fig["error_lines"] == 0
    # every alert reached the broker, including one raised while it was down
    assert fig["alerts_produced"] >= 3 and fig["alerts_missing"] == []
    assert fig["alerts_produced"] == fig["clean_alerts"]
    assert fig["alerts_during_broker_outage"] >= 1
    # the restart resumed the bout: its alert counts the sitting from before the kill
    cut = fig["power_cut"]
    assert cut["resumed"] and cut["resumed"].startswith("resumed")
    assert cut["alerts_after_restart"] and cut["alerts_after_restart"][0]["bout_min"] >= 30
    assert 0 <= cut["counting_lost_s"] <= spec.checkpoint_s + 2
    # every staged sensor fault happened and was reported, with the time it cost
    kinds = [(e["kind"], e["start_s"]) for e in fig["sensor_episodes"]]
    assert sum(k == "i2c_error" for k, _ in kinds) == 2
    assert sum(k == "chip_reset" for k, _ in kinds) == 1
    # the stall starts at 1500 s; the episode is dated from the last sample read before it (one poll, 1 s)
    assert any(k == "fifo_overflow" and 1499 <= t <= 1530 for k, t in kinds)
    assert 600 <= fig["lost_sensor_s"] <= 900
    # sitting within 1 % of the clean day, counting only the seconds the sensor was readable
    assert abs(fig["sitting_diff_pct"]) <= 1.0
    assert fig["db_integrity"] == "ok"


def test_reduced_hostile_soak(tmp_path, fresh_broker):  # noqa: F811
    """Issue 18's day in two hours: a damaged checkpoint at start, the state folder full from
    minute 30, a 30 MB payload and 20 000 command names at hour 1, inside a 128 MiB memory cgroup,
    the service restarted as systemd would if it failed. Needs root for the tmpfs and the cgroup."""
    import pytest

    from bench.soak import day_2h_hostile
    from tests.memcg import CgroupUnavailable
    from tests.tmpfs import TmpfsUnavailable

    spec = day_2h_hostile()
    try:
        fig = run_soak(spec, tmp_path / "soak", broker=fresh_broker)
    except (TmpfsUnavailable, CgroupUnavailable) as exc:
        pytest.skip(str(exc))
    print(json.dumps(fig, indent=1))
    hostile = fig["hostile"]
    assert hostile["restarts"] == 0 and fig["exit_status"] == {"run1": 0}  # no restart loop
    assert fig["tracebacks"] == 0 and fig["error_lines"] == 0
    assert hostile["memory"]["oom_kills"] == 0 and hostile["memory"]["peak_mib"] < 128
    # the damaged checkpoint: one warning naming the damage, its day still went into the history
    [damaged] = hostile["damaged_snapshot_warnings"]
    assert "snoozed_until_t: missing" in damaged and "reminders: null" in damaged
    # the full disk: said (not once per write), shown on the tile, and every alert still delivered
    assert 1 <= hostile["storage_warnings"] <= 4 and "full" in hostile["storage_tile_values"]
    assert fig["alerts_produced"] == fig["clean_alerts"] >= 3 and fig["alerts_missing"] == []
    # the floods: the big payload refused unread, the names logged once, the log small
    assert hostile["oversized_refused_lines"] == 1 and hostile["command_warnings"] <= 3
    assert hostile["log_bytes"] < 50_000
    assert abs(fig["sitting_diff_pct"]) <= 1.0

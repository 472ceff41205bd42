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
    assert any(k == "fifo_overflow" and 1500 <= t <= 1530 for k, t in kinds)
    assert 600 <= fig["lost_sensor_s"] <= 900
    # sitting within 1 % of the clean day, counting only the seconds the sensor was readable
    assert abs(fig["sitting_diff_pct"]) <= 1.0
    assert fig["db_integrity"] == "ok"

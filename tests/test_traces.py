"""The trace format: round trips, gzip, and a clear one-line message for every kind of bad file."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from sitsense.errors import TraceError
from sitsense.traces import LABEL_CODE, Trace, parse_trace, read_hapt, read_trace, write_trace

GOOD = b"""# sitsense-trace v1
# sample_rate_hz=50
# start_time=2026-03-02T09:00:00+01:00
t,ax,ay,az,label
0.000,0.9181,-0.1125,0.5097,standing
0.020,0.9111,-0.0931,0.5375,standing
0.040,0.9000,-0.0900,0.5400,
0.060,0.8800,-0.0800,0.5300,sitting
"""


def test_reads_metadata_samples_and_labels():
    tr = parse_trace(GOOD)
    assert len(tr) == 4
    assert tr.sample_rate_hz == 50
    assert tr.start_time.isoformat() == "2026-03-02T09:00:00+01:00"
    np.testing.assert_allclose(tr.accel_g[0], [0.9181, -0.1125, 0.5097])
    assert list(tr.label_names()) == ["standing", "standing", "", "sitting"]


def test_label_column_may_be_absent():
    tr = parse_trace(b"# sitsense-trace v1\nt,ax,ay,az\n0,0,0,1\n0.5,0,0,1\n")
    assert tr.labels is None and len(tr) == 2 and tr.sample_rate_hz == pytest.approx(2.0)


def test_windows_line_endings_and_missing_final_newline():
    tr = parse_trace(GOOD.replace(b"\n", b"\r\n").rstrip())
    assert len(tr) == 4


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_write_then_read_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(1)
    n = 500
    tr = Trace(np.arange(n) / 25.0, rng.normal(0, 0.5, (n, 3)),
               rng.integers(-1, len(LABEL_CODE), n).astype(np.int8), {"start_time": "2026-03-02T09:00:00+00:00"})
    path = tmp_path / f"x{suffix}"
    write_trace(path, tr)
    back = read_trace(path)
    np.testing.assert_allclose(back.t_s, tr.t_s, atol=5e-4)
    np.testing.assert_allclose(back.accel_g, tr.accel_g, atol=5e-5)
    np.testing.assert_array_equal(back.labels, tr.labels)
    assert back.metadata["start_time"] == "2026-03-02T09:00:00+00:00"
    if suffix == ".csv.gz":
        assert gzip.decompress(path.read_bytes()).startswith(b"# sitsense-trace v1")


def _bad(body: str, header: str = "t,ax,ay,az,label") -> str:
    text = f"# sitsense-trace v1\n# sample_rate_hz=50\n{header}\n{body}"
    with pytest.raises(TraceError) as exc:
        parse_trace(text.encode(), source="day.csv")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("day.csv: ")
    return msg


def test_not_numeric_names_the_line_and_column():
    msg = _bad("0.00,1,0,0,standing\n0.02,1,abc,0,standing\n")
    assert "line 5" in msg and "'ay'" in msg and "not a number" in msg


def test_non_finite_value():
    msg = _bad("0.00,1,0,0,standing\n0.02,1,nan,0,standing\n")
    assert "line 5" in msg and "not finite" in msg


def test_time_going_backwards():
    msg = _bad("0.00,1,0,0,\n0.02,1,0,0,\n0.01,1,0,0,\n")
    assert "line 6" in msg and "backwards" in msg


def test_repeated_time():
    assert "line 5" in _bad("0.00,1,0,0,\n0.00,1,0,0,\n")


def test_missing_column_in_header():
    msg = _bad("0,1,0\n", header="t,ax,ay")
    assert "line 3" in msg and "missing column 'az'" in msg


def test_missing_field_in_a_row():
    msg = _bad("0.00,1,0,0,standing\n0.02,1,0,standing\n")
    assert "line 5" in msg and "expected 5 fields" in msg


def test_unknown_label_lists_the_allowed_ones():
    msg = _bad("0.00,1,0,0,standing\n0.02,1,0,0,dancing\n")
    assert "line 5" in msg and "'dancing'" in msg and "sitting" in msg and "not_worn" in msg


def test_first_line_must_be_the_magic():
    with pytest.raises(TraceError, match="line 1: expected '# sitsense-trace v1'"):
        parse_trace(b"t,ax,ay,az\n0,0,0,1\n", source="x.csv")


def test_bad_start_time_and_rate_metadata():
    with pytest.raises(TraceError, match="start_time"):
        parse_trace(b"# sitsense-trace v1\n# start_time=2026-03-02 09:00\nt,ax,ay,az\n0,0,0,1\n")
    with pytest.raises(TraceError, match="sample_rate_hz"):
        parse_trace(b"# sitsense-trace v1\n# sample_rate_hz=fast\nt,ax,ay,az\n0,0,0,1\n")


def test_empty_body_and_missing_file(tmp_path):
    with pytest.raises(TraceError, match="no samples"):
        parse_trace(b"# sitsense-trace v1\nt,ax,ay,az\n")
    with pytest.raises(TraceError, match="no such trace file"):
        read_trace(tmp_path / "nope.csv")


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    p = tmp_path / "x.csv.gz"
    p.write_bytes(gzip.compress(GOOD)[:30])
    with pytest.raises(TraceError, match="cannot read trace"):
        read_trace(p)


def test_reads_the_hapt_layout_with_our_labels(hapt_dir):
    traces = read_hapt(hapt_dir, users={1})
    assert len(traces) == 2
    tr = traces[0]
    assert tr.sample_rate_hz == 50 and tr.accel_g.shape[1] == 3
    # labels.txt line "1 1 5 250 1232": samples 250..1232 (1-based, inclusive) are STANDING
    assert tr.labels[249] == LABEL_CODE["standing"] and tr.labels[1231] == LABEL_CODE["standing"]
    assert tr.labels[248] == -1
    assert tr.labels[1232] == LABEL_CODE["transition"]  # 7 STAND_TO_SIT
    assert tr.activity[1232] == 7

"""Property-based: malformed traces and configs only ever give a typed sitsense error."""

from __future__ import annotations

import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitsense.config import config_from_dict
from sitsense.errors import ConfigError, TraceError
from sitsense.traces import LABELS, parse_trace

CASES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

number = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                   st.sampled_from(["", "abc", "1e999", "-", "0x10", "1,5", " 2 "]))
label = st.one_of(st.sampled_from(LABELS + ("",)), st.text(max_size=8))
row = st.lists(st.one_of(number, label), min_size=0, max_size=7).map(",".join)


@CASES
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_the_reader(raw):
    try:
        parse_trace(raw, source="fuzz.csv")
    except TraceError as exc:
        assert str(exc).startswith("fuzz.csv") and "\n" not in str(exc)


@CASES
@given(meta=st.lists(st.text(max_size=20), max_size=3), header=st.sampled_from(
    ["t,ax,ay,az,label", "t,ax,ay,az", "t,ax,ay", "ax,ay,az,t", "t,ax,ay,az,label,x"]),
    rows=st.lists(row, max_size=12))
def test_malformed_traces_give_a_one_line_trace_error(meta, header, rows):
    text = "\n".join(["# sitsense-trace v1", *("# " + m for m in meta), header, *rows]) + "\n"
    try:
        tr = parse_trace(text.encode("utf-8", "surrogatepass"), source="fuzz.csv")
    except TraceError as exc:
        assert str(exc).startswith("fuzz.csv") and "\n" not in str(exc)
    else:  # what is accepted is sane
        assert len(tr) > 0 and (tr.t_s[1:] > tr.t_s[:-1]).all()


toml_value = st.recursive(
    st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
keys = st.sampled_from(["sit_limit_min", "break_s", "active_hours", "active_days", "pin", "port", "level",
                        "equipment", "source", "range_g", "address", "enabled", "timezone", "bogus"])
sections = st.sampled_from(["sensor", "posture", "tracker", "coach", "buzzer", "mqtt", "store", "other"])


@CASES
@given(st.dictionaries(sections, st.one_of(st.dictionaries(keys, toml_value, max_size=4), toml_value), max_size=4))
def test_malformed_configs_give_config_errors(data):
    try:
        config_from_dict(data, source="fuzz.toml", check_files=False)
    except ConfigError as exc:
        assert all(line.startswith("fuzz.toml: ") for line in str(exc).splitlines())


@CASES
@given(st.text(max_size=200))
def test_random_toml_text_is_either_toml_or_a_config_error(text):
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    try:
        config_from_dict(data, source="fuzz.toml", check_files=False)
    except ConfigError:
        pass

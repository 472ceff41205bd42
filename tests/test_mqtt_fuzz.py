"""Property-based: whatever arrives on the broker, the MQTT command handler either rejects it
(a RequestRejected, logged, nothing submitted) or turns it into a valid Request.

Two levels: ``parse_command`` (the pure validator) and ``MqttOutput._on_message`` (what paho
calls, driven through FakeMqttClient.deliver, with a Service executing what is accepted).
``CASES`` sets how many examples each test runs; ``CASE_COUNTS`` records how many really ran
(``pytest -s`` prints them at the end of the module).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitsense.clock import SimClock
from sitsense.config import Config, MqttConfig
from sitsense.errors import SitsenseError
from sitsense.control import CONTROLS, Request, RequestRejected
from sitsense.mqtt.client import MqttOutput
from sitsense.mqtt.fake import FakeMqttClient
from sitsense.mqtt.topics import MAX_COMMAND_BYTES, Topics, parse_command
from sitsense.service import Service

MAX_EXAMPLES = 500
CASES = settings(max_examples=MAX_EXAMPLES, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CASE_COUNTS: Counter[str] = Counter()

DEVICE = "fuzzdev"
TOPICS = Topics.for_device("sitsense", DEVICE)
NAMES = list(CONTROLS)

# ---------------------------------------------------------------------------------------- inputs

command_name = st.one_of(st.sampled_from(NAMES), st.sampled_from(["", "SNOOZE", "snooze ", "reboot", "exec",
                                                                  "+", "#", "..", "snooze\x00", "ack/result"]),
                         st.text(max_size=12))
topic = st.one_of(
    st.builds(TOPICS.cmd, command_name),                                   # our tree, any name
    st.builds(TOPICS.cmd, st.sampled_from(NAMES)),                         # our tree, known names
    st.builds(lambda n: f"{TOPICS.cmd(n)}/result", st.sampled_from(NAMES)),  # our own replies
    st.builds(lambda d, n: f"sitsense/{d}/cmd/{n}", st.sampled_from(["other", "fuzzdev2", "fuzzde", "+", ""]),
              st.sampled_from(NAMES)),                                     # other devices' trees
    st.builds(lambda n: f"{TOPICS.base}/{n}", st.sampled_from(["cmd", "cmd/", "state", "alert", "cmd//snooze"])),
    st.builds(lambda s, n: f"{s}{TOPICS.cmd(n)}", st.sampled_from(["/", " ", "x"]), st.sampled_from(NAMES)),
    st.text(max_size=40),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=10)
field_name = st.one_of(st.sampled_from(["minutes", "id", "Minutes", "minutes ", "", "__proto__"]), st.text(max_size=8))
near_schema = st.dictionaries(field_name, st.one_of(
    json_value, st.sampled_from([0, 1, 5, 120, 121, 1440, 1441, -1, 0.999, 1e308, -0.0, True, False, "5", "abc",
                                 "a" * 128, "a" * 129, "x y", "20260302T093000-1"])), max_size=3)


schema_value = st.one_of(st.floats(min_value=-10, max_value=2000), st.integers(min_value=-10, max_value=2000),
                         st.text(alphabet="abcXYZ019_.:- /\u00e9", min_size=0, max_size=130), json_value)


@st.composite
def schema_fields(draw):
    """Mostly the command's own fields with plausible values, sometimes an extra key."""
    name = draw(st.sampled_from(NAMES))
    keys = draw(st.lists(st.sampled_from(list(CONTROLS[name].args) or ["minutes"]), unique=True, max_size=2))
    fields = {k: draw(schema_value) for k in keys}
    if draw(st.booleans()) and draw(st.booleans()):
        fields.update(draw(near_schema))
    return name, fields


def _dump(v) -> bytes:
    return json.dumps(v).encode()


payload = st.one_of(
    st.binary(max_size=64),
    st.binary(min_size=MAX_COMMAND_BYTES - 8, max_size=4 * MAX_COMMAND_BYTES),  # huge
    json_value.map(_dump),
    near_schema.map(_dump),
    schema_fields().map(lambda nf: _dump(nf[1])),
    st.sampled_from([b"", b" ", b"{}", b"null", b"[]", b"NaN", b"Infinity", b'{"minutes": NaN}',
                     b'{"minutes": Infinity}', b'{"minutes": -Infinity}', b'{"minutes": 1e999}',
                     b'{"minutes": 10, "minutes": "x"}', b"\xef\xbb\xbf{}", b'{"id": "\\u0000"}',
                     b"\xff\xfe{\x00}\x00", b'{"minutes": 5}' + b" " * 2000, b"[" * 500 + b"]" * 500,
                     b'{"a":' * 100 + b"1" + b"}" * 100]),
)


# ---------------------------------------------------------------------------------------- checks

def assert_valid(name: str, args: dict, topic: str, raw: bytes, retained: bool) -> None:
    """What parse_command accepted must satisfy the schema exactly."""
    assert name in CONTROLS and topic == TOPICS.cmd(name)
    assert not retained and len(raw) <= MAX_COMMAND_BYTES
    schema = CONTROLS[name].args
    assert set(args) <= set(schema)
    assert all(k in args for k, spec in schema.items() if spec.required)
    for key, value in args.items():
        spec = schema[key]
        if spec.kind is float:
            assert type(value) is float and math.isfinite(value) and spec.lo <= value <= spec.hi
        else:
            assert type(value) is str and 1 <= len(value) <= 128 and value.isascii()


@CASES
@given(topic=topic, raw=payload, retained=st.booleans())
def test_parse_command_accepts_only_valid_commands(topic, raw, retained):
    CASE_COUNTS["parse_command"] += 1
    try:
        name, args = parse_command(TOPICS, topic, raw, retained=retained)
    except RequestRejected as exc:
        assert isinstance(exc, SitsenseError) and str(exc)
        CASE_COUNTS["parse_command rejected"] += 1
        return
    CASE_COUNTS["parse_command accepted"] += 1
    assert_valid(name, args, topic, raw, retained)


@CASES
@given(named=st.one_of(st.tuples(st.sampled_from(NAMES), near_schema), schema_fields()), retained=st.booleans())
def test_well_addressed_commands_with_fuzzed_fields(named, retained):
    """Most random topics are rejected at once; this one always reaches the field checks."""
    CASE_COUNTS["fields"] += 1
    name, fields = named
    raw = _dump(fields)
    try:
        got, args = parse_command(TOPICS, TOPICS.cmd(name), raw, retained=retained)
    except RequestRejected:
        CASE_COUNTS["fields rejected"] += 1
        return
    CASE_COUNTS["fields accepted"] += 1
    assert got == name
    assert_valid(got, args, TOPICS.cmd(name), raw, retained)


class _Harness:
    """An MqttOutput on a fake client whose accepted commands a real Service executes."""

    def __init__(self):
        self.clock = SimClock(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
        self.service = Service(Config(), clock=self.clock)
        self.submitted: list[Request] = []
        self.fake = FakeMqttClient()
        self.out = MqttOutput(MqttConfig(device_id=DEVICE, discovery=False), client=self.fake, outbox=":memory:",
                              submit=self.submitted.append, clock=self.clock)
        self.out.start()


@pytest.fixture(scope="module")
def harness():
    h = _Harness()
    yield h
    h.out.close()


@CASES
@given(topic=topic, raw=payload, retained=st.booleans())
def test_on_message_rejects_or_submits_a_command_that_runs(harness, caplog, topic, raw, retained):
    CASE_COUNTS["on_message"] += 1
    h = harness
    h.submitted.clear()
    rejected_before = h.out.stats["rejected"]
    limited_before = h.out.stats["rate_limited"]
    with caplog.at_level(logging.DEBUG, logger="sitsense.mqtt"):
        caplog.clear()
        h.fake.deliver(topic, raw, retain=retained)
    # the catch-all ("incoming message: ...") means something other than a rejection happened
    assert not [r for r in caplog.records if "incoming message" in r.getMessage()]
    if h.out.stats["rate_limited"] > limited_before:  # valid, but more of that name than the rate limit lets in
        assert h.submitted == []
        CASE_COUNTS["on_message rate limited"] += 1
        return
    if h.out.stats["rejected"] > rejected_before:
        assert h.submitted == []
        assert any("ignored" in r.getMessage() for r in caplog.records)  # logged (WARNING once, then DEBUG)
        CASE_COUNTS["on_message rejected"] += 1
        return
    assert len(h.submitted) == 1
    cmd = h.submitted[0]
    assert_valid(cmd.name, cmd.args, topic, raw, retained)
    assert cmd.source == "mqtt"
    result = h.service.execute(cmd)  # the service takes it as it is; the only refusals are the ones it documents
    assert result["ok"] is True or (cmd.name == "release" and h.service.coach is None and "no coach" in result["error"]) \
        or (cmd.name == "ack" and result["error"].startswith("unknown alert id"))
    CASE_COUNTS["on_message accepted"] += 1


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    print("\nMQTT command fuzz cases run:", dict(sorted(CASE_COUNTS.items())))

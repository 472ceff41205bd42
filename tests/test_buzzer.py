"""The buzzer output on gpiozero's mock pins, in simulated time: exact state sequences and timings,
muting, the button. The pins stamp their histories with the SimClock the buzzer plays on
(tests/sim_gpio.py), so every duration is compared exactly and no test waits in real time."""

from __future__ import annotations

import math
import threading
from datetime import datetime, timezone

import pytest
from gpiozero.pins.mock import MockPin, MockPWMPin

from sitsense.clock import SimClock
from sitsense.config import BuzzerConfig
from sitsense.errors import OutputError
from sitsense.events import Alert, BreakTaken, Calibrated, HoldCue
from sitsense.outputs.button import PressDecoder
from sitsense.outputs.buzzer import PATTERNS, BuzzerOutput, pattern_for, pattern_s
from tests import sim_gpio

PIN, BUTTON = 17, 27
NOON_UTC = datetime(2024, 5, 6, 12, 0, tzinfo=timezone.utc)

# The documented patterns, written out literally so a change to PATTERNS has to change this too:
# (on_s, off_s, pitch x tone_hz, level x vibration_duty) per beep.
SPEC = {
    "reminder": [(0.15, 0.15, 1.0, 0.6), (0.15, 0.0, 1.0, 0.6)],
    "reminder_2": [(0.25, 0.15, 1.2, 0.8)] * 2 + [(0.25, 0.0, 1.2, 0.8)],
    "reminder_3": [(0.3, 0.1, 1.4, 1.0)] * 2 + [(0.3, 0.4, 1.4, 1.0)] + [(0.3, 0.1, 1.4, 1.0)] * 2
                  + [(0.3, 0.0, 1.4, 1.0)],
    "hold_start": [(0.5, 0.0, 1.0, 1.0)],
    "hold_switch": [(0.1, 0.1, 1.2, 0.8), (0.1, 0.0, 1.2, 0.8)],
    "hold_done": [(0.12, 0.08, 1.0, 0.7), (0.12, 0.08, 1.25, 0.85), (0.4, 0.0, 1.5, 1.0)],
    "hold_cancel": [(0.25, 0.0, 0.6, 0.5)],
    "calibration": [(0.06, 0.06, 1.5, 0.6)] * 2 + [(0.06, 0.0, 1.5, 0.6)],
    "ack": [(0.08, 0.0, 1.0, 0.6)],
}


class TonePin(MockPWMPin):
    """A PWM mock pin that also records the frequency every time it starts to sound."""

    def __init__(self, factory, info):
        super().__init__(factory, info)
        self.tones_hz: list[float] = []

    def _set_state(self, value):
        super()._set_state(value)
        if value:
            self.tones_hz.append(self._frequency)


@pytest.fixture
def clock():
    return SimClock(NOON_UTC)


@pytest.fixture
def factory(clock):
    f = sim_gpio.factory(clock, MockPin)
    yield f
    f.reset()


@pytest.fixture
def pwm_factory(clock):
    f = sim_gpio.factory(clock, TonePin)
    yield f
    f.reset()


def on_value(kind: str, cfg: BuzzerConfig, level: float):
    return {"active": True, "tonal": 0.5, "vibration": min(1.0, cfg.vibration_duty * level)}[kind]


def expected_states(names: list[str], kind: str, cfg: BuzzerConfig) -> list[tuple[float, object]]:
    """The (seconds since the previous change, state) history MockPin records for these patterns."""
    off = False if kind == "active" else 0.0
    out: list[tuple[float, object]] = [(0.0, off)]
    gap = 0.0
    for name in names:
        for on_s, off_s, _pitch, level in SPEC[name]:
            out.append((gap, on_value(kind, cfg, level)))
            out.append((on_s, off))
            gap = off_s
        gap = 0.0  # the next queued pattern follows at once
    return out


def assert_history(pin, expected) -> None:
    """Exact sequence of states and of simulated durations (to float rounding); lengths must match."""
    got = [(s.timestamp, s.state) for s in pin.states]
    assert len(got) == len(expected), f"states {got} != expected {expected}"
    for (t_got, v_got), (t_exp, v_exp) in zip(got, expected):
        assert math.isclose(float(v_got), float(v_exp), abs_tol=1e-9), f"{got} != {expected}"
        assert math.isclose(t_got, t_exp, abs_tol=1e-9), f"{got} != {expected}"


def make(kind: str, factory, clock, **changes) -> tuple[BuzzerOutput, object]:
    cfg = BuzzerConfig(kind=kind, **changes)
    out = BuzzerOutput(cfg, pin_factory=factory, clock=clock)
    pin = factory.pin(PIN)
    pin.clear_states()
    return out, pin


def play_out(clock: SimClock, out: BuzzerOutput) -> None:
    """Run simulated time until every queued pattern has played."""
    sim_gpio.run_until(clock, lambda: out.wait_idle(0))


# ---------------------------------------------------------------- patterns as data

def test_patterns_match_the_documented_table():
    assert {n: [(b.on_s, b.off_s, b.pitch, b.level) for b in p] for n, p in PATTERNS.items()} == SPEC


def test_patterns_are_named_and_escalate():
    assert {"reminder", "reminder_2", "reminder_3", "hold_start", "hold_switch", "hold_done",
            "calibration"} <= set(PATTERNS)
    r = [PATTERNS[n] for n in ("reminder", "reminder_2", "reminder_3")]
    on_s = [sum(b.on_s for b in p) for p in r]
    assert len(r[0]) < len(r[1]) < len(r[2]) and on_s[0] < on_s[1] < on_s[2]
    assert max(b.pitch for b in r[0]) < min(b.pitch for b in r[1]) <= max(b.pitch for b in r[1]) < min(
        b.pitch for b in r[2])
    assert max(b.level for b in r[0]) < min(b.level for b in r[1]) < min(b.level for b in r[2])
    for name, beeps in PATTERNS.items():
        assert beeps[-1].off_s == 0.0, name
        assert all(b.on_s > 0 for b in beeps) and all(b.off_s > 0 for b in beeps[:-1]), name
        assert 0.5 <= min(b.pitch for b in beeps) and max(b.pitch for b in beeps) < 2.0, name
        assert pattern_s(name) <= 3.0, name


def test_events_map_to_patterns():
    a = lambda r: Alert(0.0, "x", 1800.0, 0.0, r, "")  # noqa: E731
    assert [pattern_for(a(r)) for r in (1, 2, 3, 4)] == ["reminder", "reminder_2", "reminder_3", "reminder_3"]
    assert [pattern_for(HoldCue(0, c, "plank", 1)) for c in ("start", "switch", "done", "cancel")] == [
        "hold_start", "hold_switch", "hold_done", "hold_cancel"]
    assert pattern_for(Calibrated(0, "explicit", (0.0, 0.0, 1.0))) == "calibration"
    assert pattern_for(BreakTaken(0, 0, 60)) is None


# ---------------------------------------------------------------- pin histories

@pytest.mark.parametrize("kind", ["active", "tonal", "vibration"])
def test_every_pattern_plays_its_exact_sequence(kind, factory, pwm_factory, clock):
    f = factory if kind == "active" else pwm_factory
    out, pin = make(kind, f, clock)
    try:
        for name in PATTERNS:
            pin.clear_states()
            t0 = clock.monotonic()
            assert out.play(name)
            # play() only queues: no simulated time passes and at most the first beep has begun
            assert clock.monotonic() == t0 and len(pin.states) <= 2
            play_out(clock, out)
            assert_history(pin, expected_states([name], kind, out.cfg))
            assert clock.monotonic() == pytest.approx(t0 + pattern_s(name), abs=1e-9)
    finally:
        out.close()


def test_escalation_across_three_reminders_on_an_active_buzzer(factory, clock):
    out, pin = make("active", factory, clock)
    with out:
        for r in (1, 2, 3):
            out.handle(Alert(r * 600.0, f"a{r}", 1800.0 + 600 * (r - 1), 0.0, r, ""))
        play_out(clock, out)
        assert_history(pin, expected_states(["reminder", "reminder_2", "reminder_3"], "active", out.cfg))


def test_tonal_pitch_and_vibration_strength_rise_with_the_reminder(pwm_factory, clock):
    out, pin = make("tonal", pwm_factory, clock, tone_hz=2000.0)
    with out:
        for r in (1, 2, 3):
            out.handle(Alert(0.0, f"a{r}", 1800.0, 0.0, r, ""))
        play_out(clock, out)
    want = [2000.0 * b[2] for n in ("reminder", "reminder_2", "reminder_3") for b in SPEC[n]]
    assert pin.tones_hz == pytest.approx(want, rel=1e-3)
    f2 = sim_gpio.factory(clock, TonePin)
    vib, vpin = make("vibration", f2, clock, vibration_duty=0.5)
    with vib:
        for r in (1, 2, 3):
            vib.handle(Alert(0.0, f"a{r}", 1800.0, 0.0, r, ""))
        play_out(clock, vib)
    duties = [s.state for s in vpin.states if s.state]
    assert duties == pytest.approx([0.3] * 2 + [0.4] * 3 + [0.5] * 6)


def test_hold_cues_from_the_coach_sound_in_order(factory, clock):
    out, pin = make("active", factory, clock)
    with out:
        for cue in ("start", "switch", "done"):
            out.handle(HoldCue(0.0, cue, "kneeling_hip_flexor", 1))
        play_out(clock, out)
        assert_history(pin, expected_states(["hold_start", "hold_switch", "hold_done"], "active", out.cfg))


# ---------------------------------------------------------------- muting

def test_quiet_hours_silence_sound_but_not_a_motor(factory, pwm_factory):
    night = SimClock(datetime(2024, 5, 6, 22, 30, tzinfo=timezone.utc))
    f = sim_gpio.factory(night, MockPin)
    out, pin = make("active", f, night)
    with out:
        out.handle(Alert(0.0, "n", 1800.0, 0.0, 1, ""))
        assert out.wait_idle(0)  # nothing was queued
        assert [s.state for s in pin.states] == [False]
        night.advance_to(9 * 3600.0)  # 07:30 next morning: quiet hours are over
        pin.clear_states()
        out.handle(Alert(0.0, "m", 1800.0, 0.0, 1, ""))
        play_out(night, out)
        assert_history(pin, expected_states(["reminder"], "active", out.cfg))
    late = SimClock(datetime(2024, 5, 6, 23, 0, tzinfo=timezone.utc))
    vib, vpin = make("vibration", sim_gpio.factory(late, TonePin), late)
    with vib:
        vib.handle(Alert(0.0, "v", 1800.0, 0.0, 1, ""))
        play_out(late, vib)
        assert_history(vpin, expected_states(["reminder"], "vibration", vib.cfg))


def test_vibrate_only_never_sounds_a_buzzer(factory, clock):
    out, pin = make("active", factory, clock, vibrate_only=True, quiet_hours="00:00-00:00")
    with out:
        assert not out.play("reminder_3")
        assert out.wait_idle(0)
        assert [s.state for s in pin.states] == [False]


def test_disabled_buzzer_takes_no_pins(factory):
    out = BuzzerOutput(BuzzerConfig(enabled=False), pin_factory=factory)
    out.handle(Alert(0.0, "x", 1800.0, 0.0, 1, ""))
    assert not factory.pins
    out.close()


def test_tonal_without_pwm_is_a_clear_error(factory):
    with pytest.raises(OutputError, match="GPIO17"):
        BuzzerOutput(BuzzerConfig(kind="tonal"), pin_factory=factory)


def test_without_a_clock_it_plays_in_real_time(factory):
    """The default clock is the machine's: a short pattern really plays (timing is checked above)."""
    out = BuzzerOutput(BuzzerConfig(kind="active", quiet_hours="00:00-00:00"), pin_factory=factory)
    pin = factory.pin(PIN)
    with out:
        assert out.play("ack") and out.wait_idle(5)
    assert [s.state for s in pin.states][-2:] == [True, False]


# ---------------------------------------------------------------- close

def test_close_stops_mid_pattern_idempotent_and_leaves_the_pin_off(factory, clock):
    out, pin = make("active", factory, clock)
    out.play("reminder_3")
    sim_gpio.wait_for_waiter(clock, clock.monotonic() + SPEC["reminder_3"][0][0])  # the first beep is on
    sim_gpio.advance(clock, 0.15)  # into the middle of it
    assert pin.state is True
    out.close()
    assert not any(th.is_alive() for th in out._threads)  # the player stopped without more time passing
    out.close()
    assert pin.state is False or pin.state == 0
    out.handle(Alert(0.0, "late", 1800.0, 0.0, 1, ""))  # after close: ignored, no error
    assert not out.play("reminder")


def test_handle_never_raises(factory, clock):
    out, _ = make("active", factory, clock)
    with out:
        out.handle(object())  # not even an Event


# ---------------------------------------------------------------- button

def test_press_decoder_gestures():
    d = PressDecoder(long_press_s=1.5, double_press_s=0.4)
    assert d.press(0.0) == [] and d.release(0.1) == []
    assert d.next_deadline() == pytest.approx(0.5)
    assert d.poll(0.3) == [] and d.poll(0.5) == ["single"] and d.poll(0.6) == []
    assert d.press(1.0) == [] and d.release(1.1) == [] and d.press(1.3) == [] and d.release(1.35) == []
    assert d.next_deadline() == pytest.approx(1.75)  # a third press may still come
    assert d.poll(1.7) == [] and d.poll(1.76) == ["double"] and d.poll(5.0) == []
    taps = [d.press(3.0), d.release(3.1), d.press(3.3), d.release(3.4), d.press(3.6), d.release(3.7)]
    assert sum(taps, []) == ["triple"] and d.next_deadline() is None  # three: known at once
    assert d.press(6.0) == [] and d.poll(7.0) == [] and d.poll(7.5) == ["long"] and d.release(9.0) == []
    assert d.press(10.0) == [] and d.release(12.0) == ["long"]  # nobody polled while it was held
    assert d.press(20.0) == [] and d.release(20.1) == [] and d.press(21.0) == ["single"]
    assert d.release(21.1) == [] and d.poll(21.6) == ["single"]


def test_press_decoder_ignores_contact_bounce():
    d = PressDecoder(long_press_s=1.5, double_press_s=0.4, debounce_s=0.03)
    edges = [(0.0, True), (0.002, False), (0.004, True), (0.2, False), (0.202, True), (0.205, False)]
    out = [g for t, down in edges for g in (d.press(t) if down else d.release(t))]
    assert out == [] and d.poll(1.0) == ["single"]


class Recorder:
    def __init__(self):
        self.commands = []
        self.got = threading.Event()

    def __call__(self, cmd):
        self.commands.append(cmd)
        self.got.set()


LONG_S, DOUBLE_S = 0.6, 0.3


@pytest.fixture
def button_out(factory, clock):
    rec = Recorder()
    cfg = BuzzerConfig(button_enabled=True, long_press_s=LONG_S, double_press_s=DOUBLE_S)
    out = BuzzerOutput(cfg, pin_factory=factory, clock=clock, submit=rec)
    yield out, factory.pin(BUTTON), rec
    out.close()


def tap(clock, pin, down_s=0.05):
    """Press and let go ``down_s`` later; the button's thread then waits for the double-press window."""
    pin.drive_low()
    sim_gpio.advance(clock, down_s)
    pin.drive_high()
    sim_gpio.wait_for_waiter(clock, clock.monotonic() + DOUBLE_S)


def test_button_press_snoozes(button_out, clock):
    out, btn, rec = button_out
    tap(clock, btn)
    assert rec.commands == []  # not yet: it may become a double press
    sim_gpio.run_until(clock, rec.got.is_set)
    assert [(c.name, c.args, c.source) for c in rec.commands] == [("snooze", {}, "button")]


def test_button_long_press_pauses_an_hour_before_release(button_out, clock):
    out, btn, rec = button_out
    btn.drive_low()
    sim_gpio.wait_for_waiter(clock, clock.monotonic() + LONG_S)
    sim_gpio.run_until(clock, rec.got.is_set)
    assert clock.monotonic() == pytest.approx(LONG_S)  # the pause comes while the button is still held
    btn.drive_high()
    assert [(c.name, c.args) for c in rec.commands] == [("pause", {"minutes": 60})]


def test_button_double_press_starts_the_release(button_out, clock):
    out, btn, rec = button_out
    tap(clock, btn)
    sim_gpio.advance(clock, 0.05)
    btn.drive_low()
    sim_gpio.advance(clock, 0.05)
    btn.drive_high()
    sim_gpio.wait_for_waiter(clock, clock.monotonic() + DOUBLE_S)
    assert rec.commands == []  # a third press may still come
    sim_gpio.run_until(clock, rec.got.is_set)
    assert [c.name for c in rec.commands] == ["release"]


def test_button_triple_press_recalibrates_at_once_with_a_short_acknowledgement(button_out, factory, clock):
    """No phone needed: three presses, then stand upright and still (the service takes the reference)."""
    out, btn, rec = button_out
    buzz = factory.pin(PIN)
    for _ in range(3):
        btn.drive_low()
        sim_gpio.advance(clock, 0.05)
        btn.drive_high()
        sim_gpio.advance(clock, 0.1)
    assert [(c.name, c.args, c.source) for c in rec.commands] == [("calibrate", {}, "button")]
    play_out(clock, out)
    assert [s.state for s in buzz.states][-2:] == [True, False]  # the acknowledgement beep


def test_button_press_gives_a_short_acknowledgement(button_out, factory, clock):
    out, btn, rec = button_out
    buzz = factory.pin(PIN)
    buzz.clear_states()
    tap(clock, btn)
    sim_gpio.run_until(clock, rec.got.is_set)
    play_out(clock, out)
    want = expected_states(["ack"], "active", out.cfg)
    want[1] = (0.05 + DOUBLE_S, True)  # a single press is known once the window has passed
    assert_history(buzz, want)


def test_calibrate_buzzes_before_and_after_standing_still(factory, clock):
    """The clip-on ritual: buzz, stand still, buzz (issue 4), on the wearer's own buzzer."""
    from sitsense.commands.calibrate import cue_with

    out, pin = make("active", factory, clock)
    with out:
        cue = cue_with(out)
        for name in ("start", "done"):
            th = threading.Thread(target=cue, args=(name,))
            th.start()
            sim_gpio.run_until(clock, lambda: not th.is_alive())  # the cue waits until its buzz has played
            assert_history(pin, expected_states(["calibration"], "active", out.cfg))
            pin.clear_states()
        cue("failed")  # a failure is said on the console; the buzzer stays quiet
        assert out.wait_idle(0) and [s.state for s in pin.states] == [False]

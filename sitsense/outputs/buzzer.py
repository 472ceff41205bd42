"""The buzzer output: named patterns on an active buzzer, a passive piezo or a vibration motor.

Patterns are data (on/off durations with a pitch and a strength) and play on a background thread
timed by the injected clock (``clock=``, the system's by default; a SimClock plays them in
simulated time), so ``handle`` returns at once and ``close`` is immediate. An optional push
button (to ground) submits commands: a press snoozes, a long press pauses for an hour, a double
press starts the guided release, three presses recalibrate (``button.py``). Hardware comes in
through ``pin_factory=`` as in gpiozero.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from ..clock import Clock, SystemClock
from ..config import BuzzerConfig, in_window, parse_hhmm_range
from ..errors import OutputError
from ..events import Alert, Calibrated, Event, HoldCue
from ..control import Submit
from .base import StateSnapshot
from .button import ButtonInput

log = logging.getLogger(__name__)

TONAL_DUTY = 0.5  # a passive piezo is driven with a square wave


@dataclass(frozen=True)
class Beep:
    """One beep: sound for ``on_s``, then silence for ``off_s``.

    ``pitch`` multiplies ``tone_hz`` on a tonal buzzer; ``level`` multiplies ``vibration_duty`` on a
    motor. An active buzzer has one pitch and one level, so it only plays the rhythm.
    """

    on_s: float
    off_s: float = 0.0
    pitch: float = 1.0
    level: float = 1.0


def _repeat(beep: Beep, n: int, last_off_s: float = 0.0) -> tuple[Beep, ...]:
    return (beep,) * (n - 1) + (Beep(beep.on_s, last_off_s, beep.pitch, beep.level),)


# Each further reminder is more insistent: more beeps, longer, higher and stronger.
PATTERNS: dict[str, tuple[Beep, ...]] = {
    "reminder": _repeat(Beep(0.15, 0.15, 1.0, 0.6), 2),
    "reminder_2": _repeat(Beep(0.25, 0.15, 1.2, 0.8), 3),
    "reminder_3": _repeat(Beep(0.3, 0.1, 1.4, 1.0), 3, 0.4) + _repeat(Beep(0.3, 0.1, 1.4, 1.0), 3),
    "hold_start": (Beep(0.5, 0.0, 1.0, 1.0),),
    "hold_switch": _repeat(Beep(0.1, 0.1, 1.2, 0.8), 2),
    "hold_done": (Beep(0.12, 0.08, 1.0, 0.7), Beep(0.12, 0.08, 1.25, 0.85), Beep(0.4, 0.0, 1.5, 1.0)),
    "hold_cancel": (Beep(0.25, 0.0, 0.6, 0.5),),
    "calibration": _repeat(Beep(0.06, 0.06, 1.5, 0.6), 3),
    "ack": (Beep(0.08, 0.0, 1.0, 0.6),),
}

_HOLD_PATTERNS = {"start": "hold_start", "switch": "hold_switch", "done": "hold_done", "cancel": "hold_cancel"}


def pattern_for(event: Event) -> str | None:
    """The pattern an event sounds, or None for events the buzzer ignores."""
    if isinstance(event, Alert):
        return ("reminder", "reminder_2", "reminder_3")[min(max(event.reminder, 1), 3) - 1]
    if isinstance(event, HoldCue):
        return _HOLD_PATTERNS.get(event.cue)
    if isinstance(event, Calibrated):
        return "calibration"
    return None


def pattern_s(name: str) -> float:
    """Length of a pattern in seconds."""
    return sum(b.on_s + b.off_s for b in PATTERNS[name])


# ---------------------------------------------------------------- the output

class BuzzerOutput:
    """Plays event patterns on a buzzer or motor; optionally reads a button. Implements ``Output``."""

    def __init__(self, cfg: BuzzerConfig | None = None, *, pin_factory: Any = None, clock: Clock | None = None,
                 submit: Submit | None = None):
        self.cfg = cfg or BuzzerConfig()
        self._clock = clock or SystemClock()
        self._submit = submit
        self._quiet = parse_hhmm_range(self.cfg.quiet_hours)
        self._queue: deque[str] = deque(maxlen=3)  # a backlog beyond this is stale: drop the oldest
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._closing = threading.Event()
        self._closed = False
        self._device: Any = None  # a gpiozero device (gpiozero has no type information)
        self._button: ButtonInput | None = None
        self._threads: list[threading.Thread] = []
        if not self.cfg.enabled:
            return
        if self.cfg.vibrate_only and self.cfg.kind != "vibration":
            log.warning("buzzer.vibrate_only is set but buzzer.kind is %r: the buzzer stays silent",
                        self.cfg.kind)
        try:
            self._device = self._make_device(pin_factory)
            if self.cfg.button_enabled:
                self._button = ButtonInput(self.cfg, pin_factory=pin_factory, clock=self._clock, submit=submit,
                                           feedback=self.play)
        except Exception as exc:
            self.close()
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f"cannot use GPIO{self.cfg.pin} (buzzer) or GPIO{self.cfg.button_pin} (button): "
                              f"{exc}; check the pins in the [buzzer] config and hardware.md") from exc
        self._start_thread(self._play_loop, "sitsense-buzzer")

    # -------------------------------------------------------------- devices

    def _make_device(self, pin_factory: Any) -> Any:
        import gpiozero
        from gpiozero.tones import Tone

        kind, pin = self.cfg.kind, self.cfg.pin
        if kind == "active":
            return gpiozero.Buzzer(pin, pin_factory=pin_factory)
        if kind == "tonal":
            return gpiozero.TonalBuzzer(pin, mid_tone=Tone.from_frequency(self.cfg.tone_hz), octaves=1,
                                        pin_factory=pin_factory)
        if kind == "vibration":
            return gpiozero.PWMOutputDevice(pin, frequency=200, pin_factory=pin_factory)
        raise OutputError(f"buzzer.kind = {kind!r}: use 'active', 'tonal' or 'vibration'")

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        th = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(th)
        th.start()

    def _sound_on(self, beep: Beep) -> None:
        kind = self.cfg.kind
        if kind == "active":
            self._device.on()
        elif kind == "tonal":
            self._device.play(self._device.mid_tone.frequency * beep.pitch)
        else:
            self._device.value = min(1.0, self.cfg.vibration_duty * beep.level)

    def _sound_off(self) -> None:
        if self.cfg.kind == "tonal":
            self._device.stop()
        else:
            self._device.off()

    # -------------------------------------------------------------- Output

    def muted(self) -> bool:
        """True when sound is not allowed now (vibrate_only, or quiet hours); a motor is never muted."""
        if self.cfg.kind == "vibration":
            return False
        if self.cfg.vibrate_only:
            return True
        wall = self._clock.wall()
        return in_window(wall.hour * 60 + wall.minute, self._quiet)

    def handle(self, event: Event) -> None:
        try:
            name = pattern_for(event)
            if name is not None:
                self.play(name)
        except Exception:  # an output must never break the service
            log.exception("buzzer could not handle %s", type(event).__name__)

    def play(self, name: str) -> bool:
        """Queue a named pattern; False if it will not sound (disabled, muted, closed)."""
        if name not in PATTERNS:
            raise KeyError(f"unknown pattern {name!r} (known: {', '.join(PATTERNS)})")
        if self._device is None or self._closed or self.muted():
            log.debug("pattern %s not played (disabled, closed or muted)", name)
            return False
        with self._lock:
            self._queue.append(name)
            self._idle.clear()
        self._wake.set()
        return True

    def update_state(self, state: StateSnapshot) -> None:
        pass

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until every queued pattern has played (for tests and an orderly shutdown)."""
        return self._idle.wait(timeout_s)

    def close(self) -> None:
        """Stop at once (mid-pattern if need be), silence the device and free the pins. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._wake.set()
        if self._button is not None:
            self._button.close()
        for th in self._threads:
            if th is not threading.current_thread():
                th.join(timeout=1.0)
        if self._device is not None:
            try:
                self._device.close()
            except Exception:  # closing must not fail
                log.debug("closing %r failed", self._device, exc_info=True)
        self._idle.set()

    def __enter__(self) -> "BuzzerOutput":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- threads

    def _play_loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait()
            self._wake.clear()
            while not self._closing.is_set():
                with self._lock:
                    if not self._queue:
                        self._idle.set()
                        break
                    name = self._queue.popleft()
                self._play_now(name)

    def _play_now(self, name: str) -> None:
        """Play one pattern against absolute deadlines on the clock, so waits do not add up drift."""
        t = self._clock.monotonic()
        try:
            for beep in PATTERNS[name]:
                self._sound_on(beep)
                t += beep.on_s
                if self._clock.wait_until(t, self._closing):
                    return
                self._sound_off()
                if beep.off_s:
                    t += beep.off_s
                    if self._clock.wait_until(t, self._closing):
                        return
        except Exception:
            log.exception("buzzer pattern %s failed", name)
        finally:
            if self._closing.is_set():
                try:
                    self._sound_off()
                except Exception:
                    pass

"""The push button (wired to ground): press gestures become control requests (``sitsense.control``).

One press snoozes, a long press pauses for an hour (while still held, so the wearer feels it take
effect), two presses start the guided release and three recalibrate (stand upright and still
after the third). ``PressDecoder`` is pure: time comes in with each call.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from ..clock import Clock
from ..config import BuzzerConfig
from ..control import Request, Submit, check_args

log = logging.getLogger(__name__)

# gesture -> (control, arguments)
GESTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "single": ("snooze", {}),
    "long": ("pause", {"minutes": 60}),
    "double": ("release", {}),
    "triple": ("calibrate", {}),
}
for _name, _args in GESTURES.values():
    check_args(_name, _args)  # every gesture asks for a valid control
FEEDBACK = {"single": "ack", "long": "ack", "triple": "ack"}  # a double press is answered by the hold start
CLICKS = {1: "single", 2: "double", 3: "triple"}


class PressDecoder:
    """Turns press/release times into gestures: ``single``, ``double``, ``triple`` and ``long``.

    A run of presses is known once ``double_press_s`` passed after the last release without
    another press (three end it at once), so ``poll(t)`` must be called by ``next_deadline()``; a
    long press fires while the button is still held.
    """

    def __init__(self, long_press_s: float = 1.5, double_press_s: float = 0.4, debounce_s: float = 0.03):
        self.long_press_s = long_press_s
        self.double_press_s = double_press_s
        self.debounce_s = debounce_s  # contact bounce: edges this soon after the last one are ignored
        self._down_t: float | None = None
        self._long_fired = False
        self._clicks = 0
        self._last_up_t = float("-inf")

    def press(self, t: float) -> list[str]:
        if self._down_t is not None or t - self._last_up_t < self.debounce_s:
            return []
        out = self.poll(t)
        self._down_t = t
        self._long_fired = False
        return out

    def release(self, t: float) -> list[str]:
        if self._down_t is None or t - self._down_t < self.debounce_s:
            return []
        out = self.poll(t)
        held_s = t - self._down_t
        self._down_t = None
        if self._long_fired:
            return out
        if held_s >= self.long_press_s:  # poll came too late to catch it while held
            self._clicks = 0
            return out + ["long"]
        self._clicks += 1
        self._last_up_t = t
        if self._clicks == len(CLICKS):
            self._clicks = 0
            out.append(CLICKS[len(CLICKS)])
        return out

    def poll(self, t: float) -> list[str]:
        if self._down_t is not None and not self._long_fired and t - self._down_t >= self.long_press_s:
            self._long_fired = True
            self._clicks = 0
            return ["long"]
        if self._down_t is None and self._clicks and t - self._last_up_t >= self.double_press_s:
            gesture = CLICKS[self._clicks]
            self._clicks = 0
            return [gesture]
        return []

    def next_deadline(self) -> float | None:
        if self._down_t is not None and not self._long_fired:
            return self._down_t + self.long_press_s
        if self._down_t is None and self._clicks:
            return self._last_up_t + self.double_press_s
        return None


class ButtonInput:
    """Reads the button on ``cfg.button_pin`` (gpiozero, ``pin_factory=`` as there) and submits the
    gestures' requests; ``feedback(pattern)`` answers a gesture on the buzzer."""

    def __init__(self, cfg: BuzzerConfig, *, pin_factory: Any = None, clock: Clock, submit: Submit | None,
                 feedback: Callable[[str], object] | None = None):
        import gpiozero

        self._clock = clock
        self._submit = submit
        self._feedback = feedback
        self._decoder = PressDecoder(cfg.long_press_s, cfg.double_press_s)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._button = gpiozero.Button(cfg.button_pin, pull_up=True, pin_factory=pin_factory)
        self._button.when_pressed = lambda *_: self._edge(True)
        self._button.when_released = lambda *_: self._edge(False)
        self._thread = threading.Thread(target=self._run, name="sitsense-button", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and free the pin; idempotent."""
        self._closing.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        try:
            self._button.close()
        except Exception:  # closing must not fail
            log.debug("closing the button failed", exc_info=True)

    def _edge(self, pressed: bool) -> None:
        now = self._clock.monotonic()
        with self._lock:
            gestures = self._decoder.press(now) if pressed else self._decoder.release(now)
        self._dispatch(gestures)
        self._wake.set()

    def _run(self) -> None:
        """Waits for the decoder's next deadline (on the clock), then asks it what happened."""
        while not self._closing.is_set():
            with self._lock:
                deadline = self._decoder.next_deadline()
            if deadline is None:
                self._wake.wait()
            else:
                self._clock.wait_until(deadline, self._wake)
            self._wake.clear()
            if self._closing.is_set():
                return
            with self._lock:
                gestures = self._decoder.poll(self._clock.monotonic())
            self._dispatch(gestures)

    def _dispatch(self, gestures: list[str]) -> None:
        for g in gestures:
            name, args = GESTURES[g]
            log.info("button: %s -> %s", g, name)
            if g in FEEDBACK and self._feedback is not None:
                self._feedback(FEEDBACK[g])
            if self._submit is None:
                log.warning("button %s ignored: no command handler connected", g)
                continue
            try:
                self._submit(Request(name, dict(args), source="button"))
            except Exception:
                log.exception("submitting %s from the button failed", name)

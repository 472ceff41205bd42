"""gpiozero mock pins that record state changes in simulated time, and a driver for that time.

gpiozero's MockPin stamps its ``states`` history with the machine's clock. These pins stamp it with
a SimClock instead, and ``run_until`` moves the SimClock from one waiting thread's deadline to the
next (``SimClock.waiting``), so a buzzer pattern plays in no real time and its history is exact.
"""

from __future__ import annotations

import threading
from typing import Callable

from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin, PinState

from sitsense.clock import SimClock

REAL_LIMIT_S = 10.0  # a test that has not finished after this much real time is stuck: fail it


def clocked(base: type[MockPin], clock: SimClock) -> type[MockPin]:
    """A subclass of the mock pin ``base`` whose ``states`` are stamped with ``clock``."""

    class ClockedPin(base):  # type: ignore[valid-type, misc]
        def _change_state(self, value):
            if self._state != value:
                t = clock.monotonic()
                self._state = value
                self.states.append(PinState(t - self._last_change, value))
                self._last_change = t
                return True
            return False

        def clear_states(self):
            self._last_change = clock.monotonic()
            self.states = [PinState(0.0, self._state)]

    return ClockedPin


def factory(clock: SimClock, pin_class: type[MockPin] = MockPWMPin) -> MockFactory:
    return MockFactory(pin_class=clocked(pin_class, clock))


def run_until(clock: SimClock, done: Callable[[], bool], *, limit_s: float = 3600.0) -> None:
    """Move ``clock`` deadline by deadline until ``done()``; a deadline is taken only once every
    thread woken by the previous one is waiting again (or has nothing more to wait for)."""
    pause = threading.Event()
    end = clock.monotonic() + limit_s
    for _ in range(int(REAL_LIMIT_S / 0.001)):
        if done():
            return
        waits = clock.waiting()
        if waits and waits[0] > clock.monotonic():
            assert waits[0] <= end, f"nothing happened within {limit_s} s of simulated time"
            clock.advance_to(waits[0])
        else:
            pause.wait(0.001)  # a woken thread is still working, or has not begun to wait
    raise AssertionError(f"not done after {REAL_LIMIT_S} s of real time")


def advance(clock: SimClock, seconds: float) -> None:
    """Move ``clock`` on by ``seconds``, stopping at every deadline on the way (see ``run_until``)."""
    target = clock.monotonic() + seconds
    pause = threading.Event()
    for _ in range(int(REAL_LIMIT_S / 0.001)):
        waits = [w for w in clock.waiting() if w <= target]
        if waits and waits[0] <= clock.monotonic():
            pause.wait(0.001)  # woken, not yet done
        elif waits:
            clock.advance_to(waits[0])
        else:
            clock.advance_to(target)
            return
    raise AssertionError(f"stuck after {REAL_LIMIT_S} s of real time")


def wait_for_waiter(clock: SimClock, t_s: float) -> None:
    """Block (real time) until some thread waits on ``clock`` for ``t_s``."""
    pause = threading.Event()
    for _ in range(int(REAL_LIMIT_S / 0.001)):
        if t_s in clock.waiting():
            return
        pause.wait(0.001)
    raise AssertionError(f"no thread began to wait for t = {t_s}: {clock.waiting()}")

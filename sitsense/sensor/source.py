"""Sample sources: where blocks of (t in s, acceleration in g) come from."""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from ..clock import SimClock
from ..events import Event
from ..traces import Trace


class SampleSource(Protocol):
    """Yields blocks ``(t_s (n,), accel_g (n, 3))`` until the data ends or ``close()``."""

    @property
    def sample_rate_hz(self) -> float: ...

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def close(self) -> None: ...


@runtime_checkable
class ReportsStatus(Protocol):
    """A source that reports the sensor's health (faults, recoveries) as events."""

    def pop_events(self) -> Sequence[Event]:
        """Status events since the last call."""
        ...


@runtime_checkable
class TakesWakeups(Protocol):
    """A source that reads the sensor on a schedule and can be asked for one extra read."""

    def wake_at(self, t_s: float) -> None:
        """Read once more at clock time ``t_s`` if that comes before the next regular read."""
        ...


class ReplaySource:
    """Replays a trace in blocks; advances a SimClock to each block's last timestamp.

    With the clock's ``speed`` set, the replay waits so that trace time passes ``speed`` times
    faster than real time.
    """

    def __init__(self, trace: Trace, clock: SimClock | None = None, *, block_s: float = 60.0):
        self.trace = trace
        self.clock = clock
        self.sample_rate_hz = trace.sample_rate_hz
        self.block_s = block_s if not (clock and clock.speed) else max(0.05, min(block_s, clock.speed))
        self._closed = False

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        t = self.trace.t_s
        a = self.trace.accel_g
        if len(t) == 0:
            return
        # a block per block_s of trace time; computed per sample, so a huge gap in t costs nothing
        index = np.floor((t - t[0]) / self.block_s)
        edges = np.concatenate([[0], np.flatnonzero(np.diff(index)) + 1, [len(t)]])
        for lo, hi in zip(edges[:-1], edges[1:]):
            if self._closed:
                return
            if hi <= lo:
                continue
            if self.clock is not None:
                end_t = float(t[hi - 1])
                if self.clock.speed:
                    self.clock.sleep(end_t - self.clock.monotonic())
                self.clock.advance_to(end_t)
            yield t[lo:hi], a[lo:hi]

    def close(self) -> None:
        self._closed = True

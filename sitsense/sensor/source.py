"""Sample sources: where blocks of (t in s, acceleration in g) come from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from ..clock import SimClock
from ..events import Event
from ..traces import Trace

if TYPE_CHECKING:
    from ..trace_reader import TraceReader


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

    The trace is a ``Trace`` in memory or a ``TraceReader`` streaming a file in chunks: the blocks
    are the same either way (one per ``block_s`` of trace time from its first sample), so memory
    holds one block and one chunk, whatever the trace's length.

    With the clock's ``speed`` set, the replay waits so that trace time passes ``speed`` times
    faster than real time.
    """

    def __init__(self, trace: "Trace | TraceReader", clock: SimClock | None = None, *, block_s: float = 60.0):
        self.trace = trace
        self.clock = clock
        self.sample_rate_hz = trace.sample_rate_hz
        self.block_s = block_s if not (clock and clock.speed) else max(0.05, min(block_s, clock.speed))
        self._closed = False
        self._done_s = 0.0

    def progress(self) -> tuple[float, float]:
        """(done, total) for a progress bar: seconds of trace, or bytes of the file when streamed."""
        if isinstance(self.trace, Trace):
            return self._done_s, self.trace.duration_s
        return float(self.trace.position), float(self.trace.size_bytes)

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        chunks = [self.trace] if isinstance(self.trace, Trace) else self.trace.chunks()
        t0 = None
        current = None  # the block index of the samples waiting in `waiting`
        waiting: list[tuple[np.ndarray, np.ndarray]] = []
        for chunk in chunks:
            t, a = chunk.t_s, chunk.accel_g
            if len(t) == 0:
                continue
            if t0 is None:
                t0 = t[0]
            # a block per block_s of trace time; computed per sample, so a huge gap in t costs nothing
            index = np.floor((t - t0) / self.block_s)
            edges = [0, *(np.flatnonzero(np.diff(index)) + 1).tolist(), len(t)]
            for lo, hi in zip(edges[:-1], edges[1:]):
                if waiting and index[lo] != current:
                    yield from self._emit(waiting, t0)
                    if self._closed:
                        return
                    waiting = []
                waiting.append((t[lo:hi], a[lo:hi]))
                current = index[lo]
        if waiting and not self._closed:
            assert t0 is not None
            yield from self._emit(waiting, t0)

    def _emit(self, parts: list[tuple[np.ndarray, np.ndarray]], t0: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if len(parts) == 1:
            t, a = parts[0]
        else:
            t = np.concatenate([p[0] for p in parts])
            a = np.concatenate([p[1] for p in parts])
        if self.clock is not None:
            end_t = float(t[-1])
            if self.clock.speed:
                self.clock.sleep(end_t - self.clock.monotonic())
            self.clock.advance_to(end_t)
        self._done_s = float(t[-1] - t0)
        yield t, a

    def close(self) -> None:
        self._closed = True

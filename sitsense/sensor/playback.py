"""A trace played back sample-and-hold, for the emulator: the samples in memory, or streamed in chunks.

The emulator asks for the acceleration at times that only move forward, so a streamed trace
keeps just the chunk it is in, and is read no further than the chip has got: a fake sensor
replaying a week costs what replaying an hour does, and starts at once.
"""

from __future__ import annotations

import itertools
import math
from typing import Iterable, Iterator

import numpy as np

from ..traces import Trace

HOLD_SLACK_S = 1e-6  # a sample counts from its own timestamp, despite float error in the tick times


class TracePlayer:
    """The acceleration at any time ``w`` (seconds since the trace's first sample): that of the last
    sample at or before it (the first sample before the trace begins, the last after it ends).

    ``first_t_s`` defaults to the first chunk's first time; ``last_t_s``, when not given, is known
    once the chunks run out (``end_s`` is infinite until then): nothing is read ahead of need.
    """

    def __init__(self, chunks: Iterable[Trace], *, first_t_s: float | None = None, last_t_s: float | None = None,
                 forward_only: bool = True):
        self._chunks: Iterator[Trace] = iter(chunks)
        self._forward_only = forward_only
        self._t = np.zeros(0)  # times from the first sample, of the samples held
        self._accel = np.zeros((0, 3))
        self._exhausted = False
        self._latest_w = -np.inf
        self._last_t_s = None if last_t_s is None else float(last_t_s)
        if first_t_s is None:
            first = next(self._chunks, None)
            if first is None or len(first) == 0:
                raise ValueError("a trace player needs at least one sample")
            first_t_s = float(first.t_s[0])
            self._chunks = itertools.chain([first], self._chunks)
        self.first_t_s = float(first_t_s)

    @classmethod
    def of(cls, trace: Trace) -> "TracePlayer":
        """A trace held in memory: every sample stays, so times may go back as well."""
        player = cls([trace], first_t_s=float(trace.t_s[0]), last_t_s=float(trace.t_s[-1]), forward_only=False)
        player._load_until(np.inf)
        return player

    @property
    def end_s(self) -> float:
        """The last sample's time from the first (infinite while the end has not been read)."""
        return math.inf if self._last_t_s is None else self._last_t_s - self.first_t_s

    def look_ahead(self, w: float) -> None:
        """Read far enough to know whether the trace ends before ``w``."""
        if self._last_t_s is None:
            self._load_until(w + HOLD_SLACK_S, keep_from=self._latest_w)

    def skip_to(self, w: float) -> None:
        """Read up to time ``w`` now, keeping only the sample held there: later calls start from it."""
        self._load_until(w + HOLD_SLACK_S, keep_from=w)
        if self._forward_only and len(self._t) > 1:
            first = max(int(np.searchsorted(self._t, w + HOLD_SLACK_S, side="right")) - 1, 0)
            self._t, self._accel = self._t[first:], self._accel[first:]
        self._latest_w = max(self._latest_w, w)

    def accel_at(self, w: np.ndarray) -> np.ndarray:
        """(len(w), 3) g for times ``w`` in ascending order (and, when streamed, after earlier calls')."""
        if self._forward_only and len(w) and w[0] < self._latest_w:
            raise ValueError("a streamed trace plays forward only: asked for an earlier time")
        if len(w):
            self._load_until(float(w[-1]) + HOLD_SLACK_S, keep_from=float(w[0]))
            self._latest_w = float(w[-1])
        idx = np.clip(np.searchsorted(self._t, w + HOLD_SLACK_S, side="right") - 1, 0, len(self._t) - 1)
        accel = self._accel[idx]
        if self._forward_only and len(idx) and idx[-1] > 0:  # no later time needs what comes before
            self._t = self._t[idx[-1]:]
            self._accel = self._accel[idx[-1]:]
        return accel

    def _load_until(self, w: float, keep_from: float = -math.inf) -> None:
        """Hold samples until one lies past ``w`` (or the trace ends, which makes its end known);
        a streamed trace forgets, as it goes, what comes before the sample held at ``keep_from``."""
        while not self._exhausted and (len(self._t) == 0 or self._t[-1] <= w):
            if self._forward_only and len(self._t) > 1:  # skipping far ahead costs no memory
                first = int(np.searchsorted(self._t, keep_from + HOLD_SLACK_S, side="right")) - 1
                if first > 0:
                    self._t, self._accel = self._t[first:], self._accel[first:]
            chunk = next(self._chunks, None)
            if chunk is None:
                self._exhausted = True
                if self._last_t_s is None and len(self._t):
                    self._last_t_s = float(self._t[-1]) + self.first_t_s
                break
            self._t = np.concatenate([self._t, chunk.t_s - self.first_t_s])
            self._accel = np.concatenate([self._accel, chunk.accel_g])

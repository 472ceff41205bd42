"""Recording the sensor to a trace file as the samples arrive, so an interruption loses nothing.

Rows go to ``OUT.part`` as blocks arrive (flushed every few seconds); ``close()`` renames it to
``OUT``. After a power cut the ``.part`` file of a plain ``.csv`` recording is still a readable
trace up to its last flush (and a ``.gz`` one up to its last sync point).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import TraceError
from ..trace_writer import TraceFileWriter
from ..traces import LABEL_CODE, LABELS


class TraceWriter(TraceFileWriter):
    """Streams ``(t_s, accel_g)`` blocks from a sensor into a ``# sitsense-trace v1`` file (``.csv`` or
    ``.csv.gz``), every sample with the same ``label`` if one is given; samples whose time does
    not move on from the last one written are dropped (a trace's ``t`` strictly increases)."""

    def __init__(self, path: str | os.PathLike, metadata: dict[str, str], *, label: str | None = None,
                 decimals: int = 4, flush_every_s: float = 10.0):
        if label is not None and label not in LABELS:
            raise TraceError(f"--label {label!r}: unknown label (allowed: {', '.join(LABELS)})")
        super().__init__(path, metadata, labelled=label is not None, decimals=decimals, keep_empty=False)
        self.label = label
        self.flush_every_s = flush_every_s
        self._last_flush_t: float | None = None

    def write(self, t_s: np.ndarray, accel_g: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Append a block; ``labels`` is ignored: every sample gets this recording's ``label``."""
        if not len(t_s):
            return
        if self.last_t is not None and t_s[0] <= self.last_t:
            keep = t_s > self.last_t
            t_s, accel_g = t_s[keep], accel_g[keep]
            if not len(t_s):
                return
        labels = None if self.label is None else np.full(len(t_s), LABEL_CODE[self.label], dtype=np.int8)
        super().write(t_s, accel_g, labels)
        assert self.last_t is not None  # a block was written
        if self._last_flush_t is None or self.last_t - self._last_flush_t >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        super().flush()
        self._last_flush_t = self.last_t

    def __exit__(self, *exc) -> None:
        self.close()  # a recording keeps what it has, however it ends

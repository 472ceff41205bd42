"""``sitsense evaluate TRACE``: the evaluation protocol over a labelled trace read in chunks.

The samples are never held whole: the classifier runs block by block as the trace is read, and
scoring needs only its step outputs (17 bytes a step: a week of 1 s steps is 10 MB) and the
label runs. The figures are those of ``posture.evaluate.evaluate_traces`` on the trace in memory:
the same blocks, the same upright reference, the same decimation (``--rate``), sample for sample.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import DatasetError
from .posture.evaluate import REFERENCE_S, Tally, run_classifier_blocks, score_runs, upright_reference
from .trace_reader import TraceReader
from .traces import LABEL_CODE, NO_LABEL, Trace

Chunks = Iterable[Trace]


def evaluate_trace_file(reader: TraceReader, make: Callable, *, rate_hz: float | None = None, block_s: float = 60.0,
                        progress: Callable[[float], None] | None = None) -> Tally:
    """Score the classifier ``make(sample_rate_hz)`` on a labelled trace file; ``progress(done_s)``."""
    span = reader.summary()  # a first pass: every line checked, and the time the trace spans
    if not span.labelled:
        raise DatasetError(f"{reader.source}: has no labels to score against")
    rate = reader.sample_rate_hz
    stream: Callable[[], Chunks] = reader.chunks
    if rate_hz is not None and rate_hz < rate - 1e-9:  # as posture.evaluate.decimate does
        width = max(1, int(round(rate / rate_hz)))
        first, stop, step = span.first_t_s, span.last_t_s + 1e-9, 1.0 / rate_hz
        stream = lambda: _decimated(reader.chunks(), first, stop, step, width)  # noqa: E731
        rate = rate_hz
    reference = upright_reference(_reference_samples(stream()))
    classifier = make(rate)
    runs = _LabelRuns()
    blocks = _blocks(runs.watch(stream()), span.first_t_s, block_s)
    outputs = run_classifier_blocks(classifier, blocks, reference=reference, progress=progress)
    return score_runs(runs.close(), outputs, 1.0 / rate, runs.sitting, getattr(classifier, "step_s", 1.0))


def _reference_samples(chunks: Chunks) -> Trace:
    """The samples ``upright_reference`` looks at: the first standing run's first REFERENCE_S
    seconds and the sample after them (an empty trace if nothing is labelled standing)."""
    standing = LABEL_CODE["standing"]
    parts: list[Trace] = []
    start_t = None
    for chunk in chunks:
        labels = chunk.labels
        if labels is None:
            continue
        i = 0
        if start_t is None:
            hits = np.flatnonzero(labels == standing)
            if len(hits) == 0:
                continue
            i = int(hits[0])
            start_t = chunk.t_s[i]
        stay = (labels[i:] == standing) & (chunk.t_s[i:] - start_t < REFERENCE_S)
        end = i + (int(np.argmin(stay)) if not stay.all() else len(stay))
        last = min(end + 1, len(chunk))  # the sample that ends it, too
        parts.append(Trace(chunk.t_s[i:last], chunk.accel_g[i:last], labels[i:last]))
        if end < len(chunk):
            break
    if not parts:
        return Trace(np.zeros(0), np.zeros((0, 3)), np.zeros(0, dtype=np.int8))
    return Trace(np.concatenate([p.t_s for p in parts]), np.concatenate([p.accel_g for p in parts]),
                 np.concatenate([p.labels for p in parts]))


class _LabelRuns:
    """Runs of equal labels (code, first t, last t) and the count of sitting samples, as chunks go by."""

    def __init__(self):
        self.runs: list[tuple[int, float, float]] = []
        self.sitting = 0
        self._open: list | None = None

    def watch(self, chunks: Chunks) -> Iterator[Trace]:
        for chunk in chunks:
            labels = chunk.labels if chunk.labels is not None else np.full(len(chunk), NO_LABEL, dtype=np.int8)
            self.sitting += int(np.count_nonzero(labels == LABEL_CODE["sitting"]))
            t = chunk.t_s
            cuts = [0, *(np.flatnonzero(np.diff(labels.astype(np.int16))) + 1).tolist(), len(labels)]
            for a, b in zip(cuts[:-1], cuts[1:]):
                code = int(labels[a])
                if self._open is not None and self._open[0] == code:
                    self._open[2] = float(t[b - 1])
                    continue
                if self._open is not None:
                    self.runs.append(tuple(self._open))
                self._open = [code, float(t[a]), float(t[b - 1])]
            yield chunk

    def close(self) -> list[tuple[int, float, float]]:
        if self._open is not None:
            self.runs.append(tuple(self._open))
            self._open = None
        return self.runs


def _grid(first: float, step: float):
    """The values of ``np.arange(first, ..., step)``, computed as numpy does: first + i * delta."""
    delta = (first + step) - first
    return lambda i: first + np.asarray(i, dtype=np.float64) * delta


def _blocks(chunks: Chunks, first_t: float, block_s: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The blocks ``run_classifier`` cuts a whole trace into: a new one at the first sample at or
    after each ``first_t + i * block_s``."""
    at = _grid(first_t, block_s)
    i = 0
    waiting: list[tuple[np.ndarray, np.ndarray]] = []
    for chunk in chunks:
        t = chunk.t_s
        if len(t) == 0:
            continue
        cuts = []
        while at(i) <= t[-1]:
            cuts.append(int(np.searchsorted(t, at(i), side="left")))
            i += 1
        lo = 0
        for cut in cuts:  # a block ends before each cut
            if cut > lo:
                waiting.append((t[lo:cut], chunk.accel_g[lo:cut]))
                lo = cut
            if waiting:
                yield _joined(waiting)
                waiting = []
        if lo < len(t):
            waiting.append((t[lo:], chunk.accel_g[lo:]))
    if waiting:
        yield _joined(waiting)


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _decimated(chunks: Chunks, first: float, stop: float, step: float, width: int) -> Iterator[Trace]:
    """``posture.evaluate.decimate`` on a stream: a causal boxcar of ``width`` samples (the first
    width - 1 kept raw), then the sample at or after each point of ``np.arange(first, stop, step)``."""
    at = _grid(first, step)
    points = math.ceil((stop - first) / step)
    kernel = np.ones(width) / width
    history = np.zeros((0, 3))  # the raw samples before this chunk the boxcar still needs
    done = 0  # samples seen
    i = 0
    last = None
    for chunk in chunks:
        t, acc = chunk.t_s, chunk.accel_g
        if len(t) == 0:
            continue
        full = np.concatenate([history, acc])
        smooth = np.column_stack([np.convolve(full[:, j], kernel, mode="full")[len(history):len(history) + len(t)]
                                  for j in range(3)])
        raw_head = max(0, min(width - 1 - done, len(t)))  # the trace's first width - 1 samples stay raw
        smooth[:raw_head] = acc[:raw_head]
        history = full[-(width - 1):] if width > 1 else history
        done += len(t)
        last = chunk, smooth
        take = []
        while i < points and at(i) - 1e-9 <= t[-1]:
            take.append(int(np.searchsorted(t, at(i) - 1e-9, side="left")))
            i += 1
        if take:
            idx = np.array(take)
            labels = None if chunk.labels is None else chunk.labels[idx]
            yield Trace(t[idx], smooth[idx], labels)
    if last is not None and i < points:  # points past the last sample take the last sample
        chunk, smooth = last
        idx = np.full(points - i, len(chunk) - 1)
        yield Trace(chunk.t_s[idx], smooth[idx], None if chunk.labels is None else chunk.labels[idx])

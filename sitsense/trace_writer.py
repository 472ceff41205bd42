"""Writing trace files chunk by chunk, so a trace of any length is written in bounded memory.

Rows are formatted by numpy (fixed decimals, digit by digit, no Python per row) into exactly the
text Python's ``f"{x:.4f}"`` gives, and streamed to ``PATH.part`` (gzip-compressed for
``.gz``); ``close()`` renames it into place, so an interrupted job never leaves a half trace
under the real name.
"""

from __future__ import annotations

import os
import zlib
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np

from .errors import TraceError
from .heap import HeapTrimmer
from .traces import LABELS, MAGIC, Trace

ROWS_PER_BLOCK = 1 << 16  # rows formatted at once: about 3 MB of text
T_DECIMALS = 3
COMPRESS_LEVEL = 6

# the label column, as its comma and text, zero-padded (zeros are squeezed out of a row)
_LABEL_WIDTH = 1 + max(len(name) for name in LABELS)
_LABEL_CELLS = np.zeros((len(LABELS) + 1, _LABEL_WIDTH), dtype=np.uint8)  # the last row: no label
for _code, _name in enumerate(LABELS):
    _LABEL_CELLS[_code, :len(_name) + 1] = np.frombuffer(b"," + _name.encode(), dtype=np.uint8)
_LABEL_CELLS[-1, 0] = ord(",")
_POW10_INT = 10 ** np.arange(19, dtype=np.int64)
_EXACT = 2.0 ** 52


_DIGITS4 = np.frombuffer(b"".join(b"%04d" % i for i in range(10000)), dtype=np.uint32)  # 4 ASCII digits each


def format_rows(t_s: np.ndarray, accel_g: np.ndarray, labels: np.ndarray | None = None, *,
                decimals: int = 4) -> bytes:
    """Trace rows as text: ``t`` with 3 decimals, ``ax ay az`` with ``decimals``, the label if given."""
    n = len(t_s)
    if n == 0:
        return b""
    columns = [_Column(np.asarray(t_s, dtype=np.float64), T_DECIMALS)]
    columns += [_Column(np.asarray(accel_g[:, axis], dtype=np.float64), decimals) for axis in range(3)]
    width = sum(c.width + 1 for c in columns) + (_LABEL_WIDTH if labels is not None else 0)
    cells = np.zeros((n, width), dtype=np.uint8)  # zeros are padding, squeezed out at the end
    at = 0
    for i, column in enumerate(columns):
        column.fill(cells[:, at:at + column.width])
        at += column.width
        if i < len(columns) - 1:
            cells[:, at] = ord(",")
            at += 1
    if labels is not None:
        cells[:, at:at + _LABEL_WIDTH] = _LABEL_CELLS[np.asarray(labels, dtype=np.int64)]
        at += _LABEL_WIDTH
    cells[:, at] = ord("\n")
    return cells[cells != 0].tobytes()


class _Column:
    """One column of ``f"{v:.{decimals}f}"`` texts, right-aligned in ``width`` bytes."""

    def __init__(self, values: np.ndarray, decimals: int):
        self.values = values
        self.decimals = decimals
        scaled = values * float(10 ** decimals)
        self.text: list[bytes] | None
        if not (np.abs(scaled) < _EXACT).all():  # huge or not finite: Python formats this column
            self.text = [f"{v:.{decimals}f}".encode() for v in values.tolist()]
            self.width = max(len(x) for x in self.text)
            return
        self.text = None
        units = np.rint(scaled)  # ties to even, as Python rounds the exact value
        # where the product's own rounding could have moved it across a half, round the exact value
        near_half = np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) <= np.abs(scaled) * 2.0 ** -50
        if near_half.any():
            quantum = Decimal(1).scaleb(-decimals)
            for i in np.flatnonzero(near_half).tolist():
                exact = Decimal(float(values[i])).quantize(quantum, rounding=ROUND_HALF_EVEN)
                units[i] = float(int(exact.scaleb(decimals)))
        whole = np.abs(units).astype(np.int64)
        self.int_part = whole // _POW10_INT[decimals]  # (np.divmod is much slower than // and *)
        self.frac_part = whole - self.int_part * _POW10_INT[decimals]
        self.int_width = 1
        top = int(self.int_part.max())
        while top >= _POW10_INT[self.int_width]:
            self.int_width += 1
        self.width = 1 + self.int_width + (1 + decimals if decimals else 0)  # sign, digits, point, decimals

    def fill(self, cells: np.ndarray) -> None:
        if self.text is not None:
            cells[:] = np.frombuffer(b"".join(x.rjust(self.width, b"\0") for x in self.text),
                                     dtype=np.uint8).reshape(-1, self.width)
            return
        d = self.decimals
        end = self.width
        if d:
            cells[:, end - d:] = _digits(self.frac_part, d)
            cells[:, end - d - 1] = ord(".")
            end -= d + 1
        w = self.int_width
        digits = _digits(self.int_part, w)
        for k in range(1, w):  # leading zeros: blank while the number has fewer digits than the widest
            digits[self.int_part < _POW10_INT[w - k], k - 1] = 0
        cells[:, end - w:end] = digits
        negative = np.flatnonzero(np.signbit(self.values))
        if len(negative):
            shown = 1 + np.searchsorted(_POW10_INT[1:w], self.int_part[negative], side="right")
            cells[negative, end - 1 - shown] = ord("-")


def _digits(values: np.ndarray, count: int) -> np.ndarray:
    """(n, count) ASCII digits of non-negative integers, with leading zeros."""
    groups = -(-count // 4)
    out = np.empty((len(values), groups), dtype=np.uint32)
    rest = values
    for g in range(groups - 1, -1, -1):
        high = rest // 10000
        out[:, g] = np.take(_DIGITS4, rest - high * 10000)
        rest = high
    return out.view(np.uint8)[:, 4 * groups - count:]


class TraceFileWriter:
    """Streams blocks of samples into a ``# sitsense-trace v1`` file (``.csv`` or ``.csv.gz``).

    Written to ``PATH.part``; ``close()`` moves it into place (and with ``keep_empty=False``
    removes it instead when no sample was written); leaving the ``with`` block by an exception
    removes it. ``flush()`` makes everything so far readable (a sync point in a gzip stream).
    """

    def __init__(self, path: str | os.PathLike, metadata: dict[str, str], *, labelled: bool,
                 decimals: int = 4, compresslevel: int = COMPRESS_LEVEL, keep_empty: bool = True):
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + ".part")
        self.metadata = metadata
        self.labelled = labelled
        self.decimals = decimals
        self.keep_empty = keep_empty
        self.samples = 0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self._heap = HeapTrimmer()  # a long write would otherwise fragment the C heap (see heap.py)
        self._compressor = zlib.compressobj(compresslevel, zlib.DEFLATED, 31) if self.path.suffix == ".gz" else None
        self._file: BinaryIO | None = None

    def open(self) -> "TraceFileWriter":
        try:
            self._file = open(self.part, "wb")
        except OSError as exc:
            raise TraceError(f"{self.path}: {exc.strerror or exc} (cannot write the trace here)") from None
        head = [MAGIC, *(f"# {k}={v}" for k, v in self.metadata.items()),
                "t,ax,ay,az,label" if self.labelled else "t,ax,ay,az"]
        self._emit(("\n".join(head) + "\n").encode())
        return self

    def write(self, t_s: np.ndarray, accel_g: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Append samples (``labels``: int8 codes, -1 for none; required iff the file has a label column)."""
        if (labels is not None) != self.labelled:
            raise ValueError("labels must be given exactly when the trace has a label column")
        n = len(t_s)
        self._heap.tick()
        for lo in range(0, n, ROWS_PER_BLOCK):
            hi = min(lo + ROWS_PER_BLOCK, n)
            self._emit(format_rows(t_s[lo:hi], accel_g[lo:hi], None if labels is None else labels[lo:hi],
                                   decimals=self.decimals))
        if n:
            self.samples += n
            self.first_t = float(t_s[0]) if self.first_t is None else self.first_t
            self.last_t = float(t_s[-1])

    def write_trace(self, chunk: Trace) -> None:
        labels = chunk.labels
        if self.labelled and labels is None:
            labels = np.full(len(chunk), -1, dtype=np.int8)
        self.write(chunk.t_s, chunk.accel_g, labels if self.labelled else None)

    def _emit(self, data: bytes) -> None:
        if self._compressor is not None:
            data = self._compressor.compress(data)
        assert self._file is not None, "open() first"
        try:
            self._file.write(data)
        except OSError as exc:
            raise TraceError(f"{self.path}: {exc.strerror or exc} (while writing the trace)") from None

    def flush(self) -> None:
        """Everything written so far reaches the file and can be read back."""
        assert self._file is not None, "open() first"
        if self._compressor is not None:
            self._file.write(self._compressor.flush(zlib.Z_SYNC_FLUSH))
        self._file.flush()

    def close(self) -> Path | None:
        """Finish the file and move it into place (or remove it: nothing written and not keep_empty)."""
        if self._file is None:
            return None
        try:
            if self._compressor is not None:
                self._file.write(self._compressor.flush())
            self._file.close()
        except OSError as exc:
            self.abort()
            raise TraceError(f"{self.path}: {exc.strerror or exc} (while writing the trace)") from None
        self._file = None
        if self.samples == 0 and not self.keep_empty:
            self.part.unlink(missing_ok=True)
            return None
        self.part.replace(self.path)
        return self.path

    def abort(self) -> None:
        """Stop and remove the unfinished file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.part.unlink(missing_ok=True)

    def __enter__(self) -> "TraceFileWriter":
        return self.open()

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_chunks(path: str | os.PathLike, metadata: dict[str, str], chunks: Iterable[Trace], *,
                 labelled: bool, decimals: int = 4) -> TraceFileWriter:
    """Write a trace arriving in pieces; returns the (closed) writer, which counted the samples."""
    with TraceFileWriter(path, metadata, labelled=labelled, decimals=decimals) as writer:
        for chunk in chunks:
            writer.write_trace(chunk)
    return writer

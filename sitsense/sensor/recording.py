"""Recording the sensor to a trace file as the samples arrive, so an interruption loses nothing.

Rows go to ``OUT.part`` as blocks arrive (flushed every few seconds); ``close()`` renames it to
``OUT``. After a power cut the ``.part`` file of a plain ``.csv`` recording is still a readable
trace up to its last flush.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import numpy as np

from ..errors import TraceError
from ..traces import LABELS, MAGIC


class TraceWriter:
    """Streams ``(t_s, accel_g)`` blocks into a ``# sitsense-trace v1`` file (``.csv`` or ``.csv.gz``)."""

    def __init__(self, path: str | os.PathLike, metadata: dict[str, str], *, label: str | None = None,
                 decimals: int = 4, flush_every_s: float = 10.0):
        if label is not None and label not in LABELS:
            raise TraceError(f"--label {label!r}: unknown label (allowed: {', '.join(LABELS)})")
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + ".part")
        self.metadata = metadata
        self.label = label
        self.flush_every_s = flush_every_s
        self.samples = 0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self._fmt = ",".join(["%.3f"] + [f"%.{decimals}f"] * 3)
        self._last_flush_t: float | None = None
        self._raw: io.BufferedIOBase | None = None  # the .part file
        self._out: io.BufferedIOBase | None = None  # what rows are written to: the file, or gzip around it

    def open(self) -> "TraceWriter":
        try:
            self._raw = open(self.part, "wb")
        except OSError as exc:
            raise TraceError(f"{self.path}: cannot write here ({exc.strerror})") from None
        self._out = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0) if self.path.suffix == ".gz" else self._raw
        head = [MAGIC] + [f"# {k}={v}" for k, v in self.metadata.items()]
        head.append("t,ax,ay,az,label" if self.label else "t,ax,ay,az")
        self._out.write(("\n".join(head) + "\n").encode())
        return self

    def write(self, t_s: np.ndarray, accel_g: np.ndarray) -> None:
        if not len(t_s):
            return
        if self.last_t is not None and t_s[0] <= self.last_t:  # a trace's t must strictly increase
            keep = t_s > self.last_t
            t_s, accel_g = t_s[keep], accel_g[keep]
            if not len(t_s):
                return
        buf = io.StringIO()
        fmt = self._fmt + ("," + self.label if self.label else "")
        np.savetxt(buf, np.column_stack([t_s, accel_g]), fmt=fmt)
        assert self._out is not None, "open() first"
        self._out.write(buf.getvalue().encode())
        self.samples += len(t_s)
        self.first_t = float(t_s[0]) if self.first_t is None else self.first_t
        self.last_t = float(t_s[-1])
        if self._last_flush_t is None or self.last_t - self._last_flush_t >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        assert self._out is not None and self._raw is not None, "open() first"
        self._out.flush()  # for gzip: a sync flush, so everything so far can be decompressed
        self._raw.flush()
        self._last_flush_t = self.last_t

    def close(self) -> Path | None:
        """Finish the file and move it into place; with no samples, remove it and return None."""
        if self._raw is None:
            return None
        if self._out is not None and self._out is not self._raw:
            self._out.close()
        self._raw.close()
        self._raw = self._out = None
        if self.samples == 0:
            self.part.unlink(missing_ok=True)
            return None
        self.part.replace(self.path)
        return self.path

    def __enter__(self) -> "TraceWriter":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

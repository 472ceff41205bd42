"""A small progress bar with ETA on stderr, shown only on a terminal and only for long jobs."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``update(done)`` as work advances; prints nothing when piped, quiet, or finished quickly."""

    def __init__(self, total: float, label: str = "", *, quiet: bool = False, stream: TextIO | None = None,
                 delay_s: float = 2.0, unit: str = ""):
        self.total = max(float(total), 1e-9)
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self.delay_s = delay_s
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def update(self, done: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        elapsed = now - self._start
        if elapsed < self.delay_s or now - self._last_draw < 0.2:
            return
        self._last_draw = now
        frac = min(max(done / self.total, 0.0), 1.0)
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("inf")
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        eta_text = f"{eta:4.0f}s" if eta != float("inf") else "   ?"
        self.stream.write(f"\r{self.label} [{bar}] {100 * frac:5.1f}% ETA {eta_text} ")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

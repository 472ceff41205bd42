"""Hand the C heap's free pages back to the system now and then, during long streaming jobs.

glibc keeps what numpy frees in its heap (after the first large free it stops giving such blocks
their own mappings), and chunk after chunk of arrays of varying sizes fragments it: a 24 h replay
grew from 42 to 71 MB resident while Python itself held 3 MB. ``malloc_trim(0)`` returns the
free pages (about 1 ms); where there is no glibc it does nothing.
"""

from __future__ import annotations

import ctypes


def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return None


_TRIM = _malloc_trim()


class HeapTrimmer:
    """``tick()`` once per chunk of work; every ``every`` ticks the free heap pages go back."""

    def __init__(self, every: int = 32):
        self.every = every
        self._ticks = 0

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks % self.every == 0 and _TRIM is not None:
            _TRIM(0)

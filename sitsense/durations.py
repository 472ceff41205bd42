"""How every command writes a duration: one format, one rounding rule.

Under an hour: minutes and seconds (``4m54s``); from an hour: hours and minutes (``1h31m``).
The value is rounded half up to the last unit shown, so ``simulate``, ``report`` and
``history`` print the same text for the same seconds.
"""

from __future__ import annotations

import math


def format_duration(seconds: float) -> str:
    """``seconds`` as ``MmSSs`` below an hour, else ``HhMMm``, rounded half up to the unit shown."""
    s = max(0, int(math.floor(seconds + 0.5)))
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    minutes = (s + 30) // 60
    return f"{minutes // 60}h{minutes % 60:02d}m"

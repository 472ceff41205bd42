"""JSON at the output edge: floats rounded to what they can mean, never ``2.5200000000000067``."""

from __future__ import annotations

import json
import math
from typing import Any

DECIMALS = 4  # at least this many decimal places, and at least SIGNIFICANT significant digits
SIGNIFICANT = 4


def tidy(value: Any) -> Any:
    """``value`` with every float (in dicts, lists, tuples) rounded for printing."""
    if isinstance(value, float):
        if not math.isfinite(value) or value == 0:
            return value
        return round(value, max(DECIMALS, SIGNIFICANT - 1 - math.floor(math.log10(abs(value)))))
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tidy(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``tidy(value)``."""
    return json.dumps(tidy(value), **kwargs)

"""Does the service's memory grow with time? Days of wear streamed through the whole Service.

A synthetic hour (sitting bouts, a walk, standing) is repeated with increasing timestamps, so
no trace has to be held in memory, and Python's traced allocations are read every 12 h.
A service that keeps something per sample or per event would grow here.

    PYTHONPATH=. python bench/memory_growth.py [--hours 96]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sitsense.clock import SimClock  # noqa: E402
from sitsense.config import Config  # noqa: E402
from sitsense.plan import parse_plan  # noqa: E402
from sitsense.synth import synthesize  # noqa: E402
from sitsense.wiring import build_service  # noqa: E402

HOUR_PLAN = "stand 2m, sit 45m, walk 5m, stand 8m"
RATE_HZ = 25.0
BLOCK_S = 60


class RepeatedHour:
    """A sample source that plays the same synthetic hour again and again, as fresh time."""

    def __init__(self, clock: SimClock, hours: int):
        self.clock, self.hours, self.sample_rate_hz = clock, hours, RATE_HZ
        self.hour = synthesize(parse_plan(HOUR_PLAN), sample_rate_hz=RATE_HZ, seed=1)

    def blocks(self):
        n, step = len(self.hour), int(BLOCK_S * RATE_HZ)
        for h in range(self.hours):
            for lo in range(0, n, step):
                t = self.hour.t_s[lo:lo + step] + h * 3600.0
                self.clock.advance_to(float(t[-1]))
                yield t, self.hour.accel_g[lo:lo + step]

    def close(self) -> None:
        pass


def measure(hours: int = 96) -> list[float]:
    """Traced MB after every 12 h of wear."""
    clock = SimClock(datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc))
    with open("/dev/null", "w") as sink:
        service = build_service(Config(), source=RepeatedHour(clock, hours), clock=clock, stream=sink)
        marks: list[float] = []
        inner = service.process_block
        blocks = {"n": 0}

        def counted(t_s, accel_g):
            inner(t_s, accel_g)
            blocks["n"] += 1
            if blocks["n"] % int(12 * 3600 / BLOCK_S) == 0:
                gc.collect()
                marks.append(round(tracemalloc.get_traced_memory()[0] / 1e6, 3))

        service.process_block = counted  # type: ignore[method-assign]
        tracemalloc.start()
        service.run()
        tracemalloc.stop()
    return marks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=int, default=96)
    args = ap.parse_args()
    marks = measure(args.hours)
    print(f"traced Python memory after every 12 h of wear (MB): {marks}")
    print(f"growth from the first 12 h to the last: {1000 * (marks[-1] - marks[0]):.0f} kB over {args.hours} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Posture plans such as ``"stand 2m, sit 38m, walk 3m, stand 30s"`` for the composer and generator."""

from __future__ import annotations

import re

from .errors import PlanError

POSTURE_WORDS = {
    "stand": "standing", "standing": "standing",
    "sit": "sitting", "sitting": "sitting",
    "walk": "walking", "walking": "walking",
    "lie": "lying", "lying": "lying", "lay": "lying",
    "off": "not_worn", "table": "not_worn", "not_worn": "not_worn",
}
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration_s(text: str) -> float:
    """'1h30m', '38m', '30s', '2m30s' -> seconds."""
    m = _DURATION.match(text.strip().lower())
    if not text.strip() or not m or not any(m.groups()):
        raise PlanError(f"duration {text!r}: use h, m and s, e.g. 38m, 30s, 1h30m")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


MIN_ITEM_S = 1.0
# Traces are made and read in chunks, so memory sets no limit; this one catches a typo ("sit 9000h")
# before it fills the disk: a year at 50 Hz is 1.6e9 samples, about 60 GB of text, an hour to write.
MAX_PLAN_S = 366 * 86400.0


def parse_plan(text: str) -> list[tuple[str, float]]:
    """Parse a comma-separated plan into (posture, seconds) items."""
    items = []
    for n, part in enumerate(p.strip() for p in text.split(",")):
        if not part:
            continue
        words = part.split()
        if len(words) != 2:
            raise PlanError(f"plan item {n + 1} {part!r}: expected '<posture> <duration>', e.g. 'sit 38m'")
        word, dur = words
        posture = POSTURE_WORDS.get(word.lower())
        if posture is None:
            raise PlanError(f"plan item {n + 1} {part!r}: unknown posture {word!r} "
                            f"(allowed: {', '.join(sorted(set(POSTURE_WORDS)))})")
        seconds = parse_duration_s(dur)
        if seconds < MIN_ITEM_S:
            raise PlanError(f"plan item {n + 1} {part!r}: a posture must last at least {MIN_ITEM_S:g} s")
        items.append((posture, seconds))
    if not items:
        raise PlanError("the plan is empty: give items like 'stand 2m, sit 38m, walk 3m'")
    total_s = sum(s for _, s in items)
    if total_s > MAX_PLAN_S:
        raise PlanError(f"the plan lasts {total_s / 86400:.1f} days; at most {MAX_PLAN_S / 86400:g} days "
                        "(a year at 50 Hz is already about 60 GB of text): split it into several files")
    return items

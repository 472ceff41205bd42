"""Bounds on what arrives from the broker: pure rules, tested without a network.

Anyone who may publish to ``cmd/+`` (or ``homeassistant/status``) decides how much arrives, so
every cost it can cause is capped: a packet larger than :data:`MAX_INCOMING_PACKET_BYTES` is
refused before it is read (see ``bounded``), each command name has a token bucket
(:class:`RateLimiter`), log-once remembers a bounded number of keys (:class:`LogOnce`), and
discovery is republished at most once per interval however often Home Assistant says ``online``
(:class:`Debounce`). Times are seconds of any monotonic clock, passed in.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from .topics import MAX_COMMAND_BYTES

# The largest packet read from the broker: a command payload (MAX_COMMAND_BYTES) plus a topic and
# headers, with room to spare. Nothing sitsense subscribes to is larger; a bigger one is refused by
# dropping the connection before its body is read (MQTT 5 does the same for its Maximum Packet Size).
MAX_INCOMING_PACKET_BYTES = 256 * 1024
assert MAX_INCOMING_PACKET_BYTES > 4 * MAX_COMMAND_BYTES

COMMAND_BURST = 10  # commands of one name accepted back to back ...
COMMAND_REFILL_S = 2.0  # ... and one more every this many seconds after that
REFUSAL_BURST = 50  # answers to refused commands (each is a publish) ...
REFUSAL_REFILL_S = 1.0
DISCOVERY_MIN_INTERVAL_S = 30.0  # Home Assistant's 'online' republishes discovery at most this often
LOG_ONCE_KEYS = 256


@dataclass
class _Bucket:
    tokens: float
    t: float


class RateLimiter:
    """A token bucket per key: ``burst`` at once, then one per ``refill_s``; at most ``max_keys`` keys
    are remembered (the least recently used is forgotten), so a flood of names costs no memory."""

    def __init__(self, burst: int, refill_s: float, *, max_keys: int = 64):
        self.burst = burst
        self.refill_s = refill_s
        self.max_keys = max_keys
        self._buckets: collections.OrderedDict[str, _Bucket] = collections.OrderedDict()

    def allow(self, key: str, now_s: float) -> bool:
        """Take a token for ``key`` at ``now_s``; False when its bucket is empty."""
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(float(self.burst), now_s)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            b.tokens = min(float(self.burst), b.tokens + max(0.0, now_s - b.t) / self.refill_s)
            b.t = now_s
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return True
        return False


class LogOnce:
    """Which log keys were already reported: the first of each is logged loudly, repeats quietly.

    Holds at most ``max_keys``; once full, new keys count as seen (quiet), so a flood of distinct
    problems can neither grow memory nor the log. ``overflowed`` says whether that happened."""

    def __init__(self, max_keys: int = LOG_ONCE_KEYS):
        self.max_keys = max_keys
        self._seen: set[str] = set()
        self.overflowed = False

    def first(self, key: str) -> bool:
        """True the first time ``key`` is offered (while there is room)."""
        if key in self._seen:
            return False
        if len(self._seen) >= self.max_keys:
            self.overflowed = True
            return False
        self._seen.add(key)
        return True

    def forget(self, prefixes: tuple[str, ...]) -> None:
        """Report keys starting with one of ``prefixes`` again (e.g. connection errors after a reconnect)."""
        self._seen = {k for k in self._seen if not k.startswith(prefixes)}

    def __contains__(self, key: str) -> bool:
        return key in self._seen

    def __len__(self) -> int:
        return len(self._seen)


class Debounce:
    """At most one action per ``min_interval_s``: an offer inside the interval is merged into one
    action at its end (``offer`` returns the delay to wait, else 0.0 for at once, or None when one
    is already waiting)."""

    def __init__(self, min_interval_s: float = DISCOVERY_MIN_INTERVAL_S):
        self.min_interval_s = min_interval_s
        self._last: float | None = None
        self._waiting = False

    def offer(self, now_s: float) -> float | None:
        if self._waiting:
            return None
        if self._last is None or now_s - self._last >= self.min_interval_s:
            self._last = now_s
            return 0.0
        self._waiting = True
        return self._last + self.min_interval_s - now_s

    def done(self, now_s: float) -> None:
        """The action ran at ``now_s`` (a waiting one, or one made for another reason, e.g. a connect)."""
        self._last = now_s
        self._waiting = False

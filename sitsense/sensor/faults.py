"""The faults a fake sensor can be given: one scripted bus fault (``BusFault``), and the ``--faults``
text of ``run`` parsed into the emulator's options (``parse_faults``).

Apart from the emulator because it changes for another reason: the command line's fault syntax
and its messages, not the chip's behaviour.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from ..errors import ConfigError
from ..plan import parse_duration_s


@dataclass(frozen=True)
class BusFault:
    """One injected fault for one transaction (``faults={n: ...}`` by transaction number, or ``arm``).

    ``nack``: the address is not acknowledged (EREMOTEIO) and nothing moves. ``abort``: the
    transfer fails with ``code`` after ``after_bytes`` data bytes moved (bytes taken from the FIFO
    are gone). ``stall``: the host freezes for ``stall_s`` after ``after_bytes`` bytes of the
    transfer. ``drop_write``: a write is acknowledged but does not stick. ``brownout``: the chip
    loses power just before the transaction.
    """

    kind: str
    after_bytes: int = 0
    code: int = errno.EIO
    stall_s: float = 0.0

    def __post_init__(self):
        if self.kind not in ("nack", "abort", "stall", "drop_write", "brownout"):
            raise ValueError(f"unknown bus fault {self.kind!r}")



MAX_FAULT_TIME_S = 1e9  # about 31 years, the longest a trace can last


def parse_faults(text: str) -> dict:
    """``'nack=0.01, disconnect=2h+5m, reset=5h, stall=3h+20s, frozen=4h+1m'`` -> emulator options.

    Times are seconds (``3600``) or durations (``1h30m``), counted like the emulator's own
    (from its creation, or from ``origin_s``); ``+`` gives a window's length. Repeat a key for
    several windows. Raises ConfigError naming the bad item.
    """
    def seconds(item: str, value: str) -> float:
        try:
            s = float(value)
        except ValueError:
            try:
                s = parse_duration_s(value)
            except Exception:
                raise ConfigError(f"fault {item!r}: {value!r} is not a time (use 3600, 90s, 1h30m)") from None
        if not 0.0 <= s <= MAX_FAULT_TIME_S:  # also refuses nan and inf
            raise ConfigError(f"fault {item!r}: {value!r} must be a time from 0 to {MAX_FAULT_TIME_S:.0e} s "
                              "(use 3600, 90s, 1h30m)")
        return s

    def window(item: str, value: str) -> tuple[float, float]:
        if "+" not in value:
            raise ConfigError(f"fault {item!r}: expected START+LENGTH, e.g. 2h+5m")
        a, d = value.split("+", 1)
        start, length = seconds(item, a), seconds(item, d)
        if length <= 0:
            raise ConfigError(f"fault {item!r}: the length must be positive")
        return start, length

    opts: dict = {"disconnects": [], "resets_at": [], "stalls": [], "frozen": []}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key == "nack":
            try:
                p = float(value)
            except ValueError:
                p = -1.0
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"fault {item!r}: nack needs a probability from 0 to below 1, e.g. nack=0.01")
            opts["nack_probability"] = p
        elif key == "disconnect":
            a, d = window(item, value)
            opts["disconnects"].append((a, a + d))
        elif key == "frozen":
            a, d = window(item, value)
            opts["frozen"].append((a, a + d))
        elif key == "stall":
            opts["stalls"].append(window(item, value))
        elif key == "reset":
            opts["resets_at"].append(seconds(item, value))
        else:
            raise ConfigError(f"fault {item!r}: unknown fault (known: nack=P, disconnect=AT+LEN, reset=AT, "
                              "stall=AT+LEN, frozen=AT+LEN)")
    return opts

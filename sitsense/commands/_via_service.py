"""Commands that must not open the sensor while the service runs ask the service instead.

The running service listens on its control socket beside its state database
(``sitsense.control_socket``); ``calibrate`` uses it so the I2C bus is never driven by two
processes at once.
"""

from __future__ import annotations

import sys
from typing import Sequence

from ..config import Config
from ..control_socket import ServiceUnreachable, calibrate_through
from ..errors import CalibrationError, StoreError
from ..paths import control_socket_path, db_path
from ..persistence import StateInUse, lock_holder

REFERENCE_TIMEOUT_S = 60.0  # how long the wearer has to stand still once the service was asked


class ServiceNotAnswering(StateInUse):
    """Error raised when a service holds the state but its control socket does not answer."""


def calibrate_in_service(cfg: Config, *, local_options: Sequence[str] = ()) -> int | None:
    """Have the running service take the upright reference; None when no service runs on this
    config's state (the caller then reads the sensor itself). ``local_options``: options given that
    only reading the sensor here can honour (refused while the service runs)."""
    db = db_path(cfg)
    sock = control_socket_path(db)
    try:
        if not sock.exists():
            raise ServiceUnreachable(f"no control socket at {sock}")
        if local_options:
            raise StoreError(f"the service is running on {db}: it takes and keeps the reference itself, so "
                             f"{' and '.join(local_options)} need the sensor here; stop it first "
                             "('sudo systemctl stop sitsense') or leave them out")
        print(f"sitsense: the service is running: asking it to take the reference (through {sock})",
              file=sys.stderr, flush=True)
        print("Stand up straight and keep still...", file=sys.stderr, flush=True)
        result, event = calibrate_through(sock, reference_timeout_s=REFERENCE_TIMEOUT_S)
    except ServiceUnreachable as exc:
        holder = lock_holder(db)
        if holder is None and "permission denied" not in str(exc):
            return None
        who = f" (pid {holder})" if holder else ""
        raise ServiceNotAnswering(f"a sitsense service{who} is using {db} but does not answer on {sock} ({exc}); "
                                  "calibrate from the phone (cmd/calibrate), with three presses of the button, "
                                  "or stop it first ('sudo systemctl stop sitsense')") from None
    except TimeoutError:
        raise CalibrationError(f"the service on {db} did not answer; try again, or stop it first") from None
    if not result.get("ok"):
        raise CalibrationError(f"the service refused: {result.get('error', 'no reason given')}")
    if event is None:
        raise CalibrationError(f"no still standing within {REFERENCE_TIMEOUT_S:.0f} s; the service takes the next "
                               "still standing (or the next walk) as the upright reference")
    x, y, z = (float(v) for v in event.get("upright_g", (0.0, 0.0, 0.0)))
    print("Done: you can move.", file=sys.stderr)
    print(f"upright reference ({x:+.3f}, {y:+.3f}, {z:+.3f}) g taken by the running service (kept for today, "
          "across restarts too)")
    return 0

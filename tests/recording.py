"""An output that keeps what the service gives it, for tests that look at events and states."""

from __future__ import annotations


class Recorder:
    """Every event handed to ``handle`` in ``events``; the latest state in ``state``."""

    def __init__(self):
        self.events: list = []
        self.state = None

    def handle(self, event) -> None:
        self.events.append(event)

    def update_state(self, state) -> None:
        self.state = state

    def close(self) -> None:
        pass

    def of(self, cls) -> list:
        """The events of one type."""
        return [e for e in self.events if isinstance(e, cls)]

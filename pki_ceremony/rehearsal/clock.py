"""The stand-in's clock: real UTC time plus an offset that tests can advance.

The offset lives in the state (``clock_offset_seconds``) so that a resumed process keeps
the same notion of "now" as the one that created the resources. Advancing it is how a
test shows, without sleeping, that an idempotency token is forgotten after 5 minutes or
that a deleted CA leaves its restore window.
"""

from __future__ import annotations

import datetime as dt

from .store import Store


class Clock:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def offset_seconds(self) -> float:
        return float(self._store.data.get("clock_offset_seconds", 0.0))

    def now(self) -> dt.datetime:
        """Aware UTC now, with the offset applied."""
        return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.offset_seconds)

    def advance(self, seconds: float) -> dt.datetime:
        if seconds < 0:
            raise ValueError("the stand-in clock only moves forward")
        self._store.data["clock_offset_seconds"] = self.offset_seconds + float(seconds)
        return self.now()

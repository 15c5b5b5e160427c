"""State of the stand-in, kept as plain JSON data, optionally persisted to one file.

The whole state is one JSON document (services keep their records as dicts of strings
and numbers, private keys as PEM). After every request the server calls ``persist()``,
which rewrites the file atomically (temporary file, fsync, rename) only when the
content changed, so a new process started on the same file sees the same CAs,
certificates, clusters and backups. The file holds private keys: it is created 0600.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

STATE_VERSION = 1


def _fresh() -> dict[str, Any]:
    return {"version": STATE_VERSION, "clock_offset_seconds": 0.0, "acm-pca": {}, "cloudhsmv2": {}}


class StateError(Exception):
    """The state file exists but cannot be used."""


class Store:
    """The stand-in's state; memory only when ``path`` is None."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.data: dict[str, Any] = _fresh()
        self._last_written: str | None = None
        if self.path is not None and self.path.exists():
            text = self.path.read_text(encoding="utf-8")
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise StateError(f"{self.path}: not JSON: {exc}") from exc
            if not isinstance(loaded, dict) or loaded.get("version") != STATE_VERSION:
                raise StateError(f"{self.path}: not a stand-in state file (version {STATE_VERSION})")
            self.data = loaded
            self._last_written = self._serialize()

    def section(self, name: str) -> dict[str, Any]:
        """The service's part of the state (``"acm-pca"`` or ``"cloudhsmv2"``)."""
        return self.data.setdefault(name, {})

    def wipe(self) -> None:
        """Forget everything, including the clock offset."""
        self.data = _fresh()

    def _serialize(self) -> str:
        return json.dumps(self.data, sort_keys=True, indent=1)

    def persist(self) -> None:
        """Write the state file if there is one and the state changed since the last write."""
        if self.path is None:
            return
        text = self._serialize()
        if text == self._last_written:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._last_written = text

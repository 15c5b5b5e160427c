"""The checkpointed state of a ceremony, behind a small store interface.

`StateStore` is what the executor needs; `SqliteStateStore` keeps it in one SQLite file
(`state.db`) in the workspace. Every checkpoint is one transaction touching one step row and
the meta row (rollback journal, synchronous=FULL): atomic, crash-safe, and its cost does not
grow with the number of finished steps. A remote store (S3 with locking) implements the same
interface.

The state never holds a PIN or credential: plugins return identifiers, certificates and
public keys only, and the spec fragments carry PIN *sources* at most (never values).
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from pki_ceremony.errors import StateError

SCHEMA_VERSION = 1


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class StepRecord:
    step_id: str
    kind: str
    fingerprint: str | None  # of the inputs the result (or the intent) was made from
    spec: dict[str, Any]
    intent: dict[str, Any] | None
    outputs: dict[str, Any] | None
    output_digest: str | None
    artifacts: dict[str, str]  # path -> sha256
    finished_at: str | None
    api_calls: dict[str, int]

    @property
    def done(self) -> bool:
        return self.outputs is not None


@dataclass(frozen=True)
class Meta:
    schema_version: int
    lineage: str
    serial: int
    ceremony_fingerprint: str | None
    ceremony_name: str | None
    created_at: str


class StateStore(ABC):
    @abstractmethod
    def meta(self) -> Meta: ...

    @abstractmethod
    def step(self, step_id: str) -> StepRecord | None: ...

    @abstractmethod
    def steps(self) -> dict[str, StepRecord]: ...

    @abstractmethod
    def record_intent(self, step_id: str, kind: str, fingerprint: str, spec: dict, intent: dict) -> None: ...

    @abstractmethod
    def record_result(self, step_id: str, kind: str, fingerprint: str, spec: dict, outputs: dict,
                      output_digest: str, artifacts: dict[str, bytes], api_calls: dict[str, int]) -> None: ...

    @abstractmethod
    def artifacts(self) -> Iterator[tuple[str, str, bytes]]: ...  # (path, step id, content)

    @abstractmethod
    def set_ceremony(self, fingerprint: str, name: str) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, fingerprint TEXT, spec TEXT NOT NULL,
    intent TEXT, outputs TEXT, output_digest TEXT, artifacts TEXT NOT NULL DEFAULT '{}',
    intent_at TEXT, finished_at TEXT, api_calls TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS artifacts (
    path TEXT PRIMARY KEY, step_id TEXT NOT NULL, sha256 TEXT NOT NULL, content BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS artifacts_by_step ON artifacts (step_id);
"""


class SqliteStateStore(StateStore):
    """State in one SQLite file. Opening an existing store writes nothing."""

    def __init__(self, path: Path, *, create: bool = True):
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise StateError(f"no state at {self.path}")
        fresh = not self.path.exists()
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=5.0,
                                  check_same_thread=False)
        try:
            self.db.execute("PRAGMA journal_mode=DELETE")
            self.db.execute("PRAGMA synchronous=FULL")
        except sqlite3.OperationalError as exc:
            self.db.close()
            raise StateError(f"cannot read the state at {self.path}: {exc}",
                             hint="another apply may be writing it right now; try again when it is done") from None
        if fresh:
            with self._tx():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self.db.execute(statement)
                for k, v in (("schema_version", str(SCHEMA_VERSION)), ("lineage", str(uuid.uuid4())),
                             ("serial", "1"), ("created_at", now_iso())):
                    self.db.execute("INSERT INTO meta VALUES (?, ?)", (k, v))
        version = int(self._meta_value("schema_version") or 0)
        if version != SCHEMA_VERSION:
            raise StateError(f"{self.path}: state schema version {version}, this tool reads {SCHEMA_VERSION}")

    # -- transactions -------------------------------------------------------------
    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self):
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type, *_):
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> "_Tx":
        return self._Tx(self.db)

    def _bump_serial(self) -> None:
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'serial'")

    def _meta_value(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # -- reads --------------------------------------------------------------------
    def meta(self) -> Meta:
        return Meta(int(self._meta_value("schema_version")), self._meta_value("lineage"),
                    int(self._meta_value("serial")), self._meta_value("ceremony_fingerprint"),
                    self._meta_value("ceremony_name"), self._meta_value("created_at"))

    @staticmethod
    def _record(row) -> StepRecord:
        sid, kind, fp, spec, intent, outputs, odig, arts, _, fin, calls = row
        return StepRecord(sid, kind, fp, json.loads(spec), json.loads(intent) if intent else None,
                          json.loads(outputs) if outputs else None, odig, json.loads(arts), fin,
                          json.loads(calls))

    def step(self, step_id: str) -> StepRecord | None:
        row = self.db.execute("SELECT * FROM steps WHERE id = ?", (step_id,)).fetchone()
        return self._record(row) if row else None

    def steps(self) -> dict[str, StepRecord]:
        return {r[0]: self._record(r) for r in self.db.execute("SELECT * FROM steps")}

    def artifacts(self) -> Iterator[tuple[str, str, bytes]]:
        for path, step_id, content in self.db.execute("SELECT path, step_id, content FROM artifacts ORDER BY path"):
            yield path, step_id, bytes(content)

    # -- writes (one transaction each) ---------------------------------------------
    def record_intent(self, step_id, kind, fingerprint, spec, intent) -> None:
        with self._tx():
            self.db.execute(
                "INSERT INTO steps (id, kind, fingerprint, spec, intent, intent_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, fingerprint=excluded.fingerprint, "
                "spec=excluded.spec, intent=excluded.intent, intent_at=excluded.intent_at, "
                "outputs=NULL, output_digest=NULL, finished_at=NULL",
                (step_id, kind, fingerprint, json.dumps(spec, sort_keys=True), json.dumps(intent, sort_keys=True),
                 now_iso()))
            self._bump_serial()

    def record_result(self, step_id, kind, fingerprint, spec, outputs, output_digest, artifacts, api_calls) -> None:
        import hashlib

        hashes = {p: hashlib.sha256(c).hexdigest() for p, c in artifacts.items()}
        with self._tx():
            self.db.execute(
                "INSERT INTO steps (id, kind, fingerprint, spec, outputs, output_digest, artifacts, finished_at, api_calls) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, "
                "fingerprint=excluded.fingerprint, spec=excluded.spec, outputs=excluded.outputs, "
                "output_digest=excluded.output_digest, artifacts=excluded.artifacts, "
                "finished_at=excluded.finished_at, api_calls=excluded.api_calls",
                (step_id, kind, fingerprint, json.dumps(spec, sort_keys=True), json.dumps(outputs, sort_keys=True),
                 output_digest, json.dumps(hashes, sort_keys=True), now_iso(), json.dumps(api_calls, sort_keys=True)))
            self.db.execute("DELETE FROM artifacts WHERE step_id = ?", (step_id,))
            for p, c in artifacts.items():
                self.db.execute("INSERT INTO artifacts VALUES (?, ?, ?, ?)", (p, step_id, hashes[p], c))
            self._bump_serial()

    def set_ceremony(self, fingerprint: str, name: str) -> None:
        if self._meta_value("ceremony_fingerprint") == fingerprint and self._meta_value("ceremony_name") == name:
            return
        with self._tx():
            for k, v in (("ceremony_fingerprint", fingerprint), ("ceremony_name", name)):
                self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                                (k, v))
            self._bump_serial()

    def close(self) -> None:
        self.db.close()

"""One apply at a time per workspace: an exclusive, non-blocking flock on `apply.lock`.

The kernel releases the lock when its holder dies (even on SIGKILL), so a crashed apply never
leaves a stale lock. The file records who holds it, for the refusal message.
"""
from __future__ import annotations

import fcntl
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from pki_ceremony.errors import WorkspaceLocked

LOCK_NAME = "apply.lock"


class WorkspaceLock:
    def __init__(self, workspace: Path):
        self.path = Path(workspace) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "WorkspaceLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(fd)
            os.close(fd)
            raise WorkspaceLocked(
                f"workspace {self.path.parent} is locked by {holder}",
                hint="another apply is running on this workspace; wait for it to finish") from None
        since = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()} since {since}\n".encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    @staticmethod
    def _holder(fd: int) -> str:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
        # The holder writes its line right after locking; an empty file means it is doing so now.
        return text or "another process (which has just taken the lock)"

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "WorkspaceLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

"""The workspace directory: where state, artifacts and embedded tokens live.

Layout:
    <workspace>/state.db        checkpointed state (see state.py)
    <workspace>/apply.lock      held while an apply runs
    <workspace>/artifacts/      every certificate, CSR and chain as PEM, written from the state
    <workspace>/superseded/     artifacts of steps remade with --replace, by time
    <workspace>/softhsm/        SoftHSM2 config and token directory of `provider: softhsm` HSMs

Artifact files are a copy of what the state holds, written atomically (temporary file,
fsync, rename, fsync of the directory) after the state transaction commits. An artifact that
exists with other content is never overwritten: that is reported as tampering.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pki_ceremony.errors import StateError

STATE_NAME = "state.db"


def default_workspace(ceremony_path: Path) -> Path:
    """`<dir>/<stem>-workspace`, beside the ceremony file."""
    ceremony_path = Path(ceremony_path).resolve()
    return ceremony_path.parent / f"{ceremony_path.stem}-workspace"


class Workspace:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def state_path(self) -> Path:
        return self.root / STATE_NAME

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    def exists(self) -> bool:
        return self.state_path.exists()

    def create(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def artifact_path(self, relative: str) -> Path:
        p = (self.artifacts_dir / relative).resolve()
        if self.artifacts_dir.resolve() not in p.parents:
            raise StateError(f"artifact path {relative!r} escapes the artifacts directory")
        return p

    def write_artifact(self, relative: str, content: bytes) -> bool:
        """Write an artifact if missing; True if written. Refuses to replace different content."""
        path = self.artifact_path(relative)
        if path.exists():
            if path.read_bytes() == content:
                return False
            raise StateError(f"{path} differs from what the state recorded for it",
                             hint="an artifact was changed or replaced by hand; restore it, or move it "
                                  "away and run apply again to rewrite it from the state")
        write_atomically(path, content)
        return True

    def supersede(self, relatives) -> list[Path]:
        """Move the artifacts of a step being replaced to superseded/<time>/, never deleting them."""
        from datetime import datetime, timezone

        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        moved = []
        for rel in relatives:
            src = self.artifact_path(rel)
            if src.exists():
                dst = self.root / "superseded" / stamp / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
                moved.append(dst)
        return moved

    def missing_or_changed(self, relative: str, content: bytes) -> str | None:
        path = self.artifact_path(relative)
        if not path.exists():
            return "missing"
        return None if path.read_bytes() == content else "changed"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, content: bytes, mode: int = 0o644, *, exclusive: bool = False) -> None:
    """Temporary file, fsync, rename, fsync of the directory. `exclusive`: never replace an existing
    file, even one that appears meanwhile (hard link into place; FileExistsError if taken)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if not exclusive:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:  # no hard links on this filesystem: check, then rename
                if path.exists() or path.is_symlink():
                    raise FileExistsError(path) from None
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)

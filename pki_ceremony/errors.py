"""Typed errors shared by every layer, each carrying where it comes from.

Every error the CLI can print subclasses `CeremonyError`; its `exit_code` is the status the
CLI exits with (documented in docs/cli.md). Messages never contain secrets: PINs and
credentials are held in `Secret` objects whose repr is masked, and no code formats them in.
"""
from __future__ import annotations


class CeremonyError(Exception):
    """Base of every error the tool reports to a person."""

    exit_code = 1
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class CeremonyFileError(CeremonyError, ValueError):
    """Something in the ceremony file is wrong: names the file, line, column and field."""

    exit_code = 2

    def __init__(self, file: str, line: int | None, column: int | None, field: str, message: str,
                 *, hint: str | None = None):
        self.file, self.line, self.column, self.field, self.reason = file, line, column, field, message
        where = file if line is None else f"{file}:{line}:{column or 1}"
        text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
        super().__init__(text, hint=hint)


class UsageError(CeremonyError):
    """The command line itself is wrong."""

    exit_code = 2


class PlanRefused(CeremonyError):
    """The plan cannot be applied as it stands (drift, blocked steps, no confirmation)."""

    exit_code = 3


class WorkspaceLocked(CeremonyError):
    """Another apply holds the workspace."""

    exit_code = 4


class AuthenticationError(CeremonyError):
    """A PIN or credential was refused. Never retried automatically: real HSMs lock."""

    exit_code = 5


class StepFailed(CeremonyError):
    """A step failed while running: `step-id (phase): message`."""

    exit_code = 1

    def __init__(self, step_id: str, phase: str, message: str, *, hint: str | None = None):
        self.step_id, self.phase = step_id, phase
        super().__init__(f"{step_id} ({phase}): {message}", hint=hint)


class StateError(CeremonyError):
    """The workspace's state or artifacts are not what the tool wrote."""

    exit_code = 1

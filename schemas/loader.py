"""File -> validated `Ceremony`: strict YAML, pydantic, then the hierarchy rules.

All problems become `CeremonyFileError`s naming `file:line:col field.path`. The first problem
is raised; `load_ceremony(..., collect=True)` raises a `CeremonyFileErrors` with all of them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from pki_ceremony.errors import CeremonyFileError

from .ceremony import Ceremony, RootCeremony
from .root_rules import check_root_ceremony
from .rules import check_hierarchy
from .yaml_source import SourceMap, read_yaml


class CeremonyFileErrors(CeremonyFileError):
    """Several problems in one file; prints them one per line."""

    def __init__(self, errors: list[CeremonyFileError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.file, first.line, first.column, first.field, first.reason, hint=first.hint)
        self.args = ("\n".join(str(e) for e in errors),)


@dataclass(frozen=True)
class LoadedCeremony:
    """A validated ceremony with where it came from (and, for a RootCeremony, its base)."""

    model: Ceremony | RootCeremony
    path: Path
    source: SourceMap
    base: "LoadedCeremony | None" = None

    @property
    def fingerprint(self) -> str:
        own = ceremony_fingerprint(self.model)
        if self.base is None:
            return own
        return hashlib.sha256(f"{own}:{self.base.fingerprint}".encode()).hexdigest()


def ceremony_fingerprint(model) -> str:
    data = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _message(err: dict) -> str:
    kind, msg = err.get("type", ""), err.get("msg", "")
    if kind == "extra_forbidden":
        return "unknown field (not part of the ceremony file format; check the spelling)"
    if kind == "missing":
        return "this field is required"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind in ("literal_error", "enum"):
        return msg.replace("Input should be", "must be")
    return msg


def _loc(err: dict) -> tuple:
    # Drop the discriminator tag pydantic inserts into union locations (e.g. backend.local.hsm).
    loc = list(err.get("loc", ()))
    out = []
    for i, part in enumerate(loc):
        if i > 0 and loc[i - 1] == "backend" and isinstance(part, str) and part in ("local", "aws-pca"):
            continue
        out.append(part)
    return tuple(out)


KINDS = {"Ceremony": Ceremony, "RootCeremony": RootCeremony}


def load_ceremony(path: str | Path, *, collect: bool = False, _seen: tuple = ()) -> LoadedCeremony:
    path = Path(path)
    data, smap = read_yaml(path)
    kind = data.get("kind")
    if kind not in KINDS:
        raise smap.error(("kind",), f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    try:
        model = KINDS[kind].model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            loc = _loc(err)
            errors.append(smap.error(loc, _message(err)))
        errors.sort(key=lambda e: (e.line or 0, e.column or 0))
        raise CeremonyFileErrors(errors) if collect and len(errors) > 1 else errors[0] from None
    base = None
    if isinstance(model, RootCeremony):
        base_path = (path.parent / model.base).resolve()
        if base_path in _seen or base_path == path.resolve():
            raise smap.error(("base",), "the base ceremony refers back to this one")
        if not base_path.exists():
            raise smap.error(("base",), f"no base ceremony file at {base_path}")
        base = load_ceremony(base_path, collect=collect, _seen=_seen + (path.resolve(),))
        if not isinstance(base.model, Ceremony):
            raise smap.error(("base",), "the base must be a ceremony that made a hierarchy (kind: Ceremony)")
        problems = check_root_ceremony(model, base.model)
    else:
        problems = check_hierarchy(model)
    if problems:
        errors = [smap.error(p, msg, hint=hint) for p, msg, hint in problems]
        if collect and len(errors) > 1:
            raise CeremonyFileErrors(errors)
        raise errors[0]
    return LoadedCeremony(model, path, smap, base)

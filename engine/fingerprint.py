"""Stable digests of step inputs and outputs (sorted, compact JSON, SHA-256)."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def step_fingerprint(kind: str, spec: Mapping[str, Any], upstream: Mapping[str, str]) -> str:
    """A step's input fingerprint: its kind, its spec fragment, and its upstreams' output digests by role."""
    return digest({"kind": kind, "spec": spec, "upstream": dict(upstream)})


def changed_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths whose values differ between two JSON-like values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += changed_fields(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    return [] if old == new else [prefix or "(value)"]

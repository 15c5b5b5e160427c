"""PINs as values that do not print themselves, resolved from their declared source.

A `Secret`'s repr and str are masked, so a PIN cannot reach a log line, an exception message
or the state by accident; `reveal()` is called only where the PIN is handed to the PKCS#11
library. PINs never go into argv or the environment of child processes.
"""
from __future__ import annotations

import getpass
import os
import sys

from pki_ceremony.errors import CeremonyError


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(****)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a Secret cannot be pickled")


class PinUnavailable(CeremonyError):
    exit_code = 2


def resolve_pin(source, what: str) -> Secret:
    """`source` is a schemas.PinSource. Raises PinUnavailable naming the source, never a value."""
    if source.env:
        value = os.environ.get(source.env)
        if not value:
            raise PinUnavailable(f"{what}: environment variable {source.env} is not set or empty",
                                 hint=f"export {source.env} before running, or use 'pin: {{prompt: true}}'")
        return Secret(value)
    if not sys.stdin.isatty():
        raise PinUnavailable(f"{what}: the PIN is to be asked for on the terminal, but there is none",
                             hint="run on a terminal, or declare 'pin: {env: VARIABLE}'")
    value = getpass.getpass(f"PIN for {what}: ")
    if not value:
        raise PinUnavailable(f"{what}: empty PIN")
    return Secret(value)


def pin_available(source) -> str | None:
    """Why the PIN source cannot give a PIN now, or None if it can (nothing is read or asked)."""
    if source.env:
        return None if os.environ.get(source.env) else f"environment variable {source.env} is not set or empty"
    return None if sys.stdin.isatty() else "it is to be asked for on a terminal, and there is none"

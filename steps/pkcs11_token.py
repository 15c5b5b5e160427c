"""One logged-in PKCS#11 session per token, every call serialised through one process lock.

Facts this is built on (../shared/reference/pkcs11-and-softhsm.md): SoftHSM runs without
internal mutexes under python-pkcs11 and crashes when threads call it concurrently; login is
per process, and closing the session that logged in logs every session out. So a token is
opened once, kept open for the life of the process, and all calls, including attribute reads
on objects, happen inside `with token.session() as s:`, which holds the lock.

A wrong PIN raises `AuthenticationError` at once and is never retried: real HSMs lock.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import pkcs11
from pkcs11 import exceptions as p11x

from pki_ceremony.errors import AuthenticationError, CeremonyError

from .secrets import Secret

# One lock for every PKCS#11 call in the process: calls to two tokens of one module share the
# module's global state, and python-pkcs11 releases the GIL around each call.
PKCS11_LOCK = threading.RLock()


class HsmError(CeremonyError):
    """The HSM or its library refused or failed."""


def load_module(path: str) -> "pkcs11.lib":
    try:
        return pkcs11.lib(path)
    except p11x.PKCS11Error as exc:
        raise HsmError(f"cannot load the PKCS#11 module {path}: {exc}",
                       hint="check the 'module' path (for SoftHSM: apt-get install softhsm2)") from None


class Token:
    """A named HSM token, opened lazily with its PIN and kept open."""

    def __init__(self, name: str, module_path: str, token_label: str, pin: Secret):
        self.name, self.module_path, self.token_label = name, module_path, token_label
        self._pin = pin
        self._session: "pkcs11.Session | None" = None

    def describe(self) -> str:
        return f"token '{self.token_label}' (hsm '{self.name}')"

    def _open(self) -> "pkcs11.Session":
        lib = load_module(self.module_path)
        try:
            token = lib.get_token(token_label=self.token_label)
        except p11x.NoSuchToken:
            raise HsmError(f"no {self.describe()} in {self.module_path}",
                           hint="check the token label and that the HSM is connected; a token taken offline by "
                                "custody comes back only through a root ceremony (kind: RootCeremony)") from None
        except p11x.MultipleTokensReturned:
            raise HsmError(f"more than one token is labelled '{self.token_label}' in {self.module_path}") from None
        try:
            return token.open(rw=True, user_pin=self._pin.reveal())
        except p11x.PinIncorrect:
            raise AuthenticationError(
                f"the PIN for {self.describe()} was refused",
                hint="not retried: real HSMs lock after a few failures. Check the PIN source, then run again") from None
        except p11x.PinLocked:
            raise AuthenticationError(f"the PIN of {self.describe()} is locked",
                                      hint="the security officer must unlock or reset it") from None
        except p11x.UserAlreadyLoggedIn:
            raise HsmError(f"{self.describe()} is already logged in by this process") from None
        except p11x.PKCS11Error as exc:
            raise HsmError(f"cannot open {self.describe()}: {type(exc).__name__}") from None

    @contextmanager
    def session(self) -> Iterator["pkcs11.Session"]:
        with PKCS11_LOCK:
            if self._session is None:
                self._session = self._open()
            yield self._session

    def close(self) -> None:
        with PKCS11_LOCK:
            if self._session is not None:
                try:
                    self._session.close()
                except p11x.PKCS11Error:
                    pass
                self._session = None

    def serial(self) -> str:
        """The token's serial number (SoftHSM: the last 16 hex digits of its folder's name)."""
        with PKCS11_LOCK:
            return load_module(self.module_path).get_token(token_label=self.token_label).serial.decode().strip()

    @contextmanager
    def so_session(self, so_pin: Secret) -> Iterator["pkcs11.Session"]:
        """A security-officer session. The user session is closed first: one login per token."""
        with PKCS11_LOCK:
            self.close()
            token = load_module(self.module_path).get_token(token_label=self.token_label)
            try:
                session = token.open(rw=True, so_pin=so_pin.reveal())
            except p11x.PinIncorrect:
                raise AuthenticationError(f"the security officer PIN for {self.describe()} was refused",
                                          hint="not retried: real HSMs lock after a few failures") from None
            try:
                yield session
            finally:
                session.close()

    def random(self, nbytes: int) -> bytes:
        with self.session() as s:
            return s.generate_random(nbytes * 8)

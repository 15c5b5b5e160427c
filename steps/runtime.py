"""What step plugins are given at run time: the ceremony's HSM tokens, opened on demand.

The application builds one `Runtime` per apply, after the PINs of every HSM the plan needs
have been collected (so a missing PIN stops the ceremony before anything happens). SoftHSM
tokens declared with `provider: softhsm` live in the workspace and are initialised here,
before any session is opened.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Mapping

from pki_ceremony.errors import CeremonyError
from pki_ceremony.schemas.ceremony import HsmSpec

from . import softhsm
from .pkcs11_token import Token
from .secrets import Secret


class Runtime:
    def __init__(self, hsms: Mapping[str, HsmSpec], workspace: Path, pins: Mapping[str, Secret],
                 so_pin_sources: Mapping | None = None, *, lineage: str = "", ceremony_name: str = "",
                 aws_settings=None, aws_waiter_delay: float | None = None, create_tokens: bool = True,
                 never_create: set[str] = frozenset(), ceremony_dir: Path | None = None):
        self.hsms, self.workspace = dict(hsms), Path(workspace)
        # Tokens that once held a key (per the state) are never initialised again: a missing one is
        # offline (torn down), and a fresh empty token under its label would only confuse.
        self._never_create = set(never_create)
        self.ceremony_dir = Path(ceremony_dir) if ceremony_dir else self.workspace.parent
        self._pins = dict(pins)
        self._so_sources, self._so_pins = dict(so_pin_sources or {}), {}  # SO PINs: asked for only when needed
        self._tokens: dict[str, Token] = {}
        self._softhsm_ready = False
        self.lineage, self.ceremony_name = lineage, ceremony_name
        self._aws_settings, self._aws_waiter_delay = aws_settings, aws_waiter_delay
        self._aws = None
        self._lock = threading.RLock()  # steps of independent branches may run in parallel threads
        self._create_tokens = create_tokens  # False for read-only uses (plan --refresh)
        self.on_wait = lambda what: None  # set by the application to show waits in its progress display

    def waiting(self, what: str) -> None:
        """A step says what it is waiting for (an AWS waiter, an HSM coming up)."""
        self.on_wait(what)

    @property
    def aws(self):
        """boto3 clients for the ceremony's AWS side, made on first use (boto3 is imported then)."""
        with self._lock:
            return self._make_aws()

    def _make_aws(self):
        if self._aws is None:
            from .aws_clients import AwsClients

            s = self._aws_settings
            self._aws = AwsClients(s.region if s else None, s.profile if s else None,
                                   waiter_delay=self._aws_waiter_delay)
        return self._aws

    def softhsm_dir(self) -> Path:
        return self.workspace / "softhsm"

    def module_of(self, name: str) -> str:
        spec = self.hsms[name]
        if spec.module:
            return spec.module
        return softhsm.softhsm_module()

    def prepare_softhsm(self) -> list[str]:
        """Point this process at the workspace's SoftHSM config, and initialise the tokens that are
        missing and may be made (known PIN, never held a key). Returns the labels made."""
        if self._softhsm_ready or not any(s.provider == "softhsm" for s in self.hsms.values()):
            return []
        softhsm.prepare_config(self.softhsm_dir())
        self._softhsm_ready = True
        names = [n for n, s in self.hsms.items()
                 if s.provider == "softhsm" and n in self._pins and n not in self._never_create]
        if not self._create_tokens or not names:
            return []
        missing = softhsm.missing_tokens([self.hsms[n].token for n in names])
        return softhsm.ensure_tokens([(self.hsms[n].token, self._pins[n], self.so_pin(n)) for n in names
                                      if self.hsms[n].token in missing])

    def token(self, name: str) -> Token:
        with self._lock:
            return self._token(name)

    def _token(self, name: str) -> Token:
        if name not in self._tokens:
            if name not in self._pins:
                raise CeremonyError(f"no PIN was collected for hsm '{name}'")
            if self.hsms[name].provider == "softhsm":
                self.prepare_softhsm()
            self._tokens[name] = Token(name, self.module_of(name), self.hsms[name].token, self._pins[name])
        return self._tokens[name]

    def softhsm_token_dir(self) -> Path:
        self.prepare_softhsm()
        return self.softhsm_dir() / "tokens"

    def forget_token(self, name: str) -> None:
        """Close the token's session (before its HSM goes away)."""
        token = self._tokens.pop(name, None)
        if token is not None:
            token.close()

    def reload_pkcs11(self) -> None:
        """Re-read the token list (a token was restored or removed): every session is reopened on demand."""
        from .pkcs11_token import PKCS11_LOCK, load_module

        with PKCS11_LOCK:
            modules = {t.module_path for t in self._tokens.values()}
            for name in list(self._tokens):
                self.forget_token(name)
            for module in modules | ({softhsm.softhsm_module()} if self._softhsm_ready else set()):
                load_module(module).reinitialize()

    def so_pin(self, name: str) -> Secret | None:
        """The security officer's PIN, from its declared source, read the first time it is needed."""
        if name not in self._so_pins and name in self._so_sources:
            from .secrets import resolve_pin

            self._so_pins[name] = resolve_pin(self._so_sources[name], f"security officer of hsm '{name}'")
        return self._so_pins.get(name)

    def pin(self, name: str) -> Secret:
        return self._pins[name]

    def close(self) -> None:
        for token in self._tokens.values():
            token.close()
        self._tokens.clear()

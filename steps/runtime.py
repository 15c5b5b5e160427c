"""What step plugins are given at run time: the ceremony's HSM tokens, opened on demand.

The application builds one `Runtime` per apply, after the PINs of every HSM the plan needs
have been collected (so a missing PIN stops the ceremony before anything happens). SoftHSM
tokens declared with `provider: softhsm` live in the workspace and are initialised here,
before any session is opened.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from pki_ceremony.errors import CeremonyError
from pki_ceremony.schemas.ceremony import HsmSpec

from . import softhsm
from .pkcs11_token import Token
from .secrets import Secret


class Runtime:
    def __init__(self, hsms: Mapping[str, HsmSpec], workspace: Path, pins: Mapping[str, Secret],
                 so_pins: Mapping[str, Secret] | None = None, *, lineage: str = "", ceremony_name: str = "",
                 aws_settings=None, aws_waiter_delay: float | None = None, create_tokens: bool = True):
        self.hsms, self.workspace = dict(hsms), Path(workspace)
        self._pins, self._so_pins = dict(pins), dict(so_pins or {})
        self._tokens: dict[str, Token] = {}
        self._softhsm_ready = False
        self.lineage, self.ceremony_name = lineage, ceremony_name
        self._aws_settings, self._aws_waiter_delay = aws_settings, aws_waiter_delay
        self._aws = None
        self._create_tokens = create_tokens  # False for read-only uses (plan --refresh)
        self.on_wait = lambda what: None  # set by the application to show waits in its progress display

    def waiting(self, what: str) -> None:
        """A step says what it is waiting for (an AWS waiter, an HSM coming up)."""
        self.on_wait(what)

    @property
    def aws(self):
        """boto3 clients for the ceremony's AWS side, made on first use (boto3 is imported then)."""
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
        """Write the workspace's SoftHSM config and initialise missing tokens (with known PINs)."""
        names = [n for n, s in self.hsms.items() if s.provider == "softhsm" and n in self._pins]
        if self._softhsm_ready or not names:
            return []
        softhsm.prepare_config(self.softhsm_dir())
        if not self._create_tokens:
            self._softhsm_ready = True
            return []
        made = softhsm.ensure_tokens([(self.hsms[n].token, self._pins[n], self._so_pins.get(n)) for n in names])
        self._softhsm_ready = True
        return made

    def token(self, name: str) -> Token:
        if name not in self._tokens:
            if name not in self._pins:
                raise CeremonyError(f"no PIN was collected for hsm '{name}'")
            if self.hsms[name].provider == "softhsm":
                self.prepare_softhsm()
            self._tokens[name] = Token(name, self.module_of(name), self.hsms[name].token, self._pins[name])
        return self._tokens[name]

    def close(self) -> None:
        for token in self._tokens.values():
            token.close()
        self._tokens.clear()

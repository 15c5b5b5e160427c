"""Knobs of the stand-in, shared by the services, the server class and the command line."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class Settings:
    """
    pending_polls: how many polls see a resource as still in progress before it is ready
        (a new CA's CSR, an issued certificate, a new HSM, a new backup). 1 by default, so
        that the boto3 waiters really wait once; 0 makes everything ready at once.
    not_after_beyond_issuer: what IssueCertificate does with a requested NotAfter later
        than the issuing CA's: "cap" (default) shortens it to the CA's NotAfter, "reject"
        refuses with InvalidArgsException.
    """

    pending_polls: int = 1
    not_after_beyond_issuer: Literal["cap", "reject"] = "cap"

    def __post_init__(self) -> None:
        if self.pending_polls < 0:
            raise ValueError("pending_polls must be >= 0")
        if self.not_after_beyond_issuer not in ("cap", "reject"):
            raise ValueError("not_after_beyond_issuer must be 'cap' or 'reject'")

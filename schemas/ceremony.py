"""The ceremony file, v1, as pydantic models.

Every model forbids unknown keys and is frozen. Rules that need more than one field of one
model live here as validators; rules that span the hierarchy live in `rules.py`.
The JSON Schema in `ceremony.schema.json` is exported from these models (`export.py`).
"""
from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Literal, Mapping, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, description="A lower-case name: letters, digits, dashes.")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class KeyAlgorithm(str, Enum):
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"
    EC_prime256v1 = "EC_prime256v1"
    EC_secp384r1 = "EC_secp384r1"
    EC_secp521r1 = "EC_secp521r1"  # Private CA only

    @property
    def family(self) -> str:
        return "RSA" if self.value.startswith("RSA") else "EC"

    @property
    def size(self) -> int:
        return {"EC_prime256v1": 256, "EC_secp384r1": 384, "EC_secp521r1": 521}.get(self.value) or int(self.value[4:])


class SigningAlgorithm(str, Enum):
    SHA256WITHRSA = "SHA256WITHRSA"
    SHA384WITHRSA = "SHA384WITHRSA"
    SHA512WITHRSA = "SHA512WITHRSA"
    SHA256WITHECDSA = "SHA256WITHECDSA"
    SHA384WITHECDSA = "SHA384WITHECDSA"
    SHA512WITHECDSA = "SHA512WITHECDSA"

    @property
    def family(self) -> str:
        return "RSA" if self.value.endswith("RSA") else "EC"


HSM_KEY_ALGORITHMS = {KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072, KeyAlgorithm.RSA_4096,
                      KeyAlgorithm.EC_prime256v1, KeyAlgorithm.EC_secp384r1}


def default_signing_algorithm(key: KeyAlgorithm) -> SigningAlgorithm:
    if key is KeyAlgorithm.EC_secp521r1:
        return SigningAlgorithm.SHA512WITHECDSA
    if key is KeyAlgorithm.EC_secp384r1:
        return SigningAlgorithm.SHA384WITHECDSA
    if key.family == "EC":
        return SigningAlgorithm.SHA256WITHECDSA
    return SigningAlgorithm.SHA256WITHRSA


class PinSource(Strict):
    """Where a PIN comes from. Never a literal: an environment variable or a prompt."""

    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                            description="Name of the environment variable holding the PIN.")
    prompt: bool | None = Field(None, description="Ask for the PIN on the terminal (no echo).")

    @model_validator(mode="after")
    def _one_source(self) -> "PinSource":
        if (self.env is None) == (not self.prompt):
            raise ValueError("give exactly one of 'env: VARIABLE' or 'prompt: true'")
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else "a prompt"


class HsmSpec(Strict):
    """One PKCS#11 token."""

    provider: Literal["softhsm", "pkcs11"] = Field(
        description="`softhsm`: a SoftHSM2 token kept inside the workspace (the embedded default); "
                    "`pkcs11`: any PKCS#11 module given by `module` (CloudHSM, Luna, YubiHSM...).")
    token: str = Field(min_length=1, max_length=32, description="The token label (at most 32 characters).")
    module: str | None = Field(None, description="Path of the PKCS#11 library; required for `pkcs11`.")
    pin: PinSource = Field(description="The user (crypto-officer) PIN's source.")
    so_pin: PinSource | None = Field(
        None, description="The security officer PIN's source. For `softhsm` it initialises the token; "
                          "without it a random SO PIN is used once and forgotten.")

    @model_validator(mode="after")
    def _module_for_pkcs11(self) -> "HsmSpec":
        if self.provider == "pkcs11" and not self.module:
            raise ValueError("provider 'pkcs11' needs 'module': the path of the PKCS#11 library")
        return self


class KeySpec(Strict):
    algorithm: KeyAlgorithm
    label: str | None = Field(None, min_length=1, max_length=64,
                              description="CKA_LABEL of the key pair; defaults to `<ceremony>-<ca>`.")
    exportable: bool = Field(False, description="Generate the private key as extractable with "
                             "CKA_WRAP_WITH_TRUSTED, so it can later be moved to another HSM by key wrapping.")


class Subject(Strict):
    """The distinguished name. Order in the certificate: C, ST, L, O, OU, CN."""

    country: str | None = Field(None, description="Two-letter ISO 3166 code, e.g. US.")
    state: str | None = Field(None, min_length=1, max_length=128)
    locality: str | None = Field(None, min_length=1, max_length=128)
    organization: str | None = Field(None, min_length=1, max_length=64)
    organizational_unit: str | None = Field(None, min_length=1, max_length=64)
    common_name: str = Field(min_length=1, max_length=64)

    @field_validator("country")
    @classmethod
    def _two_letters(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Z]{2}", v):
            raise ValueError(f"country must be two capital letters (ISO 3166), got {v!r}")
        return v


class Validity(Strict):
    """How long a certificate lives: exactly one of years, months, days or same_as_issuer."""

    years: int | None = Field(None, ge=1, le=30)
    months: int | None = Field(None, ge=1, le=360)
    days: int | None = Field(None, ge=1, le=10958)
    same_as_issuer: bool | None = Field(None, description="End exactly when the issuer's certificate ends.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "Validity":
        given = [k for k in ("years", "months", "days") if getattr(self, k) is not None]
        if self.same_as_issuer is False:
            raise ValueError("same_as_issuer: false means nothing; give years, months or days instead")
        if len(given) + bool(self.same_as_issuer) != 1:
            raise ValueError("give exactly one of years, months, days or same_as_issuer: true")
        return self

    def describe(self) -> str:
        if self.same_as_issuer:
            return "same as issuer"
        for k in ("years", "months", "days"):
            if getattr(self, k):
                return f"{getattr(self, k)} {k}"
        return "?"


def add_validity(start: datetime, validity: Mapping[str, Any]) -> datetime:
    """`start` plus years / months / days, in calendar arithmetic (Feb 29 + 1 year = Feb 28)."""
    if validity.get("days"):
        return start + timedelta(days=validity["days"])
    months = validity.get("months") or 12 * validity["years"]
    y, m = divmod(start.month - 1 + months, 12)
    year, month = start.year + y, m + 1
    return start.replace(year=year, month=month, day=min(start.day, calendar.monthrange(year, month)[1]))


class LocalBackend(Strict):
    """The subordinate's key on a PKCS#11 token; its certificate stored beside it."""

    type: Literal["local"]
    hsm: str = Field(description="Name of an entry in `hsms`.")


class CrlConfig(Strict):
    s3_bucket: str = Field(min_length=3, max_length=63, description="Bucket Private CA publishes the CRL to.")
    expiration_days: int = Field(7, ge=1, le=5000)
    custom_cname: str | None = Field(None, max_length=253)


class RevocationConfig(Strict):
    crl: CrlConfig | None = None
    ocsp: bool = Field(False, description="Turn on Private CA's OCSP responder.")


class AwsPcaBackend(Strict):
    """The subordinate lives in AWS Private CA (acm-pca): its key never leaves AWS."""

    type: Literal["aws-pca"]
    tags: dict[str, str] = Field(default_factory=dict, description="Tags for the CA, besides the "
                                 "pki-ceremony:* tags the tool sets to find it again.")
    revocation: RevocationConfig | None = None
    usage_mode: Literal["GENERAL_PURPOSE", "SHORT_LIVED_CERTIFICATE"] = Field(
        "GENERAL_PURPOSE", description="Private CA's usage mode (priced differently; see docs/aws.md).")
    key_storage_security_standard: Literal["FIPS_140_2_LEVEL_3_OR_HIGHER", "FIPS_140_2_LEVEL_2_OR_HIGHER",
                                           "CCPC_LEVEL_1_OR_HIGHER"] | None = Field(
        None, description="Where AWS keeps the CA key; some regions do not offer Private CA's default.")


Backend = Annotated[Union[LocalBackend, AwsPcaBackend], Field(discriminator="type")]


class AwsSettings(Strict):
    """Where the AWS side lives. Credentials come the way boto3 finds them, never from this file."""

    region: str | None = Field(None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
                               description="Region (default: AWS_REGION / AWS_DEFAULT_REGION).")
    profile: str | None = Field(None, description="Named profile of the shared AWS config.")


class RootSpec(Strict):
    name: Name = "root"
    hsm: str = Field(description="Name of an entry in `hsms`.")
    key: KeySpec
    signing_algorithm: SigningAlgorithm | None = Field(
        None, description="What this CA signs with; defaults from the key (SHA256 for RSA and P-256, SHA384 for P-384).")
    subject: Subject
    validity: Validity
    path_len: int | None = Field(None, ge=0, le=10, description="basicConstraints pathLenConstraint; "
                                 "omit for no limit.")

    @property
    def issuer(self) -> None:
        return None


class SubordinateSpec(Strict):
    name: Name
    issuer: Name
    backend: Backend
    key: KeySpec
    signing_algorithm: SigningAlgorithm | None = None
    subject: Subject
    validity: Validity
    path_len: int | None = Field(None, ge=0, le=10)


class Hierarchy(Strict):
    root: RootSpec
    subordinates: list[SubordinateSpec] = Field(default_factory=list)


class SoftHsmBackup(Strict):
    directory: str | None = Field(
        None, description="Where the verified archive of the token is kept, relative to the ceremony file "
                          "(default: the workspace's backups/ folder). Keep it somewhere safe: it is the root key.")


class CloudHsmCluster(Strict):
    cluster_id: str = Field(pattern=r"^cluster-[2-7a-zA-Z]{11,16}$")
    availability_zone: str | None = Field(None, description="Where create_hsm puts the HSM that brings the root "
                                          "back (default: the zone of the HSM torn down).")
    copy_backup_to: list[str] = Field(default_factory=list, description="Regions to copy the backup to "
                                      "(disaster recovery); each copy is recorded.")


class Custody(Strict):
    """What happens to the root's HSM once the root's work is done: a verified backup, then teardown."""

    hsm: str = Field(description="The HSM to put away (the root's).")
    softhsm: SoftHsmBackup | None = Field(None, description="For a `softhsm` HSM: archive the token, verify the "
                                          "archive in a scratch SoftHSM, then remove the token.")
    cloudhsm: CloudHsmCluster | None = Field(None, description="For AWS CloudHSM: delete the cluster's HSMs, keep "
                                             "the backup that makes (never to expire), copy it to other regions.")
    teardown: bool = Field(True, description="Remove the HSM after the verified backup (false: back up only).")

    @model_validator(mode="after")
    def _one_kind(self) -> "Custody":
        if (self.softhsm is None) == (self.cloudhsm is None):
            raise ValueError("give exactly one of 'softhsm: {...}' or 'cloudhsm: {cluster_id: ...}'")
        return self


class Metadata(Strict):
    name: Name
    description: str | None = None


class Ceremony(Strict):
    """A ceremony file."""

    api_version: Literal["pki-ceremony/v1"] = Field(alias="apiVersion")
    kind: Literal["Ceremony"]
    metadata: Metadata
    hsms: dict[Name, HsmSpec] = Field(min_length=1)
    aws: AwsSettings | None = None
    hierarchy: Hierarchy
    custody: Custody | None = Field(None, description="Back the root's HSM up and take it offline at the end.")

    def cas(self) -> list[RootSpec | SubordinateSpec]:
        return [self.hierarchy.root, *self.hierarchy.subordinates]

    def ca(self, name: str) -> RootSpec | SubordinateSpec:
        return next(c for c in self.cas() if c.name == name)

    def signing_algorithm(self, ca: RootSpec | SubordinateSpec) -> SigningAlgorithm:
        return ca.signing_algorithm or default_signing_algorithm(ca.key.algorithm)

    def key_label(self, ca: RootSpec | SubordinateSpec) -> str:
        return ca.key.label or f"{self.metadata.name}-{ca.name}"

    def hsm_of(self, ca: RootSpec | SubordinateSpec) -> str | None:
        """The HSM holding the CA's key; None for a CA whose key lives in Private CA."""
        if isinstance(ca, RootSpec):
            return ca.hsm
        return ca.backend.hsm if isinstance(ca.backend, LocalBackend) else None

    def backend_type(self, ca: RootSpec | SubordinateSpec) -> str:
        return "local" if isinstance(ca, RootSpec) else ca.backend.type

    def uses_aws(self) -> bool:
        return any(self.backend_type(ca) == "aws-pca" for ca in self.cas()) or bool(
            self.custody and self.custody.cloudhsm)


# --- later ceremonies on an existing root -------------------------------------------------------------------

class RevokedEntry(Strict):
    """One revoked certificate: exactly one of `certificate` and `serial`."""

    certificate: str | None = Field(None, description="A PEM certificate file (relative to this file) to revoke.")
    serial: str | None = Field(None, pattern=r"^(0x)?[0-9a-fA-F]{1,40}$", description="Or its serial, in hex. "
                               "Quote it: YAML reads 123456 as a number, which is refused.")
    reason: Literal["unspecified", "key_compromise", "ca_compromise", "affiliation_changed", "superseded",
                    "cessation_of_operation", "certificate_hold", "privilege_withdrawn"] = Field(
        "unspecified", description="The CRL reason code; `unspecified` is written as no reason code extension.")
    revoked_at: datetime | None = Field(None, description="When it was revoked (default: when the CRL is signed).")

    @model_validator(mode="after")
    def _one(self) -> "RevokedEntry":
        if (self.certificate is None) == (self.serial is None):
            raise ValueError("give exactly one of 'certificate: FILE' or 'serial: HEX'")
        return self


class CrlSpec(Strict):
    issuer: Name | None = Field(None, description="The CA whose CRL this is (default: the root); any CA whose key "
                                "is on an HSM the tool holds.")
    next_update: Validity = Field(description="How long after thisUpdate the next CRL is due (at most 12 months). "
                                  "Years, months or days; not `same_as_issuer`.")
    revoked: list[RevokedEntry] = Field(default_factory=list, description="The certificates the CRL lists.")
    s3_bucket: str | None = Field(None, min_length=3, max_length=63, description="Also publish the DER CRL here.")
    s3_key: str | None = Field(None, description="Object key (default: crl/<ceremony>/<number>.crl).")


class ExportSpec(Strict):
    to: Name = Field(description="The target HSM (declared under hsms) that receives a copy of the root key.")
    label: str | None = Field(None, min_length=1, max_length=64, description="Label on the target (default: the "
                              "root key's).")


class RootCeremony(Strict):
    """A later ceremony that needs the root again: bring it back, use it, put it away again."""

    api_version: Literal["pki-ceremony/v1"] = Field(alias="apiVersion")
    kind: Literal["RootCeremony"]
    metadata: Metadata
    base: str = Field(description="The ceremony file that made the root (relative to this file). Its workspace "
                                  "is this ceremony's too: the PKI's one record.")
    hsms: dict[Name, HsmSpec] = Field(default_factory=dict, description="Further HSMs, e.g. an export target.")
    subordinates: list[SubordinateSpec] = Field(default_factory=list, description="New CAs, as in "
                                                 "hierarchy.subordinates: below the root (which is brought back to "
                                                 "sign them) or below any CA of the base or of this file.")
    crl: CrlSpec | None = Field(None, description="Sign a CRL.")
    export: ExportSpec | None = Field(None, description="Copy the root key to another HSM.")

    @model_validator(mode="after")
    def _something(self) -> "RootCeremony":
        if self.crl is None and self.export is None and not self.subordinates:
            raise ValueError("a root ceremony needs 'subordinates', 'crl' or 'export': what is the root brought "
                             "back for?")
        return self

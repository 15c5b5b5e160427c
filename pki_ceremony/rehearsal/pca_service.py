"""The acm-pca operations of the stand-in (target prefix ``ACMPrivateCA``).

Lifecycle, as AWS documents it: a new CA is CREATING; its CSR is not ready on the first
poll (RequestInProgressException), then the CA is PENDING_CERTIFICATE; importing its
certificate makes it ACTIVE; UpdateCertificateAuthority only switches ACTIVE <->
DISABLED; DeleteCertificateAuthority is refused for an ACTIVE CA and puts the others in
DELETED with a 7-30 day restore window (a CA deleted while CREATING or FAILED has none
and is gone at once); an ACTIVE CA whose certificate has expired reads as EXPIRED.
Deleted CAs stay in ListCertificateAuthorities until their restore window ends, as AWS
lists them. IdempotencyTokens are remembered for 5 minutes of the stand-in clock.
An issued certificate is not available on the first GetCertificate poll.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import pca_keys, pca_names, pca_rules, pca_templates, pca_validity
from .clock import Clock
from .protocol import (
    ACCOUNT_ID, AwsError, RequestContext, check_length, decode_blob, paginate, require,
    validation_error,
)
from .settings import Settings
from .store import Store

IDEMPOTENCY_WINDOW = dt.timedelta(minutes=5)
CA_ARN_MARKER = ":certificate-authority/"
NOT_VALID_FOR_ISSUING = "The certificate authority is not in a valid state for issuing certificates."


class PcaService:
    NAME = "acm-pca"
    TARGET_PREFIX = "ACMPrivateCA"
    MUTATING = frozenset({
        "CreateCertificateAuthority", "ImportCertificateAuthorityCertificate", "IssueCertificate",
        "UpdateCertificateAuthority", "DeleteCertificateAuthority", "RestoreCertificateAuthority",
        "TagCertificateAuthority", "UntagCertificateAuthority",
    })

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings

    # ---- plumbing -------------------------------------------------------------------

    def operations(self) -> dict[str, Callable[[dict[str, Any], RequestContext], dict[str, Any]]]:
        return {
            name.removeprefix("op_"): getattr(self, name)
            for name in dir(self) if name.startswith("op_")
        }

    @property
    def _state(self) -> dict[str, Any]:
        section = self._store.section(self.NAME)
        for key in ("cas", "certificates", "tokens"):
            section.setdefault(key, {})
        return section

    def _now(self) -> dt.datetime:
        return self._clock.now()

    def _ca(self, arn: Any) -> dict[str, Any]:
        if not isinstance(arn, str) or CA_ARN_MARKER not in arn or not arn.startswith("arn:"):
            raise AwsError("InvalidArnException", f"The ARN {arn!r} is not a certificate authority ARN.")
        record = self._state["cas"].get(arn)
        if record is not None and record["status"] == "DELETED":
            until = record.get("restorable_until")
            if until is None or self._now().timestamp() > until:
                del self._state["cas"][arn]
                record = None
        if record is None:
            raise AwsError("ResourceNotFoundException", f"Could not find certificate authority {arn}.")
        return record

    def _status(self, record: dict[str, Any]) -> str:
        status = record["status"]
        if status == "ACTIVE" and record.get("not_after") and self._now().timestamp() > record["not_after"]:
            return "EXPIRED"
        return status

    def _observe(self, record: dict[str, Any]) -> None:
        """Count a poll that saw a CREATING CA; after ``pending_polls`` of them its CSR is ready."""
        if record["status"] != "CREATING":
            return
        record["pending_polls"] = max(0, record.get("pending_polls", 0) - 1)
        if record["pending_polls"] == 0:
            self._set_status(record, "PENDING_CERTIFICATE")

    def _set_status(self, record: dict[str, Any], status: str) -> None:
        record["status"] = status
        record["last_state_change_at"] = self._now().timestamp()

    def _remember_token(self, key: str, arn: str) -> None:
        self._state["tokens"][key] = {"arn": arn, "at": self._now().timestamp()}

    def _recall_token(self, key: str) -> str | None:
        tokens = self._state["tokens"]
        cutoff = (self._now() - IDEMPOTENCY_WINDOW).timestamp()
        for stale in [k for k, v in tokens.items() if v["at"] < cutoff]:
            del tokens[stale]
        entry = tokens.get(key)
        return entry["arn"] if entry else None

    def _describe(self, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Arn": record["arn"],
            "OwnerAccount": ACCOUNT_ID,
            "CreatedAt": record["created_at"],
            "LastStateChangeAt": record["last_state_change_at"],
            "Type": record["type"],
            "Status": self._status(record),
            "CertificateAuthorityConfiguration": record["configuration"],
            "RevocationConfiguration": record["revocation"],
            "KeyStorageSecurityStandard": record["key_storage_security_standard"],
            "UsageMode": record["usage_mode"],
        }
        for field, key in (("Serial", "serial"), ("NotBefore", "not_before"),
                           ("NotAfter", "not_after"), ("RestorableUntil", "restorable_until")):
            if record.get(key) is not None:
                out[field] = record[key]
        return out

    # ---- create, describe, list -------------------------------------------------------

    def op_CreateCertificateAuthority(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        configuration = require(params, "CertificateAuthorityConfiguration")
        ca_type = require(params, "CertificateAuthorityType")
        token = params.get("IdempotencyToken")
        check_length(token, "idempotencyToken", 36)
        if ca_type not in ("ROOT", "SUBORDINATE"):
            raise validation_error("certificateAuthorityType",
                                   "Member must satisfy enum value set: [ROOT, SUBORDINATE]", ca_type)
        for member in ("KeyAlgorithm", "SigningAlgorithm", "Subject"):
            if configuration.get(member) is None:
                raise validation_error(f"certificateAuthorityConfiguration.{member[0].lower()}{member[1:]}",
                                       "Member must not be null")
        tags = params.get("Tags") or []
        self._check_tags(tags)
        token_key = f"create|{ctx.region}|{token}" if token is not None else None
        if token_key:
            known = self._recall_token(token_key)
            if known and known in self._state["cas"]:
                return {"CertificateAuthorityArn": known}

        pca_keys.check_pair(configuration["KeyAlgorithm"], configuration["SigningAlgorithm"])
        pca_names.subject_to_name(configuration["Subject"])
        key = pca_keys.generate(configuration["KeyAlgorithm"])
        csr_pem = pca_names.build_ca_csr(key, configuration)

        arn = f"arn:aws:acm-pca:{ctx.region}:{ACCOUNT_ID}:certificate-authority/{uuid.uuid4()}"
        now = self._now().timestamp()
        polls = self._settings.pending_polls
        self._state["cas"][arn] = {
            "arn": arn,
            "region": ctx.region,
            "type": ca_type,
            "status": "CREATING" if polls > 0 else "PENDING_CERTIFICATE",
            "pending_polls": polls,
            "created_at": now,
            "last_state_change_at": now,
            "configuration": configuration,
            "revocation": params.get("RevocationConfiguration") or {},
            "key_storage_security_standard": params.get("KeyStorageSecurityStandard", "FIPS_140_2_LEVEL_3_OR_HIGHER"),
            "usage_mode": params.get("UsageMode", "GENERAL_PURPOSE"),
            "tags": [dict(tag) for tag in tags],
            "key_pem": pca_keys.to_pem(key),
            "csr_pem": csr_pem,
            "certificate": None,
            "chain": None,
        }
        if token_key:
            self._remember_token(token_key, arn)
        return {"CertificateAuthorityArn": arn}

    def op_DescribeCertificateAuthority(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._ca(require(params, "CertificateAuthorityArn"))
        out = {"CertificateAuthority": self._describe(record)}
        self._observe(record)
        return out

    def op_ListCertificateAuthorities(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        if params.get("ResourceOwner") == "OTHER_ACCOUNTS":
            return {"CertificateAuthorities": []}
        records = []
        for arn in list(self._state["cas"]):
            try:
                record = self._ca(arn)
            except AwsError:
                continue  # purged: its restore window has passed
            if record["region"] == ctx.region:
                records.append(record)
        page, token = paginate(records, params.get("NextToken"), params.get("MaxResults"),
                               1000, "InvalidNextTokenException")
        out: dict[str, Any] = {"CertificateAuthorities": [self._describe(r) for r in page]}
        if token:
            out["NextToken"] = token
        for record in page:
            self._observe(record)
        return out

    # ---- CSR and the CA certificate -------------------------------------------------

    def op_GetCertificateAuthorityCsr(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._ca(require(params, "CertificateAuthorityArn"))
        status = self._status(record)
        if status == "CREATING":
            self._observe(record)
            raise AwsError("RequestInProgressException", "The certificate authority's CSR is being created.")
        if status in ("DELETED", "FAILED"):
            raise AwsError("InvalidStateException", f"The certificate authority is {status}.")
        return {"Csr": record["csr_pem"]}

    def op_ImportCertificateAuthorityCertificate(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._ca(require(params, "CertificateAuthorityArn"))
        certificate_pem = decode_blob(require(params, "Certificate"), "Certificate")
        chain_pem = None
        if params.get("CertificateChain"):
            chain_pem = decode_blob(params["CertificateChain"], "CertificateChain")
        status = self._status(record)
        if status == "CREATING":
            raise AwsError("RequestInProgressException", "The certificate authority is still being created.")
        if status not in ("PENDING_CERTIFICATE", "ACTIVE", "DISABLED", "EXPIRED"):
            raise AwsError("InvalidStateException",
                           f"A certificate cannot be imported into a certificate authority in the {status} state.")
        key = pca_keys.from_pem(record["key_pem"])
        imported = pca_rules.check_import(record["type"], key.public_key(), certificate_pem, chain_pem)
        certificate = imported.certificate
        record["certificate"] = certificate_pem.decode("ascii")
        record["chain"] = chain_pem.decode("ascii") if imported.chain else None
        record["serial"] = format(certificate.serial_number, "x")
        record["not_before"] = certificate.not_valid_before_utc.timestamp()
        record["not_after"] = certificate.not_valid_after_utc.timestamp()
        if record["status"] != "DISABLED":
            self._set_status(record, "ACTIVE")
        return {}

    def op_GetCertificateAuthorityCertificate(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._ca(require(params, "CertificateAuthorityArn"))
        if record.get("certificate") is None:
            raise AwsError("InvalidStateException",
                           f"The certificate authority is {self._status(record)} and has no certificate.")
        out = {"Certificate": record["certificate"]}
        if record.get("chain"):
            out["CertificateChain"] = record["chain"]
        return out

    # ---- issuing --------------------------------------------------------------------

    def _issuer_path(self, record: dict[str, Any]) -> list[x509.Certificate]:
        path = pca_rules.parse_pem_certificates(record["certificate"].encode("ascii"), "certificate")
        if record.get("chain"):
            path += pca_rules.parse_pem_certificates(record["chain"].encode("ascii"), "certificate chain")
        return path

    def _load_csr(self, data: bytes) -> x509.CertificateSigningRequest:
        try:
            csr = x509.load_pem_x509_csr(data)
        except ValueError as exc:
            raise AwsError("MalformedCSRException", f"The CSR could not be parsed as PEM PKCS#10: {exc}") from exc
        if not csr.is_signature_valid:
            raise AwsError("MalformedCSRException", "The CSR's signature does not verify.")
        has_san = any(isinstance(e.value, x509.SubjectAlternativeName) for e in csr.extensions)
        if not csr.subject and not has_san:
            raise AwsError("MalformedCSRException", "A CSR must provide a subject name or a subject alternative name.")
        return csr

    def op_IssueCertificate(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        ca_arn = require(params, "CertificateAuthorityArn")
        csr_bytes = decode_blob(require(params, "Csr"), "Csr")
        signing_algorithm = require(params, "SigningAlgorithm")
        validity = require(params, "Validity")
        token = params.get("IdempotencyToken")
        check_length(token, "idempotencyToken", 36)
        record = self._ca(ca_arn)
        token_key = f"issue|{ca_arn}|{token}" if token is not None else None
        if token_key:
            known = self._recall_token(token_key)
            if known and known in self._state["certificates"]:
                return {"CertificateArn": known}

        template = pca_templates.parse_template_arn(params.get("TemplateArn"))
        status = self._status(record)
        if template.self_signed:
            if record["type"] != "ROOT":
                raise AwsError("InvalidArgsException",
                               "RootCACertificate/V1 can only be used by a ROOT certificate authority.")
            if status not in ("PENDING_CERTIFICATE", "ACTIVE"):
                raise AwsError("InvalidStateException", NOT_VALID_FOR_ISSUING)
        elif status != "ACTIVE":
            raise AwsError("InvalidStateException", NOT_VALID_FOR_ISSUING)

        key = pca_keys.from_pem(record["key_pem"])
        pca_keys.check_signing_with(key, signing_algorithm)
        csr = self._load_csr(csr_bytes)
        if template.self_signed and pca_keys.public_der(csr.public_key()) != pca_keys.public_der(key.public_key()):
            raise AwsError("InvalidArgsException",
                           "RootCACertificate/V1 signs the certificate authority's own CSR; this CSR has another key.")

        issued_at = self._now()
        not_before, not_after = pca_validity.window(validity, params.get("ValidityNotBefore"), issued_at)
        issuer_certificate = None
        if not template.self_signed:
            path = self._issuer_path(record)
            issuer_certificate = path[0]
            if template.is_ca:
                depth_error = pca_rules.issuance_depth_error(path, template.path_length or 0)
                if depth_error:
                    raise AwsError("InvalidArgsException", depth_error)
            ca_not_after = issuer_certificate.not_valid_after_utc
            if not_after > ca_not_after:
                if self._settings.not_after_beyond_issuer == "reject":
                    raise AwsError("InvalidArgsException",
                                   "The certificate validity specified exceeds the certificate authority validity.")
                not_after = ca_not_after
        if not_after <= not_before or not_after <= issued_at:
            raise AwsError("InvalidArgsException", "The certificate validity ends before it starts or in the past.")

        issuer = pca_templates.Issuer(key=key, certificate=issuer_certificate, revocation=record["revocation"],
                                      region=record["region"], ca_id=ca_arn.rsplit("/", 1)[-1])
        certificate = pca_templates.build_certificate(
            template, csr, issuer, signing_algorithm, not_before, not_after, x509.random_serial_number()
        )
        certificate_arn = f"{ca_arn}/certificate/{uuid.uuid4().hex}"
        chain = None
        if not template.self_signed:
            parts = (record["certificate"], record.get("chain") or "")
            chain = "\n".join(part.strip() for part in parts if part.strip()) + "\n"
        self._state["certificates"][certificate_arn] = {
            "arn": certificate_arn,
            "ca_arn": ca_arn,
            "certificate": certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            "chain": chain,
            "serial": format(certificate.serial_number, "x"),
            "template": template.name,
            "issued_at": issued_at.timestamp(),
            "pending_polls": self._settings.pending_polls,
        }
        if token_key:
            self._remember_token(token_key, certificate_arn)
        return {"CertificateArn": certificate_arn}

    def op_GetCertificate(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        ca_arn = require(params, "CertificateAuthorityArn")
        certificate_arn = require(params, "CertificateArn")
        self._ca(ca_arn)
        record = self._state["certificates"].get(certificate_arn)
        if record is None or record["ca_arn"] != ca_arn:
            raise AwsError("ResourceNotFoundException", f"Could not find certificate {certificate_arn}.")
        if record.get("pending_polls", 0) > 0:
            record["pending_polls"] -= 1
            raise AwsError("RequestInProgressException", "The certificate is being issued.")
        out = {"Certificate": record["certificate"]}
        if record.get("chain"):
            out["CertificateChain"] = record["chain"]
        return out

    # ---- status changes -------------------------------------------------------------

    def op_UpdateCertificateAuthority(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._ca(require(params, "CertificateAuthorityArn"))
        status = self._status(record)
        wanted = params.get("Status")
        if wanted is not None and wanted not in ("ACTIVE", "DISABLED"):
            raise AwsError("InvalidArgsException", f"The status can only be set to ACTIVE or DISABLED, not {wanted}.")
        if status not in ("ACTIVE", "DISABLED"):
            raise AwsError("InvalidStateException",
                           f"The certificate authority is {status}; only an ACTIVE or DISABLED one can be updated.")
        if params.get("RevocationConfiguration") is not None:
            record["revocation"] = params["RevocationConfiguration"]
        if wanted is not None and wanted != status:
            self._set_status(record, wanted)
        return {}

    def op_DeleteCertificateAuthority(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = require(params, "CertificateAuthorityArn")
        record = self._ca(arn)
        days = params.get("PermanentDeletionTimeInDays", 30)
        if not isinstance(days, int) or not 7 <= days <= 30:
            raise validation_error("permanentDeletionTimeInDays", "Member must have value between 7 and 30", days)
        status = self._status(record)
        if status in ("CREATING", "FAILED"):
            del self._state["cas"][arn]
            return {}
        if status not in ("PENDING_CERTIFICATE", "DISABLED", "EXPIRED"):
            raise AwsError("InvalidStateException",
                           f"The certificate authority is {status}; disable it before deleting it."
                           if status == "ACTIVE" else f"The certificate authority is already {status}.")
        record["status_before_delete"] = record["status"]
        record["restorable_until"] = (self._now() + dt.timedelta(days=days)).timestamp()
        self._set_status(record, "DELETED")
        return {}

    def op_RestoreCertificateAuthority(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._ca(require(params, "CertificateAuthorityArn"))
        if record["status"] != "DELETED":
            raise AwsError("InvalidStateException",
                           f"The certificate authority is {self._status(record)}, not DELETED.")
        previous = record.pop("status_before_delete", "PENDING_CERTIFICATE")
        record.pop("restorable_until", None)
        self._set_status(record, previous)
        return {}

    # ---- tags -----------------------------------------------------------------------

    @staticmethod
    def _check_tags(tags: Any) -> None:
        if not isinstance(tags, list):
            raise validation_error("tags", "Member must be a list", tags)
        if len(tags) > 50:
            raise AwsError("TooManyTagsException", "A certificate authority can have at most 50 tags.")
        for tag in tags:
            if not isinstance(tag, dict) or not isinstance(tag.get("Key"), str) or not 1 <= len(tag["Key"]) <= 128:
                raise AwsError("InvalidTagException", f"Invalid tag {tag!r}.")
            if not isinstance(tag.get("Value", ""), str) or len(tag.get("Value", "")) > 256:
                raise AwsError("InvalidTagException", f"Invalid tag value in {tag!r}.")

    def op_TagCertificateAuthority(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._ca(require(params, "CertificateAuthorityArn"))
        tags = require(params, "Tags")
        self._check_tags(tags)
        merged = {tag["Key"]: tag for tag in record["tags"]}
        for tag in tags:
            merged[tag["Key"]] = dict(tag)
        if len(merged) > 50:
            raise AwsError("TooManyTagsException", "A certificate authority can have at most 50 tags.")
        record["tags"] = list(merged.values())
        return {}

    def op_UntagCertificateAuthority(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._ca(require(params, "CertificateAuthorityArn"))
        tags = require(params, "Tags")
        self._check_tags(tags)
        kept = []
        for existing in record["tags"]:
            removed = any(
                tag["Key"] == existing["Key"] and ("Value" not in tag or tag["Value"] == existing.get("Value"))
                for tag in tags
            )
            if not removed:
                kept.append(existing)
        record["tags"] = kept
        return {}

    def op_ListTags(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._ca(require(params, "CertificateAuthorityArn"))
        page, token = paginate(record["tags"], params.get("NextToken"), params.get("MaxResults"),
                               1000, "InvalidNextTokenException")
        out: dict[str, Any] = {"Tags": page}
        if token:
            out["NextToken"] = token
        return out


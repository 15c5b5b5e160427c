"""Step plugins of the `aws-pca` backend: a subordinate CA that lives in AWS Private CA.

  aws_pca.create     create_certificate_authority (SUBORDINATE), tagged with the ceremony's
                     lineage and step so a resumed ceremony finds it again and never makes a second
  aws_pca.csr        wait for the CSR (boto3 waiter), fetch it, check it
  aws_pca.issue_ca   the issuer is in Private CA: issue_certificate with the PathLenN template
                     and an absolute NotAfter, wait, fetch certificate and chain, check them
  aws_pca.import     every Private CA import rule checked first (pca_import_rules), then
                     import_certificate_authority_certificate, then confirm ACTIVE and that Private CA
                     returns exactly what was imported

An IdempotencyToken lives only 5 minutes, so it is used only for retries within one attempt;
adoption after an interruption goes by tags. Issued certificates cannot be tagged: an issue
resumed within 5 minutes reuses its token (and gets the same certificate back); later, a
second certificate for the same CSR may be issued (never a second CA), and the summary says so.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from cryptography import x509

from pki_ceremony.engine.contract import StepCall, StepPlugin, StepResult

from .aws_clients import AwsError, call
from .pca_import_rules import check_pca_import
from .runtime import Runtime
from .x509_profile import (CertificateError, describe, load_cert, load_chain, same_key, to_pem, validity_window,
                           verify_signed_by)

TAG_LINEAGE, TAG_STEP, TAG_CEREMONY = "pki-ceremony:lineage", "pki-ceremony:step", "pki-ceremony:ceremony"
TOKEN_LIFETIME_S = 300
_SUBJECT_KEYS = {"country": "Country", "state": "State", "locality": "Locality", "organization": "Organization",
                 "organizational_unit": "OrganizationalUnit", "common_name": "CommonName"}


def aws_subject(subject: dict) -> dict:
    return {_SUBJECT_KEYS[k]: v for k, v in subject.items()}


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _pca(ctx: Runtime):
    return ctx.aws.client("acm-pca")


def _revocation(spec: dict) -> dict:
    rev = spec.get("revocation") or {}
    out = {"CrlConfiguration": {"Enabled": False}, "OcspConfiguration": {"Enabled": bool(rev.get("ocsp"))}}
    crl = rev.get("crl")
    if crl:
        out["CrlConfiguration"] = {"Enabled": True, "ExpirationInDays": crl["expiration_days"],
                                   "S3BucketName": crl["s3_bucket"]}
        if crl.get("custom_cname"):
            out["CrlConfiguration"]["CustomCname"] = crl["custom_cname"]
    return out


def find_by_tags(ctx: Runtime, lineage: str, step_id: str, common_name: str) -> list[str]:
    """ARNs of live CAs tagged with this ceremony lineage and step (checked by subject first)."""
    pca = _pca(ctx)
    found = []
    for page in pca.get_paginator("list_certificate_authorities").paginate():
        for ca in page.get("CertificateAuthorities", []):
            if ca.get("Status") in ("DELETED", "FAILED") or ca.get("Type") != "SUBORDINATE":
                continue
            cn = ca.get("CertificateAuthorityConfiguration", {}).get("Subject", {}).get("CommonName")
            if cn != common_name:
                continue
            tags = {t["Key"]: t.get("Value") for t in
                    call("list tags", pca.list_tags, CertificateAuthorityArn=ca["Arn"]).get("Tags", [])}
            if tags.get(TAG_LINEAGE) == lineage and tags.get(TAG_STEP) == step_id:
                found.append(ca["Arn"])
    return found


class AwsPcaCreate(StepPlugin):
    kind = "aws_pca.create"

    def intend(self, call_: StepCall, ctx: Runtime) -> dict:
        return {"idempotency_token": uuid.uuid4().hex, "lineage": ctx.lineage}

    def _adopt(self, call_: StepCall, ctx: Runtime) -> StepResult | None:
        arns = find_by_tags(ctx, call_.intent["lineage"], call_.step_id, call_.spec["subject"]["common_name"])
        if len(arns) > 1:
            raise AwsError(f"{len(arns)} Private CAs carry the tags of this step: " + ", ".join(arns),
                           hint="keep one: disable (if ACTIVE) and delete the others, then run apply again")
        if arns:
            return StepResult({"arn": arns[0], "region": ctx.aws.region}, summary=f"found {arns[0]} by its tags")
        return None

    def adopt(self, call_: StepCall, ctx: Runtime) -> StepResult | None:
        with ctx.aws.counting() as calls:
            result = self._adopt(call_, ctx)
        if result is not None:
            result.api_calls = dict(calls)
        return result

    def refresh(self, call_: StepCall, outputs: dict, ctx: Runtime) -> list[str]:
        return _ca_differences(ctx, outputs["arn"], None)

    def run(self, call_: StepCall, ctx: Runtime) -> StepResult:
        spec = call_.spec
        with ctx.aws.counting() as calls:
            found = self._adopt(call_, ctx)  # never a second CA, even if the state was lost
            if found is not None:
                found.api_calls = dict(calls)
                return found
            tags = [{"Key": k, "Value": v} for k, v in sorted(spec["tags"].items())]
            tags += [{"Key": TAG_LINEAGE, "Value": call_.intent["lineage"]}, {"Key": TAG_STEP, "Value": call_.step_id},
                     {"Key": TAG_CEREMONY, "Value": ctx.ceremony_name}]
            options = {"UsageMode": spec.get("usage_mode") or "GENERAL_PURPOSE"}
            if spec.get("key_storage_security_standard"):
                options["KeyStorageSecurityStandard"] = spec["key_storage_security_standard"]
            arn = call("create the CA", _pca(ctx).create_certificate_authority,
                       CertificateAuthorityConfiguration={"KeyAlgorithm": spec["key_algorithm"],
                                                          "SigningAlgorithm": spec["signing_algorithm"],
                                                          "Subject": aws_subject(spec["subject"])},
                       RevocationConfiguration=_revocation(spec), CertificateAuthorityType="SUBORDINATE",
                       IdempotencyToken=call_.intent["idempotency_token"], Tags=tags,
                       **options)["CertificateAuthorityArn"]
        return StepResult({"arn": arn, "region": ctx.aws.region}, summary=arn, api_calls=dict(calls))


class AwsPcaCsr(StepPlugin):
    kind = "aws_pca.csr"

    def run(self, call_: StepCall, ctx: Runtime) -> StepResult:
        arn = call_.inputs["ca"]["arn"]
        pca = _pca(ctx)
        with ctx.aws.counting() as calls:
            ctx.waiting(f"Private CA to make the CSR of {arn}")
            waiter = pca.get_waiter("certificate_authority_csr_created")
            call("wait for the CSR", waiter.wait, CertificateAuthorityArn=arn, WaiterConfig=ctx.aws.waiter_config())
            pem = call("fetch the CSR", pca.get_certificate_authority_csr, CertificateAuthorityArn=arn)["Csr"]
        csr = x509.load_pem_x509_csr(pem.encode())
        if not csr.is_signature_valid:
            raise CertificateError("the CSR from Private CA does not verify")
        want = call_.spec["subject"]["common_name"]
        got = [a.value for a in csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
        if got != [want]:
            raise CertificateError(f"the CSR from Private CA is for {got}, not '{want}'")
        return StepResult({"csr_pem": pem}, {"csr.pem": pem.encode()}, summary="CSR fetched",
                          api_calls=dict(calls))


class AwsPcaIssueCa(StepPlugin):
    kind = "aws_pca.issue_ca"

    def preflight(self, call_: StepCall) -> list[str]:
        from .hsm_steps import validity_problems

        return validity_problems(call_)

    def intend(self, call_: StepCall, ctx: Runtime) -> dict:
        issuer = load_cert(call_.inputs["issuer_certificate"]["certificate_pem"])
        not_before, not_after = validity_window(call_.spec["validity"], issuer.not_valid_after_utc)
        return {"idempotency_token": uuid.uuid4().hex, "not_after": not_after.isoformat(),
                "requested_at": not_before.isoformat()}

    def run(self, call_: StepCall, ctx: Runtime) -> StepResult:
        issuer_arn = call_.inputs["issuer_key"]["arn"]
        issuer = load_cert(call_.inputs["issuer_certificate"]["certificate_pem"])
        csr_pem = call_.inputs["csr"]["csr_pem"]
        not_after = datetime.fromisoformat(call_.intent["not_after"])
        age = (datetime.now(timezone.utc) - datetime.fromisoformat(call_.intent["requested_at"])).total_seconds()
        pca = _pca(ctx)
        with ctx.aws.counting() as calls:
            cert_arn = call("issue the CA certificate", pca.issue_certificate, CertificateAuthorityArn=issuer_arn,
                            Csr=csr_pem.encode(), SigningAlgorithm=call_.spec["signing_algorithm"],
                            TemplateArn=f"arn:{partition(ctx.aws.region)}:acm-pca:::template/{call_.spec['template']}",
                            Validity={"Value": int(not_after.timestamp()), "Type": "ABSOLUTE"},
                            IdempotencyToken=call_.intent["idempotency_token"])["CertificateArn"]
            ctx.waiting(f"Private CA to issue {cert_arn}")
            call("wait for the certificate", pca.get_waiter("certificate_issued").wait,
                 CertificateAuthorityArn=issuer_arn, CertificateArn=cert_arn, WaiterConfig=ctx.aws.waiter_config())
            got = call("fetch the certificate", pca.get_certificate, CertificateAuthorityArn=issuer_arn,
                       CertificateArn=cert_arn)
        cert = load_cert(got["Certificate"])
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        if not same_key(cert.public_key(), csr.public_key()):
            raise CertificateError("Private CA issued a certificate for another key than the CSR's")
        verify_signed_by(cert, issuer.public_key())
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not bc.ca or bc.path_length != call_.spec["path_len"]:
            raise CertificateError(f"Private CA issued CA={bc.ca} pathLen={bc.path_length}, "
                                   f"not pathLen {call_.spec['path_len']}")
        if cert.not_valid_after_utc != not_after:
            raise CertificateError(f"Private CA issued a certificate ending {cert.not_valid_after_utc}, not {not_after}")
        note = "" if age < TOKEN_LIFETIME_S else (
            "; resumed after the 5-minute idempotency window: a certificate the interrupted attempt may have "
            "issued for this CSR is not tracked")
        return StepResult({"certificate_pem": to_pem(cert), "chain_pem": got.get("CertificateChain", ""),
                           "certificate_arn": cert_arn, **describe(cert)},
                          {"certificate.pem": to_pem(cert).encode()},
                          summary=f"serial {cert.serial_number:x}, until {cert.not_valid_after_utc:%Y-%m-%d}{note}",
                          api_calls=dict(calls))


def _same_pem(a: str, b: str) -> bool:
    """Same certificates in the same order (PEM line breaks and trailing newlines aside)."""
    return [to_pem(c) for c in load_chain(a)] == [to_pem(c) for c in load_chain(b)]


def _ca_differences(ctx: Runtime, arn: str, certificate_pem: str | None) -> list[str]:
    """How the CA in Private CA differs from what the state recorded (read-only)."""
    from botocore.exceptions import ClientError

    pca = _pca(ctx)
    try:
        ca = pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
    except ClientError as exc:
        return [f"{arn}: {exc.response.get('Error', {}).get('Code', 'error')}"]
    if certificate_pem is None:
        return [] if ca["Status"] in ("PENDING_CERTIFICATE", "ACTIVE") else [f"{arn} is {ca['Status']}"]
    if ca["Status"] != "ACTIVE":
        return [f"{arn} is {ca['Status']}, not ACTIVE"]
    have = pca.get_certificate_authority_certificate(CertificateAuthorityArn=arn)["Certificate"]
    return [] if _same_pem(have, certificate_pem) else [f"{arn} holds another certificate than recorded"]


class AwsPcaImport(StepPlugin):
    kind = "aws_pca.import"

    def refresh(self, call_: StepCall, outputs: dict, ctx: Runtime) -> list[str]:
        return _ca_differences(ctx, outputs["arn"], outputs["certificate_pem"])

    def run(self, call_: StepCall, ctx: Runtime) -> StepResult:
        arn = call_.inputs["ca"]["arn"]
        cert_pem = call_.inputs["certificate"]["certificate_pem"]
        issuer = call_.inputs["issuer_certificate"]
        chain_pem = issuer["certificate_pem"] + issuer.get("chain_pem", "")
        check_pca_import(cert_pem, chain_pem, call_.inputs["csr"]["csr_pem"], "SUBORDINATE")
        pca = _pca(ctx)
        with ctx.aws.counting() as calls:
            status = call("describe the CA", pca.describe_certificate_authority,
                          CertificateAuthorityArn=arn)["CertificateAuthority"]["Status"]
            if status == "ACTIVE":
                have = call("fetch the CA certificate", pca.get_certificate_authority_certificate,
                            CertificateAuthorityArn=arn)
                if not _same_pem(have["Certificate"], cert_pem):
                    raise AwsError(f"{arn} is ACTIVE with another certificate; refusing to replace it")
            elif status == "PENDING_CERTIFICATE":
                call("import the CA certificate", pca.import_certificate_authority_certificate,
                     CertificateAuthorityArn=arn, Certificate=cert_pem.encode(), CertificateChain=chain_pem.encode())
            else:
                raise AwsError(f"{arn} is {status}: a certificate can be imported only while PENDING_CERTIFICATE")
            for attempt in range(30):  # the import may take a moment to show
                status = call("describe the CA", pca.describe_certificate_authority,
                              CertificateAuthorityArn=arn)["CertificateAuthority"]["Status"]
                if status == "ACTIVE":
                    break
                ctx.waiting(f"{arn} to become ACTIVE")
                time.sleep(min(1 + attempt, 5))
            back = call("fetch the CA certificate", pca.get_certificate_authority_certificate,
                        CertificateAuthorityArn=arn)
        if status != "ACTIVE":
            raise AwsError(f"{arn} is {status} after the import, not ACTIVE")
        if not _same_pem(back["Certificate"], cert_pem) or not _same_pem(back.get("CertificateChain", ""), chain_pem):
            raise AwsError("Private CA returns another certificate or chain than the one imported")
        cert = load_cert(back["Certificate"])
        return StepResult({"certificate_pem": to_pem(cert), "chain_pem": back["CertificateChain"], "arn": arn,
                           **describe(cert)},
                          {"chain.pem": back["CertificateChain"].encode()},
                          summary=f"{arn} ACTIVE; certificate and chain read back identical", api_calls=dict(calls))


BUILTIN = (AwsPcaCreate, AwsPcaCsr, AwsPcaIssueCa, AwsPcaImport)

"""x509.crl: the root's CRL, signed inside the HSM.

thisUpdate and nextUpdate lie inside the issuer's validity; nextUpdate is after thisUpdate and at
most 12 months later; the CRL number is one more than the highest in the workspace's series (it
only grows, across every ceremony that shares the workspace); AKI is the issuer's SKI; the
signature is verified right after it is made; the DER is optionally published to S3.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from pki_ceremony.engine.contract import StepCall, StepPlugin, StepResult
from pki_ceremony.schemas.ceremony import add_validity

from .aws_clients import call as aws_call
from .hsm_keys import KeyRef
from .hsm_signer import hsm_signer
from .runtime import Runtime
from .x509_profile import CertificateError, hash_of, load_cert, now, same_key, ski_of

MAX_PERIOD = timedelta(days=366)
REASONS = {"key_compromise": x509.ReasonFlags.key_compromise, "ca_compromise": x509.ReasonFlags.ca_compromise,
           "affiliation_changed": x509.ReasonFlags.affiliation_changed, "superseded": x509.ReasonFlags.superseded,
           "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
           "certificate_hold": x509.ReasonFlags.certificate_hold,
           "privilege_withdrawn": x509.ReasonFlags.privilege_withdrawn}


class Crl(StepPlugin):
    kind = "x509.crl"

    @staticmethod
    def _dates(call: StepCall) -> tuple[datetime, datetime, list[str]]:
        issuer = load_cert(call.inputs["certificate"]["certificate_pem"])
        this_update = now()
        next_update = add_validity(this_update, call.spec["next_update"])
        problems = []
        if this_update < issuer.not_valid_before_utc:
            problems.append("thisUpdate would be before the issuer's certificate starts")
        if next_update > issuer.not_valid_after_utc:
            problems.append(f"nextUpdate {next_update:%Y-%m-%d} would be after the issuer's certificate ends "
                            f"({issuer.not_valid_after_utc:%Y-%m-%d}): shorten crl.next_update")
        if not this_update < next_update <= this_update + MAX_PERIOD:
            problems.append("nextUpdate must be after thisUpdate and at most 12 months later")
        return this_update, next_update, problems

    def preflight(self, call: StepCall) -> list[str]:
        return self._dates(call)[2]

    def intend(self, call: StepCall, ctx: Runtime) -> dict:
        this_update, next_update, problems = self._dates(call)
        if problems:
            raise CertificateError("; ".join(problems))
        number = max((o["crl_number"] for o in call.series), default=0) + 1
        return {"crl_number": number, "this_update": this_update.isoformat(), "next_update": next_update.isoformat()}

    def run(self, call: StepCall, ctx: Runtime) -> StepResult:
        issuer = load_cert(call.inputs["certificate"]["certificate_pem"])
        key = call.inputs["key"]
        signer = hsm_signer(ctx.token(key["hsm"]), KeyRef.from_outputs(key))
        if not same_key(signer.public_key(), issuer.public_key()):
            raise CertificateError("the key on the HSM is not the issuer certificate's key")
        this_update = datetime.fromisoformat(call.intent["this_update"])
        number = call.intent["crl_number"]
        builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
                   .last_update(this_update).next_update(datetime.fromisoformat(call.intent["next_update"]))
                   .add_extension(x509.CRLNumber(number), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier(ski_of(issuer), None, None), critical=False))
        for entry in call.spec["revoked"]:
            revoked = (x509.RevokedCertificateBuilder().serial_number(int(entry["serial"], 16))
                       .revocation_date(datetime.fromisoformat(entry["revoked_at"]) if entry.get("revoked_at")
                                        else this_update))
            if entry["reason"] in REASONS:  # 'unspecified' is left out, as RFC 5280 recommends
                revoked = revoked.add_extension(x509.CRLReason(REASONS[entry["reason"]]), critical=False)
            builder = builder.add_revoked_certificate(revoked.build())
        crl = builder.sign(signer, hash_of(call.spec["signing_algorithm"]))
        if not crl.is_signature_valid(issuer.public_key()):
            raise CertificateError("the CRL just signed in the HSM does not verify", hint="nothing was written; "
                                   "run apply again")
        der, pem = crl.public_bytes(Encoding.DER), crl.public_bytes(Encoding.PEM)
        outputs = {"crl_number": number, "this_update": call.intent["this_update"],
                   "next_update": call.intent["next_update"], "revoked": len(call.spec["revoked"]),
                   "sha256": hashes_hex(der), "crl_pem": pem.decode()}
        calls = {}
        if call.spec.get("s3_bucket"):
            key_name = call.spec.get("s3_key") or f"crl/{call.spec['ceremony']}/{number}.crl"
            with ctx.aws.counting() as counted:
                aws_call("publish the CRL", ctx.aws.client("s3").put_object, Bucket=call.spec["s3_bucket"],
                         Key=key_name, Body=der, ContentType="application/pkix-crl")
            calls = dict(counted)
            outputs["published"] = f"s3://{call.spec['s3_bucket']}/{key_name}"
        return StepResult(outputs, {f"crl-{number}.pem": pem, f"crl-{number}.crl": der},
                          summary=f"CRL number {number}, {len(call.spec['revoked'])} revoked, next update "
                                  f"{call.intent['next_update'][:10]}", api_calls=calls)


def hashes_hex(data: bytes) -> str:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize().hex()


BUILTIN = (Crl,)

"""A local stand-in for AWS Private CA (acm-pca) and CloudHSM v2, for ceremony rehearsals.

It speaks the real AWS JSON 1.1 protocol over HTTP, so boto3 talks to it unchanged once
``AWS_ENDPOINT_URL_ACM_PCA`` / ``AWS_ENDPOINT_URL_CLOUDHSM_V2`` point at it, and it
applies the rules AWS applies (key match, chain order and signatures, basic constraints,
critical extensions, pathLen, NotAfter cap, templates, statuses, idempotency window,
HSM/backup lifecycle) with AWS's error names.

Public API: ``StandInServer`` (start/stop/context manager), ``Settings``,
``ENDPOINT_VARIABLES``; ``python -m pki_ceremony.rehearsal.server`` runs it as a process.

Choices where AWS's documentation leaves room (each in one place, easy to change):

* Import errors: MalformedCertificateException for content, InvalidRequestException for
  prohibited requests, CertificateMismatchException for key mismatch and pathLen
  (``pca_rules``). Critical Name Constraints are accepted: the API reference lists them
  among the extensions that may be critical.
* IssueCertificate: NotAfter beyond the issuer's is capped (``Settings`` can reject
  instead); pathLen and algorithm-family errors are InvalidArgsException.
* ListCertificateAuthorities includes DELETED CAs until their restore window ends; a CA
  deleted while CREATING or FAILED is gone at once.
* Modules: ``protocol`` (framing), ``store`` + ``clock`` (state), ``pca_*`` (acm-pca),
  ``hsm_service`` (cloudhsmv2), ``app`` (dispatch, counters, hooks), ``server`` (HTTP).
"""

from typing import Any

__all__ = ["ENDPOINT_VARIABLES", "Settings", "StandInServer"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``python -m pki_ceremony.rehearsal.server`` does not import the
    # server module twice (runpy warns when the package has already imported it).
    if name in ("ENDPOINT_VARIABLES", "StandInServer"):
        from . import server

        return getattr(server, name)
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

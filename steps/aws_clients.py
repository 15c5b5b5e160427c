"""boto3 clients the way AWS users expect, with every API call counted per step.

boto3 is imported only here, and only when a ceremony uses AWS, so `validate` and local
ceremonies do not pay for it. Region and profile come from the ceremony file or the standard
environment; `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_ACM_PCA` / `AWS_ENDPOINT_URL_CLOUDHSM_V2`
are honoured by botocore itself; throttling and 5xx errors are retried by botocore's standard
retry mode. Credentials are never read, stored or printed by this tool.
"""
from __future__ import annotations

import contextvars
import os
import threading
from collections import Counter
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from pki_ceremony.errors import AuthenticationError, CeremonyError

MUTATING_PREFIXES = ("Create", "Delete", "Import", "Issue", "Modify", "Copy", "Restore", "Revoke", "Tag", "Untag",
                     "Update", "Put", "Initialize")
CRASH_ENV = "PKI_CEREMONY_TEST_CRASH_AWS_CALL"  # test hook: SIGKILL after the Nth AWS API call returns
_calls_made = 0
_CALLS: contextvars.ContextVar[Counter | None] = contextvars.ContextVar("pki_ceremony_aws_calls", default=None)


class AwsError(CeremonyError):
    pass


def is_mutating(operation: str) -> bool:
    return operation.startswith(MUTATING_PREFIXES)


class AwsClients:
    def __init__(self, region: str | None, profile: str | None, *, waiter_delay: float | None = None):
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        self.profile, self.waiter_delay = profile, waiter_delay
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        if not self.region:
            raise AwsError("no AWS region: set aws.region in the ceremony file, or AWS_REGION")

    def client(self, service: str):
        return self.regional_client(service, self.region)

    def regional_client(self, service: str, region: str):
        """A client per service and region (other regions: copies of backups), every call counted."""
        key = f"{service}@{region}"
        with self._lock:
            return self._client(key, service, region)

    def _client(self, key: str, service: str, region: str):
        if key not in self._clients:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(profile_name=self.profile, region_name=region)
            client = session.client(service, config=Config(retries={"mode": "standard", "max_attempts": 8},
                                                           user_agent_extra="pki-ceremony"))
            service_id = client.meta.service_model.service_id.hyphenize()
            client.meta.events.register(f"before-call.{service_id}", self._count)
            if os.environ.get(CRASH_ENV):
                client.meta.events.register(f"after-call.{service_id}", _crash_after_call)
            self._clients[key] = client
        return self._clients[key]

    @staticmethod
    def _count(model, **_):
        counter = _CALLS.get()
        if counter is not None:
            counter[model.name] += 1

    @contextmanager
    def counting(self) -> Iterator[Counter]:
        """Count the API calls made inside the block (per thread: one block per step)."""
        counter: Counter = Counter()
        token = _CALLS.set(counter)
        try:
            yield counter
        finally:
            _CALLS.reset(token)

    def waiter_config(self) -> dict:
        return {"Delay": self.waiter_delay} if self.waiter_delay else {}


def _crash_after_call(**_) -> None:
    """Test hook: die with SIGKILL right after the Nth API call answered (see docs/architecture.md)."""
    global _calls_made
    _calls_made += 1
    if _calls_made == int(os.environ[CRASH_ENV]):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def call(what: str, fn: Callable[..., Any], **kwargs) -> Any:
    """Run one AWS call, turning AWS's errors into one clear line with a hint."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, WaiterError

    try:
        return fn(**kwargs)
    except WaiterError as exc:
        err = (exc.last_response or {}).get("Error", {})
        if err.get("Code") in ("AccessDenied", "AccessDeniedException"):
            raise AuthenticationError(f"{what}: AWS denied the wait: {err.get('Message', '')}",
                                      hint="the caller's IAM policy needs the Get* action this waiter polls "
                                           "(see docs/aws.md)") from None
        raise AwsError(f"{what}: gave up waiting: {exc.last_response and err or exc}") from None
    except NoCredentialsError:
        raise AuthenticationError(f"{what}: no AWS credentials found",
                                  hint="configure credentials as for the AWS CLI (profile, environment, SSO)") from None
    except NoRegionError:
        raise AwsError(f"{what}: no AWS region", hint="set aws.region in the ceremony file, or AWS_REGION") from None
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code, message = err.get("Code", "?"), err.get("Message", "")
        op = exc.operation_name
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                    "CloudHsmAccessDeniedException"):
            extra = " and acm-pca:TagCertificateAuthority (tags are set at creation)" \
                if op == "CreateCertificateAuthority" else ""
            raise AuthenticationError(f"{what}: AWS denied {op}: {message}",
                                      hint=f"the caller's IAM policy must allow {op}{extra} (see docs/aws.md)") from None
        if code in ("UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException",
                    "InvalidSignatureException"):
            raise AuthenticationError(f"{what}: AWS refused the credentials ({code})",
                                      hint="refresh or fix the AWS credentials") from None
        if code == "InvalidStateException":
            raise AwsError(f"{what}: {op}: the CA is not in a valid state for this: {message}",
                           hint="check the CA's status with describe-certificate-authority; "
                                "a CA issues only once its certificate is imported (ACTIVE)") from None
        raise AwsError(f"{what}: {op} failed: {code}: {message}") from None
    except BotoCoreError as exc:
        raise AwsError(f"{what}: {type(exc).__name__}: {exc}") from None

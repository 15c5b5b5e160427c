"""AWS JSON 1.1 framing for the stand-in: targets, regions, errors, blobs and timestamps.

Everything here is service-neutral. A service raises ``AwsError(code, message)``; the
server turns it into HTTP 400 with ``{"__type": code, "message": message}``, which
botocore raises as ``ClientError`` whose ``Error.Code`` is ``code``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import re
from typing import Any

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")


@dataclasses.dataclass
class RequestContext:
    """What a service needs to know about one request besides its parameters.

    ``events`` collects (hook name, arguments) pairs that the server runs after the
    request, outside the lock, before it answers.
    """

    region: str = DEFAULT_REGION
    events: list[tuple[str, tuple[Any, ...]]] = dataclasses.field(default_factory=list)


class AwsError(Exception):
    """An error the stand-in returns to the client, named as AWS names it."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message}


def split_target(target: str | None) -> tuple[str, str]:
    """``"ACMPrivateCA.IssueCertificate"`` -> ``("ACMPrivateCA", "IssueCertificate")``."""
    if not target or "." not in target:
        raise AwsError(
            "UnknownOperationException",
            f"missing or malformed X-Amz-Target header: {target!r}",
        )
    prefix, _, operation = target.partition(".")
    return prefix, operation


def region_from_authorization(header: str | None) -> str:
    """The region of a SigV4 credential scope; the signature itself is not checked."""
    if header:
        match = _CREDENTIAL_SCOPE.search(header)
        if match:
            return match.group(1)
    return DEFAULT_REGION


def validation_error(field: str, constraint: str, value: Any = None) -> AwsError:
    """The front-door error AWS returns when a request breaks the service model."""
    shown = "null" if value is None else repr(value)
    return AwsError(
        "ValidationException",
        f"1 validation error detected: Value {shown} at '{field}' failed to satisfy "
        f"constraint: {constraint}",
    )


def require(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None:
        raise validation_error(name, "Member must not be null")
    return value


def check_length(value: str | None, name: str, maximum: int, minimum: int = 1) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise validation_error(name, "Member must be a string", value)
    if len(value) > maximum:
        raise validation_error(
            name, f"Member must have length less than or equal to {maximum}", value
        )
    if len(value) < minimum:
        raise validation_error(
            name, f"Member must have length greater than or equal to {minimum}", value
        )


def decode_blob(value: Any, name: str) -> bytes:
    """A JSON-protocol blob: base64 text on the wire."""
    if not isinstance(value, str):
        raise AwsError("SerializationException", f"{name} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AwsError("SerializationException", f"{name} is not valid base64") from exc


def epoch(moment: dt.datetime | None) -> float | None:
    """Timestamps travel as epoch seconds in the JSON protocol."""
    return None if moment is None else moment.timestamp()


def from_epoch(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def paginate(
    items: list[Any], next_token: str | None, max_results: int | None, limit: int,
    error_code: str,
) -> tuple[list[Any], str | None]:
    """Offset pagination with an opaque token; a bad token raises ``error_code``."""
    start = 0
    if next_token is not None:
        try:
            start = int(base64.urlsafe_b64decode(next_token.encode()).decode().removeprefix("o:"))
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise AwsError(error_code, f"invalid NextToken {next_token!r}") from exc
        if start < 0 or start > len(items):
            raise AwsError(error_code, f"invalid NextToken {next_token!r}")
    size = limit if max_results is None else max_results
    if not isinstance(size, int) or size < 1 or size > limit:
        raise validation_error(
            "maxResults", f"Member must have value between 1 and {limit}", max_results
        )
    page = items[start : start + size]
    end = start + len(page)
    token = None
    if end < len(items):
        token = base64.urlsafe_b64encode(f"o:{end}".encode()).decode()
    return page, token

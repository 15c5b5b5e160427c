"""IssueCertificate validity: the ``Validity`` / ``ValidityNotBefore`` structures -> datetimes.

Types (from the API reference): END_DATE is UTCTime YYMMDDHHMMSS (YY >= 50 means 19YY)
or GeneralizedTime YYYYMMDDHHMMSS; ABSOLUTE is epoch seconds; DAYS, MONTHS and YEARS
count from the moment of issuance. NotBefore defaults to issuance minus 60 minutes.
All times are truncated to whole seconds, as X.509 stores them.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from .protocol import AwsError, validation_error

VALIDITY_TYPES = ("END_DATE", "ABSOLUTE", "DAYS", "MONTHS", "YEARS")
DEFAULT_BACKDATE = dt.timedelta(minutes=60)
UTC = dt.timezone.utc


def _whole_seconds(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=0)


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _parse_end_date(value: int) -> dt.datetime:
    text = str(value)
    try:
        if len(text) == 12:
            year = int(text[:2])
            text = ("19" if year >= 50 else "20") + text
        if len(text) != 14:
            raise ValueError(text)
        return dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise AwsError(
            "InvalidArgsException",
            f"END_DATE validity {value} is not YYMMDDHHMMSS or YYYYMMDDHHMMSS.",
        ) from exc


def resolve(validity: dict[str, Any], issued_at: dt.datetime, field: str = "validity") -> dt.datetime:
    """The instant a Validity structure designates."""
    kind, value = validity.get("Type"), validity.get("Value")
    if kind not in VALIDITY_TYPES:
        raise validation_error(f"{field}.type", "Member must satisfy enum value set: "
                               + ", ".join(VALIDITY_TYPES), kind)
    if not isinstance(value, int) or value < 1:
        raise validation_error(f"{field}.value", "Member must have value greater than or equal to 1", value)
    try:
        if kind == "END_DATE":
            return _parse_end_date(value)
        if kind == "ABSOLUTE":
            return dt.datetime.fromtimestamp(value, UTC)
        if kind == "DAYS":
            return _whole_seconds(issued_at + dt.timedelta(days=value))
        if kind == "MONTHS":
            return _whole_seconds(_add_months(issued_at, value))
        return _whole_seconds(_add_months(issued_at, 12 * value))
    except (OverflowError, ValueError) as exc:
        raise AwsError("InvalidArgsException", f"{field} {value} {kind} is out of range.") from exc


def window(
    validity: dict[str, Any], not_before: dict[str, Any] | None, issued_at: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """(NotBefore, NotAfter) before any cap by the issuer."""
    not_after = resolve(validity, issued_at)
    if not_before is None:
        start = _whole_seconds(issued_at - DEFAULT_BACKDATE)
    else:
        if not_before.get("Type") != "ABSOLUTE":
            raise AwsError("InvalidArgsException", "ValidityNotBefore must be of type ABSOLUTE.")
        start = resolve(not_before, issued_at, "validityNotBefore")
    return start, not_after

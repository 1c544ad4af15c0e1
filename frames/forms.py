"""Query-string forms: every parameter the /frames API and the admin overview accept."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from frame_tracking.identity import FrameID
from frame_tracking.status import FINAL_STATUSES, REASONS
from frames.models import choices

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
TIMESTAMP_ERROR = "must be an ISO-8601 timestamp, e.g. 2026-11-29T03:45:00Z"
# ISO-8601 as people and programs write it: a date, optionally a time to the minute, second or
# microsecond, and an offset; ASCII digits only. datetime.fromisoformat alone also reads
# 20261129, any character as the separator, and fifty 1s as a date in the year 1111.
TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?",
    re.ASCII,
)
AGE = re.compile(r"(\d{1,9})([smhd])", re.ASCII)
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_AGE = timedelta(days=3650)


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the (captured_at, frame_id) of its last frame."""

    captured_at: datetime
    frame_id: str

    def encode(self) -> str:
        text = json.dumps([self.captured_at.isoformat(), self.frame_id])
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Raises ValueError for anything that is not a cursor this API handed out."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            captured_at, frame_id = json.loads(raw)
            if not isinstance(captured_at, str) or not isinstance(frame_id, str):
                raise ValueError("not a cursor")
            if not re.search(r"(Z|[+-][0-9]{2}:[0-9]{2})\Z", captured_at):  # naive
                raise ValueError("not a cursor")
            when = timestamp(captured_at)
            # A frame id goes into SQL: accept only a real one (no NUL bytes, no junk).
            frame_id = FrameID.parse(frame_id)
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, ValidationError) as exc:
            raise ValueError("not a cursor") from exc
        except RecursionError as exc:  # nested deeper than the JSON parser recurses
            # FrameQuery's 512 characters allow 384 levels, within Python's limit: this is
            # for a caller without that cap.
            raise ValueError("not a cursor") from exc
        return cls(when, frame_id)


def timestamp(text: str) -> datetime:
    """A strict ISO-8601 timestamp (TIMESTAMP) in UTC; without an offset it is UTC."""
    if not TIMESTAMP.fullmatch(text):
        raise ValidationError(TIMESTAMP_ERROR)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:  # a month 13, a February 30th, an offset of 24 hours
        raise ValidationError(TIMESTAMP_ERROR) from None
    return in_utc(when if when.tzinfo else when.replace(tzinfo=UTC))


def in_utc(when: datetime) -> datetime:
    # PostgreSQL refuses offsets beyond ±15:59, which ISO-8601 allows: send UTC only.
    try:
        return when.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in the year 0
        raise ValidationError("is out of range", code="out_of_range") from None


class MomentField(forms.Field):
    """An ISO-8601 timestamp or an age before now such as 15m (moment()), in UTC."""

    def to_python(self, value: Any) -> datetime | None:
        return moment(str(value)) if value not in self.empty_values else None


class AsciiIntegerField(forms.IntegerField):
    """A whole number in ASCII digits: IntegerField reads any Unicode digit (int("٣") == 3)."""

    def to_python(self, value: Any) -> int | None:
        if value not in self.empty_values and not re.fullmatch(r"[0-9]{1,9}", str(value)):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class FrameQuery(forms.Form):
    """GET /frames: filters (all optional, combined with AND), limit and cursor."""

    trace_id = forms.RegexField(
        regex=r"\A[0-9a-f]{32}\Z",
        required=False,
        error_messages={"invalid": "must be 32 lowercase hex characters"},
    )
    frame_id = forms.CharField(required=False, max_length=160, strip=False)
    camera = forms.RegexField(
        regex=r"\A[A-Za-z0-9.-]{1,64}\Z",
        required=False,
        error_messages={"invalid": "must be 1-64 characters from A-Z a-z 0-9 . -"},
    )
    status = forms.ChoiceField(
        choices=choices(FINAL_STATUSES),
        required=False,
        error_messages={"invalid_choice": f"must be one of {', '.join(FINAL_STATUSES)}"},
    )
    reason = forms.ChoiceField(
        choices=choices(REASONS),
        required=False,
        error_messages={"invalid_choice": f"must be one of {', '.join(REASONS)}"},
    )
    since = MomentField(required=False)
    until = MomentField(required=False)
    limit = AsciiIntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        error_messages={
            "invalid": f"must be a whole number from 1 to {MAX_LIMIT}",
            "min_value": "must be at least 1",
            "max_value": f"must be at most {MAX_LIMIT}",
        },
    )
    cursor = forms.CharField(required=False, max_length=512)

    def clean_frame_id(self) -> FrameID | None:
        text = self.cleaned_data["frame_id"]
        if not text:
            return None
        try:
            return FrameID.parse(text)
        except ValueError:
            raise ValidationError("not a valid frame id") from None

    def clean_cursor(self) -> Cursor | None:
        token = self.cleaned_data["cursor"]
        if not token:
            return None
        try:
            return Cursor.decode(token)
        except ValueError:
            raise ValidationError("not a valid cursor; pass the `next` of a response") from None

    def clean_limit(self) -> int:
        limit = self.cleaned_data["limit"]
        return DEFAULT_LIMIT if limit is None else limit

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise ValidationError("since must not be later than until")
        return data


WINDOWS = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "24h": timedelta(hours=24)}


class OverviewQuery(forms.Form):
    """The admin camera overview: how far back to look."""

    window = forms.ChoiceField(choices=[(w, w) for w in WINDOWS], required=False)

    def clean_window(self) -> str:
        return self.cleaned_data["window"] or "1h"


class ReportQuery(forms.Form):
    """GET /frames/report and `manage.py frames_report`: per-camera accounting for a window.

    since/until take an ISO-8601 timestamp or an age such as 90s, 15m, 6h, 2d (that long
    before now); until defaults to now.
    """

    camera = FrameQuery.base_fields["camera"]
    since = forms.CharField(max_length=64, error_messages={"required": "is required"})
    until = forms.CharField(max_length=64, required=False)

    def clean_since(self) -> datetime:
        return moment(self.cleaned_data["since"])

    def clean_until(self) -> datetime:
        return moment(self.cleaned_data["until"] or "0s")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise ValidationError("since must not be later than until")
        return data


def moment(text: str) -> datetime:
    """An ISO-8601 timestamp, or an age before now such as 15m (at most MAX_AGE)."""
    if match := AGE.fullmatch(text):
        seconds = int(match[1]) * AGE_UNITS[match[2]]
        if seconds > MAX_AGE.total_seconds():
            raise ValidationError(f"an age must be at most {MAX_AGE.days}d")
        return timezone.now() - timedelta(seconds=seconds)
    try:
        return timestamp(text)
    except ValidationError as exc:
        if exc.code == "out_of_range":  # ISO-8601 all the same: say what is wrong with it
            raise ValidationError(
                "is out of range: in UTC it falls outside the years 1 to 9999"
            ) from None
        raise ValidationError(
            "must be an ISO-8601 timestamp or an age such as 90s, 15m, 6h, 2d"
        ) from None

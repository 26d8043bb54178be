"""The corpus's record type: one logical interaction row, the quarantine reason it must get in each
format, and the formats that can hold it; and how a raw timestamp should be read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

# The dataset formats, each written to its own dataset folder (write_format says which RECLAKE_DATASET reads it).
FORMATS = ("csv", "parquet", "parquet-typed", "amazon", "recbole", "ml-latest-small")
DELIMITED = {"csv", "recbole", "ml-latest-small"}
TEXT_COLUMN = {
    "csv",
    "parquet",
    "parquet-typed",
    "amazon",
}  # formats whose interactions carry review text
BOM = "\ufeff"
HUGE = 1_000_000  # characters in the huge field
TYPED_TZ = timezone(
    timedelta(hours=2)
)  # parquet-typed stores instants at +02:00: every row converts


@dataclass
class Record:
    case: str  # what it exercises
    user_id: object
    item_id: object
    rating: object
    timestamp: object
    text: object = None
    reason: str | None = None  # expected quarantine reason in every format where it is written
    only: frozenset | None = None  # formats it can be written in (None: all)
    reason_in: dict = field(default_factory=dict)  # format -> reason, where a format differs
    raw: dict = field(default_factory=dict)  # format -> a raw line written instead of the fields
    json: dict | None = None  # amazon: the JSON object to write (wrong JSON types)

    def expected_reason(self, fmt: str) -> str | None:
        return self.reason_in.get(fmt, self.reason)


def utc_instant(text) -> datetime | None:
    """What the pipeline should read a raw timestamp as (naive UTC), or None when it cannot."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    try:
        return datetime(1970, 1, 1) + timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        return None


def _float(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None

"""Which records each format can hold, and the writers that put the corpus in every dataset
format."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from datetime import UTC
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from support.corpus.cases import build_records
from support.corpus.records import BOM, HUGE, TYPED_TZ, Record, _float, utc_instant

# --- which records each format can hold --------------------------------------------------------


def _typed_rating(text):
    return None if text is None or not str(text).strip() else _float(text)


def writable(record: Record, fmt: str) -> bool:
    if record.only is not None and fmt not in record.only:
        return False
    if record.json is not None and fmt != "amazon":
        return False
    values = [record.user_id, record.item_id, record.rating, record.timestamp]
    if fmt == "recbole" and any(isinstance(v, str) and ("\t" in v or "\n" in v) for v in values):
        return False  # QUOTE_NONE: a tab or newline inside a field cannot be written
    if fmt == "parquet-typed" and not record.raw:
        if not (
            record.rating is None
            or not record.rating.strip()
            or _typed_rating(record.rating) is not None
        ):
            return False  # a float column cannot hold "five"
        if record.timestamp.strip() and utc_instant(record.timestamp) is None:
            return False  # a timestamp column cannot hold "yesterday"
    return True


def records_for(fmt: str, records: list[Record] | None = None) -> list[Record]:
    return [r for r in (records or build_records()) if writable(r, fmt)]


def expected_counts(fmt: str, records: list[Record] | None = None) -> tuple[Counter, int]:
    """(quarantined rows by reason, clean rows) for the corpus as written in ``fmt``."""
    chosen = records_for(fmt, records)
    reasons = Counter(r.expected_reason(fmt) for r in chosen)
    clean = reasons.pop(None, 0)
    return reasons, clean


# --- writers ------------------------------------------------------------------------------------


def _text_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value or "").encode()


def _delimited_bytes(rows: list, delimiter: str, quoting: int, line_end: str = "\n") -> bytes:
    """Rows of str|bytes fields (or a raw line) as bytes; bytes fields go in as given (invalid UTF-8)."""
    marker, out = "@@BYTES@@", io.BytesIO()
    for row in rows:
        if isinstance(row, str):  # a raw line, as given
            out.write((row + line_end).encode())
            continue
        fields = [marker if isinstance(v, bytes) else ("" if v is None else v) for v in row]
        if (
            quoting == csv.QUOTE_NONE
        ):  # RecBole: fields as they are (writable() kept tabs/newlines out)
            line = delimiter.join(fields) + line_end
        else:
            buffer = io.StringIO()
            csv.writer(
                buffer, delimiter=delimiter, quoting=quoting, lineterminator=line_end
            ).writerow(fields)
            line = buffer.getvalue()
        encoded = line.encode()
        for value in (v for v in row if isinstance(v, bytes)):
            encoded = encoded.replace(marker.encode(), value, 1)
        out.write(encoded)
    return out.getvalue()


def write_csv(folder: Path, records: list[Record]) -> None:
    rows = [["user_id", "item_id", "rating", "timestamp", "review"]]
    rows += [
        r.raw["csv"] if r.raw else [r.user_id, r.item_id, r.rating, r.timestamp, r.text]
        for r in records
    ]
    (folder / "interactions.csv").write_bytes(
        BOM.encode() + _delimited_bytes(rows, ",", csv.QUOTE_MINIMAL)
    )


def _parquet_rows(records: list[Record], typed: bool) -> pa.Table:
    def ts(r):
        if not typed:
            return r.timestamp
        instant = utc_instant(r.timestamp)
        return None if instant is None else instant.replace(tzinfo=UTC).astimezone(TYPED_TZ)

    def rating(r):
        return _typed_rating(r.rating) if typed else r.rating

    return pa.table(
        {
            # rating as text and timestamp as text: the wrong physical types, or real float / timestamp types
            "user_id": pa.array([r.user_id for r in records], pa.string()),
            "item_id": pa.array([r.item_id for r in records], pa.string()),
            "rating": pa.array(
                [rating(r) for r in records], pa.float64() if typed else pa.string()
            ),
            "timestamp": pa.array(
                [ts(r) for r in records], pa.timestamp("us", tz="+02:00") if typed else pa.string()
            ),
            "review": pa.array([r.text for r in records], pa.string()),
        }
    )


def write_parquet(folder: Path, records: list[Record], typed: bool) -> None:
    pq.write_table(_parquet_rows(records, typed), folder / "interactions.parquet")


def _amazon_line(r: Record) -> str:
    if r.raw:
        return r.raw["amazon"]
    obj = r.json
    if obj is None:
        rating = _float(r.rating)
        plain = (
            rating is not None
            and r.rating == r.rating.strip()
            and rating == rating
            and abs(rating) != float("inf")
        )
        obj = {
            "reviewerID": r.user_id,
            "asin": r.item_id,
            "overall": rating
            if plain
            else r.rating,  # numbers as the real files have them, else the text
            "unixReviewTime": int(r.timestamp) if r.timestamp.isdigit() else r.timestamp,
        }
        if r.text is not None:
            obj["reviewText"] = "@@BYTES@@" if isinstance(r.text, bytes) else r.text
        obj["summary"] = "summary"
    return json.dumps(obj, ensure_ascii=False)


def write_amazon(folder: Path, records: list[Record], plain_rows: int = 100) -> None:
    """The first ``plain_rows`` records (at most half) in reviews.json, the rest in reviews.json.gz:
    one folder with both kinds, the way the amazon-reviews loader takes a folder."""
    plain_rows = min(plain_rows, len(records) // 2)
    lines = []
    for r in records:
        line = _amazon_line(r).encode()
        if isinstance(r.text, bytes):
            line = line.replace(b"@@BYTES@@", r.text)  # invalid UTF-8 inside a JSON string
        lines.append(line + b"\n")
    (folder / "reviews.json").write_bytes(BOM.encode() + b"".join(lines[:plain_rows]))
    with gzip.open(folder / "reviews.json.gz", "wb") as handle:
        handle.write(b"".join(lines[plain_rows:]))


def write_recbole(folder: Path, records: list[Record]) -> None:
    rows = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    rows += [
        r.raw["recbole"] if r.raw else [r.user_id, r.item_id, r.rating, r.timestamp]
        for r in records
    ]
    (folder / "ml-100k.inter").write_bytes(
        BOM.encode() + _delimited_bytes(rows, "\t", csv.QUOTE_NONE)
    )
    items = [
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
        "i1\tToy Story\t1995\tAnimation Children's Comedy",
        f"i2\t{'h' * HUGE}\t1996\tDrama",
        ["i3", b"Caf\xe9 \xff", "1997", "Drama"],
    ]
    (folder / "ml-100k.item").write_bytes(_delimited_bytes(items, "\t", csv.QUOTE_NONE))
    (folder / "ml-100k.user").write_text(
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
        "u1\t24\tM\ttechnician\t85711\n"
    )


def write_ml_latest_small(folder: Path, records: list[Record]) -> None:
    rows = [["userId", "movieId", "rating", "timestamp"]]
    rows += [
        r.raw["ml-latest-small"] if r.raw else [r.user_id, r.item_id, r.rating, r.timestamp]
        for r in records
    ]
    # a Windows-edited file: CRLF line ends and a BOM
    (folder / "ratings.csv").write_bytes(
        BOM.encode() + _delimited_bytes(rows, ",", csv.QUOTE_MINIMAL, "\r\n")
    )
    movies = [
        ["movieId", "title", "genres"],
        ["i1", "Toy Story (1995)", "Animation|Children"],
        ["i2", "h" * HUGE + " (1996)", "Drama"],
        ["i3", 'Two\nlines, "quoted" (1997)', "Drama"],
    ]
    (folder / "movies.csv").write_bytes(_delimited_bytes(movies, ",", csv.QUOTE_MINIMAL, "\r\n"))


def write_format(fmt: str, folder: Path, records: list[Record] | None = None) -> tuple[str, Path]:
    """Write the corpus in ``fmt`` under ``folder``; returns (RECLAKE_DATASET, RECLAKE_DATA_DIR or the folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    chosen = records_for(fmt, records)
    if fmt == "csv":
        write_csv(folder, chosen)
    elif fmt in ("parquet", "parquet-typed"):
        write_parquet(folder, chosen, typed=fmt == "parquet-typed")
    elif fmt == "amazon":
        write_amazon(folder, chosen)
        return "amazon-reviews", folder
    elif fmt == "recbole":
        write_recbole(folder, chosen)
        return "ml-100k", folder
    elif fmt == "ml-latest-small":
        write_ml_latest_small(folder, chosen)
        return "ml-latest-small", folder
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return str(folder), folder

"""A deterministic malformed-input corpus: one logical set of interaction records (clean rows plus
bad rows of every kind) written in every dataset format, with the quarantine reason each row must
get in that format.

A case that a format cannot express (a quoted newline in RecBole's QUOTE_NONE TSV, the text
"five" in a float parquet column, a field-count error in parquet) is left out of that format, so
the expected counts always come from what was actually written.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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


def build_records(n_clean: int = 200, seed: int = 11) -> list[Record]:
    """The logical corpus, in file order: clean rows first, then every bad and odd case."""
    rng = random.Random(seed)
    records, keys = [], set()
    base = 880_000_000
    while len(records) < n_clean:
        user, item = f"u{rng.randint(1, 30)}", f"i{rng.randint(1, 80)}"
        ts = base + rng.randint(0, 10_000_000)
        if (user, item, ts) in keys:
            continue
        keys.add((user, item, ts))
        records.append(
            Record(
                "clean", user, item, str(rng.randint(1, 5)), str(ts), text=f"review {len(records)}"
            )
        )
    c0, c1, c2 = records[0], records[1], records[2]

    def add(case, user, item, rating, ts, reason=None, **kw):
        records.append(Record(case, user, item, rating, ts, reason=reason, **kw))

    # ids that look like SQL, HTML, quotes or non-ASCII are data: kept exactly as given
    add("id_sql", "x'; DROP TABLE fct_interactions;--", "i1", "4", "881000001")
    add("id_html", "u1", "<script>alert('x')</script>", "4", "881000002")
    add("id_quotes", 'say "hi"', "it's", "3", "881000003")
    add("id_unicode", "Zoë 🎬", "用户-9", "5", "881000004")
    add("id_comma", "u1", "a,b", "2", "881000005")
    # timestamps in several formats, all valid (converted to UTC)
    add("ts_fractional", "u2", "t1", "4", "881000006.75")
    add("ts_iso_z", "u2", "t2", "4", "1998-03-01T12:00:00Z")
    add("ts_iso_offset", "u2", "t3", "4", "1998-03-01T14:00:00+02:00")
    add("ts_iso_negative_offset", "u2", "t4", "4", "1998-03-01T06:30:00-05:30")
    add("ts_iso_fraction", "u2", "t5", "4", "1998-03-01T12:00:00.250Z")
    add("ts_iso_space", "u2", "t6", "4", "1998-03-01 12:00:00")
    add("ts_date_only", "u2", "t7", "4", "1998-03-01")
    add("ts_padded", "u2", "t8", "4", " 881000007 ")
    # valid ratings written oddly
    add("rating_fraction", "u3", "r1", "4.5", "881000008")
    add("rating_padded", "u3", "r2", " 3 ", "881000009")
    add("rating_exponent", "u3", "r3", "1e0", "881000010")
    add(
        "rating_half",
        "u3",
        "r4",
        "0.5",
        "881000011",
        reason="rating_out_of_range",
        reason_in={"ml-latest-small": None},
    )  # in scale only where the scale starts at 0.5
    # text fields: quoted newline, huge value, invalid UTF-8 (the row stays clean)
    add(
        "text_quoted_newline",
        "u4",
        "x1",
        "4",
        "881000012",
        text='line one\nline two, "quoted"',
        only=frozenset(TEXT_COLUMN),
    )
    add("text_huge", "u4", "x2", "4", "881000013", text="h" * HUGE, only=frozenset(TEXT_COLUMN))
    add(
        "text_invalid_utf8",
        "u4",
        "x3",
        "4",
        "881000014",
        text=b"caf\xe9 \xff bytes",
        only=frozenset({"csv", "amazon"}),
    )  # parquet strings are UTF-8 by definition
    add("id_quoted_newline", "u4", "multi\nline", "4", "881000015")  # not in RecBole: QUOTE_NONE
    # missing ids
    add("missing_user", "", "m1", "4", "881000016", "missing_user_id")
    add("blank_user", "   ", "m2", "4", "881000017", "missing_user_id")
    add("missing_item", "u5", "", "4", "881000018", "missing_item_id")
    add("missing_both_ids", "", "", "4", "881000019", "missing_user_id")  # the first rule wins
    # timestamps
    add("missing_ts", "u5", "m3", "4", "", "missing_timestamp")
    add("blank_ts", "u5", "m4", "4", "  ", "missing_timestamp")
    # words DuckDB's timestamp cast reads but no source means ("epoch" is 1970 there), NaN and infinity
    for n, ts in enumerate(
        ["yesterday", "1998-13-45", "12/31/1998", "1998-03-01T25:00:00Z", "epoch", "nan", "-inf"]
    ):
        add("ts_unparseable", "u5", f"p{n}", "4", ts, "unparseable_timestamp")
    for n, ts in enumerate(
        [
            "0",
            "-1",
            "99999999999999",
            "881000000000",
            "2150-01-01T00:00:00Z",
            "1969-07-20T20:17:00Z",
        ]
    ):
        add("ts_out_of_range", "u5", f"o{n}", "4", ts, "timestamp_out_of_range")
    # ratings
    add("missing_rating", "u6", "q1", "", "881000020", "missing_rating")
    for n, rating in enumerate(["five", "4,5", "nan", "inf"]):
        add("rating_not_a_number", "u6", f"n{n}", rating, "881000021", "rating_not_a_number")
    for n, rating in enumerate(["0", "6", "-1"]):
        add("rating_out_of_range", "u6", f"s{n}", rating, "881000022", "rating_out_of_range")
    # a row that breaks several rules gets the first one
    add("several_rules", "u6", "z1", "nan", "yesterday", "unparseable_timestamp")
    # duplicates: exact repeats, another rating, the same instant written another way
    add("duplicate", c0.user_id, c0.item_id, c0.rating, c0.timestamp, "duplicate_event")
    add("duplicate", c0.user_id, c0.item_id, c0.rating, c0.timestamp, "duplicate_event")
    add(
        "duplicate_other_text",
        c1.user_id,
        c1.item_id,
        c1.rating,
        c1.timestamp,
        "duplicate_event",
        text="other",
    )
    iso = (datetime(1970, 1, 1) + timedelta(seconds=int(c2.timestamp))).isoformat() + "Z"
    add("duplicate_iso_instant", c2.user_id, c2.item_id, c2.rating, iso, "duplicate_event")
    other = "1" if c1.rating != "1" else "2"
    add("conflicting", c1.user_id, c1.item_id, other, c1.timestamp, "conflicting_duplicate")
    add(
        "conflicting_repeat", c1.user_id, c1.item_id, other, c1.timestamp, "duplicate_event"
    )  # repeats the conflict
    add(
        "duplicate_of_bad_row", "", "m1", "4", "881000016", "missing_user_id"
    )  # row rules come first
    # records that cannot be split into fields (delimited formats) or parsed (JSON lines)
    # a quote never closed swallows the lines after it (they are read again); RecBole has no quoting
    add(
        "quote_not_closed",
        None,
        None,
        None,
        None,
        "malformed_record",
        only=frozenset(DELIMITED),
        raw={
            "csv": 'u7,"e5,4,881000033,text',
            "recbole": 'u7\t"e5\t4\t881000033',
            "ml-latest-small": 'u7,"e5,4,881000033',
        },
        reason_in={"recbole": None},
    )
    add(
        "quote_then_junk",
        None,
        None,
        None,
        None,
        "malformed_record",
        only=frozenset(DELIMITED),
        raw={
            "csv": 'u7,"e6"x,4,881000034,text',
            "recbole": 'u7\t"e6"x\t4\t881000034',
            "ml-latest-small": 'u7,"e6"x,4,881000034',
        },
        reason_in={"recbole": None},
    )
    add(
        "extra_field",
        None,
        None,
        None,
        None,
        "malformed_record",
        only=frozenset(DELIMITED),
        raw={
            "csv": "u7,e1,4,881000023,text,EXTRA",
            "recbole": "u7\te1\t4\t881000023\tEXTRA",
            "ml-latest-small": "u7,e1,4,881000023,EXTRA",
        },
    )
    add(
        "short_row",
        None,
        None,
        None,
        None,
        "malformed_record",
        only=frozenset(DELIMITED),
        raw={"csv": "u7,e2,4", "recbole": "u7\te2", "ml-latest-small": "u7,e2"},
    )
    add(
        "invalid_json",
        None,
        None,
        None,
        None,
        "malformed_record",
        only=frozenset({"amazon"}),
        raw={"amazon": '{"reviewerID": "u7", "asin": "e3", "overall": 4'},
    )
    add(
        "json_not_object",
        None,
        None,
        None,
        None,
        "malformed_record",
        only=frozenset({"amazon"}),
        raw={"amazon": '["u7", "e4", 4, 881000024]'},
    )
    # amazon: JSON types other than the usual ones
    amazon = frozenset({"amazon"})
    add(
        "json_number_ids",
        "12345",
        "7.0",
        "4",
        "881000025",
        only=amazon,
        json={"reviewerID": 12345, "asin": 7.0, "overall": 4.0, "unixReviewTime": 881000025},
    )
    add(
        "json_string_numbers",
        "u8",
        "j1",
        "4",
        "881000026",
        only=amazon,
        json={"reviewerID": "u8", "asin": "j1", "overall": "4", "unixReviewTime": "881000026"},
    )
    add(
        "json_iso_time",
        "u8",
        "j2",
        "4",
        "1998-03-01T12:00:00Z",
        only=amazon,
        json={
            "reviewerID": "u8",
            "asin": "j2",
            "overall": 4,
            "unixReviewTime": "1998-03-01T12:00:00Z",
        },
    )
    add(
        "json_bool_rating",
        "u8",
        "j3",
        None,
        "881000027",
        "rating_not_a_number",
        only=amazon,
        json={"reviewerID": "u8", "asin": "j3", "overall": True, "unixReviewTime": 881000027},
    )
    add(
        "json_null_user",
        None,
        "j4",
        "4",
        "881000028",
        "missing_user_id",
        only=amazon,
        json={"reviewerID": None, "asin": "j4", "overall": 4, "unixReviewTime": 881000028},
    )
    add(
        "json_no_item_key",
        "u8",
        None,
        "4",
        "881000029",
        "missing_item_id",
        only=amazon,
        json={"reviewerID": "u8", "overall": 4, "unixReviewTime": 881000029},
    )
    add(
        "json_object_id",
        None,
        None,
        "4",
        "881000030",
        "malformed_record",
        only=amazon,
        json={"reviewerID": {"id": "u8"}, "asin": "j5", "overall": 4, "unixReviewTime": 881000030},
    )
    add(
        "json_list_rating",
        "u8",
        "j6",
        None,
        "881000031",
        "malformed_record",
        only=amazon,
        json={"reviewerID": "u8", "asin": "j6", "overall": [4], "unixReviewTime": 881000031},
    )
    add(
        "json_nan_time",
        "u8",
        "j8",
        "4",
        "nan",
        "unparseable_timestamp",
        only=amazon,  # a bare NaN literal
        json={"reviewerID": "u8", "asin": "j8", "overall": 4, "unixReviewTime": float("nan")},
    )
    add(
        "json_extra_keys",
        "u8",
        "j7",
        "4",
        "881000032",
        only=amazon,
        json={
            "reviewerID": "u8",
            "asin": "j7",
            "overall": 4,
            "unixReviewTime": 881000032,
            "vote": "3",
            "style": {"Size:": " 1"},
            "image": ["x"],
        },
    )
    return records


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


# --- whole-file faults: each leaves a file that no run may read ---------------------------------


def _rewrite_text(path: Path, transform) -> None:
    path.write_text(
        transform(path.read_bytes().decode("utf-8-sig", errors="replace")), encoding="utf-8"
    )


def _parquet_header_only(path: Path) -> None:
    pq.write_table(pq.read_table(path).slice(0, 0), path)


def _parquet_without(path: Path, column: str) -> None:
    table = pq.read_table(path)
    pq.write_table(table.drop_columns([column]), path)


WHOLE_FILE_FAULTS = {
    # name -> (format, file it breaks, how, the message the run must fail with, a regex)
    "empty_csv": (
        "csv",
        "interactions.csv",
        lambda p: p.write_bytes(b""),
        r"interactions\.csv: file is empty",
    ),
    "header_only_csv": (
        "csv",
        "interactions.csv",
        lambda p: p.write_text("user_id,item_id,rating,timestamp\n"),
        r"interactions\.csv: no data rows",
    ),
    "semicolon_csv": (
        "csv",
        "interactions.csv",
        lambda p: _rewrite_text(p, lambda t: t.replace(",", ";")),
        r"interactions\.csv: missing required column\(s\) 'user_id', 'item_id', 'timestamp'; "
        r".*\(it looks ';'-separated; expected ','\)",
    ),
    "utf16_csv": (
        "csv",
        "interactions.csv",
        lambda p: p.write_bytes(p.read_bytes().decode("utf-8-sig", "replace").encode("utf-16")),
        r"interactions\.csv: file is not UTF-8 text",
    ),
    "corrupt_parquet": (
        "parquet",
        "interactions.parquet",
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        r"interactions\.parquet: unreadable parquet file",
    ),
    "csv_named_parquet": (
        "parquet",
        "interactions.parquet",
        lambda p: p.write_text("user_id,item_id\nu1,i1\n"),
        r"interactions\.parquet: unreadable parquet file",
    ),
    "header_only_parquet": (
        "parquet-typed",
        "interactions.parquet",
        _parquet_header_only,
        r"interactions\.parquet: no data rows",
    ),
    "parquet_missing_column": (
        "parquet-typed",
        "interactions.parquet",
        lambda p: _parquet_without(p, "item_id"),
        r"interactions\.parquet: missing required column\(s\) 'item_id'",
    ),
    "json_gz_not_gzip": (
        "amazon",
        "reviews.json.gz",
        lambda p: p.write_text('{"reviewerID": "u1"}\n'),
        r"reviews\.json\.gz: not a readable gzip file",
    ),
    "json_gz_truncated": (
        "amazon",
        "reviews.json.gz",
        lambda p: p.write_bytes(p.read_bytes()[:-64]),
        r"reviews\.json\.gz: (not a readable gzip file|gzip data unreadable after line \d+)",
    ),
    "json_gz_truncated_late": (
        "amazon",
        "reviews.json.gz",
        lambda p: p.write_bytes(
            gzip.compress(
                b'{"reviewerID": "u1", "asin": "i1", "overall": 4, "unixReviewTime": 881000000}\n'
                * 5000
            )[:-64]
        ),
        r"reviews\.json\.gz: gzip data unreadable after line \d+ \(Compressed file ended",
    ),
    "json_empty": (
        "amazon",
        "reviews.json",
        lambda p: p.write_text("\n\n"),
        r"reviews\.json: file is empty",
    ),
    "utf16_recbole": (
        "recbole",
        "ml-100k.inter",
        lambda p: p.write_bytes(p.read_bytes().decode("utf-8-sig", "replace").encode("utf-16")),
        r"ml-100k\.inter: file is not UTF-8 text",
    ),
    "comma_recbole": (
        "recbole",
        "ml-100k.inter",
        lambda p: _rewrite_text(p, lambda t: t.replace("\t", ",")),
        r"ml-100k\.inter: missing required column\(s\) .*\(it looks ','-separated; expected '\\t'\)",
    ),
    "header_only_recbole": (
        "recbole",
        "ml-100k.inter",
        lambda p: _rewrite_text(p, lambda t: t.split("\n", 1)[0] + "\n"),
        r"ml-100k\.inter: no data rows",
    ),
    "missing_ratings_file": (
        "ml-latest-small",
        "ratings.csv",
        lambda p: p.unlink(),
        r"ratings\.csv: file not found \(GroupLens ml-latest-small layout expected\)",
    ),
    "renamed_column_mls": (
        "ml-latest-small",
        "ratings.csv",
        lambda p: _rewrite_text(p, lambda t: t.replace("movieId", "movie_id", 1)),
        r"ratings\.csv: missing required column\(s\) 'movieId'",
    ),
}


def break_file(fault: str, folder: Path) -> tuple[Path, str]:
    """Apply one whole-file fault to a corpus folder; returns (the broken file, the expected message regex)."""
    _, name, how, message = WHOLE_FILE_FAULTS[fault]
    path = folder / name
    how(path)
    return path, message

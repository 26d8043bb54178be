"""Whole-file faults: each leaves a corpus file that no run may read."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.parquet as pq


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

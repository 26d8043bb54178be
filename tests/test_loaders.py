"""Each dataset format read into raw tables: real files from ../shared/datasets, and bad input."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.data import AMAZON_FILE, ML100K_DIR, ML_LATEST_SMALL_DIR, needs_shared

from orchestration.core.datasets import DatasetError, parse_rating_scale, resolve_dataset
from orchestration.defs.ingest.loaders import load_raw_table


def load(dataset: str, data_dir, table: str, rating_scale=None):
    spec = resolve_dataset(dataset, str(data_dir) if data_dir else None, rating_scale)
    return load_raw_table(spec, spec.path, table)


def test_ml100k_loader_reads_recbole_files():
    interactions, files = load("ml-100k", ML100K_DIR, "interactions")
    assert interactions.num_rows == 100_000
    assert files == [
        {
            "file": "ml-100k.inter",
            "rows": 100_000,
            "parse_errors": 0,
            "sha256": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
        }
    ]
    first = interactions.slice(0, 1).to_pylist()[0]
    assert (first["user_id"], first["item_id"], first["rating"], first["timestamp"]) == (
        "196",
        "242",
        "3",
        "881250949",
    )
    assert first["_source_row"] == 2  # line 1 is the header
    assert load("ml-100k", ML100K_DIR, "items")[0].num_rows == 1682
    items = load("ml-100k", ML100K_DIR, "items")[0].to_pylist()
    assert items[0]["title"] == "Toy Story" and items[0]["genres"] == "Animation Children's Comedy"
    assert load("ml-100k", ML100K_DIR, "users")[0].num_rows == 943
    assert load("ml-100k", ML100K_DIR, "item_tags")[0].num_rows == 0


@needs_shared(ML_LATEST_SMALL_DIR, "the real ml-latest-small")
def test_ml_latest_small_loader_reads_grouplens_csv():
    ratings, files = load("ml-latest-small", ML_LATEST_SMALL_DIR, "interactions")
    assert ratings.num_rows == 100_836
    assert len(set(ratings.column("user_id").to_pylist())) == 610
    last = ratings.slice(ratings.num_rows - 1).to_pylist()[0]
    assert (last["user_id"], last["item_id"], last["rating"], last["timestamp"]) == (
        "610",
        "170875",
        "3.0",
        "1493846415",
    )
    assert files[0]["parse_errors"] == 0
    movies = load("ml-latest-small", ML_LATEST_SMALL_DIR, "items")[0]
    assert movies.num_rows == 9_742
    assert movies.slice(0, 1).to_pylist()[0]["title"] == "Toy Story (1995)"
    assert load("ml-latest-small", ML_LATEST_SMALL_DIR, "item_tags")[0].num_rows == 3_683
    assert resolve_dataset("ml-latest-small", str(ML_LATEST_SMALL_DIR)).rating_scale == (0.5, 5.0)


@needs_shared(AMAZON_FILE, "the real Amazon All_Beauty sample")
def test_amazon_reviews_loader_reads_gzipped_json_lines():
    reviews, files = load("amazon-reviews", AMAZON_FILE, "interactions")
    assert reviews.num_rows == 5_269
    assert files[0]["file"] == "All_Beauty_5.json.gz" and files[0]["parse_errors"] == 0
    assert len(set(reviews.column("user_id").to_pylist())) == 991
    assert len(set(reviews.column("item_id").to_pylist())) == 85
    first = reviews.slice(0, 1).to_pylist()[0]
    assert (first["user_id"], first["item_id"], first["rating"], first["timestamp"]) == (
        "A3CIUOJXQ5VDQ2",
        "B0000530HU",
        "5.0",
        "1472688000",
    )
    assert first["review_summary"] == "Five Stars"
    assert (
        load("amazon-reviews", AMAZON_FILE.parent, "interactions")[0].num_rows == 5_269
    )  # folder form


def test_generic_folder_csv_keeps_ids_as_given_and_marks_malformed_records(tmp_path):
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id,timestamp,rating\n"
        '"O\'Brien; DROP TABLE x;--",<b>i1</b>,100,4\n'
        'u2,"title, with comma",2020-01-01T00:00:00Z,5\n'
        "u3,i3,300\n"  # a field short
        "u4,i4,400,1,extra\n"  # a field too many
        "\n"  # blank line: not a record
        'u5,"multi\nline",500,2\n'  # quoted newline: one record over two lines
        "u6,i6,600,3\n"
    )
    table, files = load(str(tmp_path), None, "interactions")
    rows = table.to_pylist()
    assert [r["_source_row"] for r in rows] == [2, 3, 4, 5, 7, 9]
    assert rows[0]["user_id"] == "O'Brien; DROP TABLE x;--" and rows[0]["item_id"] == "<b>i1</b>"
    assert rows[1]["item_id"] == "title, with comma"
    assert rows[2]["_parse_error"] == "expected 4 fields, found 3"
    assert rows[3]["_parse_error"] == "expected 4 fields, found 5"
    assert rows[4]["item_id"] == "multi\nline" and rows[4]["_parse_error"] is None
    assert files[0]["parse_errors"] == 2 and files[0]["file"] == "interactions.csv"


def test_generic_folder_parquet_and_rating_scale(tmp_path):
    pq.write_table(
        pa.table(
            {"user_id": [1, 2], "item_id": ["a", "b"], "timestamp": [10, 20], "rating": [0.5, 9.0]}
        ),
        tmp_path / "interactions.parquet",
    )
    spec = resolve_dataset(str(tmp_path), None, "0,10")
    assert spec.kind == "folder" and spec.rating_scale == (0.0, 10.0)
    table, _ = load_raw_table(spec, spec.path, "interactions")
    assert table.column("user_id").to_pylist() == ["1", "2"]
    assert table.column("_source_row").to_pylist() == [1, 2]
    assert parse_rating_scale(None, (1.0, 5.0)) == (1.0, 5.0)
    with pytest.raises(DatasetError, match="RECLAKE_RATING_SCALE='5,1'"):
        parse_rating_scale("5,1", (1.0, 5.0))


def test_missing_required_column_names_file_and_column(tmp_path):
    (tmp_path / "interactions.csv").write_text("user_id,timestamp\nu1,100\n")
    with pytest.raises(
        DatasetError, match=r"interactions\.csv: missing required column\(s\) 'item_id'"
    ):
        load(str(tmp_path), None, "interactions")


def test_empty_and_header_only_files_fail_clearly(tmp_path):
    (tmp_path / "interactions.csv").write_text("")
    with pytest.raises(DatasetError, match=r"interactions\.csv: file is empty"):
        load(str(tmp_path), None, "interactions")
    (tmp_path / "interactions.csv").write_text("user_id,item_id,timestamp\n")
    with pytest.raises(DatasetError, match=r"interactions\.csv: no data rows"):
        load(str(tmp_path), None, "interactions")


def test_invalid_json_lines_become_parse_errors_not_crashes(tmp_path):
    path = tmp_path / "reviews.json.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(
            json.dumps({"reviewerID": "u1", "asin": "a1", "overall": 5.0, "unixReviewTime": 100})
            + "\n"
        )
        handle.write("{not json\n")
        handle.write("[1, 2]\n")
    table, files = load("amazon-reviews", path, "interactions")
    assert table.column("_parse_error").to_pylist()[0] is None
    assert table.column("_parse_error").to_pylist()[1].startswith("invalid JSON")
    assert table.column("_parse_error").to_pylist()[2] == "invalid JSON: not an object"
    assert table.column("_source_row").to_pylist() == [1, 2, 3]


def test_unknown_dataset_and_missing_data_dir_fail_clearly(tmp_path):
    with pytest.raises(DatasetError, match="RECLAKE_DATASET='nope': unknown dataset"):
        resolve_dataset("nope")
    with pytest.raises(DatasetError, match="needs RECLAKE_DATA_DIR"):
        resolve_dataset("ml-latest-small")
    with pytest.raises(DatasetError, match="no such file or folder"):
        resolve_dataset("ml-100k", str(tmp_path / "absent"))


def test_parquet_physical_types_become_the_text_they_hold(tmp_path):
    """Fault injection: ids as binary, timestamps as real parquet timestamps/dates/ints, a list where a
    rating should be. Values arrive as the text they hold (not "b'u1'"); a list is a malformed record."""
    import datetime as dt

    berlin = dt.timezone(dt.timedelta(hours=1))
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([b"u1", b"caf\xc3\xa9", b"u3"], pa.binary()),
                "item_id": pa.array([7, 8, 9], pa.int64()),
                "timestamp": pa.array(
                    [dt.datetime(1998, 3, 1, 12, tzinfo=berlin)] * 3,
                    pa.timestamp("us", tz="+01:00"),
                ),
                "rating": pa.array([[4.0], [], None], pa.list_(pa.float64())),
            }
        ),
        tmp_path / "interactions.parquet",
    )
    rows = load(str(tmp_path), None, "interactions")[0].to_pylist()
    assert [r["user_id"] for r in rows] == ["u1", "café", "u3"] and rows[0]["item_id"] == "7"
    assert (
        rows[0]["timestamp"] == "1998-03-01 12:00:00+01:00"
    )  # the offset travels; dbt converts to UTC
    assert [r["_parse_error"] for r in rows] == [
        "field 'rating': expected a string or number, found a list"
    ] * 2 + [None]
    pq.write_table(
        pa.table(
            {
                "user_id": ["u"],
                "item_id": ["i"],
                "timestamp": pa.array([881250949], pa.int32()),
                "rating": pa.array([dt.date(2020, 1, 1)]),
            }
        ),
        tmp_path / "interactions.parquet",
    )
    row = load(str(tmp_path), None, "interactions")[0].to_pylist()[0]
    assert (row["timestamp"], row["rating"], row["_parse_error"]) == (
        "881250949",
        "2020-01-01",
        None,
    )


def test_json_objects_where_values_belong_are_malformed_records_naming_the_field(tmp_path):
    path = tmp_path / "reviews.json"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"reviewerID": {"id": "u1"}, "asin": "a1", "overall": 5, "unixReviewTime": 100},
                {"reviewerID": "u2", "asin": "a2", "overall": [5], "unixReviewTime": 100},
                {
                    "reviewerID": 3,
                    "asin": 4.0,
                    "overall": "5",
                    "unixReviewTime": 100,
                    "style": {"Size:": "1"},
                },
            ]
        )
        + "\n"
    )
    table, _ = load("amazon-reviews", path, "interactions")
    assert table.column("_parse_error").to_pylist() == [
        "field 'reviewerID': expected a string or number, found an object",
        "field 'overall': expected a string or number, found a list",
        None,
    ]
    assert (
        table.slice(2).to_pylist()[0]["user_id"] == "3"
        and table.slice(2).to_pylist()[0]["item_id"] == "4.0"
    )


def test_broken_quotes_cost_one_record_not_the_rest_of_the_file(tmp_path):
    """Fault injection: a quote never closed would swallow every later line into one field; the
    loader marks that line malformed and reads the swallowed lines again as their own records."""
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id,timestamp\n"
        'u1,"never closed,1\n'  # 2
        "u2,i2,2\n"  # 3
        'u3,"two\nlines",3\n'  # 4-5: a good quoted newline after the broken one
        'u4,"i4"junk,4\n'  # 6: text after a closing quote
        "u5,i5,5\n",
        newline="",
    )
    rows = load(str(tmp_path), None, "interactions")[0].to_pylist()
    assert [(r["_source_row"], r["user_id"], r["item_id"]) for r in rows] == [
        (2, None, None),
        (3, "u2", "i2"),
        (4, "u3", "two\nlines"),
        (6, None, None),
        (7, "u5", "i5"),
    ]
    assert rows[0]["_parse_error"].endswith("(a quote opened on line 2 is not closed on it)")
    assert rows[3]["_parse_error"] == "unparseable record: ',' expected after '\"'"

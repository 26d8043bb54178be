"""Each dataset format read into raw tables: real files from ../shared/datasets, and bad input."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import AMAZON_FILE, ML100K_DIR, ML_LATEST_SMALL_DIR
from orchestration.defs.ingest.datasets import DatasetError, parse_rating_scale, resolve_dataset
from orchestration.defs.ingest.loaders import load_raw_table


def load(dataset: str, data_dir, table: str, rating_scale=None):
    spec = resolve_dataset(dataset, str(data_dir) if data_dir else None, rating_scale)
    return load_raw_table(spec, spec.path, table)


def test_ml100k_loader_reads_recbole_files():
    interactions, files = load("ml-100k", ML100K_DIR, "interactions")
    assert interactions.num_rows == 100_000
    assert files == [{"file": "ml-100k.inter", "rows": 100_000, "parse_errors": 0,
                      "sha256": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"}]
    first = interactions.slice(0, 1).to_pylist()[0]
    assert (first["user_id"], first["item_id"], first["rating"], first["timestamp"]) == ("196", "242", "3", "881250949")
    assert first["_source_row"] == 2  # line 1 is the header
    assert load("ml-100k", ML100K_DIR, "items")[0].num_rows == 1682
    items = load("ml-100k", ML100K_DIR, "items")[0].to_pylist()
    assert items[0]["title"] == "Toy Story" and items[0]["genres"] == "Animation Children's Comedy"
    assert load("ml-100k", ML100K_DIR, "users")[0].num_rows == 943
    assert load("ml-100k", ML100K_DIR, "item_tags")[0].num_rows == 0


def test_ml_latest_small_loader_reads_grouplens_csv():
    ratings, files = load("ml-latest-small", ML_LATEST_SMALL_DIR, "interactions")
    assert ratings.num_rows == 100_836
    assert len(set(ratings.column("user_id").to_pylist())) == 610
    last = ratings.slice(ratings.num_rows - 1).to_pylist()[0]
    assert (last["user_id"], last["item_id"], last["rating"], last["timestamp"]) == ("610", "170875", "3.0", "1493846415")
    assert files[0]["parse_errors"] == 0
    movies = load("ml-latest-small", ML_LATEST_SMALL_DIR, "items")[0]
    assert movies.num_rows == 9_742
    assert movies.slice(0, 1).to_pylist()[0]["title"] == "Toy Story (1995)"
    assert load("ml-latest-small", ML_LATEST_SMALL_DIR, "item_tags")[0].num_rows == 3_683
    assert resolve_dataset("ml-latest-small", str(ML_LATEST_SMALL_DIR)).rating_scale == (0.5, 5.0)


def test_amazon_reviews_loader_reads_gzipped_json_lines():
    reviews, files = load("amazon-reviews", AMAZON_FILE, "interactions")
    assert reviews.num_rows == 5_269
    assert files[0]["file"] == "All_Beauty_5.json.gz" and files[0]["parse_errors"] == 0
    assert len(set(reviews.column("user_id").to_pylist())) == 991
    assert len(set(reviews.column("item_id").to_pylist())) == 85
    first = reviews.slice(0, 1).to_pylist()[0]
    assert (first["user_id"], first["item_id"], first["rating"], first["timestamp"]) == (
        "A3CIUOJXQ5VDQ2", "B0000530HU", "5.0", "1472688000")
    assert first["review_summary"] == "Five Stars"
    assert load("amazon-reviews", AMAZON_FILE.parent, "interactions")[0].num_rows == 5_269  # folder form


def test_generic_folder_csv_keeps_ids_as_given_and_marks_malformed_records(tmp_path):
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id,timestamp,rating\n"
        "\"O'Brien; DROP TABLE x;--\",<b>i1</b>,100,4\n"
        "u2,\"title, with comma\",2020-01-01T00:00:00Z,5\n"
        "u3,i3,300\n"  # a field short
        "u4,i4,400,1,extra\n"  # a field too many
        "\n"  # blank line: not a record
        "u5,\"multi\nline\",500,2\n"  # quoted newline: one record over two lines
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
    pq.write_table(pa.table({"user_id": [1, 2], "item_id": ["a", "b"], "timestamp": [10, 20], "rating": [0.5, 9.0]}),
                   tmp_path / "interactions.parquet")
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
    with pytest.raises(DatasetError, match=r"interactions\.csv: missing required column\(s\) 'item_id'"):
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
        handle.write(json.dumps({"reviewerID": "u1", "asin": "a1", "overall": 5.0, "unixReviewTime": 100}) + "\n")
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

"""The corpus's cases that break a whole record: records that cannot be split into fields or parsed,
and amazon's JSON types other than the usual ones (build_records adds them after the others)."""

from __future__ import annotations

from collections.abc import Callable

from support.corpus.records import DELIMITED


def add_record_cases(add: Callable[..., None]) -> None:
    """Add (through build_records' ``add``) the cases written as a raw line or a JSON object."""
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

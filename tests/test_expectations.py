"""The Great Expectations suite catches each kind of bad fct_interactions row (and passes clean ones)."""

import pandas as pd

from orchestration.defs.transform.expectations import VALID_EVENT_TS, validate_fct_interactions


def frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "event_ts"]).astype(
        {"event_ts": "datetime64[us]"}
    )


CLEAN = [
    ("1", "10", 4.0, "1998-01-01 00:00:00"),
    ("1", "11", 5.0, "1998-01-01 00:00:00"),
    ("2", "10", 1.0, "1997-06-01"),
]


def failing(suite):
    return sorted(
        (r["expectation"], r["column"], r["unexpected_count"])
        for r in suite.results
        if not r["success"]
    )


def test_suite_passes_clean_rows():
    suite = validate_fct_interactions(frame(CLEAN), (1.0, 5.0), *VALID_EVENT_TS)
    assert suite.success and len(suite.results) == 7


def test_suite_flags_nulls_duplicates_ratings_and_times():
    bad = CLEAN + [
        (None, "12", 3.0, "1998-01-02"),  # null user
        ("1", "10", 4.0, "1998-01-01 00:00:00"),  # duplicate (user, item, ts)
        ("3", "13", 6.0, "1998-01-03"),  # rating above the scale
        ("4", "14", 2.0, "2150-01-01"),  # after the valid range
    ]
    suite = validate_fct_interactions(frame(bad), (1.0, 5.0), *VALID_EVENT_TS)
    assert not suite.success
    assert failing(suite) == [
        ("expect_column_values_to_be_between", "event_ts", 1),
        ("expect_column_values_to_be_between", "rating", 1),
        ("expect_column_values_to_not_be_null", "user_id", 1),
        ("expect_compound_columns_to_be_unique", "user_id,item_id,event_ts", 2),
    ]


def test_implicit_feedback_skips_rating_expectations():
    rows = [(u, i, None, t) for u, i, _, t in CLEAN]
    suite = validate_fct_interactions(frame(rows), None, *VALID_EVENT_TS)
    assert suite.success and len(suite.results) == 5

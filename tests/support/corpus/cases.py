"""The logical corpus (build_records): clean rows, then the bad and odd values of single fields
(ids, timestamps, ratings, text) and duplicates; then the cases in record_cases.py."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from support.corpus.record_cases import add_record_cases
from support.corpus.records import HUGE, TEXT_COLUMN, Record


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
    add_record_cases(add)
    return records

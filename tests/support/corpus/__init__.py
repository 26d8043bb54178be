"""A deterministic malformed-input corpus: one logical set of interaction records (clean rows plus
bad rows of every kind) written in every dataset format, with the quarantine reason each row must
get in that format.

A case that a format cannot express (a quoted newline in RecBole's QUOTE_NONE TSV, the text
"five" in a float parquet column, a field-count error in parquet) is left out of that format, so
the expected counts always come from what was actually written.

- ``records``: the Record type, the formats, how a raw timestamp should be read
- ``cases``, ``record_cases``: the logical corpus (build_records), case by case
- ``writers``: which records each format can hold, and the corpus written in a format
- ``faults``: whole-file faults, each leaving a file that no run may read
"""

from support.corpus.cases import build_records
from support.corpus.faults import WHOLE_FILE_FAULTS, break_file
from support.corpus.records import (
    BOM,
    DELIMITED,
    FORMATS,
    HUGE,
    TEXT_COLUMN,
    TYPED_TZ,
    Record,
    utc_instant,
)
from support.corpus.writers import (
    expected_counts,
    records_for,
    writable,
    write_amazon,
    write_csv,
    write_format,
    write_ml_latest_small,
    write_parquet,
    write_recbole,
)

__all__ = [
    "BOM",
    "DELIMITED",
    "FORMATS",
    "HUGE",
    "TEXT_COLUMN",
    "TYPED_TZ",
    "WHOLE_FILE_FAULTS",
    "Record",
    "break_file",
    "build_records",
    "expected_counts",
    "records_for",
    "utc_instant",
    "writable",
    "write_amazon",
    "write_csv",
    "write_format",
    "write_ml_latest_small",
    "write_parquet",
    "write_recbole",
]

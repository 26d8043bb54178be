"""One reader per file format: CSV, RecBole TSV, JSON lines (text plain or gzipped) and parquet.

Each yields (line or row where the record starts, raw column -> text, parse error or None). A
record that cannot be split into fields is yielded with its error, not raised: dbt quarantines it.
A file that cannot be read at all (missing header columns, not UTF-8, corrupt gzip) raises
DatasetError naming the file.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from orchestration.core.datasets import DatasetError
from orchestration.defs.ingest.schema import REQUIRED_COLUMNS, SCALAR_COLUMNS, SourceFile

csv.field_size_limit(64 * 1024 * 1024)  # a huge field is data, not a reason to crash


def _scalar_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, bytes):  # a parquet binary column: the text it holds, not "b'...'"
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _open_text(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4096)
    except (OSError, EOFError, zlib.error) as err:
        what = "not a readable gzip file" if path.suffix == ".gz" else "unreadable file"
        raise DatasetError(f"{path}: {what} ({err})") from None
    # A UTF-16/32 file decoded as UTF-8 would be all U+FFFD and NULs: say what it is instead.
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head.split(b"\n", 1)[0]:
        raise DatasetError(
            f"{path}: file is not UTF-8 text (a UTF-16 byte-order mark or NUL bytes in line 1); "
            "save it as UTF-8"
        )
    # utf-8-sig drops a BOM; undecodable bytes become U+FFFD so one bad byte cannot sink the file.
    return opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="")


def _nested_value_error(source: SourceFile, table: str, values: dict) -> str | None:
    """The parse error of a record whose id/rating/timestamp is an object or list (JSON, parquet)."""
    names = {raw: src for src, raw in source.columns.items()}
    for raw in SCALAR_COLUMNS[table]:
        if isinstance(values.get(raw), (dict, list)):
            kind = "an object" if isinstance(values[raw], dict) else "a list"
            return f"field {names.get(raw, raw)!r}: expected a string or number, found {kind}"
    return None


def _check_columns(source: SourceFile, header: list[str], table: str) -> dict[str, int]:
    """Map raw column -> position in the file; fail naming the file if a required one is missing."""
    position = {}
    for index, name in enumerate(header):
        clean = name.strip()
        if source.fmt == "tsv-recbole":
            clean = clean.split(":", 1)[0]  # RecBole headers are name:type
        raw_name = source.columns.get(clean)
        if raw_name is not None and raw_name not in position:
            position[raw_name] = index
    expected_sources = {raw: src for src, raw in source.columns.items()}
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in position]
    if missing:
        wanted = ", ".join(repr(expected_sources.get(c, c)) for c in missing)
        expected = "\t" if source.fmt == "tsv-recbole" else ","
        others = [
            d
            for d in (",", ";", "\t", "|")
            if d != expected and len(header) == 1 and d in header[0]
        ]
        hint = f" (it looks {others[0]!r}-separated; expected {expected!r})" if others else ""
        raise DatasetError(
            f"{source.path}: missing required column(s) {wanted}; header has {[h.strip() for h in header]}{hint}"
        )
    return position


class _LineTape:
    """The file's lines as csv.reader reads them, remembering those of the record being read, so a
    record that turns out to be an unterminated quote can give its lines back."""

    def __init__(self, lines):
        self.lines, self.taken, self.given_back = iter(lines), [], []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.given_back.pop() if self.given_back else next(self.lines)
        self.taken.append(line)
        return line

    def give_back(self, lines: list[str]) -> None:
        self.given_back.extend(reversed(lines))


def _iter_delimited(source: SourceFile, table: str) -> Iterator[tuple[int, dict, str | None]]:
    delimiter = "\t" if source.fmt == "tsv-recbole" else ","
    quoting = csv.QUOTE_NONE if source.fmt == "tsv-recbole" else csv.QUOTE_MINIMAL
    with _open_text(source.path) as handle:
        tape = _LineTape(handle)
        # strict: a broken quote is an error (a malformed record), not a guess at what was meant
        reader = csv.reader(tape, delimiter=delimiter, quoting=quoting, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetError(f"{source.path}: file is empty (expected a header line)") from None
        except csv.Error as err:
            raise DatasetError(f"{source.path}: line 1: unreadable header ({err})") from None
        position = _check_columns(source, header, table)
        width = len(header)
        line, base = reader.line_num, 0  # base: lines read by earlier readers (after a replay)
        while True:
            start = line + 1
            tape.taken.clear()
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                problem = (
                    "unterminated quoted field"
                    if "unexpected end of data" in str(err)
                    else str(err)
                )
                if len(tape.taken) > 1:
                    # A quote opened on this line ran over the lines after it: this line alone is the
                    # malformed record, and the lines it swallowed are read again as records of their own.
                    yield (
                        start,
                        {},
                        f"unparseable record: {problem} (a quote opened on line {start} is not closed on it)",
                    )
                    base, line = start, start
                    tape.give_back(tape.taken[1:])
                    reader = csv.reader(tape, delimiter=delimiter, quoting=quoting, strict=True)
                    continue
                line = base + reader.line_num  # the rest of the bad line is skipped
                yield start, {}, f"unparseable record: {problem}"
                continue
            line = base + reader.line_num
            if not fields:
                continue  # blank line: not a record
            error = (
                None if len(fields) == width else f"expected {width} fields, found {len(fields)}"
            )
            values = {col: (fields[i] if i < len(fields) else None) for col, i in position.items()}
            yield start, values, error


def _iter_jsonl(source: SourceFile, table: str) -> Iterator[tuple[int, dict, str | None]]:
    seen_any, line_number = False, 0
    with _open_text(source.path) as handle:
        lines = enumerate(handle, start=1)
        while True:
            try:
                line_number, line = next(lines)
            except StopIteration:
                break
            except (
                OSError,
                EOFError,
                zlib.error,
            ) as err:  # a truncated or corrupt .gz part way through
                raise DatasetError(
                    f"{source.path}: gzip data unreadable after line {line_number} ({err})"
                ) from None
            if not line.strip():
                continue
            seen_any = True
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                yield line_number, {}, f"invalid JSON: {err.msg} (column {err.colno})"
                continue
            if not isinstance(record, dict):
                yield line_number, {}, "invalid JSON: not an object"
                continue
            values = {raw: record.get(src) for src, raw in source.columns.items()}
            yield (
                line_number,
                {raw: _scalar_text(v) for raw, v in values.items()},
                _nested_value_error(source, table, values),
            )
    if not seen_any:
        raise DatasetError(f"{source.path}: file is empty (expected JSON lines)")


def _iter_parquet(source: SourceFile, table: str) -> Iterator[tuple[int, dict, str | None]]:
    try:
        parquet = pq.read_table(source.path)
    except Exception as err:  # noqa: BLE001 - any reader failure is "unreadable file" to the user
        raise DatasetError(f"{source.path}: unreadable parquet file ({err})") from None
    position = _check_columns(source, parquet.column_names, table)
    columns = {raw: parquet.column(i).to_pylist() for raw, i in position.items()}
    for row in range(parquet.num_rows):
        values = {raw: column[row] for raw, column in columns.items()}
        yield (
            row + 1,
            {raw: _scalar_text(v) for raw, v in values.items()},
            _nested_value_error(source, table, values),
        )


READERS = {
    "csv": _iter_delimited,
    "tsv-recbole": _iter_delimited,
    "jsonl": _iter_jsonl,
    "parquet": _iter_parquet,
}

"""Which files feed each raw table, per dataset kind: ML-100K (RecBole), ml-latest-small,
Amazon reviews, or a generic folder (interactions.csv|parquet and optional items, users, tags),
with each file's source column -> raw column mapping and its format."""

from __future__ import annotations

from pathlib import Path

from orchestration.core.datasets import DatasetError, DatasetSpec
from orchestration.defs.ingest.schema import RAW_COLUMNS, SourceFile


def _first_existing(folder: Path, stems: list[str], exts: list[str]) -> Path | None:
    for stem in stems:
        for ext in exts:
            if (folder / f"{stem}{ext}").exists():
                return folder / f"{stem}{ext}"
    return None


def _generic_source(path: Path, base: Path, columns: dict[str, str]) -> SourceFile:
    fmt = "parquet" if path.suffix == ".parquet" else "csv"
    return SourceFile(path, base, columns, fmt)


def sources_for(spec: DatasetSpec, folder: Path, table: str) -> list[SourceFile]:
    """The files (possibly none) that feed raw table ``table`` for this dataset."""
    identity = {c: c for c in RAW_COLUMNS[table]}
    if spec.kind == "ml-100k":
        files = {
            "interactions": ("ml-100k.inter", identity),
            "items": (
                "ml-100k.item",
                {
                    "item_id": "item_id",
                    "movie_title": "title",
                    "release_year": "year",
                    "class": "genres",
                },
            ),
            "users": ("ml-100k.user", identity),
        }
        if table not in files:
            return []
        name, columns = files[table]
        if not (folder / name).exists():
            raise DatasetError(
                f"{folder / name}: file not found (ML-100K in RecBole format expected)"
            )
        return [SourceFile(folder / name, folder, columns, "tsv-recbole")]
    if spec.kind == "ml-latest-small":
        files = {
            "interactions": (
                "ratings.csv",
                {
                    "userId": "user_id",
                    "movieId": "item_id",
                    "rating": "rating",
                    "timestamp": "timestamp",
                },
                True,
            ),
            "items": (
                "movies.csv",
                {"movieId": "item_id", "title": "title", "genres": "genres"},
                True,
            ),
            "item_tags": (
                "tags.csv",
                {"userId": "user_id", "movieId": "item_id", "tag": "tag", "timestamp": "timestamp"},
                False,
            ),
        }
        if table not in files:
            return []
        name, columns, required = files[table]
        if not (folder / name).exists():
            if required:
                raise DatasetError(
                    f"{folder / name}: file not found (GroupLens ml-latest-small layout expected)"
                )
            return []
        return [SourceFile(folder / name, folder, columns, "csv")]
    if spec.kind == "amazon-reviews":
        if table != "interactions":
            return []  # the 5-core review files carry no item metadata
        if folder.is_file():
            paths, base = [folder], folder.parent
        else:
            paths, base = sorted([*folder.glob("*.json"), *folder.glob("*.json.gz")]), folder
        if not paths:
            raise DatasetError(f"{folder}: no .json or .json.gz review file found")
        columns = {
            "reviewerID": "user_id",
            "asin": "item_id",
            "overall": "rating",
            "unixReviewTime": "timestamp",
            "summary": "review_summary",
            "reviewText": "review_text",
        }
        return [SourceFile(p, base, columns, "jsonl") for p in paths]
    # Generic folder: interactions.csv|parquet (required), items.*, users.*, item_tags.* (optional).
    extras = {
        "interactions": {
            "text": "review_text",
            "review": "review_text",
            "summary": "review_summary",
        },
        "items": {"text": "description"},
    }
    columns = {**identity, **extras.get(table, {})}
    path = _first_existing(folder, [table], [".csv", ".parquet"])
    if path is None:
        if table == "interactions":
            raise DatasetError(f"{folder}: no interactions.csv or interactions.parquet found")
        return []
    return [_generic_source(path, folder, columns)]

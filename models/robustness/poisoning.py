"""Data poisoning (after LoRec, Zhang et al. 2024): fake users who push one target item, and how far
their target reaches the models' top-k (`exposure`). The detector that flags suspicious users from
TRAIN data before any model learns from them is poisoning_detector.py.

    poisoned = inject(splits_frame, "imitation", share=0.03, target=pick_target(splits_frame), seed=0)
    report = detect(SplitData.from_splits(poisoned.frame))      # poisoning_detector.py
    precision_recall(report, poisoned.fake_users)

Attacks (each adds round(share x real users) fake users; the frame keeps the `splits` columns):
    random     filler items drawn uniformly from the catalogue (the classic random attack)
    average    fillers drawn in proportion to train popularity, profile lengths like real users'
               (an average / bandwagon attack: a profile that looks like the crowd's)
    imitation  a real user's sequence copied, timestamps and all, keeping `keep` of its train
               items (sequence-imitation: the profile IS a real one, so it is the hardest to see)
Every fake user's train sequence is fillers with the target after every `every`-th one (default 3)
and as the LAST train item (what a sequential model learns "comes next"; a click log allows repeats,
and once at the end alone moved no real user's SASRec top-10 on ML-100K), then one valid and one
test item (random/average: two more fillers; imitation: the template's own valid/test items), so
the protocol splits fake users like real ones.
Random/average accounts act like bots: one burst at a random time within the data's span, 1-60 s
apart. Rows are marked source_file='injected' for lineage; nothing downstream reads that column.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

ATTACKS = ("random", "average", "imitation")
INJECTED_FILE = "injected"


@dataclass
class Poisoned:
    frame: pd.DataFrame  # the split frame with the fake users' rows appended
    fake_users: set[str]  # ground truth, for measuring only (the detector never sees it)
    target: str


def _sequences(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    order = [c for c in ("user_id", "event_ts", "source_file", "source_row") if c in frame.columns]
    return dict(tuple(frame.sort_values(order, kind="stable").groupby("user_id", sort=True)))


def train_counts(frame: pd.DataFrame) -> pd.Series:
    return frame.loc[frame["split"] == "train", "item_id"].value_counts()


def pick_target(frame: pd.DataFrame, seed: int = 0, max_train_count: int = 3) -> str:
    """A cold item: one with 1..max_train_count train interactions, chosen by seed."""
    counts = train_counts(frame)
    cold = np.sort(counts[(counts >= 1) & (counts <= max_train_count)].index.to_numpy().astype(str))
    if len(cold) == 0:
        raise ValueError(
            f"no item has 1..{max_train_count} train interactions to use as a cold target"
        )
    return str(np.random.default_rng(seed).choice(cold))


def _fake_ids(frame: pd.DataFrame, n: int) -> list[str]:
    """Ids that look like the real ones (numbers after the largest numeric id), so no rule can key on them."""
    numeric = pd.to_numeric(frame["user_id"], errors="coerce")
    start = int(numeric.max()) + 1 if numeric.notna().any() else 0
    taken = set(frame["user_id"])
    ids, k = [], start
    while len(ids) < n:
        if str(k) not in taken:
            ids.append(str(k))
        k += 1
    return ids


def _bot_times(rng, span: tuple[pd.Timestamp, pd.Timestamp], n: int) -> pd.DatetimeIndex:
    gaps = np.cumsum(rng.integers(1, 61, size=n))
    start = span[0] + (span[1] - span[0]) * rng.random()
    return pd.DatetimeIndex(start + pd.to_timedelta(gaps, unit="s"))


def _with_target(
    items: list, times: list, target: str, every: int, at_end: bool
) -> tuple[list, list]:
    """The train fillers with the target after every `every`-th one (0: never) and, if `at_end`, last."""
    out_items, out_times = [], []
    for k, (item, ts) in enumerate(zip(items, times), start=1):
        out_items.append(item)
        out_times.append(ts)
        if every and k % every == 0 and k < len(items):
            out_items.append(target)
            out_times.append(ts)
    if not at_end:
        return out_items, out_times
    return out_items + [target], out_times + [times[-1] if times else None]


def inject(
    frame: pd.DataFrame,
    attack: str,
    share: float,
    target: str,
    seed: int = 0,
    keep: float = 0.8,
    every: int = 3,
    at_end: bool = True,
) -> Poisoned:
    """`frame` plus round(share x users) fake users pushing `target` (at least one). `at_end=False` is
    the evasive variant: the target only inside the sequence, never its last train item."""
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, not {attack!r}")
    rng = np.random.default_rng(seed)
    by_user = _sequences(frame)
    real_users = sorted(by_user)
    n_fake = max(1, round(share * len(real_users)))
    counts = train_counts(frame)
    items = np.array(sorted(set(frame["item_id"]) - {target}), dtype=object)
    popularity = (
        counts.reindex(items).fillna(0).to_numpy(float) + 1.0
    )  # +1: every item can be drawn
    train_lengths = np.array([(seq["split"] == "train").sum() for seq in by_user.values()])
    span = (frame["event_ts"].min(), frame["event_ts"].max())
    templates = [
        u
        for u in real_users
        if (by_user[u]["split"] != "train").sum() == 2
        and (by_user[u]["split"] == "train").sum() >= 3
    ]
    rows = []
    for fake, template in zip(
        _fake_ids(frame, n_fake), rng.permutation(templates)[:n_fake].tolist() + [None] * n_fake
    ):
        if attack == "imitation":
            seq = by_user[template if template is not None else rng.choice(templates)]
            train = seq[seq["split"] == "train"]
            train = train[(rng.random(len(train)) < keep) & (train["item_id"] != target)]
            held = seq[seq["split"] != "train"]
            train_items, train_times = _with_target(
                list(train["item_id"]), list(train["event_ts"]), target, every, at_end
            )
            train_times = [
                held["event_ts"].min() if ts is None else ts for ts in train_times
            ]  # all dropped
            seq_items, seq_times = (
                [*train_items, *held["item_id"]],
                [*train_times, *held["event_ts"]],
            )
        else:
            n_fillers = (
                max(3, int(rng.choice(train_lengths))) - 1 + 2
            )  # train fillers + valid + test
            p = None if attack == "random" else popularity / popularity.sum()
            fillers = rng.choice(
                items, size=min(n_fillers, len(items)), replace=False, p=p
            ).tolist()
            train_items, _ = _with_target(
                fillers[:-2], [None] * (len(fillers) - 2), target, every, at_end
            )
            seq_items = [*train_items, *fillers[-2:]]
            seq_times = list(_bot_times(rng, span, len(seq_items)))
        n = len(seq_items)
        rows.append(
            pd.DataFrame(
                {
                    "user_id": fake,
                    "item_id": seq_items,
                    "event_ts": pd.to_datetime(seq_times),
                    "split": ["train"] * (n - 2) + ["valid", "test"],
                    "source_file": INJECTED_FILE,
                    "source_row": np.arange(1, n + 1),
                }
            )
        )
    fakes = pd.concat(rows, ignore_index=True)
    fakes["event_ts"] = fakes["event_ts"].astype(frame["event_ts"].dtype)
    fakes = fakes[[c for c in frame.columns if c in fakes.columns]]
    return Poisoned(pd.concat([frame, fakes], ignore_index=True), set(fakes["user_id"]), target)


def exposure(topk_items: np.ndarray, target_index: int, k: int = 10) -> float:
    """Share of rows (users) whose top-k holds the target item."""
    return float((topk_items[:, :k] == target_index).any(axis=1).mean()) if len(topk_items) else 0.0

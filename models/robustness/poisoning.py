"""Data poisoning (after LoRec, Zhang et al. 2024): fake users who push one target item, and a
detector that flags suspicious users from TRAIN data before any model learns from them.

    poisoned = inject(splits_frame, "imitation", share=0.03, target=pick_target(splits_frame), seed=0)
    report = detect(SplitData.from_splits(poisoned.frame))      # score, flagged, reasons per user
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

Detector (no labels, TRAIN only; each rule's score is in units of its threshold, flagged at >= 1):
    shared_last_item  the user's last train item is the last train item of an unusual share of
                      everyone who has it (Wilson 95% lower bound of last/holders, with at least
                      `min_group` users): a group that all ends on one item is a campaign
    atypical_popularity  the mean log train-popularity of the user's items is far below the
                      population's (robust z): uniform random fillers are mostly obscure items
    near_duplicate    train-set Jaccard to some other user at or above `duplicate_jaccard`
                      with a user at least as large (a copy keeps a subset of its template, so
                      of a copied pair only the copy scores); under `min_items` train items: exempt
Timing is not used: 44% of real ML-100K users rate several items in one second, so bursts are normal.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from models.recsys.data import SplitData

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


@dataclass
class DetectorConfig:
    min_group: int = 5  # users ending on one item before that can count as a campaign
    group_bound: float = (
        0.2  # Wilson lower bound of (users ending on it / holding it); clean ML-100K max: 0.02
    )
    popularity_z: float = 4.0  # robust z below the median mean-log-popularity that is atypical
    duplicate_jaccard: float = 0.75  # train-set Jaccard to another user that counts as a copy
    # users with fewer train items are judged by no rule: a one-item history always "ends" on its item
    # and is "obscure" when that item is, so on sparse data (Amazon: most users rate once) every rule
    # would fire on ordinary users (80% flagged on a sparse synthetic set before this bound)
    min_items: int = 10


def _wilson_lower(hits: np.ndarray, n: np.ndarray, z: float = 1.96) -> np.ndarray:
    n = np.maximum(n, 1)
    p = hits / n
    centre = p + z * z / (2 * n)
    margin = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - margin) / (1 + z * z / n)


def _train_matrix(data: SplitData) -> sparse.csr_matrix:
    rows = np.repeat(np.arange(data.n_users), [len(t) for t in data.train])
    cols = np.concatenate(data.train) if data.n_users else np.zeros(0, np.int64)
    x = sparse.csr_matrix(
        (np.ones(len(cols), np.float32), (rows, cols)), shape=(data.n_users, data.n_items)
    )
    x.sum_duplicates()
    x.data[:] = 1.0  # repeated items count once
    return x


def detect(data: SplitData, config: DetectorConfig = DetectorConfig()) -> pd.DataFrame:
    """One row per user: user_id, score (max over rules, in units of each rule's threshold),
    flagged (score >= 1), reasons (the rules at or above threshold, comma-separated)."""
    lengths = np.array([len(t) for t in data.train], dtype=np.int64)
    judged = lengths >= config.min_items
    rules = {}

    x = _train_matrix(data)
    holders = np.asarray(x.sum(axis=0)).ravel()  # distinct users with the item in train

    # shared_last_item: share of an item's holders for whom it is the last train item
    last = np.array([t[-1] if len(t) else -1 for t in data.train])
    enders = np.bincount(last[judged], minlength=data.n_items)
    bound = np.where(enders >= config.min_group, _wilson_lower(enders, holders), 0.0)
    rules["shared_last_item"] = (
        np.where(judged, bound[np.maximum(last, 0)], 0.0) / config.group_bound
    )

    # atypical_popularity: robust z of the mean log-popularity of the user's train items
    log_pop = np.log1p(holders)
    mean_pop = np.array([log_pop[t].mean() if len(t) else np.nan for t in data.train])
    median = np.nanmedian(mean_pop)
    mad = 1.4826 * np.nanmedian(np.abs(mean_pop - median)) or 1.0
    atypical = np.nan_to_num(np.maximum(median - mean_pop, 0) / mad) / config.popularity_z
    rules["atypical_popularity"] = np.where(judged, atypical, 0.0)

    # near_duplicate: the largest train-set Jaccard to another judged user. Only judged users enter
    # the users x users product: short histories are most users on sparse data, and their pairs
    # through one popular item would make the product quadratic in its holders.
    long = np.flatnonzero(judged)
    xl = x[long]
    inter = (xl @ xl.T).tocoo()
    sizes = np.asarray(xl.sum(axis=1)).ravel()
    off = inter.row != inter.col
    # of a copied pair only the smaller profile scores: a copy keeps a subset of its template
    off &= sizes[inter.row] <= sizes[inter.col]
    jac = inter.data[off] / (sizes[inter.row[off]] + sizes[inter.col[off]] - inter.data[off])
    best = np.zeros(len(long))
    np.maximum.at(best, inter.row[off], jac)
    duplicate = np.zeros(data.n_users)
    duplicate[long] = best
    rules["near_duplicate"] = duplicate / config.duplicate_jaccard

    scores = np.column_stack(list(rules.values()))
    names = np.array(list(rules))
    return pd.DataFrame(
        {
            "user_id": data.users.astype(str),
            "score": scores.max(axis=1).round(6),
            "flagged": scores.max(axis=1) >= 1.0,
            "reasons": [",".join(names[row >= 1.0]) for row in scores],
        }
    )


def precision_recall(report: pd.DataFrame, fake_users: set[str]) -> tuple[float, float]:
    flagged = set(report.loc[report["flagged"], "user_id"])
    hits = len(flagged & fake_users)
    return (hits / len(flagged) if flagged else 0.0), (
        hits / len(fake_users) if fake_users else 0.0
    )


def exposure(topk_items: np.ndarray, target_index: int, k: int = 10) -> float:
    """Share of rows (users) whose top-k holds the target item."""
    return float((topk_items[:, :k] == target_index).any(axis=1).mean()) if len(topk_items) else 0.0

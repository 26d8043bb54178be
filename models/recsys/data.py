"""The leave-one-out split as index arrays every recommender trains and is evaluated on.

`SplitData.from_splits(frame)` takes the warehouse's `splits` table (user_id, item_id, event_ts,
split, source_file, source_row) and keeps each user's TRAIN items in time order (ties broken by the
source file and row, as the split itself was made), plus the valid and test item. Ids stay the
source's strings; models only see the 0-based indices into `users` / `items`.

The same class holds the timeline protocol (`timeline_splits`, `from_splits(frame, timeline=True)`):
there a user's test history is everything before the test cutoff (train, valid and the `context`
rows after the valid cutoff, which models do not fit on), and items first seen after the valid
cutoff are no candidates at valid. The cold-item protocol (`cold_item_splits`, `from_splits(frame,
cold_items=True, catalog=all_items)`) likewise keeps the films no model trained on out of valid.
"""

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

NO_ITEM = -1  # a user with fewer than 3 interactions has no valid/test item


@dataclass
class SplitData:
    users: np.ndarray  # user_id strings, index = user index
    items: np.ndarray  # item_id strings, index = item index (every item in any split)
    train: list[np.ndarray]  # per user: train item indices in time order
    valid: np.ndarray  # per user: valid item index or NO_ITEM
    test: np.ndarray  # per user: test item index or NO_ITEM
    # timeline only: per user, every item before the test cutoff in time order (None: train + valid)
    test_history: list[np.ndarray] | None = None
    # timeline and cold items: items without train rows, not candidates at valid
    new_at_valid: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @classmethod
    def from_splits(
        cls,
        frame: pd.DataFrame,
        timeline: bool = False,
        cold_items: bool = False,
        catalog: np.ndarray | None = None,
    ) -> "SplitData":
        missing = {"user_id", "item_id", "event_ts", "split"} - set(frame.columns)
        if missing:
            raise ValueError(f"splits frame lacks column(s) {sorted(missing)}")
        order = [
            c for c in ("user_id", "event_ts", "source_file", "source_row") if c in frame.columns
        ]
        frame = frame.sort_values(order, kind="stable")
        users = np.array(sorted(frame["user_id"].unique()), dtype=object)
        # `catalog`: every item a list may hold, also those without a row (the cold-item protocol's
        # films nobody picked first); None: the items in the frame
        known_items = frame["item_id"].unique()
        if catalog is not None:
            known_items = np.union1d(known_items.astype(str), np.asarray(catalog, dtype=str))
        items = np.array(sorted(known_items), dtype=object)
        user_index = pd.Series(np.arange(len(users)), index=users)
        item_index = pd.Series(np.arange(len(items)), index=items)
        u = user_index[frame["user_id"]].to_numpy()
        i = item_index[frame["item_id"]].to_numpy()
        split = frame["split"].to_numpy()

        is_train = split == "train"
        train = sequences_by_user(u[is_train], i[is_train], len(users))
        held_out = {}
        for name in ("valid", "test"):
            target = np.full(len(users), NO_ITEM, dtype=np.int64)
            rows = split == name
            target[u[rows]] = i[rows]
            held_out[name] = target
        untrained = np.bincount(i[is_train], minlength=len(items)) == 0
        if cold_items:  # model selection among the films it knows; the cold ones wait for test
            return cls(
                users, items, train, held_out["valid"], held_out["test"], new_at_valid=untrained
            )
        if not timeline:
            return cls(users, items, train, held_out["valid"], held_out["test"])
        before_test = np.isin(split, ["train", "valid", "context"])
        return cls(
            users,
            items,
            train,
            held_out["valid"],
            held_out["test"],
            test_history=sequences_by_user(u[before_test], i[before_test], len(users)),
            new_at_valid=untrained,
        )

    def eval_users(self, stage: str) -> np.ndarray:
        """Users that have a held-out item at `stage` ('valid' or 'test')."""
        return np.flatnonzero(self.target(stage) != NO_ITEM)

    def target(self, stage: str) -> np.ndarray:
        if stage not in ("valid", "test"):
            raise ValueError(f"stage must be 'valid' or 'test', not {stage!r}")
        return self.valid if stage == "valid" else self.test

    def histories(self, users: np.ndarray, stage: str) -> list[np.ndarray]:
        """What a model may see when predicting `stage`: train items, plus the valid item for test."""
        if stage == "valid":
            return [self.train[u] for u in users]
        if self.test_history is not None:
            return [self.test_history[u] for u in users]
        return [
            np.append(self.train[u], self.valid[u]) if self.valid[u] != NO_ITEM else self.train[u]
            for u in users
        ]

    def full_histories(self) -> list[np.ndarray]:
        """Everything known of each user (train, valid, test): what a served model scores from."""
        return [
            h if self.test[u] == NO_ITEM else np.append(h, self.test[u])
            for u, h in enumerate(self.histories(np.arange(self.n_users), "test"))
        ]

    def not_candidates(self, stage: str) -> np.ndarray | None:
        """Boolean over items that no list may hold at `stage` beyond the user's own history (the
        timeline's items first seen after the valid cutoff, at valid); None: every item."""
        return self.new_at_valid if stage == "valid" else None

    def without_users(self, users: np.ndarray) -> "SplitData":
        """The same ids and index space with `users`' interactions left out (empty train, no valid/test
        item): what a model learns from when those users are held out of training, e.g. as suspected
        fake accounts. Evaluate on the full split, so the protocol stays the same."""
        drop = np.zeros(self.n_users, dtype=bool)
        drop[np.asarray(users, dtype=np.int64)] = True
        empty = np.zeros(0, dtype=np.int64)
        return replace(
            self,
            train=[empty if drop[u] else t for u, t in enumerate(self.train)],
            valid=np.where(drop, NO_ITEM, self.valid),
            test=np.where(drop, NO_ITEM, self.test),
        )

    def train_counts(self) -> np.ndarray:
        return np.bincount(
            np.concatenate(self.train) if self.train else np.zeros(0, np.int64),
            minlength=self.n_items,
        )


def leave_one_out(interactions: pd.DataFrame, source_file: str = "u.data") -> pd.DataFrame:
    """The protocol in Python, for interactions outside the warehouse (benchmarks, tests; the
    pipeline's `splits` is the dbt model): a stable sort by time over the rows' order, the last of
    each user is test, the one before valid (users with 3+ interactions). Rows are numbered
    source_row 1.. in their given order."""
    frame = interactions.reset_index(drop=True).assign(
        source_file=source_file, source_row=lambda d: d.index + 1
    )
    ordered = frame.sort_values(["user_id", "event_ts"], kind="stable")
    position = ordered.groupby("user_id").cumcount(ascending=False)
    size = ordered.groupby("user_id")["item_id"].transform("size")
    split = np.where(
        (size >= 3) & (position == 0),
        "test",
        np.where((size >= 3) & (position == 1), "valid", "train"),
    )
    return ordered.assign(split=split)


def sequences_by_user(user_codes: np.ndarray, items: np.ndarray, n_users: int) -> list[np.ndarray]:
    """`items` cut into one array per user 0..n_users-1; rows must be sorted by user code (and, within
    a user, in time order). A user without rows gets an empty array."""
    bounds = np.searchsorted(user_codes, np.arange(n_users + 1))
    return [items[bounds[k] : bounds[k + 1]] for k in range(n_users)]


def mean_vectors(vectors: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
    """Each history as the mean of its items' vectors (zeros for an empty history)."""
    out = np.zeros((len(histories), vectors.shape[1]), dtype=np.float32)
    for row, history in enumerate(histories):
        if len(history):
            out[row] = vectors[history].mean(0)
    return out


def seen_mask(
    histories: list[np.ndarray], n_items: int, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Boolean [len(histories), n_items]: True where the user has interacted with the item."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate(histories) if histories else np.zeros(0, np.int64)
    mask = torch.zeros(len(histories), n_items, dtype=torch.bool, device=device)
    mask[
        torch.as_tensor(rows, device=device), torch.as_tensor(cols, dtype=torch.long, device=device)
    ] = True
    return mask


def require_min_size(data: SplitData, model: str, min_users: int, min_items: int) -> None:
    """Fail early, naming the model and the sizes, instead of training on too little."""
    evaluable = len(data.eval_users("valid"))
    if data.n_items < min_items or evaluable < min_users:
        raise ValueError(
            f"{model} needs at least {min_items} items and {min_users} users with a valid item; "
            f"this split has {data.n_items} items and {evaluable} such users"
        )

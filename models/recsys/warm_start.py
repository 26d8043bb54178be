"""Retraining on a policy: warm-start a sequential model from its previous version on the new days,
and the rule that says when a full retrain is due instead.

    policy = RetrainPolicy()                  # weekly full retrain, or sooner on volume or drift
    kind, reason = policy.decide(days_since_full=3, new_events=800, events_at_full=95_000,
                                 new_item_events=12)
    fit = warm_start(model, previous_model, previous_items, data, changed_users, item_vectors, policy)

A warm start copies every weight of the previous version and maps its item rows onto today's items
by id. An item the previous version never saw gets a row built from its text: the mean of the rows
of the known items whose text vectors are nearest (its ID knows nothing yet; its text does). For
LLM-SASRec the text map adds the item's own vector on top. Then a few epochs on the windows that
changed (the users with new events), with as many other users' windows replayed so the model does
not forget them; the best of those epochs by valid NDCG@10 is kept, the starting point included.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from models.recsys.base import FitResult, Log, Timer, seed_everything
from models.recsys.cold_rows import nearest_mean_rows
from models.recsys.data import SplitData
from models.recsys.metrics import evaluate
from models.recsys.sasrec import SASRec, left_pad


@dataclass
class RetrainPolicy:
    full_every_days: int = 7  # a full retrain at least this often
    max_new_event_share: float = 0.10  # volume: events since the full retrain / events it saw
    max_new_item_share: float = 0.20  # drift: share of them on items the previous version never saw
    warm_epochs: int = 3
    replay_ratio: float = 1.0  # other users' windows replayed per changed window
    neighbours: int = 10  # known items a new item's row is averaged from

    def decide(
        self,
        days_since_full: int | None,
        new_events: int,
        events_at_full: int,
        new_item_events: int,
    ) -> tuple[str, str]:
        """("full" | "warm", why). `new_events` are those since the last full retrain, which saw
        `events_at_full`; `new_item_events` those on items the previous version never saw."""
        if days_since_full is None:
            return "full", "no earlier version of this model to start from"
        if days_since_full >= self.full_every_days:
            return "full", (
                f"{days_since_full} days since the last full retrain "
                f"(one at least every {self.full_every_days})"
            )
        volume = new_events / max(events_at_full, 1)
        if volume > self.max_new_event_share:
            return "full", (
                f"volume: {new_events} new events are {volume:.1%} of the {events_at_full} the "
                f"last full retrain saw (threshold {self.max_new_event_share:.0%})"
            )
        drift = new_item_events / max(new_events, 1)
        if drift > self.max_new_item_share:
            return "full", (
                f"drift: {drift:.1%} of the new events are on items the previous version never "
                f"saw (threshold {self.max_new_item_share:.0%})"
            )
        return "warm", (
            f"{days_since_full} day(s) since the last full retrain, {volume:.1%} new events, "
            f"{drift:.1%} of them on new items"
        )


def carry_item_rows(
    rows: torch.Tensor,
    old_items: np.ndarray,
    new_items: np.ndarray,
    vectors: np.ndarray | None,
    neighbours: int,
) -> torch.Tensor:
    """[len(new_items) + 1, hidden] from the previous [len(old_items) + 1, hidden] (row 0 pads):
    known items keep their row; a new one gets the mean row of its `neighbours` nearest known items
    by text vector (`vectors` aligned to `new_items`), or of all known items without a vector."""
    where = pd.Series(np.arange(len(old_items)), index=old_items).reindex(new_items).to_numpy()
    known = ~np.isnan(where)
    out = torch.zeros(len(new_items) + 1, rows.shape[1], dtype=rows.dtype)
    out[1:][torch.as_tensor(known)] = rows[1 + where[known].astype(np.int64)]
    fresh, known_at = np.flatnonzero(~known), np.flatnonzero(known)
    if not len(fresh) or not len(known_at):
        return out
    if vectors is None:
        out[1 + fresh] = out[1 + known_at].mean(0)
        return out
    out[1 + fresh] = nearest_mean_rows(out[1:], vectors, known_at, fresh, neighbours)
    return out


def warm_start(
    model: SASRec,
    previous: SASRec,
    previous_items: np.ndarray,
    data: SplitData,
    changed_users: np.ndarray,
    item_vectors: np.ndarray | None,
    policy: RetrainPolicy,
    log: Log = print,
) -> FitResult:
    """Fit `model` (unfitted, the same class and config as `previous`) on `data` starting from
    `previous`, whose items were `previous_items`; `changed_users` (indices into data.users) are
    those with events since `previous` was trained."""
    cfg, timer = model.config, Timer()
    rng = seed_everything(cfg.seed)
    model.net = model.build_net(data.n_items)
    state = {k: v.cpu() for k, v in previous.net.state_dict().items()}
    state["item_emb.weight"] = carry_item_rows(
        state["item_emb.weight"], previous_items, data.items, item_vectors, policy.neighbours
    )
    fresh = model.net.state_dict()  # text buffers are today's vectors, sized to today's ids
    for buffer in ("item_text", "user_text"):
        if buffer in state:
            state[buffer] = fresh[buffer]
    model.net.load_state_dict(state)
    model.net.to(model.device)

    known = torch.as_tensor(data.train_counts() > 0, device=model.device)
    windows, owners = changed_windows(data, changed_users, policy.replay_ratio, cfg.max_len, rng)
    result = FitResult()
    result.best_valid_ndcg10 = evaluate(model, data, "valid").metrics["ndcg@10"]
    best_state = {k: v.clone() for k, v in model.net.state_dict().items()}
    if len(windows):
        optimizer = torch.optim.Adam(
            model.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        for epoch in range(1, policy.warm_epochs + 1):
            epoch_timer = Timer()
            loss = model._train_epoch(windows, owners, optimizer, rng, known)
            valid = evaluate(model, data, "valid").metrics["ndcg@10"]
            result.epochs.append(
                {
                    "epoch": epoch,
                    "train_loss": loss,
                    "valid_ndcg@10": valid,
                    "seconds": epoch_timer(),
                }
            )
            log(f"{model.name} warm epoch {epoch}: loss {loss:.4f}, valid NDCG@10 {valid:.4f}")
            if valid > result.best_valid_ndcg10:
                result.best_epoch, result.best_valid_ndcg10 = epoch, valid
                best_state = {k: v.clone() for k, v in model.net.state_dict().items()}
    model.net.load_state_dict(best_state)
    result.seconds = timer()
    return result


def changed_windows(
    data: SplitData,
    changed_users: np.ndarray,
    replay_ratio: float,
    max_len: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """The last max_len + 1 train items of each changed user (where the new events are), plus a
    random sample of other users' last windows, `replay_ratio` per changed one."""
    has_pairs = np.array([len(t) >= 2 for t in data.train])
    changed = np.asarray(changed_users, dtype=np.int64)
    changed = changed[has_pairs[changed]]
    others = np.setdiff1d(np.flatnonzero(has_pairs), changed)
    n_replay = min(len(others), int(round(replay_ratio * len(changed))))
    owners = np.concatenate([changed, rng.choice(others, n_replay, replace=False)])
    return left_pad([data.train[u] for u in owners], max_len + 1), owners

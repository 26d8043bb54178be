"""The training resource: device, seed and budget shared by every recommender asset."""

import dagster as dg

from models.recsys.warm_start import RetrainPolicy
from orchestration.core.run_config import RunKnobs, knob


class TrainingRunConfig(RunKnobs):
    """A recommender asset's per-run knobs, editable in the launchpad; an empty one takes the
    training resource's value (its RECLAKE_TRAIN_* variable)."""

    seed: int | None = knob("RECLAKE_TRAIN_SEED", "seed of initialization, sampling and the grid")
    max_epochs: int | None = knob("RECLAKE_TRAIN_MAX_EPOCHS", "epoch budget", ge=1)
    patience: int | None = knob("RECLAKE_TRAIN_PATIENCE", "early-stopping patience", ge=1)


class TimelineRunConfig(RunKnobs):
    """timeline_evaluation's per-run knobs; an empty one takes the training resource's value."""

    seed: int | None = knob("RECLAKE_TRAIN_SEED", "the first seed")
    timeline_seeds: int | None = knob("RECLAKE_TIMELINE_SEEDS", "seeds per model", ge=1, le=10)
    max_epochs: int | None = knob("RECLAKE_TRAIN_MAX_EPOCHS", "epoch budget", ge=1)
    patience: int | None = knob("RECLAKE_TRAIN_PATIENCE", "early-stopping patience", ge=1)


class ColdItemsRunConfig(RunKnobs):
    """cold_item_evaluation's per-run knobs; an empty one takes the training resource's value."""

    seed: int | None = knob("RECLAKE_TRAIN_SEED", "the first seed")
    cold_seeds: int | None = knob("RECLAKE_COLD_SEEDS", "seeds per model", ge=1, le=10)
    max_epochs: int | None = knob("RECLAKE_TRAIN_MAX_EPOCHS", "epoch budget", ge=1)
    patience: int | None = knob("RECLAKE_TRAIN_PATIENCE", "early-stopping patience", ge=1)


class ColdUsersRunConfig(RunKnobs):
    """cold_user_evaluation's per-run knobs; an empty one takes the training resource's value."""

    seed: int | None = knob("RECLAKE_TRAIN_SEED", "the first seed")
    cold_user_seeds: int | None = knob("RECLAKE_COLD_USER_SEEDS", "seeds per model", ge=1, le=10)
    max_epochs: int | None = knob("RECLAKE_TRAIN_MAX_EPOCHS", "epoch budget", ge=1)
    patience: int | None = knob("RECLAKE_TRAIN_PATIENCE", "early-stopping patience", ge=1)


class TwoStageRunConfig(RunKnobs):
    """two_stage_model's per-run knobs; an empty one takes the training
    resource's value."""

    seed: int | None = knob("RECLAKE_TRAIN_SEED", "seed of the ranker and its folds")
    two_stage_n: int | None = knob(
        "RECLAKE_TRAIN_TWO_STAGE_N", "candidates per user it re-ranks", ge=1
    )


class TrainingResource(dg.ConfigurableResource):
    """Configured from RECLAKE_TRAIN_* env vars (core/settings.py; see README)."""

    device: str = "auto"  # auto: cuda when present, else cpu
    seed: int = 0
    torch_threads: int = 2
    # None: each model's own default (early stopping ends most runs sooner)
    max_epochs: int | None = None
    patience: int | None = None
    # which item vectors llm_sasrec maps (models/recsys/llm_sasrec.py: item_text_columns)
    llm_item_text: str = "title+profile"
    llm_use_user_profile: bool = False
    # which item vectors content_retriever compares (the same choices)
    content_item_text: str = "card"
    # Leave the users `suspicious_users` flags (likely fake, poisoning accounts) out of what every model
    # learns from; they are still evaluated, so the protocol is unchanged. Off by default: on clean
    # ML-100K the detector flags 4 of 943 real (heavy, niche) users, and leaving them out costs
    # LLM-SASRec 7.7% test NDCG@10 over three seeds (0.1083 -> 0.1000, stds 0.002) and SASRec 1.6%
    # (within its seed spread); bench/defence_cost.py, docs/reliability.md. Turn it on
    # (RECLAKE_TRAIN_POISONING_DEFENCE=1) when the data may hold fake accounts: it removes the
    # injected attacks of bench/poisoning.py entirely.
    poisoning_defence: bool = False
    # the model two_stage re-ranks; None: the best other one by valid
    two_stage_base: str | None = None
    two_stage_n: int = 50  # candidates per user it re-ranks
    # The pipeline job refits every model under the timeline, cold-item and cold-user protocols
    # (protocols.PROTOCOL_ASSETS), as long again as training each; False leaves them to a run of their own.
    protocol_evaluations: bool = True
    timeline_seeds: int = 1  # seeds per model under the timeline protocol (timeline_evaluation)
    cold_seeds: int = 1  # seeds per model under the cold-item protocol (cold_item_evaluation)
    cold_user_seeds: int = 1  # seeds per model under the cold-user protocol (cold_user_evaluation)
    # The retraining policy of sasrec and llm_sasrec (retraining.py): warm-start from the model's
    # newest version, with a full retrain at least every retrain_full_every_days days of data (0:
    # always full) or when the events since the last full one pass retrain_max_new_events (a share
    # of those it saw) or the share of them on items it never saw passes retrain_max_new_items.
    retrain_full_every_days: int = 7
    retrain_max_new_events: float = 0.10
    retrain_max_new_items: float = 0.20
    retrain_warm_epochs: int = 3

    def retrain_policy(self) -> RetrainPolicy:
        return RetrainPolicy(
            full_every_days=self.retrain_full_every_days,
            max_new_event_share=self.retrain_max_new_events,
            max_new_item_share=self.retrain_max_new_items,
            warm_epochs=self.retrain_warm_epochs,
        )

    def overrides(self) -> dict:
        """Config fields every model shares, with the budget knobs when set."""
        out = {"seed": self.seed, "device": self.device}
        if self.max_epochs is not None:
            out["max_epochs"] = self.max_epochs
        if self.patience is not None:
            out["patience"] = self.patience
        return out

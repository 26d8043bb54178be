"""The training resource: device, seed and budget shared by every recommender asset."""

import dagster as dg


class TrainingResource(dg.ConfigurableResource):
    """Configured from RECLAKE_TRAIN_* env vars (core/settings.py; see README)."""

    device: str = "auto"  # auto: cuda when present, else cpu
    seed: int = 0
    torch_threads: int = 2
    max_epochs: int | None = None  # None: each model's own default (early stopping ends most runs sooner)
    patience: int | None = None
    llm_item_text: str = "title+profile"  # which item vectors llm_sasrec maps: title | profile | title+profile
    llm_use_user_profile: bool = False
    # Leave the users `suspicious_users` flags (likely fake, poisoning accounts) out of what every model
    # learns from; they are still evaluated, so the protocol is unchanged. On by default: on clean
    # ML-100K the detector flags 4 of 943 real users (0.4%), and leaving them out moves EASE's test
    # NDCG@10 from 0.0711 to 0.0708 (SASRec's seed-to-seed std is 0.0046); see bench/poisoning.py.
    # RECLAKE_TRAIN_POISONING_DEFENCE=0 turns it off.
    poisoning_defence: bool = True

    def overrides(self) -> dict:
        """Config fields every model shares, with the budget knobs when set."""
        out = {"seed": self.seed, "device": self.device}
        if self.max_epochs is not None:
            out["max_epochs"] = self.max_epochs
        if self.patience is not None:
            out["patience"] = self.patience
        return out

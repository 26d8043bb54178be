"""The judge resource: how many users and items the nightly judge reads, and an optional second judge."""

import os
from pathlib import Path

import dagster as dg


class JudgeResource(dg.ConfigurableResource):
    """Configured from RECLAKE_JUDGE_* env vars (see README). The first judge is the `llm` resource's
    backend; a second one (RECLAKE_JUDGE2_*) turns on the multi-judge agreement report."""

    n_users: int = 200
    k: int = 10  # items of each list judged
    n_random: int = 10  # random unseen items per user: the negatives of judge_auc
    seed: int = 0
    item_profile_chars: int = 160  # of each item's LLM profile the pointwise judge reads
    second_backend: str | None = None  # embedded | hf | openai
    second_model_path: str | None = None
    second_base_url: str | None = None
    second_model: str | None = None

    @classmethod
    def from_env(cls) -> "JudgeResource":
        env = os.environ.get
        return cls(n_users=int(env("RECLAKE_JUDGE_USERS", "200")), k=int(env("RECLAKE_JUDGE_K", "10")),
                   n_random=int(env("RECLAKE_JUDGE_RANDOM_ITEMS", "10")), seed=int(env("RECLAKE_JUDGE_SEED", "0")),
                   second_backend=env("RECLAKE_JUDGE2_BACKEND") or None,
                   second_model_path=env("RECLAKE_JUDGE2_MODEL_PATH") or None,
                   second_base_url=env("RECLAKE_JUDGE2_BASE_URL") or None,
                   second_model=env("RECLAKE_JUDGE2_MODEL") or None)

    def load_second(self, cache_dir: Path, batch_size: int, log):
        from models.llm.factory import load_backend

        return load_backend(self.second_backend, cache_dir, model_path=self.second_model_path,
                            base_url=self.second_base_url, model=self.second_model, batch_size=batch_size, log=log)

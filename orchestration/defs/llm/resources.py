"""The LLM resource: which backend writes profiles, and the budget knobs that bound a run."""

import os
from pathlib import Path

import dagster as dg


class LLMResource(dg.ConfigurableResource):
    """Configured from RECLAKE_LLM_* env vars (see README). Secrets (the API key) are read by the
    openai backend from the environment itself and never pass through Dagster config."""

    backend: str = "embedded"  # embedded | hf | openai
    model_path: str | None = None  # hf: a local checkpoint directory
    base_url: str | None = None  # openai: e.g. http://127.0.0.1:8011/v1
    model: str | None = None  # openai: model name on that server
    device: str | None = None  # None: cuda when present, else cpu
    model_cache_dir: str | None = None  # where the embedded model is kept; default $RECLAKE_HOME/cache
    batch_size: int = 64
    item_max_new_tokens: int = 90
    user_max_new_tokens: int = 160
    max_items: int | None = None  # profile only the first N items (by id); None: all
    max_users: int | None = None
    torch_threads: int = 2  # on an idle 2-core machine 2 threads gave 1.6x the tokens/s of 1 (README)
    timeout_s: float = 60.0  # openai: per request
    max_retries: int = 3  # openai: per request, after the first try

    @classmethod
    def from_env(cls) -> "LLMResource":
        def optional_int(name):
            value = os.environ.get(name)
            return int(value) if value else None

        return cls(
            backend=os.environ.get("RECLAKE_LLM_BACKEND", "embedded"),
            model_path=os.environ.get("RECLAKE_LLM_MODEL_PATH") or None,
            base_url=os.environ.get("RECLAKE_LLM_BASE_URL") or None,
            model=os.environ.get("RECLAKE_LLM_MODEL") or None,
            device=os.environ.get("RECLAKE_LLM_DEVICE") or None,
            model_cache_dir=os.environ.get("RECLAKE_LLM_MODEL_CACHE") or None,
            batch_size=int(os.environ.get("RECLAKE_LLM_BATCH_SIZE", "64")),
            max_items=optional_int("RECLAKE_LLM_MAX_ITEMS"),
            max_users=optional_int("RECLAKE_LLM_MAX_USERS"),
            item_max_new_tokens=int(os.environ.get("RECLAKE_LLM_ITEM_MAX_NEW_TOKENS", "90")),
            user_max_new_tokens=int(os.environ.get("RECLAKE_LLM_USER_MAX_NEW_TOKENS", "160")),
            timeout_s=float(os.environ.get("RECLAKE_LLM_TIMEOUT_S", "60")),
            max_retries=int(os.environ.get("RECLAKE_LLM_MAX_RETRIES", "3")),
        )

    def cache_dir(self, home: Path) -> Path:
        return Path(self.model_cache_dir) if self.model_cache_dir else home / "cache"

    def load(self, home: Path, log):
        import torch

        from models.llm.factory import load_backend

        torch.set_num_threads(self.torch_threads)
        return load_backend(self.backend, self.cache_dir(home), model_path=self.model_path, base_url=self.base_url,
                            model=self.model, device=self.device, batch_size=self.batch_size, log=log,
                            timeout_s=self.timeout_s, max_retries=self.max_retries)

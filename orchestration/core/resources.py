"""The resources more than one stage uses: the data home (`lake`) and the LLM (`llm`).

Their fields come from RECLAKE_* variables through core/settings.py (as ``dg.EnvVar``s); stage-only
resources (training, serving, judge) live in their stage's folder.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from orchestration.core.datasets import DatasetSpec, fetch_ml100k, resolve_dataset
from orchestration.core.paths import Lake

# What does not decide the text an LLM writes: batch size, threads, device, cache place, patience.
LLM_RUNTIME_FIELDS = frozenset(
    {"batch_size", "torch_threads", "device", "model_cache_dir", "timeout_s", "max_retries"}
)


class LakeResource(dg.ConfigurableResource):
    """The data home (RECLAKE_HOME) and the dataset chosen by RECLAKE_DATASET / RECLAKE_DATA_DIR."""

    home: str
    dataset: str = "ml-100k"
    data_dir: str | None = None
    rating_scale: str | None = None  # "min,max" for a generic folder; named datasets know theirs
    # RECLAKE_ENGINE: duckdb (embedded) or spark (dbt-spark + Spark batch scoring)
    engine: str = "duckdb"

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser().resolve()

    @property
    def paths(self) -> Lake:
        """Every named path under the home (core/paths.py)."""
        return Lake(self.home_path)

    @property
    def warehouse_path(self) -> Path:
        return self.paths.warehouse

    def spec(self) -> DatasetSpec:
        return resolve_dataset(self.dataset, self.data_dir, self.rating_scale)

    def raw_dir(self) -> Path:
        return self.paths.raw_dir(self.spec().name)

    def dataset_facts(self) -> Path:
        """The ingest stage's facts about the dataset (rating scale, source files), read by later stages."""
        return self.paths.dataset_facts(self.spec().name)

    @property
    def daily(self) -> bool:
        """Whether the dataset arrives day by day: its landing zone has at least one day folder.
        Then the daily raw tables (interactions, items) are read from there, one partition a day;
        without one, every run reads the whole source (a snapshot)."""
        root = self.paths.landing(self.spec().name)
        return root.is_dir() and any(root.glob("date=*"))

    def source_folder(self, log=print) -> Path:
        """The local folder (or file) holding the dataset, fetching ML-100K if it is not there."""
        spec = self.spec()
        if spec.path is not None:
            return spec.path
        return fetch_ml100k(self.paths.cache, log=log)


class LLMResource(dg.ConfigurableResource):
    """Configured from RECLAKE_LLM_* env vars (see README). Secrets (the API key) are read by the
    openai backend from the environment itself and never pass through Dagster config."""

    backend: str = "embedded"  # embedded | hf | openai
    embedded_model: str = "smollm2-135m"  # embedded: a rung of models/llm/ladder.py
    # embedded: transformers (dequantized, torch) | llamacpp (the GGUF as it is)
    runtime: str = "transformers"
    model_path: str | None = None  # hf: a local checkpoint directory
    base_url: str | None = None  # openai: e.g. http://127.0.0.1:8011/v1
    model: str | None = None  # openai: model name on that server
    device: str | None = None  # None: cuda when present, else cpu
    # where the embedded model is kept; default $RECLAKE_HOME/cache
    model_cache_dir: str | None = None
    batch_size: int = 64
    item_max_new_tokens: int = 90
    user_max_new_tokens: int = 160
    max_items: int | None = None  # profile only the first N items (by id); None: all
    max_users: int | None = None
    # the daily loop: profiles refreshed per kind and landed day, beyond new items and users (the
    # rest wait in a queue, oldest first, keeping their last profile)
    daily_budget: int = 24
    torch_threads: int = 2  # threads of the torch or llama.cpp runtime
    timeout_s: float = 60.0  # openai: per request
    max_retries: int = 3  # openai: per request, after the first try

    def cache_dir(self, home: Path) -> Path:
        return Path(self.model_cache_dir) if self.model_cache_dir else Lake(home).cache

    def with_backend(
        self,
        backend: str,
        *,
        model_path: str | None = None,
        base_url: str | None = None,
        model: str | None = None,
    ) -> LLMResource:
        """The same runtime settings (device, batch, threads, timeout, retries) on another model: the
        judge's second opinion is wired exactly like the first."""
        return self.model_copy(
            update={
                "backend": backend,
                "model_path": model_path,
                "base_url": base_url,
                "model": model,
            }
        )

    def hidden_state_reader(self) -> LLMResource | None:
        """This LLM where it gives hidden states: on the transformers runtime (llama.cpp's server gives
        none; both read the same GGUF weights). None for an OpenAI-style server, which gives none."""
        if self.backend == "openai":
            return None
        return self.model_copy(update={"runtime": "transformers"})

    def load(self, home: Path, log):
        """The backend (models/llm/factory.py), on this resource's device; generate inside
        ``models.common.device.torch_threads(self.torch_threads)``."""
        from models.llm.factory import load_backend

        return load_backend(
            self.backend,
            self.cache_dir(home),
            model_path=self.model_path,
            base_url=self.base_url,
            model=self.model,
            device=self.device,
            batch_size=self.batch_size,
            log=log,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            embedded_model=self.embedded_model,
            runtime=self.runtime,
            threads=self.torch_threads,
        )

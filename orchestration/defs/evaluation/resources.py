"""The judge resource: how many users and items the nightly judge reads, and an optional second judge."""

import dagster as dg

from orchestration.core.resources import LLMResource
from orchestration.core.run_config import RunKnobs, knob


class JudgeRunConfig(RunKnobs):
    """The judge's per-run knobs, editable in the launchpad; an empty one takes the judge
    resource's value (its RECLAKE_JUDGE_* variable)."""

    n_users: int | None = knob(
        "RECLAKE_JUDGE_USERS", "users judged, sampled by train activity", ge=1
    )
    k: int | None = knob("RECLAKE_JUDGE_K", "items of each list judged", ge=1)
    n_random: int | None = knob("RECLAKE_JUDGE_RANDOM_ITEMS", "random unseen items per user", ge=1)
    seed: int | None = knob("RECLAKE_JUDGE_SEED", "seed of the user sample and the random items")


class SimulatorRunConfig(RunKnobs):
    """The simulated users' per-run knobs, editable in the launchpad; an empty one takes the
    simulator resource's value (its RECLAKE_SIM_* variable)."""

    n_users: int | None = knob("RECLAKE_SIM_USERS", "simulated users", ge=1)
    page_size: int | None = knob("RECLAKE_SIM_PAGE_SIZE", "items on a page", ge=2, le=20)
    max_models: int | None = knob("RECLAKE_SIM_MODELS", "model pages per user", ge=1)
    seed: int | None = knob("RECLAKE_SIM_SEED", "seed of the users, pages and choices")


class JudgeResource(dg.ConfigurableResource):
    """Configured from RECLAKE_JUDGE_* env vars (core/settings.py; see README). The first judge is the
    `llm` resource's backend; a second one (RECLAKE_JUDGE2_*) turns on the multi-judge agreement report."""

    # probe: the tuned judge (judge_probe); zero-shot: the LLM answers 1-5 / A-B itself
    kind: str = "probe"
    n_users: int = 200
    k: int = 10  # items of each list judged
    n_random: int = 10  # random unseen items per user: the negatives of judge_auc
    seed: int = 0
    item_profile_chars: int = 160  # of each item's LLM profile the pointwise judge reads
    # the first judge's ladder model when embedded (its reader when tuned): Qwen2.5-Coder-0.5B ranks
    # held-out items best on the valid split (docs/judge.md); None: the llm resource's model
    embedded_model: str | None = "qwen2.5-coder-0.5b"
    runtime: str | None = None  # the first judge's embedded runtime; None: the llm's
    second_backend: str | None = None  # embedded | hf | openai
    second_model_path: str | None = None
    second_base_url: str | None = None
    second_model: str | None = None

    def llms(self, first: LLMResource) -> list[LLMResource]:
        """The judges' LLM settings: `first`, with this resource's embedded model and runtime where set
        (profiles and judging may use different rungs of the ladder), and the second judge's model
        on the same device, batch, threads, timeout and retries (one wiring: LLMResource.load ->
        models/llm/factory.py)."""
        own = {
            k: v
            for k, v in {"embedded_model": self.embedded_model, "runtime": self.runtime}.items()
            if v
        }
        first = first.model_copy(update=own)
        if not self.second_backend:
            return [first]
        return [
            first,
            first.with_backend(
                self.second_backend,
                model_path=self.second_model_path,
                base_url=self.second_base_url,
                model=self.second_model,
            ),
        ]


class SimulatorResource(dg.ConfigurableResource):
    """Configured from RECLAKE_SIM_* env vars (core/settings.py; see README): the simulated users'
    kind, sample and page budget. Cost grows with n_users * (1 + max_models) pages."""

    kind: str = "probe"  # probe: the tuned judge's P(relevant) as a choice model; zero-shot: the LLM picks a letter
    n_users: int = 200
    page_size: int = 10
    max_models: int = 5  # model pages per user (plus one held-out page): the champion, popularity, then by valid NDCG
    n_recent: int = 10  # recent train films the simulated user remembers
    seed: int = 0
    # zero-shot: a rung of the ladder; None: the llm resource's model
    embedded_model: str | None = None
    runtime: str | None = None  # zero-shot: the embedded runtime; None: the llm's

    def llm(self, first: LLMResource) -> LLMResource:
        """The zero-shot simulator's LLM: the llm resource with this resource's model and runtime."""
        own = {
            k: v
            for k, v in {"embedded_model": self.embedded_model, "runtime": self.runtime}.items()
            if v
        }
        return first.model_copy(update=own)

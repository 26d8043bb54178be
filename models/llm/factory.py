"""Pick a backend by name: `embedded` (default: a ladder model, llama.cpp or transformers runtime),
`hf` (a local checkpoint dir), `openai` (a server URL)."""

from __future__ import annotations

from pathlib import Path

BACKENDS = ("embedded", "hf", "openai")


def load_backend(
    kind: str,
    cache_dir: Path,
    *,
    model_path: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    device: str | None = None,
    batch_size: int = 16,
    log=print,
    timeout_s: float = 60.0,
    max_retries: int = 3,
    embedded_model: str = "smollm2-135m",
    runtime: str = "transformers",
    threads: int = 1,
):
    if kind == "embedded":
        from models.llm.embedded import load_embedded

        return load_embedded(
            cache_dir,
            model=embedded_model,
            runtime=runtime,
            device=device,
            batch_size=batch_size,
            threads=threads,
            log=log,
        )
    if kind == "hf":
        if not model_path:
            raise ValueError(
                "the hf backend needs RECLAKE_LLM_MODEL_PATH: a local transformers checkpoint directory"
            )
        from models.llm.transformers_backend import TransformersBackend

        return TransformersBackend(model_path, device=device, batch_size=batch_size, backend="hf")
    if kind == "openai":
        if not base_url or not model:
            raise ValueError("the openai backend needs RECLAKE_LLM_BASE_URL and RECLAKE_LLM_MODEL")
        from models.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(
            base_url,
            model,
            concurrency=max(1, batch_size // 4),
            timeout_s=timeout_s,
            max_retries=max_retries,
        )
    raise ValueError(f"RECLAKE_LLM_BACKEND={kind!r}: expected one of {', '.join(BACKENDS)}")

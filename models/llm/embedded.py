"""The embedded backend: a model of the ladder (models/llm/ladder.py) on one of two runtimes.

    load_embedded(cache_dir)                                        SmolLM2-135M on transformers (default)
    load_embedded(cache_dir, model="qwen2.5-coder-0.5b")            a larger rung
    load_embedded(cache_dir, runtime="llamacpp")                     the GGUF as it is, on llama.cpp

`llamacpp` reads the GGUF as it is (xllamacpp); `transformers` dequantizes it once into a
safetensors checkpoint under the cache (about 20 s for the 135M model, seconds on later loads) and
runs it with torch (CUDA when present). The two write different texts for the same prompt, so the
runtime is part of the model name that profile caches are keyed on.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from models.llm.ladder import DEFAULT_MODEL, fetch_gguf, ladder_model

RUNTIMES = ("llamacpp", "transformers")
DEFAULT_RUNTIME = "transformers"  # until bench/llm_runtimes.py says otherwise on the target CPU


def ensure_checkpoint(cache_dir: Path, model: str = DEFAULT_MODEL, log=print) -> Path:
    """A safetensors checkpoint of a ladder model (dequantized from its GGUF once)."""
    rung = ladder_model(model)
    target = cache_dir / "models" / rung.name
    if (target / "config.json").exists():
        return target
    gguf = fetch_gguf(model, cache_dir, log)
    log(f"dequantizing {gguf.name} into {target} (once)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    lm = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # save_pretrained refuses a model that still says it is quantized; it is plain fp32 now
    lm.hf_quantizer = None
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    tmp = Path(tempfile.mkdtemp(prefix=f".{rung.name}.", dir=target.parent))
    lm.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)
    return target


def model_name(model: str = DEFAULT_MODEL, runtime: str = DEFAULT_RUNTIME) -> str:
    """What profiles and verdicts record: the model, and the runtime when it is llama.cpp (the
    transformers name is the one caches written before the llama.cpp runtime carry)."""
    name = ladder_model(model).name
    return f"{name}@llama.cpp" if runtime == "llamacpp" else name


def load_embedded(
    cache_dir: Path,
    *,
    model: str = DEFAULT_MODEL,
    runtime: str = DEFAULT_RUNTIME,
    device: str | None = None,
    batch_size: int = 16,
    threads: int = 1,
    log=print,
):
    if runtime == "llamacpp":
        from models.llm.llamacpp_backend import LlamaCppBackend

        # a few slots: the engine batches them; more would only split the same two cores
        return LlamaCppBackend(
            fetch_gguf(model, cache_dir, log),
            model_name=model_name(model, runtime),
            threads=threads,
            parallel=min(4, batch_size),
            device=device,
        )
    if runtime == "transformers":
        from models.llm.transformers_backend import TransformersBackend

        return TransformersBackend(
            ensure_checkpoint(cache_dir, model, log),
            device=device,
            batch_size=batch_size,
            backend="embedded",
            model_name=model_name(model, runtime),
        )
    raise ValueError(f"embedded runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")

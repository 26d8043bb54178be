"""Benchmark: the profile stage's generation throughput, against raw `model.generate`, batched vs
one at a time — on CPU here, or on CUDA where present.

    .venv/bin/python bench/profile_throughput.py --inputs items.json [--n 64] [--batch 32]
    .venv/bin/python bench/profile_throughput.py --random-weights CONFIG_DIR ...   # architecture only

All three measurements use the same item prompts (item_profile_v1) and greedy decoding, in the
same run. (a) raw: tokenizer + `model.generate` on the batch, no validation or cache; (b) the
profile stage: `write_profiles` with a fresh cache (validation, retries, fallbacks included);
(c) the profile stage at batch size 1 on a slice. Prints tokens/s and the ratios a/b and b/c.
`--random-weights DIR` builds the model from DIR's config and tokenizer with random weights (for
a machine that cannot receive the 98 MB model file): outputs are noise and run to the token
limit, so only speed is comparable, and only with a CPU run made the same way.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from models.common.device import pick_device
from models.llm.cache import LLMCache
from models.llm.templates import PromptTemplate
from models.llm.transformers_backend import TransformersBackend
from models.text.profiles import write_profiles


def load_inputs(args) -> list[tuple[str, dict]]:
    if args.inputs:
        return [tuple(pair) for pair in json.loads(Path(args.inputs).read_text())][: args.n]
    from models.text.profile_inputs import item_profile_inputs
    from orchestration.core.paths import Lake
    from orchestration.core.settings import home_from_env
    from orchestration.core.warehouse import query

    items = query(Lake(home_from_env()).warehouse, "select * from main.dim_items order by item_id")
    return item_profile_inputs(items)[: args.n]


def load_backend(args):
    if args.random_weights:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(0)
        target = Path(tempfile.mkdtemp(prefix="reclake-random-"))
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(args.random_weights))
        model.save_pretrained(target)
        AutoTokenizer.from_pretrained(args.random_weights).save_pretrained(target)
        return TransformersBackend(
            target, batch_size=args.batch, backend="hf", model_name="random-smollm2-135m"
        )
    from models.llm.embedded import load_embedded
    from orchestration.core.paths import Lake
    from orchestration.core.settings import home_from_env

    return load_embedded(Lake(home_from_env()).cache, batch_size=args.batch)


def raw_generate(backend, conversations, max_new_tokens, batch) -> tuple[int, float]:
    tokenizer, model = backend.tokenizer, backend.lm
    tokens, started = 0, time.perf_counter()
    for start in range(0, len(conversations), batch):
        prompts = [
            tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for c in conversations[start : start + batch]
        ]
        encoded = tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(backend.device)
        with torch.inference_mode():
            out = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                repetition_penalty=backend.repetition_penalty,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[:, encoded["input_ids"].shape[1] :]
        stop = (new == tokenizer.eos_token_id) | (new == tokenizer.pad_token_id)
        tokens += int(torch.where(stop.any(dim=1), stop.int().argmax(dim=1), new.shape[1]).sum())
    if backend.device.startswith("cuda"):
        torch.cuda.synchronize()
    return tokens, time.perf_counter() - started


def stage(backend, inputs, max_new_tokens, batch) -> tuple[int, float, int]:
    backend.batch_size = batch
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        frame, stats = write_profiles(
            backend,
            "item",
            inputs,
            LLMCache(Path(tmp) / "c.sqlite"),
            max_new_tokens,
            batch_size=batch,
            log=lambda _: None,
        )
        return stats.new_tokens, time.perf_counter() - started, stats.fallback


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--inputs", help="JSON list of [item_id, data] pairs (default: dim_items of RECLAKE_HOME)"
    )
    parser.add_argument("--random-weights", help="config+tokenizer dir: random weights, speed only")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--single", type=int, default=8, help="items for the one-at-a-time run")
    parser.add_argument("--max-new-tokens", type=int, default=90)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    inputs = load_inputs(args)
    backend = load_backend(args)
    device = pick_device()
    name = torch.cuda.get_device_name() if device == "cuda" else f"cpu x{args.threads} threads"
    print(
        f"device: {name}, dtype {backend.dtype}, model {backend.model}, {len(inputs)} item prompts, batch {args.batch}"
    )
    template = PromptTemplate.load("item_profile_v1")
    conversations = [template.messages(data) for _, data in inputs]
    raw_generate(
        backend, conversations[: args.batch], args.max_new_tokens, args.batch
    )  # warm-up: kernels, allocator
    raw_tokens, raw_s = raw_generate(backend, conversations, args.max_new_tokens, args.batch)
    stage_tokens, stage_s, fallbacks = stage(backend, inputs, args.max_new_tokens, args.batch)
    single_tokens, single_s, _ = stage(backend, inputs[: args.single], args.max_new_tokens, 1)
    raw_rate, stage_rate, single_rate = (
        raw_tokens / raw_s,
        stage_tokens / stage_s,
        single_tokens / single_s,
    )
    print(
        f"(a) raw model.generate      {raw_rate:9.1f} tokens/s ({raw_tokens} tokens, {raw_s:.1f}s)"
    )
    print(
        f"(b) profile stage, batch {args.batch:<3}{stage_rate:9.1f} tokens/s ({stage_tokens} tokens, {stage_s:.1f}s, "
        f"{fallbacks} fallbacks; retries count as stage time)"
    )
    print(
        f"(c) profile stage, batch 1  {single_rate:9.1f} tokens/s ({single_tokens} tokens, {single_s:.1f}s)"
    )
    print(
        f"stage overhead a/b: {raw_rate / stage_rate:.2f}x (goal <= 1.2)   batched vs one-at-a-time b/c: "
        f"{stage_rate / single_rate:.1f}x (goal >= 4)"
    )


if __name__ == "__main__":
    main()

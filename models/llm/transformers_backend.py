"""A local transformers model (the `hf` backend; the `embedded` one is this on SmolLM2).

    backend = TransformersBackend("/path/to/checkpoint")        # CUDA + fp16 when present, else CPU fp32
    backend.generate([[{"role": "user", "content": "Hi"}]], max_new_tokens=32)

Batched greedy generation with left padding; choice scoring from the next-token logits.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.device import pick_device
from models.llm.base import Generation, Message, normalize


def pick_dtype(device: str) -> torch.dtype:
    """fp16 on CUDA; bf16 on CPUs with AMX/AVX-512-BF16 (measured 1.5x the fp32 tokens/s on this
    machine class); fp32 elsewhere."""
    if device.startswith("cuda"):
        return torch.float16
    try:
        fast_bf16 = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    except AttributeError:  # older torch: no probe, stay safe
        fast_bf16 = False
    return torch.bfloat16 if fast_bf16 else torch.float32


class TransformersBackend:
    def __init__(self, model_dir: str | Path, *, gguf_file: str | None = None, device: str | None = None,
                 batch_size: int = 16, backend: str = "hf", model_name: str | None = None,
                 dtype: torch.dtype | None = None, repetition_penalty: float = 1.2):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = pick_device(device)
        self.batch_size = batch_size
        # small models loop on greedy decoding; a mild penalty keeps profiles from repeating themselves
        self.repetition_penalty = repetition_penalty
        self.backend = backend
        self.model = model_name or Path(model_dir).name
        self.dtype = dtype or pick_dtype(self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), gguf_file=gguf_file)
        self.tokenizer.padding_side = "left"  # decoder-only: pad on the left so new tokens line up
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.lm = AutoModelForCausalLM.from_pretrained(str(model_dir), gguf_file=gguf_file, dtype=self.dtype)
        self.lm.to(self.device).eval()

    def _encode(self, conversations: list[list[Message]]):
        prompts = [self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                   for c in conversations]
        return self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)

    @torch.inference_mode()
    def generate(self, conversations: list[list[Message]], max_new_tokens: int) -> list[Generation]:
        results = []
        for start in range(0, len(conversations), self.batch_size):
            batch = self._encode(conversations[start : start + self.batch_size])
            output = self.lm.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                      repetition_penalty=self.repetition_penalty,
                                      pad_token_id=self.tokenizer.pad_token_id)
            new = output[:, batch["input_ids"].shape[1]:]
            for row in new:
                ids = row.tolist()
                # count up to the first end-of-sequence / padding token
                end = next((i for i, t in enumerate(ids) if t in (self.tokenizer.eos_token_id, self.tokenizer.pad_token_id)), len(ids))
                results.append(Generation(self.tokenizer.decode(ids[:end], skip_special_tokens=True).strip(), end))
        return results

    @torch.inference_mode()
    def score_choices(self, conversations: list[list[Message]], choices: list[str]) -> list[dict[str, float]]:
        choice_ids = {c: self.tokenizer.encode(c, add_special_tokens=False)[0] for c in choices}
        scores = []
        for start in range(0, len(conversations), self.batch_size):
            batch = self._encode(conversations[start : start + self.batch_size])
            logits = self.lm(**batch).logits[:, -1, :].float()
            probs = torch.softmax(logits, dim=-1)
            for row in probs:
                scores.append(normalize({c: float(row[i]) for c, i in choice_ids.items()}))
        return scores

"""A GGUF model run by llama.cpp in process (the `xllamacpp` wheel: prebuilt, no compiler needed).

    backend = LlamaCppBackend(gguf_path, model_name="SmolLM2-135M-Instruct-Q4_1")
    backend.generate([[{"role": "user", "content": "Hi"}]], max_new_tokens=32)

llama.cpp's own server engine runs inside this process (no HTTP hop; its listener binds 127.0.0.1):
requests go in as OpenAI-style chat completions from a small thread pool, and the engine batches
them across `parallel` slots. With `cache_prompt`, a request that starts like an earlier one in the
same slot (one user's history, asked about item after item) reuses that prefix's KV cache, so
prompts are written history first, question last. Choice scores come from `top_logprobs` of the
first answer token: llama.cpp computes them from the full-vocabulary softmax of the raw logits.
The GGUF is read as it is (no dequantizing), so the model loads in about a second.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from models.llm.base import Generation, Message, choice_distribution

TOP_LOGPROBS = 100  # answer tokens outside the top 100 carry no mass worth counting


class LlamaCppBackend:
    def __init__(
        self,
        gguf: str | Path,
        *,
        model_name: str,
        backend: str = "embedded",
        threads: int = 1,
        parallel: int = 4,
        context_per_slot: int = 2048,
        device: str | None = None,
        repetition_penalty: float = 1.2,
    ):
        import xllamacpp as xlc

        self.backend, self.model = backend, model_name
        self.parallel = max(1, parallel)
        self.repetition_penalty = repetition_penalty  # as the transformers path: small models loop
        params = xlc.CommonParams()
        params.model.path = str(gguf)
        params.n_parallel = self.parallel
        params.n_ctx = context_per_slot * self.parallel
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = max(1, threads)
        params.warmup = False
        params.verbosity = -1  # llama.cpp's per-request timing lines stay out of the Dagster log
        params.n_gpu_layers = (
            0 if (device or "").startswith("cpu") else -1
        )  # -1: all it can (a CUDA build)
        self.server = xlc.Server(params)

    def chat_completion(self, request: dict) -> dict:
        """One OpenAI-style chat completion, greedy, reusing a cached prompt prefix where it can."""
        answer = self.server.handle_chat_completions(
            {**request, "temperature": 0, "cache_prompt": True}
        )
        if "error" in answer:
            raise RuntimeError(f"llama.cpp: {answer['error']}")
        return answer

    def _map(self, fn, items):
        # the engine batches what is in flight; a pool no wider than its slots keeps each slot's prefix warm
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            return list(pool.map(fn, items))

    def generate(self, conversations: list[list[Message]], max_new_tokens: int) -> list[Generation]:
        def one(messages):
            try:
                answer = self.chat_completion(
                    {
                        "messages": messages,
                        "max_tokens": max_new_tokens,
                        "repeat_penalty": self.repetition_penalty,
                    }
                )
            except Exception as err:  # noqa: BLE001 - one failed conversation is marked, not the batch
                return Generation("", 0, error=f"{type(err).__name__}: {str(err)[:160]}")
            text = answer["choices"][0]["message"]["content"] or ""
            return Generation(text.strip(), int(answer["usage"]["completion_tokens"]))

        return self._map(one, conversations)

    def score_choices(
        self, conversations: list[list[Message]], choices: list[str]
    ) -> list[dict[str, float]]:
        def one(messages):
            answer = self.chat_completion(
                {
                    "messages": messages,
                    "max_tokens": 1,
                    "logprobs": True,
                    "top_logprobs": TOP_LOGPROBS,
                }
            )
            return choice_distribution(
                answer["choices"][0]["logprobs"]["content"][0]["top_logprobs"], choices
            )

        return self._map(one, conversations)

"""Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, hosted APIs, `reclake llm serve`).

    backend = OpenAIBackend(base_url="http://127.0.0.1:8011/v1", model="SmolLM2-135M-Instruct-Q4_1")

The API key comes from the environment (RECLAKE_LLM_API_KEY, else OPENAI_API_KEY) and is never
logged. Requests run concurrently up to ``concurrency``, each with a timeout, retried with
exponential backoff on timeouts, connection errors, 429 and 5xx (tenacity), ``max_retries`` times.
"""

from __future__ import annotations

import json
import math
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from models.llm.base import Generation, Message, normalize

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


class BackendHTTPError(RuntimeError):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status


def _retryable(error: BaseException) -> bool:
    if isinstance(error, BackendHTTPError):
        return error.status in RETRYABLE_STATUS
    return isinstance(error, (TimeoutError, urllib.error.URLError, ConnectionError, json.JSONDecodeError))


class OpenAIBackend:
    backend = "openai"

    def __init__(self, base_url: str, model: str, *, timeout_s: float = 60.0, concurrency: int = 4,
                 max_retries: int = 3, api_key_env: str = "RECLAKE_LLM_API_KEY"):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self._api_key = os.environ.get(api_key_env) or os.environ.get("OPENAI_API_KEY") or ""
        self._post = retry(
            retry=retry_if_exception(_retryable), stop=stop_after_attempt(max_retries + 1),
            wait=wait_exponential(multiplier=0.2, max=5), reraise=True,
        )(self._post_once)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r})"

    def _post_once(self, path: str, payload: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.base_url + path, data=json.dumps(payload).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raise BackendHTTPError(err.code, err.read().decode("utf-8", "replace")) from None

    def _complete(self, messages: list[Message], max_tokens: int, **extra) -> dict:
        payload = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, **extra}
        answer = self._post("/chat/completions", payload)
        if not isinstance(answer, dict) or not answer.get("choices"):
            raise ValueError(f"malformed completion: {str(answer)[:200]}")
        return answer

    def _map(self, fn, items):
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(fn, items))

    def generate(self, conversations: list[list[Message]], max_new_tokens: int) -> list[Generation]:
        def one(messages):
            answer = self._complete(messages, max_new_tokens)
            text = answer["choices"][0]["message"]["content"] or ""
            tokens = (answer.get("usage") or {}).get("completion_tokens") or len(text.split())
            return Generation(text.strip(), int(tokens))

        return self._map(one, conversations)

    def score_choices(self, conversations: list[list[Message]], choices: list[str]) -> list[dict[str, float]]:
        def one(messages):
            answer = self._complete(messages, 1, logprobs=True, top_logprobs=20)
            top = answer["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            weights = {c: 0.0 for c in choices}
            for entry in top:
                token = entry["token"].strip()
                if token in weights:
                    weights[token] += math.exp(entry["logprob"])
            return normalize(weights)

        return self._map(one, conversations)

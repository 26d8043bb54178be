"""Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, hosted APIs, `reclake llm serve`).

    backend = OpenAIBackend(base_url="http://127.0.0.1:8011/v1", model="SmolLM2-135M-Instruct-Q4_1")

The API key comes from the environment (RECLAKE_LLM_API_KEY, else OPENAI_API_KEY) and is never
logged. Requests run concurrently up to ``concurrency``, each with a timeout. Faults are bounded:
- a timeout, connection error, HTTP 408/409/429/5xx or a body that is not a UTF-8 JSON completion is
  retried ``max_retries`` times with exponential backoff (a 429's Retry-After is honoured, capped);
- after ``breaker_after`` consecutive calls failed all their retries on such faults (a server that
  went away), the circuit opens: calls fail at once, without a request, for ``breaker_cooldown_s``;
  then one call probes the server (the others still fail at once) and its success closes it.
  A non-retryable answer (HTTP 400, 401: this input's or this key's problem) does not count.
Callers turn failures into marked fallbacks; ``faults`` counts what happened, by kind.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from models.llm.base import Generation, Message, choice_distribution

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 10.0


class BackendHTTPError(RuntimeError):
    def __init__(self, status: int, body: str, retry_after: float | None = None):
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status
        self.retry_after = retry_after


class BadResponse(ValueError):
    """A 200 answer that is not a usable completion (cut short, not UTF-8, not JSON, no choices)."""


class BackendUnavailable(RuntimeError):
    """The circuit is open: the server failed repeatedly, so no request was sent."""


def _retryable(error: BaseException) -> bool:
    if isinstance(error, BackendHTTPError):
        return error.status in RETRYABLE_STATUS
    return isinstance(
        error,
        (
            TimeoutError,
            urllib.error.URLError,
            ConnectionError,
            http.client.HTTPException,
            BadResponse,
        ),
    )


def _fault_kind(error: BaseException) -> str:
    if isinstance(error, BackendHTTPError):
        return f"http_{error.status}"
    if isinstance(error, TimeoutError) or isinstance(getattr(error, "reason", None), TimeoutError):
        return "timeout"
    if isinstance(error, (BadResponse, http.client.IncompleteRead)):
        return "bad_response"
    if isinstance(error, (urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        return "connection"
    return type(error).__name__


def _retry_after(header: str | None) -> float | None:
    try:
        seconds = float(header) if header else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return (
        min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
        if seconds is not None and math.isfinite(seconds)
        else None
    )


class OpenAIBackend:
    backend = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        timeout_s: float = 60.0,
        concurrency: int = 4,
        max_retries: int = 3,
        api_key_env: str = "RECLAKE_LLM_API_KEY",
        breaker_after: int = 4,
        breaker_cooldown_s: float = 30.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self._api_key = os.environ.get(api_key_env) or os.environ.get("OPENAI_API_KEY") or ""
        self.faults: Counter = (
            Counter()
        )  # requests, retries, failed_calls, skipped_calls, and each fault kind
        self._lock = threading.Lock()
        self._breaker_after, self._cooldown_s = breaker_after, breaker_cooldown_s
        self._consecutive_failures, self._open_until, self._tripped = 0, 0.0, False
        backoff = wait_exponential(multiplier=0.2, max=5)
        self._post_retrying = retry(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(max_retries + 1),
            wait=lambda state: (
                getattr(state.outcome.exception(), "retry_after", None) or backoff(state)
            ),
            before_sleep=lambda _: self._count("retries"),
            reraise=True,
        )(self._post_once)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r})"

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]") if self._api_key else text

    def _count(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def _post_once(self, path: str, payload: dict, parse):
        self._count("requests")
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(
            self.base_url + path, data=json.dumps(payload).encode(), headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read()
            answer = json.loads(body.decode("utf-8"))
            try:
                return parse(answer)
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                raise BadResponse(f"not a completion: {str(answer)[:200]}") from None
        except (
            urllib.error.HTTPError
        ) as err:  # a server may echo the request, key included: redact it
            body = self._redact(err.read().decode("utf-8", "replace"))
            error = BackendHTTPError(err.code, body, _retry_after(err.headers.get("Retry-After")))
        except UnicodeDecodeError:
            error = BadResponse("response is not valid UTF-8")
        except json.JSONDecodeError as err:
            error = BadResponse(f"response is not JSON (cut short?): {err.msg} at byte {err.pos}")
        except BadResponse as err:
            error = BadResponse(self._redact(str(err)))
        except Exception as err:  # noqa: BLE001 - counted by kind, then re-raised for the retry policy
            error = err
        self._count(_fault_kind(error))
        raise error

    def _post(self, path: str, payload: dict, parse):
        """One call, ``parse`` taking what we need from the answer: retried within its bounds, and
        refused at once while the circuit is open."""
        with self._lock:
            now = time.monotonic()
            if now < self._open_until:
                self.faults["skipped_calls"] += 1
                raise BackendUnavailable(
                    f"{self.base_url} failed {self._consecutive_failures} calls in a row; "
                    f"not calling it for {self._cooldown_s:.0f}s"
                )
            if self._tripped:  # half-open: this call probes, the others keep failing fast meanwhile
                self._open_until = now + self._cooldown_s
        try:
            answer = self._post_retrying(path, payload, parse)
        except Exception as err:
            with self._lock:
                self.faults["failed_calls"] += 1
                if _retryable(err):  # the server's trouble, not this input's
                    self._consecutive_failures += 1
                    if self._consecutive_failures >= self._breaker_after:
                        self._tripped, self._open_until = True, time.monotonic() + self._cooldown_s
            raise
        with self._lock:
            self._consecutive_failures, self._open_until, self._tripped = 0, 0.0, False
        return answer

    def _complete(self, messages: list[Message], max_tokens: int, parse, **extra):
        payload = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
            **extra,
        }
        return self._post("/chat/completions", payload, parse)

    def _map(self, fn, items):
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(fn, items))

    def generate(self, conversations: list[list[Message]], max_new_tokens: int) -> list[Generation]:
        def parse(answer):
            text = answer["choices"][0]["message"]["content"] or ""
            tokens = (answer.get("usage") or {}).get("completion_tokens") or len(text.split())
            return Generation(text.strip(), int(tokens))

        def one(messages):  # a failed call is one marked result, not the whole batch's failure
            try:
                return self._complete(messages, max_new_tokens, parse)
            except Exception as err:  # noqa: BLE001 - the caller falls back, marking why
                return Generation("", 0, error=f"{type(err).__name__}: {str(err)[:160]}")

        return self._map(one, conversations)

    def score_choices(
        self, conversations: list[list[Message]], choices: list[str]
    ) -> list[dict[str, float]]:
        def one(messages):
            top = self._complete(
                messages,
                1,
                lambda a: a["choices"][0]["logprobs"]["content"][0]["top_logprobs"],
                logprobs=True,
                top_logprobs=20,
            )
            return choice_distribution(top, choices)

        return self._map(one, conversations)

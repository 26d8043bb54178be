"""`reclake llm serve`: an OpenAI-compatible HTTP server over a local backend (default: embedded).

    reclake llm serve --port 8011            # 127.0.0.1 only unless --host says otherwise
    curl -s http://127.0.0.1:8011/v1/chat/completions -H 'Content-Type: application/json' \
      -d '{"model": "x", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 20}'

Several workers share one loaded model this way. Implements GET /v1/models and POST
/v1/chat/completions (greedy; ``logprobs`` + ``top_logprobs`` for choice scoring).
"""

import threading
import time
import uuid

import torch
from pydantic import BaseModel


class ChatRequest(BaseModel):
    model: str | None = None
    messages: list[dict]
    max_tokens: int = 128
    temperature: float = 0.0  # accepted for compatibility; decoding is greedy
    logprobs: bool = False
    top_logprobs: int = 0


def build_app(backend):
    from fastapi import FastAPI, HTTPException

    app = FastAPI(title="reclake llm")
    lock = threading.Lock()  # transformers: one forward pass at a time, the model is not re-entrant

    @app.get("/v1/models")
    def models():
        return {
            "object": "list",
            "data": [{"id": backend.model, "object": "model", "owned_by": "reclake"}],
        }

    @app.post("/v1/chat/completions")
    def chat(request: ChatRequest):
        if not request.messages:
            raise HTTPException(status_code=400, detail="messages must not be empty")
        if hasattr(backend, "chat_completion"):  # llama.cpp: its own engine answers, concurrently
            # the same decoding as the backend's own generate (its repetition penalty), so a remote
            # and an in-process call write the same words
            request_fields = {
                "messages": request.messages,
                "max_tokens": request.max_tokens,
                "repeat_penalty": backend.repetition_penalty,
            }
            if request.logprobs and request.top_logprobs > 0:
                request_fields |= {
                    "max_tokens": 1,
                    "logprobs": True,
                    "top_logprobs": min(request.top_logprobs, 20),
                }
            return {**backend.chat_completion(request_fields), "model": backend.model}
        choice: dict = {"index": 0, "finish_reason": "stop"}
        with lock:
            if request.logprobs and request.top_logprobs > 0:
                with torch.inference_mode():
                    logits = backend._last_logits(backend._token_ids([request.messages]))[0].float()
                logp = torch.log_softmax(logits, dim=-1)
                values, ids = torch.topk(logp, min(request.top_logprobs, 20))
                top = [
                    {"token": backend.tokenizer.decode([int(i)]), "logprob": float(v)}
                    for v, i in zip(values, ids)
                ]
                choice["message"] = {"role": "assistant", "content": top[0]["token"]}
                choice["logprobs"] = {"content": [{**top[0], "top_logprobs": top}]}
                completion_tokens = 1
            else:
                generation = backend.generate([request.messages], request.max_tokens)[0]
                choice["message"] = {"role": "assistant", "content": generation.text}
                completion_tokens = generation.new_tokens
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": backend.model,
            "choices": [choice],
            "usage": {"completion_tokens": completion_tokens},
        }

    return app


def serve(backend, host: str = "127.0.0.1", port: int = 8011) -> None:
    import uvicorn

    uvicorn.run(build_app(backend), host=host, port=port, log_level="warning")

"""LLM faults (fault injection): a scripted OpenAI-compatible server that answers 429/500, hangs,
cuts its body short, sends non-UTF-8 or empty output, or goes away mid-run. The run completes,
every failure is a counted and marked fallback (or an unjudged user), and retries are bounded.

The real model behind the real `reclake llm serve` is tested in test_llm.py; here the server is a
script, so each fault lands on a known request and the counts can be exact."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import duckdb
import pandas as pd
import pytest

from models.evaluation.judge import Judge, JudgeCase, judge_cases
from models.evaluation.judge_summary import summarize
from models.llm.cache import LLMCache
from models.llm.openai_backend import OpenAIBackend
from models.text.profiles import write_profiles
from orchestration.core.resources import LakeResource, LLMResource
from orchestration.core.unchanged import DATA_VERSION_TAG
from orchestration.defs.llm.assets import item_profiles

PROFILE_TEXT = (
    "A warm and funny story about friendship and loyalty that suits families, fans of animation and "
    "anyone who enjoys clever dialogue, gentle adventure and a hopeful ending after a long week."
)
TOP_LOGPROBS = [
    {"token": t, "logprob": lp}
    for t, lp in [("4", -0.5), ("5", -1.2), ("3", -2.0), ("A", -2.5), ("B", -3.0)]
]


class ScriptedServer:
    """An OpenAI-compatible stand-in: ``fault(n)`` decides what the n-th request (1-based) gets:
    None (a good completion) or one of FAULTS."""

    FAULTS = (
        "429",
        "500",
        "hang",
        "truncated_body",
        "cut_json",
        "non_utf8",
        "no_choices",
        "empty_output",
    )

    def __init__(self, fault=lambda n: None, hang_s: float = 1.5, port: int = 0):
        self.fault, self.hang_s, self.requests, self.gone = fault, hang_s, 0, False
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests += 1
                    number = server.requests
                kind = server.fault(number)
                if kind in ("429", "500"):
                    self.send_response(int(kind))
                    if kind == "429":
                        self.send_header("Retry-After", "0.3")
                    self.end_headers()
                    self.wfile.write(b"slow down" if kind == "429" else b"internal error")
                    return
                if kind == "hang":
                    time.sleep(server.hang_s)
                message = {
                    "role": "assistant",
                    "content": "" if kind == "empty_output" else PROFILE_TEXT,
                }
                choice = {"index": 0, "message": message, "finish_reason": "stop"}
                if payload.get("logprobs"):
                    choice["logprobs"] = {
                        "content": [{**TOP_LOGPROBS[0], "top_logprobs": TOP_LOGPROBS}]
                    }
                choices = [] if kind == "no_choices" else [choice]
                body = json.dumps({"choices": choices, "usage": {"completion_tokens": 30}}).encode()
                if kind == "non_utf8":
                    body = body.replace(b"friendship", b"friend\xff\xfeship")
                if kind == "cut_json":
                    body = body[: len(body) // 2]
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                # truncated_body: the header promises the whole body, the connection closes halfway
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if kind == "truncated_body" else body)
                if kind == "truncated_body":
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/v1"
        threading.Thread(
            target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def vanish(self):
        """The server goes away: from now on its port refuses connections (a request being answered
        still gets its answer: handlers run on their own threads). Safe to call from a handler."""
        self.gone = True
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def scripted():
    servers = []

    def start(**kwargs):
        servers.append(ScriptedServer(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        if not server.gone:
            server.vanish()


RATING = [{"role": "user", "content": "Rate it 1 to 5."}]
FAULT_KIND = {
    "429": "http_429",
    "500": "http_500",
    "hang": "timeout",
    "truncated_body": "bad_response",
    "cut_json": "bad_response",
    "non_utf8": "bad_response",
    "no_choices": "bad_response",
}


@pytest.mark.parametrize("fault", sorted(FAULT_KIND))
def test_a_transient_fault_is_retried_and_the_call_succeeds_fault_injected(fault, scripted):
    server = scripted(fault=lambda n: fault if n % 2 == 1 else None)  # each call's first try fails
    backend = OpenAIBackend(server.url, "m", timeout_s=0.5, concurrency=1, max_retries=2)
    scores = backend.score_choices([RATING, RATING], list("12345"))
    assert scores[0] == scores[1] and max(scores[0], key=scores[0].get) == "4"
    assert server.requests == 4  # two calls, one retry each
    assert backend.faults["requests"] == 4 and backend.faults["retries"] == 2
    assert backend.faults[FAULT_KIND[fault]] == 2 and backend.faults["failed_calls"] == 0


def test_retry_after_is_honoured_and_retries_are_bounded_fault_injected(scripted):
    server = scripted(fault=lambda n: "429")
    backend = OpenAIBackend(server.url, "m", timeout_s=1, concurrency=1, max_retries=3)
    started = time.monotonic()
    [generation] = backend.generate([RATING], 32)
    elapsed = time.monotonic() - started
    assert generation.text == "" and generation.error.startswith("BackendHTTPError: HTTP 429")
    assert server.requests == 4  # 1 try + 3 retries, then it gives up
    assert (
        3 * 0.3 <= elapsed < 3
    )  # three waits of the server's Retry-After (0.3 s), not longer backoffs


@pytest.mark.parametrize("fault", ["500", "hang", "non_utf8", "empty_output"])
def test_persistent_faults_become_marked_fallbacks_fault_injected(fault, scripted, tmp_path):
    server = scripted(fault=lambda n: fault)
    backend = OpenAIBackend(server.url, "m", timeout_s=0.5, concurrency=1, max_retries=1)
    inputs = [("i1", {"title": "Toy Story", "genres": ["Animation"]}), ("i2", {"title": "Heat"})]
    cache = LLMCache(tmp_path / "cache.sqlite")
    frame, stats = write_profiles(
        backend, "item", inputs, cache, 32, batch_size=2, log=lambda _: None
    )
    assert list(frame["source"]) == ["fallback", "fallback"]
    assert frame["profile"].tolist() == ["Toy Story. Genres: Animation.", "Heat."]
    if (
        fault == "empty_output"
    ):  # a server that answers, with nothing: the model's own (final) failure
        assert stats.fallback_reasons == {"empty": 2} and stats.backend_errors == 0
        # each item, then once more with the stricter reminder, then in plain lines
        assert server.requests == 6
        assert len(cache.get_many(list(frame["cache_key"]))) == 2
    else:  # a failing server: 2 items x (first pass + reminder pass) x (1 try + 1 retry); a failing
        # server gets no third prompt
        assert stats.fallback_reasons == {"backend error": 2} and stats.backend_errors == 4
        assert server.requests == 8 and stats.backend_faults["failed_calls"] == 4
        assert cache.get_many(list(frame["cache_key"])) == {}  # not cached: the next run asks again


def _items_warehouse(home, n_items: int) -> None:
    home.mkdir(parents=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute(
            "create table dim_items as select cast(i as varchar) as item_id, 'Film ' || i as title, "
            "cast(1990 + i as varchar) as release_year, 'Drama' as genres, null::varchar as tags, "
            "null::varchar as description, null::varchar as review_snippets from range(1, ?) t(i)",
            [n_items + 1],
        )


def test_server_vanishing_mid_run_completes_with_marked_fallbacks_fault_injected(
    scripted, tmp_path
):
    """12 items, batches of 4, one call at a time: the server answers 5 calls and is gone. The
    asset succeeds; after 4 failed calls the circuit opens and the rest fall back without a request.
    The next run (same instance, config and inputs: otherwise it would be skipped as unchanged), with
    the server back on its port, regenerates only the fallbacks; the run after that is skipped."""
    home = tmp_path / "home"
    _items_warehouse(home, 12)
    server = scripted()

    def llm(url):
        return LLMResource(
            backend="openai",
            base_url=url,
            model="m",
            batch_size=4,
            max_retries=1,
            timeout_s=2,
            item_max_new_tokens=64,
        )

    lake = LakeResource(home=str(home))

    server.fault = lambda n: server.vanish() if n == 5 else None  # answers the 5th, then is gone
    instance = dg.DagsterInstance.ephemeral()
    # the input as a full pipeline would have recorded it, so that "unchanged" can be judged
    instance.report_runless_asset_event(
        dg.AssetMaterialization("dim_items", tags={DATA_VERSION_TAG: "dim-items-v1"})
    )
    result = dg.materialize(
        [item_profiles], resources={"lake": lake, "llm": llm(server.url)}, instance=instance
    )
    assert result.success
    meta = result.asset_materializations_for_node("item_profiles")[0].metadata
    frame = pd.read_parquet(home / "lake" / "profiles" / "items" / "profiles.parquet")
    # shortest prompts first (Film 1..9, then 10..12): the first five are answered; marked, in the contract file
    assert (
        frame.sort_values("item_id", key=lambda ids: ids.astype(int))["source"].tolist()
        == ["llm"] * 5 + ["fallback"] * 7
    )
    assert meta["llm_profiles"].value == 5 and meta["fallback_profiles"].value == 7
    assert meta["fallback_reasons"].value == {"backend error": 7}
    faults = meta["backend_faults"].value
    # items 6-9 fail after 1 retry each: the 4th failure opens the circuit (reminders come after the first pass)
    assert faults["failed_calls"] == 4 and faults["connection"] == 8 and faults["requests"] == 5 + 8
    assert faults["skipped_calls"] == 3 + 7  # items 10-12 (first pass) and 6-12 (reminder pass)

    back = scripted(port=server.http.server_port)
    rerun = dg.materialize(
        [item_profiles], resources={"lake": lake, "llm": llm(server.url)}, instance=instance
    )
    meta = rerun.asset_materializations_for_node("item_profiles")[0].metadata
    assert "skipped" not in meta and meta["cache_hit_rate"].value == round(5 / 12, 4)
    assert (
        meta["llm_profiles"].value == 12
        and meta["backend_errors"].value == 0
        and back.requests == 7
    )
    again = dg.materialize(
        [item_profiles], resources={"lake": lake, "llm": llm(server.url)}, instance=instance
    )
    assert (
        "skipped" in again.asset_materializations_for_node("item_profiles")[0].metadata
        and back.requests == 7
    )


def test_judge_skips_users_once_its_server_vanishes_and_counts_them_fault_injected(scripted):
    server = scripted()
    calls_per_user = 4 + 2  # pointwise: 4 distinct items; pairwise: both orders

    # the last call of the second user is answered, then the server is gone
    server.fault = lambda n: server.vanish() if n == 2 * calls_per_user else None
    judge = Judge(
        OpenAIBackend(server.url, "m", timeout_s=1, concurrency=1, max_retries=1, breaker_after=1)
    )
    cards = {i: {"title": f"Film {i}"} for i in "abcd"}
    cases = [JudgeCase(f"u{k}", "Likes films.", ["a"], ["b"], "c", ["d"]) for k in range(5)]
    pointwise, pairwise = judge_cases(judge, cases, cards, cards)
    summary = summarize(pointwise, pairwise)
    assert summary["n_users"] == 2 and summary["unjudged_users"] == 3
    assert pairwise["verdict"].tolist()[2:] == ["unjudged"] * 3
    errors = pairwise["error"].tolist()
    assert errors[2].startswith("URLError") and all(
        e.startswith("BackendUnavailable") for e in errors[3:]
    )
    # bounded: users 1-2 answered, user 3's first call tried twice; then the open circuit sends nothing
    assert (
        server.requests == 2 * calls_per_user
        and judge.backend.faults["requests"] == 2 * calls_per_user + 2
    )

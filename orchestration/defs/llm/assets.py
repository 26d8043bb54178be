"""Group `llm`: LLM-written item and user profiles, and their text embeddings.

item_profiles            dim_items text -> lake/profiles/items/profiles.parquet
user_profiles            TRAIN interactions only -> lake/profiles/users/profiles.parquet
item_text_embeddings     profile, title, card and LLM-read card vectors of every item -> lake/embeddings/items.parquet
                         (Feast: item_text_embedding)
user_profile_embeddings  profile vectors -> lake/embeddings/users.parquet (Feast: user_profile_embedding)
"""

from collections import Counter

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from models.common.device import torch_threads
from models.evaluation.judge_cards import item_card_texts
from models.llm.cache import LLMCache
from models.text.embeddings import DIMENSIONS
from models.text.faithfulness import faithfulness_report
from models.text.profile_inputs import item_profile_inputs, user_profile_inputs
from models.text.profiles import write_profiles
from models.text.sanitize import sanitize_fields
from orchestration.core.files import write_parquet_atomic
from orchestration.core.partitions import run_days
from orchestration.core.resources import LLM_RUNTIME_FIELDS, LakeResource, LLMResource
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import query
from orchestration.defs.llm.daily import DailyRefresh
from orchestration.defs.llm.vectors import card_readings, text_encoder

# 2: untrusted item text is sanitized (#11); 3: unsupported sentences dropped (#19)
LLM_CODE_VERSION = "3"
# 4: card_embedding (title, year, genres); 5: llm_card_embedding (the LLM's hidden states of it)
ITEM_VECTORS_CODE_VERSION = "5"


def _profile_memo(context, lake: LakeResource, llm: LLMResource, kind: str) -> Unchanged:
    # what decides the profiles' text: the backend, its model and the budgets (not batch size or threads)
    config = llm.model_dump(exclude=set(LLM_RUNTIME_FIELDS))
    # fallbacks a failing backend caused are not final: a run that had any is not one to skip
    return Unchanged(
        context,
        config=config,
        outputs_present=lambda last: (
            lake.paths.profiles(kind).exists() and not last.get("backend_errors")
        ),
    )


def _write_profiles(
    context, lake: LakeResource, llm: LLMResource, kind: str, inputs: list, max_new_tokens: int
) -> tuple[pd.DataFrame, object]:
    """Profiles for `inputs` from the configured backend, through the LLM cache; in a landed day's
    run, under the daily budget (daily.py)."""
    backend = llm.load(lake.home_path, context.log.info)
    cache = LLMCache(lake.paths.llm_cache)
    days = run_days(context) if lake.daily else None
    refresh = days and DailyRefresh(kind, lake.paths.profiles(kind), days[1], llm.daily_budget)
    budget = None
    if refresh:
        inputs, budget = refresh.order(inputs)
    with torch_threads(llm.torch_threads):
        frame, stats = write_profiles(
            backend, kind, inputs, cache, max_new_tokens, llm.batch_size, context.log.info,
            budget=budget,
        )  # fmt: skip
    if refresh:
        return refresh.merge(frame, stats.deferred), stats
    return frame.assign(as_of=pd.Series(pd.NA, index=frame.index, dtype="string")), stats


def _profile_result(
    kind: str,
    frame: pd.DataFrame,
    stats,
    lake: LakeResource,
    inputs: list,
    genres: list[str] | None = None,
) -> dg.MaterializeResult:
    path = lake.paths.profiles(kind)
    # how faithful the LLM-written profiles are to their inputs (models/text/faithfulness.py)
    faithfulness = {
        k: v for k, v in faithfulness_report(frame, inputs, kind, genres).items() if k != "examples"
    }
    digest = write_parquet_atomic(pa.Table.from_pandas(frame, preserve_index=False), path)
    words = frame["profile"].str.split().str.len()
    samples = "\n\n".join(
        f"**{kind} {row[f'{kind}_id']}** ({row['source']}): {row['profile']}"
        for _, row in frame.head(5).iterrows()
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "llm_profiles": stats.llm,
            "fallback_profiles": stats.fallback,
            "fallback_rate": round(stats.fallback / len(frame), 4) if len(frame) else 0.0,
            "fallback_reasons": dg.MetadataValue.json(stats.fallback_reasons),
            "distinct_rate": round(frame["profile"].nunique() / len(frame), 4)
            if len(frame)
            else 0.0,
            "median_words": float(words.median()) if len(frame) else 0.0,
            "cache_hit_rate": round(stats.cache_hits / stats.profiles, 4)
            if stats.profiles
            else 0.0,
            "llm_calls": stats.llm_calls,
            "refreshed": stats.generated,
            "deferred": len(stats.deferred),
            "retries": stats.retries,
            "plain_retries": stats.plain_retries,
            "backend_errors": stats.backend_errors,
            "backend_faults": dg.MetadataValue.json(stats.backend_faults),
            "new_tokens": stats.new_tokens,
            "unsupported_sentences_dropped": stats.unsupported_sentences_dropped,
            "faithfulness": dg.MetadataValue.json(faithfulness),
            "tokens_per_second": round(stats.tokens_per_second, 1),
            "model": frame["model"].iloc[0] if len(frame) else "",
            "prompt_version": frame["prompt_version"].iloc[0] if len(frame) else "",
            "samples": dg.MetadataValue.md(samples or "(none)"),
            "path": dg.MetadataValue.path(str(path)),
            "content_sha256": digest,
        },
        data_version=dg.DataVersion(digest),
    )


@dg.asset(
    group_name="llm",
    code_version=LLM_CODE_VERSION,
    deps=["dim_items"],
    kinds={"pytorch", "parquet"},
    description="A short LLM-written description of each item and who it suits (fallback template when the LLM fails).",
)
def item_profiles(
    context: dg.AssetExecutionContext, lake: LakeResource, llm: LLMResource
) -> dg.MaterializeResult:
    if (memo := _profile_memo(context, lake, llm, "item")).skip:
        return memo.result
    items = query(lake.warehouse_path, "select * from main.dim_items order by item_id")
    inputs = item_profile_inputs(items)[: llm.max_items]
    frame, stats = _write_profiles(context, lake, llm, "item", inputs, llm.item_max_new_tokens)
    return memo.stamp(_profile_result("item", frame, stats, lake, inputs))


@dg.asset(
    group_name="llm",
    code_version=LLM_CODE_VERSION,
    deps=["splits", "dim_items"],
    kinds={"pytorch", "parquet"},
    description="A natural-language taste profile of each user, written from TRAIN interactions only.",
)
def user_profiles(
    context: dg.AssetExecutionContext, lake: LakeResource, llm: LLMResource
) -> dg.MaterializeResult:
    if (memo := _profile_memo(context, lake, llm, "user")).skip:
        return memo.result
    items = query(lake.warehouse_path, "select * from main.dim_items")
    train = query(
        lake.warehouse_path,
        "select user_id, item_id, rating, event_ts, source_file, source_row "
        "from main.splits where split = 'train' "
        "order by user_id, event_ts, source_file, source_row",
    )
    inputs = user_profile_inputs(train, items)[: llm.max_users]
    frame, stats = _write_profiles(context, lake, llm, "user", inputs, llm.user_max_new_tokens)
    genres = sorted({g for value in items["genres"].dropna() for g in value.split("|") if g})
    return memo.stamp(_profile_result("user", frame, stats, lake, inputs, genres))


def _finding_counts(findings: list[list[str]]) -> dict[str, int]:
    """How many titles each sanitizer rule fired on."""
    return dict(Counter(name for found in findings for name in set(found)))


def _embedding_table(ids_name: str, ids, stamps, vectors: dict[str, np.ndarray]) -> pa.Table:
    columns = {
        ids_name: pa.array(list(ids), pa.string()),
        "event_timestamp": pa.array(
            pd.to_datetime(list(stamps)).tz_localize("UTC"), pa.timestamp("us", tz="UTC")
        ),
    }
    for name, matrix in vectors.items():
        columns[name] = pa.array(list(matrix), pa.list_(pa.float32()))
    return pa.table(columns)


def _write_embeddings(
    context, lake: LakeResource, table: pa.Table, name: str, **metadata
) -> dg.MaterializeResult:
    path = lake.paths.embeddings(name)
    digest = write_parquet_atomic(table, path)
    context.log.info(f"{table.num_rows} {name} embeddings -> {path}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "dimensions": DIMENSIONS,
            "path": dg.MetadataValue.path(str(path)),
            "content_sha256": digest,
            **metadata,
        },
        data_version=dg.DataVersion(digest),
    )


@dg.asset(
    group_name="llm",
    code_version=ITEM_VECTORS_CODE_VERSION,
    deps=[item_profiles, "dim_items", "splits"],
    kinds={"pytorch", "parquet"},
    description="all-MiniLM-L6-v2 vectors (384-d) of each item's profile text, title and card, and "
    "the LLM's own hidden states of the card.",
)
def item_text_embeddings(
    context: dg.AssetExecutionContext, lake: LakeResource, llm: LLMResource
) -> dg.MaterializeResult:
    reader = llm.model_dump(include={"backend", "embedded_model", "model_path", "model"})
    exists = lake.paths.embeddings("items").exists()
    if (memo := Unchanged(context, config=reader, outputs_present=exists)).skip:
        return memo.result
    profiles, encode = pd.read_parquet(lake.paths.profiles("item")), text_encoder(lake)
    meta = query(
        lake.warehouse_path,
        "select item_id, coalesce(title, 'item ' || item_id) as title, release_year, genres "
        "from main.dim_items order by item_id",
    )
    # Every item gets vectors (models need one per item); one not profiled (an LLM budget) uses its title.
    frame = meta.merge(profiles[["item_id", "profile"]], on="item_id", how="left")
    # the untrusted title is embedded sanitized: an injected or optimized suffix would move the item's
    # vector. The profile is the LLM's text, written from inputs already sanitized (item_profile_inputs);
    # the sanitizer's patterns would cut ordinary prose ("recommend it to anyone who ...") there.
    cleaned = [sanitize_fields(text) for text in frame["title"]]
    frame["title"] = [text for text, _ in cleaned]
    findings = [found for _, found in cleaned]
    sanitized = sum(bool(found) for found in findings)
    has_profile = frame["profile"].notna()
    # Stamped at the end of the train period: the profile may quote train reviews up to then.
    cutoff = query(
        lake.warehouse_path, "select max(event_ts) as t from main.splits where split = 'train'"
    )["t"].iloc[0]
    # the card (title, year, genres): what a cold film has before anyone rates it
    cards = item_card_texts(
        frame["title"].tolist(), frame["release_year"].tolist(), frame["genres"].tolist()
    )
    vectors = {
        "profile_embedding": encode(frame["profile"].where(has_profile, frame["title"]).tolist()),
        "title_embedding": encode(frame["title"].tolist()),
        "card_embedding": encode(cards),
    }
    # the LLM reading the card: on films no one rated, 2x the sentence encoder's card (docs/recommenders.md)
    if (readings := card_readings(lake, llm, cards, context.log.info)) is not None:
        vectors["llm_card_embedding"] = readings
    table = _embedding_table(
        "item_id", frame["item_id"], [cutoff] * len(frame), vectors
    ).append_column("has_profile", pa.array(has_profile.tolist(), pa.bool_()))
    context.log.info(
        f"{int(has_profile.sum())} of {len(frame)} items have an LLM profile; the rest use their title; "
        f"{sanitized} had injected-looking text removed"
    )
    return memo.stamp(
        _write_embeddings(
            context,
            lake,
            table,
            "items",
            sanitized_items=sanitized,
            sanitizer_findings=dg.MetadataValue.json(_finding_counts(findings)),
        )
    )


@dg.asset(
    group_name="llm",
    code_version=LLM_CODE_VERSION,
    deps=[user_profiles, "splits"],
    kinds={"pytorch", "parquet"},
    description="all-MiniLM-L6-v2 vectors (384-d) of each user's profile text.",
)
def user_profile_embeddings(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> dg.MaterializeResult:
    if (memo := Unchanged(context, outputs_present=lake.paths.embeddings("users").exists())).skip:
        return memo.result
    profiles = pd.read_parquet(lake.paths.profiles("user"))
    # Stamped at the user's last train interaction: the profile describes them as of then.
    last = query(
        lake.warehouse_path,
        "select user_id, max(event_ts) as t from main.splits where split = 'train' group by user_id",
    )
    frame = profiles.merge(last, on="user_id", how="left")
    table = _embedding_table(
        "user_id",
        frame["user_id"],
        frame["t"],
        {"profile_embedding": text_encoder(lake)(frame["profile"].tolist())},
    )
    return memo.stamp(_write_embeddings(context, lake, table, "users"))


llm_assets = [item_profiles, user_profiles, item_text_embeddings, user_profile_embeddings]

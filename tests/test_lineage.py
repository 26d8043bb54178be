"""Lineage and incremental re-runs on a persistent Dagster instance, as `dg dev` and
`reclake demo` keep one: an unchanged re-run recomputes nothing after ingest, one edited input file
recomputes only what depends on it, and `reclake lineage` walks a partition back to raw file rows."""

import hashlib
import json
import os
import subprocess

import pytest
from support.data import TODAY
from support.pipelines import RECLAKE, materializations

from models import registry

# every asset downstream of ingest; judge and serving are partitioned but follow the same rule
DOWNSTREAM_OF_INGEST = {
    "stg_interactions",
    "fct_interactions",
    "splits",
    "dim_items",
    "item_profiles",
    "user_profiles",
    "item_text_embeddings",
    "user_profile_embeddings",
    "feast_feature_sources",
    "feast_registry",
    "feast_online_store",
    "training_set",
    "popularity_model",
    "content_retriever_model",
    "ease_model",
    "sasrec_model",
    "llm_sasrec_model",
    "two_stage_model",
    "model_comparison",
    "champion_model",
    "judge_probe",
    "judge_evaluations",
    "simulated_feedback",
}


def _skipped(run) -> set[str]:
    return {key for key, meta in materializations(run).items() if "skipped" in meta}


@pytest.mark.integration
def test_unchanged_rerun_skips_everything_after_ingest(incremental_runs):
    cold, warm = incremental_runs.cold, incremental_runs.warm
    assert cold.result.success and warm.result.success
    assert not _skipped(cold)
    skipped = _skipped(warm)
    assert DOWNSTREAM_OF_INGEST <= skipped, f"recomputed: {sorted(DOWNSTREAM_OF_INGEST - skipped)}"
    assert "raw_interactions" not in skipped  # ingest reads the files: that is how a change is seen
    # a skipped asset re-asserts the data version it had
    before, after = materializations(cold), materializations(warm)
    assert after["splits"]["content_md5"].value == before["splits"]["content_md5"].value
    assert (
        after["sasrec_model"]["model_version"].value
        == before["sasrec_model"]["model_version"].value
    )
    checks = [e for e in warm.result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert checks and all(
        e.event_specific_data.passed for e in checks
    )  # dbt tests still ran, on the kept tables


@pytest.mark.integration
def test_one_edited_item_title_recomputes_only_its_dependents(incremental_runs):
    warm, edited = incremental_runs.warm, incremental_runs.edited
    assert edited.result.success
    skipped = _skipped(edited)
    # depends on the item text: recomputed
    for key in (
        "raw_items",
        "dim_items",
        "item_profiles",
        "item_text_embeddings",
        "content_retriever_model",
        "llm_sasrec_model",
        "two_stage_model",
    ):
        assert key not in skipped, key
    # depends only on interactions: kept
    for key in (
        "popularity_model",
        "ease_model",
        "sasrec_model",
        "training_set",
        "feast_feature_sources",
    ):
        assert key in skipped, key
    before, after = materializations(warm), materializations(edited)
    assert (
        after["splits"]["content_md5"].value == before["splits"]["content_md5"].value
    )  # rebuilt, same content
    assert after["dim_items"]["content_md5"].value != before["dim_items"]["content_md5"].value
    assert (
        after["llm_sasrec_model"]["model_version"].value
        != before["llm_sasrec_model"]["model_version"].value
    )


@pytest.mark.integration
def test_a_retrain_within_the_week_warm_starts_from_the_previous_version(incremental_runs):
    """The retraining policy (training/retraining.py): the edited title retrains llm_sasrec the same
    day of data, so it warm-starts from the version before, and says so in the registry."""
    client = registry.connect(incremental_runs.edited.home / "mlflow")
    before, after = (
        materializations(run)["llm_sasrec_model"]["model_version"].value
        for run in (incremental_runs.warm, incremental_runs.edited)
    )
    first = client.get_model_version(registry.REGISTERED_MODEL, before).tags
    second = client.get_model_version(registry.REGISTERED_MODEL, after).tags
    assert first["training"] == "full" and "no earlier version" in first["training_reason"]
    assert second["training"] == "warm" and second["warm_from_version"] == before
    assert "0.0% new events" in second["training_reason"]
    assert second["data_window"] == first["data_window"]
    assert second["full_last_day"] == first["full_last_day"] == first["data_window"][-10:]


@pytest.mark.integration
def test_reclake_lineage_walks_from_the_partition_to_raw_rows(incremental_runs):
    edited, data = incremental_runs.edited, incremental_runs.data
    env = {**os.environ, "RECLAKE_HOME": str(edited.home)}
    out = subprocess.run(
        [RECLAKE, "lineage", "--date", TODAY, "--user", "7", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    chain = json.loads(out.stdout)
    client = registry.connect(edited.home / "mlflow")
    champion = client.get_model_version_by_alias(registry.REGISTERED_MODEL, "champion")
    assert chain["partition"]["model_version"] == str(champion.version)
    assert chain["mlflow_run"]["run_id"] == champion.run_id
    tags = client.get_run(champion.run_id).data.tags
    for tag in (
        "dagster_run_id",
        "dagster_asset_key",
        "data_version",
        "dbt_manifest_sha256",
        "git_commit",
    ):
        assert tags.get(tag) and chain["mlflow_run"][tag] == tags[tag]
    assert chain["training_set"]["unchanged_since_training"]
    assert [m["node"] for m in chain["dbt"]["models"]][:2] == ["splits", "fct_interactions"]
    [raw] = chain["raw"]["files"]
    assert raw["sha256"] == hashlib.sha256((data / "ml-100k.inter").read_bytes()).hexdigest()
    # the user's rows point at the right lines of the raw file
    lines = (data / "ml-100k.inter").read_text().splitlines()
    user_rows = chain["user"]["raw_rows"]
    assert len(user_rows) == sum(line.split("\t")[0] == "7" for line in lines[1:])
    for row in user_rows[:20]:
        user_id, item_id, *_ = lines[row["source_row"] - 1].split(
            "\t"
        )  # source_row: the line number
        assert (user_id, item_id) == ("7", row["item_id"])
    tree = subprocess.run(
        [RECLAKE, "lineage", "--date", TODAY], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert champion.run_id in tree and raw["sha256"] in tree


def test_lineage_of_a_missing_partition_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("RECLAKE_HOME", str(tmp_path))
    out = subprocess.run(
        [RECLAKE, "lineage", "--date", "2026-01-01"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "no recommendation partition for 2026-01-01" in out.stderr

"""The serving group: nightly batch recommendations from the champion, in the lake and in Feast."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pytest
from dagster_pyspark import LazyPySparkResource
from support.data import TODAY
from support.pipelines import materializations, query

from models import registry
from models.common.files import sha256_file
from orchestration.core.partitions import daily_partitions
from orchestration.core.resources import LakeResource
from orchestration.core.spark import spark_config
from orchestration.defs.serving.assets import batch_recommendations
from orchestration.defs.serving.resources import ServingResource
from orchestration.defs.serving.schedules import champion_changed, nightly_batch_scoring


def partition_path(home, date: str):
    """Where the contract says a date's recommendations are."""
    return home / "lake" / "recommendations" / f"date={date}" / "recommendations.parquet"


def _score(home, partition, **serving):
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize(
            [batch_recommendations],
            partition_key=partition,
            instance=instance,
            raise_on_error=False,
            resources={
                "lake": LakeResource(home=str(home)),
                "serving": ServingResource(**serving),
                "spark": LazyPySparkResource(spark_config=spark_config()),
            },
        )  # unused on duckdb


@pytest.mark.integration
def test_todays_partition_has_k_unseen_items_per_user_from_the_champion(ml100k_runs, mlflow_client):
    runs, _ = ml100k_runs
    home = runs[-1].home
    recs = pd.read_parquet(partition_path(home, TODAY))
    assert list(recs.columns) == [
        "user_id",
        "item_id",
        "rank",
        "score",
        "model_name",
        "model_version",
    ]
    assert len(recs) == 943 * 20 and recs["user_id"].nunique() == 943
    assert all(ranks == list(range(1, 21)) for ranks in recs.groupby("user_id")["rank"].apply(list))
    champion = mlflow_client.get_model_version_by_alias(registry.REGISTERED_MODEL, "champion")
    assert set(recs["model_version"]) == {str(champion.version)}
    assert set(recs["model_name"]) == {champion.tags["model_name"]}
    seen = set(query(runs[-1].warehouse, "select user_id, item_id from fct_interactions"))
    assert not seen & set(zip(recs["user_id"], recs["item_id"]))
    meta = materializations(runs[-1])["batch_recommendations"]
    assert meta["users_scored"].value == 943 and 0 < meta["coverage"].value <= 1
    assert (
        0.5 < meta["popularity_bias"].value <= 1
    )  # recommenders lean to popular items; this measures how much


@pytest.mark.integration
def test_rerun_with_the_same_champion_gives_identical_rows(ml100k_runs):
    runs, _ = ml100k_runs
    first, second = (
        materializations(r)["batch_recommendations"]["content_sha256"].value for r in runs
    )
    assert first == second


@pytest.mark.integration
def test_feast_online_query_returns_the_partitions_list(ml100k_runs):
    from orchestration.core.feast import feature_store

    runs, _ = ml100k_runs
    home = runs[-1].home
    store = feature_store(home)
    online = store.get_online_features(
        features=store.get_feature_service("recommendations_v1"),
        entity_rows=[{"user_id": "1"}],
        full_feature_names=True,
    ).to_dict()
    recs = pd.read_parquet(partition_path(home, TODAY))
    mine = recs[recs["user_id"] == "1"].sort_values("rank")
    assert online["user_recommendations__item_ids"][0] == mine["item_id"].tolist()
    assert online["user_recommendations__model_version"][0] == mine["model_version"].iloc[0]
    assert online["user_recommendations__partition_date"][0] == TODAY


@pytest.mark.integration
def test_reclake_recommend_answers_from_the_online_store_a_partition_or_the_champion(
    ml100k_runs, monkeypatch
):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from orchestration import recommend as rec

    runs, _ = ml100k_runs
    home = runs[-1].home
    mine = pd.read_parquet(partition_path(home, TODAY)).query("user_id == '1'").sort_values("rank")
    reclake = str(Path(sys.executable).parent / "reclake")
    env = {**os.environ, "RECLAKE_HOME": str(home)}
    out = subprocess.run(
        [reclake, "recommend", "--user", "1", "--k", "5", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["source"] == rec.ONLINE and answer["partition_date"] == TODAY
    assert [i["item_id"] for i in answer["items"]] == mine["item_id"].tolist()[:5]
    assert answer["model_version"] == mine["model_version"].iloc[0] and answer["items"][0]["title"]
    text = subprocess.run(
        [reclake, "recommend", "--user", "1", "--date", TODAY],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    ).stdout
    assert f"from the batch partition {TODAY}" in text and text.count("(item ") == 10
    unknown = subprocess.run(
        [reclake, "recommend", "--user", "no-such-user"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert unknown.returncode == 2 and "no interactions in the warehouse" in unknown.stderr
    # fault injection: the online store has lost the user; the champion scores them now, as the batch did
    monkeypatch.setattr(rec, "from_online_store", lambda *args: None)
    scored = rec.recommend(home, "1", k=10)
    assert (
        scored["source"] == rec.SCORED_NOW
        and scored["model_version"] == mine["model_version"].iloc[0]
    )
    assert [i["item_id"] for i in scored["items"]] == mine["item_id"].tolist()[:10]


@pytest.mark.integration
def test_mlflow_models_serve_answers_with_the_batch_partitions_list(ml100k_runs):
    """`mlflow models serve` on the champion alias, started as docs/serving.md says (`make serve-model`)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import requests
    from support.servers import assert_loopback_only, free_port, stop_server, wait_for_http

    runs, _ = ml100k_runs
    home = runs[-1].home
    bin_dir = Path(sys.executable).parent
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RECLAKE_HOME": str(home),
        "MLFLOW_TRACKING_URI": registry.tracking_uri(home / "mlflow"),
        "RECLAKE_FEATURE_REPO": str(Path(__file__).resolve().parents[1] / "feature_repo"),
    }
    server = subprocess.Popen(
        [
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{registry.REGISTERED_MODEL}@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/ping", server, seconds=120)
        assert_loopback_only(server.pid)
        answer = requests.post(
            f"{base}/invocations",
            timeout=60,
            json={"dataframe_records": [{"user_id": "1"}], "params": {"k": 10}},
        ).json()
        served = pd.DataFrame(answer["predictions"])
        mine = (
            pd.read_parquet(partition_path(home, TODAY))
            .query("user_id == '1'")
            .sort_values("rank")
            .head(10)
        )
        assert served["item_id"].tolist() == mine["item_id"].tolist()
        assert served["score"].to_numpy() == pytest.approx(mine["score"].to_numpy(), rel=1e-5)
    finally:
        stop_server(server)


@pytest.mark.integration
def test_crash_midway_keeps_the_previous_partition_fault_injected(ml100k_runs, monkeypatch):
    from models.recsys.serving import SavedRecommender

    runs, _ = ml100k_runs
    home = runs[-1].home
    path = partition_path(home, TODAY)
    before = sha256_file(path)
    original = SavedRecommender.iter_recommendations

    def crash_after_first_chunk(
        self, *args, **kwargs
    ):  # fault injection: the process dies mid-partition
        chunks = original(self, *args, **kwargs)
        yield next(chunks)
        raise RuntimeError("injected crash after the first chunk")

    monkeypatch.setattr(SavedRecommender, "iter_recommendations", crash_after_first_chunk)
    result = _score(home, TODAY, chunk_users=100)
    assert not result.success
    assert sha256_file(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "recommendations.parquet"
    ]  # no temp file left


@pytest.mark.integration
def test_alias_change_triggers_the_sensor_and_the_next_run_uses_the_new_version(
    ml100k_runs, mlflow_client
):
    runs, _ = ml100k_runs
    home = runs[-1].home
    lake = LakeResource(home=str(home))
    champion = str(
        mlflow_client.get_model_version_by_alias(registry.REGISTERED_MODEL, "champion").version
    )
    other = next(
        str(v.version)
        for v in mlflow_client.search_model_versions(f"name='{registry.REGISTERED_MODEL}'")
        if str(v.version) != champion
    )
    with dg.build_sensor_context(cursor=None, resources={"lake": lake}) as context:
        assert isinstance(
            champion_changed(context), dg.SkipReason
        )  # first look only records the version
        assert context.cursor == champion
    mlflow_client.set_registered_model_alias(registry.REGISTERED_MODEL, "champion", other)
    try:
        with dg.build_sensor_context(cursor=champion, resources={"lake": lake}) as context:
            request = champion_changed(context)
        assert (
            isinstance(request, dg.RunRequest)
            and request.partition_key == daily_partitions.get_last_partition_key()
        )
        assert context.cursor == other
        result = _score(
            home, "2026-01-02"
        )  # an old date, so today's partition stays as the other tests expect
        assert result.success
        recs = pd.read_parquet(partition_path(home, "2026-01-02"))
        assert set(recs["model_version"]) == {other}
    finally:
        mlflow_client.set_registered_model_alias(registry.REGISTERED_MODEL, "champion", champion)


@pytest.mark.integration
def test_a_two_stage_champion_is_served_reranked_with_feast_stats(
    ml100k_runs, mlflow_client, monkeypatch
):
    """The nightly batch serves two_stage as it serves any champion (Feast stats as of the batch date);
    MLflow's pyfunc serves it from the online store."""
    import mlflow

    from orchestration.core.settings import FEATURE_REPO_DIR

    runs, _ = ml100k_runs
    home = runs[-1].home
    champion = str(
        mlflow_client.get_model_version_by_alias(registry.REGISTERED_MODEL, "champion").version
    )
    two_stage = max(
        (
            v
            for v in mlflow_client.search_model_versions(f"name='{registry.REGISTERED_MODEL}'")
            if v.tags["model_name"] == "two_stage"
        ),
        key=lambda v: int(v.version),
    )
    mlflow_client.set_registered_model_alias(
        registry.REGISTERED_MODEL, "champion", str(two_stage.version)
    )
    try:
        result = _score(
            home, "2026-01-03"
        )  # an old date, so today's partition stays as the other tests expect
        assert result.success
        recs = pd.read_parquet(partition_path(home, "2026-01-03"))
        assert set(recs["model_name"]) == {"two_stage"} and len(recs) == 943 * 20
        base = pd.read_parquet(
            partition_path(home, TODAY)
        )  # today's, from the base model's champion
        seen = set(query(runs[-1].warehouse, "select user_id, item_id from fct_interactions"))
        assert not seen & set(zip(recs["user_id"], recs["item_id"]))
        assert (
            recs.groupby("user_id")["score"].diff().dropna() < 0
        ).all()  # strictly ordered: ties broken
        assert not recs[["user_id", "item_id"]].equals(base[["user_id", "item_id"]])  # re-ranked

        monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.tracking_uri(home / "mlflow"))
        monkeypatch.setenv("RECLAKE_FEATURE_REPO", str(FEATURE_REPO_DIR))
        monkeypatch.setenv("RECLAKE_HOME", str(home))
        model = mlflow.pyfunc.load_model(f"models:/{registry.REGISTERED_MODEL}@champion")
        online = model.predict(pd.DataFrame({"user_id": ["1", "943"]}), params={"k": 10})
        assert len(online) == 20 and sorted(set(online["user_id"])) == ["1", "943"]
    finally:
        mlflow_client.set_registered_model_alias(registry.REGISTERED_MODEL, "champion", champion)


def test_no_champion_fails_naming_the_asset_to_materialize(tmp_path):
    result = _score(tmp_path / "home", TODAY)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "materialize the `training` group (its `champion_model` asset sets it) first" in str(
        failure.event_specific_data.error.message
    )


def test_nightly_schedule_scores_the_day_at_two_utc():
    from orchestration.definitions import defs

    repository = defs.get_repository_def()  # as the daemon evaluates it
    schedule = repository.get_schedule_def(nightly_batch_scoring.name)
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    tick = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    with dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=repository
    ) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2026-11-26"]


@pytest.mark.integration
def test_cli_backfills_a_date_range_in_one_run(ml100k_runs, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from orchestration.core.settings import REPO_ROOT

    runs, _ = ml100k_runs
    home = runs[-1].home
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "RECLAKE_HOME": str(home),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "VIRTUAL_ENV": sys.prefix,  # the venv activated, as a user runs dg
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    (tmp_path / "dagster").mkdir()
    done = subprocess.run(
        [
            str(bin_dir / "dg"),
            "launch",
            "--assets",
            "batch_recommendations",
            "--partition-range",
            "2026-02-01...2026-02-03",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for date in ("2026-02-01", "2026-02-02", "2026-02-03"):
        assert len(pd.read_parquet(partition_path(home, date))) == 943 * 20


def test_a_list_marks_the_films_new_on_its_night():
    """New on night D: first seen in the 14 days before D, or never seen (outcomes' definition)."""
    from orchestration import recommend as rec

    catalog = pd.DataFrame(
        {
            "title": ["Old", "Fresh", "Unseen", "Tomorrow's"],
            "first_seen": pd.to_datetime(["1998-01-01", "1998-03-20", None, "1998-04-01"]),
        },
        index=pd.Index(["a", "b", "c", "d"], name="item_id"),
    )
    answer = rec._answer(
        "u", rec.PARTITION, list("abcd"), [4, 3, 2, 1], "m", "1", "1998-04-01", catalog
    )
    assert [i["new"] for i in answer["items"]] == [False, True, True, False]
    text = rec.render(answer)
    assert (
        "score 3.0000, new)" in text
        and "score 4.0000)" in text
        and "new: a film first seen" in text
    )
    # scored now: the night after the last event (1998-04-02), on which d is new too
    now = rec._answer("u", rec.SCORED_NOW, list("abcd"), [4, 3, 2, 1], "m", "1", None, catalog)
    assert [i["new"] for i in now["items"]] == [False, True, True, True]

"""Integration: Feast over the ML-100K run — online reads (SDK, CLI, `feast serve`, Redis),
point-in-time joins and the training set."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.pipelines import query
from support.servers import assert_loopback_only, free_port, stop_server

from orchestration.core.feast import feast_command_env, feature_store
from orchestration.core.paths import Lake
from orchestration.core.settings import FEAST_EXECUTABLE, FEATURE_REPO_DIR
from orchestration.defs.features import store as feast_store

pytestmark = pytest.mark.integration
STATS = ["n_interactions", "mean_rating", "rating_std", "days_since_first", "days_since_previous"]


@pytest.fixture(scope="module")
def home(ml100k_runs) -> Path:
    return ml100k_runs[0][-1].home


@pytest.fixture(scope="module")
def store(home):
    return feature_store(home)


def online(store, rows, service="serving_v1"):
    return store.get_online_features(
        features=store.get_feature_service(service), entity_rows=rows, full_feature_names=True
    ).to_dict()


def latest_stats(home, table, key, value):
    columns = ", ".join(STATS)
    return query(
        home / "warehouse.duckdb",
        f"select {columns} from {table} where {key} = ? order by event_timestamp desc limit 1",
        [value],
    )[0]


def test_online_features_for_user_1_and_item_50_are_their_latest_stats(store, home):
    values = online(store, [{"user_id": "1", "item_id": "50"}])
    got_user = tuple(values[f"user_stats__{s}"][0] for s in STATS)
    got_item = tuple(values[f"item_stats__{s}"][0] for s in STATS)
    assert None not in got_user and None not in got_item
    assert got_user == pytest.approx(latest_stats(home, "feat_user_stats", "user_id", "1"))
    assert got_item == pytest.approx(latest_stats(home, "feat_item_stats", "item_id", "50"))


def test_unknown_user_gets_nulls_not_made_up_values(store):
    values = online(store, [{"user_id": "no-such-user", "item_id": "50"}])
    assert all(values[f"user_stats__{s}"][0] is None for s in STATS)
    assert values["item_stats__n_interactions"][0] is not None


def test_unknown_view_feature_or_entity_raise_feast_errors(store):
    from feast.errors import FeatureViewNotFoundException

    with pytest.raises(FeatureViewNotFoundException):
        store.get_online_features(
            features=["no_such_view:mean_rating"], entity_rows=[{"user_id": "1"}]
        )
    with pytest.raises(Exception, match="no_such_feature"):
        store.get_online_features(
            features=["user_stats:no_such_feature"], entity_rows=[{"user_id": "1"}]
        )
    with pytest.raises(Exception, match="user_id"):
        store.get_online_features(
            features=["user_stats:mean_rating"], entity_rows=[{"customer_id": "1"}]
        )


def test_second_run_materializes_nothing_twice(ml100k_runs):
    runs, _ = ml100k_runs

    def windows(run):
        event = next(
            e
            for e in run.result.get_asset_materialization_events()
            if e.materialization.asset_key.to_user_string() == "feast_online_store"
        )
        return event.materialization.metadata

    first, second = windows(runs[0])["windows"].value, windows(runs[1])["windows"].value
    assert all(w["full_refresh"] and not w["skipped"] for w in first.values())
    assert all(not w["full_refresh"] and w["skipped"] for w in second.values())


def test_point_in_time_join_takes_rows_from_before_the_entity_time_only(store, home):
    moments = query(
        home / "warehouse.duckdb",
        "select event_timestamp, n_interactions from feat_user_stats "
        "where user_id = '1' order by event_timestamp limit 3",
    )
    (t0, n0), (t1, n1), _ = moments
    at = pd.to_datetime(
        [t1 - pd.Timedelta(microseconds=1), t1, t0 - pd.Timedelta(seconds=1)]
    ).tz_localize("UTC")
    entities = pd.DataFrame(
        {"user_id": ["1"] * 3, "item_id": ["50"] * 3, "event_timestamp": at, "order": [0, 1, 2]}
    )
    joined = (
        store.get_historical_features(
            entity_df=entities, features=["user_stats:n_interactions"], full_feature_names=True
        )
        .to_df()
        .sort_values("order")
    )
    got = joined["user_stats__n_interactions"].tolist()
    assert got[0] == n0  # the row stamped t1 is after the entity time: not joined
    assert got[1] == n1  # a row stamped at (or before) the entity time is joined
    assert pd.isna(got[2])  # nothing before the user's first moment


def test_training_set_has_one_row_per_train_interaction_and_no_future_data(home, ml100k_runs):
    _, tables = ml100k_runs
    frame = pd.read_parquet(home / "lake" / "features" / "training_set.parquet")
    assert len(frame) == 98_114
    train = query(home / "warehouse.duckdb", "select count(*) from splits where split = 'train'")[
        0
    ][0]
    assert len(frame) == train
    assert {f"user_stats__{s}" for s in STATS} | {f"item_stats__{s}" for s in STATS} <= set(
        frame.columns
    )
    # user_stats__n_interactions must count the user's train events strictly before this one
    times = frame.groupby("user_id")["event_ts"].apply(lambda s: np.sort(s.to_numpy()))
    expected = [
        int(np.searchsorted(times[u], t, side="left"))
        for u, t in zip(frame.user_id, frame.event_ts)
    ]
    got = frame["user_stats__n_interactions"].fillna(0).astype(int).tolist()
    assert got == expected
    assert tables[0]["training_set.parquet"] == tables[1]["training_set.parquet"]


def test_feast_cli_lists_the_repo(home):
    env = feast_command_env(home, "duckdb")
    done = subprocess.run(
        [FEAST_EXECUTABLE, "-c", str(FEATURE_REPO_DIR), "feature-views", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "user_stats" in done.stdout and "item_stats" in done.stdout


def test_feast_serve_answers_like_the_sdk(store, home):
    port = free_port()
    server = subprocess.Popen(
        [
            FEAST_EXECUTABLE,
            "-c",
            str(FEATURE_REPO_DIR),
            "serve",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=feast_command_env(home, "duckdb"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    body = json.dumps(
        {
            "feature_service": "serving_v1",
            "entities": {"user_id": ["1"], "item_id": ["50"]},
            "full_feature_names": True,
        }
    ).encode()
    try:
        deadline, answer = time.monotonic() + 120, None
        while answer is None and time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"feast serve exited: {server.stderr.read().decode()[-2000:]}")
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/get-online-features",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = json.load(response)
            except OSError:
                time.sleep(1)
        assert answer is not None, "feast serve did not answer within 120 s"
        assert_loopback_only(server.pid)
    finally:
        stop_server(server)
    served = {
        name: result["values"][0]
        for name, result in zip(answer["metadata"]["feature_names"], answer["results"])
    }
    expected = online(store, [{"user_id": "1", "item_id": "50"}])
    for name in [f"user_stats__{s}" for s in STATS] + [f"item_stats__{s}" for s in STATS]:
        assert served[name] == pytest.approx(expected[name][0])


def test_redis_online_store_serves_the_same_values(store, home, tmp_path, monkeypatch):
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip(
            "redis-server is not installed (Debian package redis-server; .ci/run installs it)"
        )
    port = free_port()
    server = subprocess.Popen(
        [
            redis_server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        redis_home = tmp_path / "home"
        (redis_home / "feast").mkdir(parents=True)
        # A registry of its own, so this test's materialization leaves the shared home alone.
        shutil.copy(home / "feast" / "registry.db", redis_home / "feast" / "registry.db")
        # as the README tells a user: the redis yaml, with its variables in the environment
        monkeypatch.setenv("REDIS_CONNECTION_STRING", f"127.0.0.1:{port}")
        monkeypatch.setenv("RECLAKE_HOME", str(redis_home))
        from feast import FeatureStore

        redis_store = FeatureStore(
            repo_path=str(FEATURE_REPO_DIR),
            fs_yaml_file=FEATURE_REPO_DIR / "feature_store.redis.yaml",
        )
        sources = feast_store.source_facts(Lake(home))
        deadline = time.monotonic() + 30
        while True:
            try:
                feast_store.materialize_online(
                    redis_store, sources, Lake(redis_home), full_refresh=True, log=lambda _: None
                )
                break
            except Exception:  # noqa: BLE001 - redis may still be starting
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        from_redis = online(
            redis_store,
            [{"user_id": "1", "item_id": "50"}, {"user_id": "no-such-user", "item_id": "50"}],
        )
        from_sqlite = online(
            store, [{"user_id": "1", "item_id": "50"}, {"user_id": "no-such-user", "item_id": "50"}]
        )
        assert from_redis.keys() == from_sqlite.keys()
        for name in from_sqlite:
            assert (
                from_redis[name] == pytest.approx(from_sqlite[name])
                if name.endswith(("rating", "std"))
                else from_redis[name] == from_sqlite[name]
            )
    finally:
        stop_server(server)


def test_text_embedding_views_serve_the_profile_vectors(store, home):
    values = store.get_online_features(
        features=store.get_feature_service("embeddings_v1"),
        entity_rows=[{"user_id": "1", "item_id": "1"}],
        full_feature_names=True,
    ).to_dict()
    user_vector = values["user_profile_embedding__profile_embedding"][0]
    item_vector = values["item_text_embedding__profile_embedding"][0]
    assert len(user_vector) == 384 and len(item_vector) == 384
    stored = pd.read_parquet(home / "lake" / "embeddings" / "users.parquet").set_index("user_id")
    assert np.allclose(user_vector, stored.loc["1", "profile_embedding"], atol=1e-6)
    assert np.linalg.norm(item_vector) == pytest.approx(1.0, abs=1e-3)  # unit vectors: cosine = dot


def test_an_empty_source_is_skipped_not_materialized_fault_injected_stub_store(tmp_path):
    """An LLM budget of 0 leaves the profile vectors empty: their min/max timestamps are NaT, which
    Feast's materialize cannot take. The view is skipped, saying so; the others still load."""

    class StubStore:  # records what would be materialized
        def __init__(self):
            self.materialized = []

        def get_feature_view(self, name):
            return type("View", (), {"most_recent_end_time": None})()

        def materialize(self, start_date, end_date, feature_views):
            self.materialized += feature_views

    stamp = pd.Timestamp("1998-04-22", tz="UTC")
    sources = {
        "user_profile_embeddings": {"min_ts": pd.NaT, "max_ts": pd.NaT, "sha256": "a"},
        "item_stats": {"min_ts": stamp, "max_ts": stamp, "sha256": "b"},
    }
    said, stub = [], StubStore()
    windows = feast_store.materialize_online(stub, sources, Lake(tmp_path), log=said.append)
    assert stub.materialized == ["item_stats"]
    assert windows["user_profile_embeddings"]["skipped"] and not windows["item_stats"]["skipped"]
    assert any("no rows yet" in line for line in said)
